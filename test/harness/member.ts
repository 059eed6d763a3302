/**
 * One etcd or etcd-ts member process: spawned with etcd's flags, its output
 * appended to a log file, ready once GET /health says so (or, for a member
 * that cannot reach quorum, once it answers HTTP at all), stopped with
 * SIGTERM then SIGKILL, killed with SIGKILL, restarted on the same data dir
 * and ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { resolve } from 'node:path';
import { nodeFlags } from '../../src/cmd/node-flags.js';
import { track } from './reaper.js';

export type MemberKind = 'etcd' | 'etcd-ts';

/** Real etcd; ETCD_BIN overrides. */
export const etcdBin = process.env['ETCD_BIN'] ?? '/usr/bin/etcd';
/** The compiled etcd-ts entry point beside this file's build output. */
export const etcdTsScript = resolve(import.meta.dirname, '../../src/cmd/etcd-ts.js');

/** Why a test needing real etcd cannot run here, or false when it can. */
export function etcdMissing(): string | false {
  return existsSync(etcdBin) ? false : `${etcdBin} is not installed (apt-get install etcd-server)`;
}

export interface MemberSpec {
  readonly kind: MemberKind;
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  /** The advertised peer port (in --initial-cluster and --initial-advertise-peer-urls). */
  readonly peerPort: number;
  /** Where the member listens for peers when that differs (a FaultNet proxy holds peerPort). */
  readonly listenPeerPort?: number | undefined;
  /** https client and/or peer URLs (the TLS flags go in extraFlags). */
  readonly tls?: MemberTls | undefined;
  /** name=peerUrl,... for --initial-cluster. */
  readonly initialCluster: string;
  readonly initialClusterState: 'new' | 'existing';
  readonly clusterToken: string;
  readonly extraFlags: readonly string[];
  readonly logFile: string;
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Node's own options before the etcd-ts script (e.g. --cpu-prof); ignored for etcd. */
  readonly nodeArgs?: readonly string[] | undefined;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export type Readiness = 'healthy' | 'serving';

export interface WaitReadyOptions {
  readonly timeoutMs?: number;
  /** healthy: /health says true (a leader, no alarm); serving: any HTTP answer. Default healthy. */
  readonly until?: Readiness;
}

const readyTimeoutMsDefault = 60_000; // a loaded 2-core machine has taken over 30 s to start a node process
const readyPollMs = 50;
const healthRequestTimeoutMs = 1_000;
const stopTimeoutMsDefault = 10_000;

/** TLS on a member's URLs, and what the harness presents to check its health over https. */
export interface MemberTls {
  readonly client?: boolean;
  readonly peer?: boolean;
  /** PEM contents: the CA to trust, and the client certificate for --client-cert-auth. */
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** One GET of /health: 'true', 'false', or undefined when nothing answered. */
export function getHealth(clientUrl: string, timeoutMs = healthRequestTimeoutMs, tls?: MemberTls, query = ''): Promise<string | undefined> {
  return new Promise((resolvePromise) => {
    const onResponse = (res: http.IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          const parsed = JSON.parse(body) as { health?: unknown };
          resolvePromise(String(parsed.health));
        } catch {
          resolvePromise('false');
        }
      });
      res.on('error', () => resolvePromise(undefined));
    };
    const req = clientUrl.startsWith('https:')
      ? https.get(`${clientUrl}/health${query}`, { timeout: timeoutMs, agent: false, ca: tls?.ca, cert: tls?.cert, key: tls?.key, rejectUnauthorized: tls?.ca !== undefined }, onResponse)
      : http.get(`${clientUrl}/health${query}`, { timeout: timeoutMs, agent: false }, onResponse);
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolvePromise(undefined));
  });
}

export class Member {
  private child: ChildProcess | undefined;
  private exitPromise: Promise<ExitInfo> | undefined;
  private lastExit: ExitInfo | undefined;
  private starts = 0;

  constructor(readonly spec: MemberSpec) {}

  get kind(): MemberKind {
    return this.spec.kind;
  }
  get name(): string {
    return this.spec.name;
  }
  get dataDir(): string {
    return this.spec.dataDir;
  }
  get logFile(): string {
    return this.spec.logFile;
  }
  /** host:port, as etcdctl --endpoints and GrpcChannel take it. */
  get endpoint(): string {
    return `127.0.0.1:${this.spec.clientPort}`;
  }
  private get peerScheme(): string {
    return this.spec.tls?.peer === true ? 'https' : 'http';
  }
  get clientUrl(): string {
    return `${this.spec.tls?.client === true ? 'https' : 'http'}://${this.endpoint}`;
  }
  get peerUrl(): string {
    return `${this.peerScheme}://127.0.0.1:${this.spec.peerPort}`;
  }
  /** Where the member itself listens for peers (peerUrl unless a proxy stands in front). */
  get listenPeerUrl(): string {
    return `${this.peerScheme}://127.0.0.1:${this.spec.listenPeerPort ?? this.spec.peerPort}`;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined && this.lastExit === undefined;
  }
  /** How the last run ended; undefined while running or before the first start. */
  get exitInfo(): ExitInfo | undefined {
    return this.lastExit;
  }

  /** The command line etcd takes; etcd-ts takes the very same flags. */
  flags(): string[] {
    const s = this.spec;
    return [
      '--name', s.name,
      '--data-dir', s.dataDir,
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', this.listenPeerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', s.initialCluster,
      '--initial-cluster-state', s.initialClusterState,
      '--initial-cluster-token', s.clusterToken,
      ...(s.kind === 'etcd' ? ['--logger', 'zap', '--log-outputs', 'stderr'] : []),
      ...s.extraFlags,
    ];
  }

  /**
   * Spawns the process (it must not be running) and, unless told not to, waits
   * until ready. env adds variables for this run only (e.g. ETCD_TS_FAILPOINTS).
   */
  async start(opts: WaitReadyOptions & { readonly wait?: boolean; readonly env?: Readonly<Record<string, string>> } = {}): Promise<void> {
    if (this.running) throw new Error(`${this.name}: already running (pid ${this.pid ?? '?'})`);
    this.starts++;
    appendFileSync(this.logFile, `=== harness: start #${this.starts} of ${this.kind} ${this.name} at ${new Date().toISOString()}\n`);
    const fd = openSync(this.logFile, 'a');
    const [file, args] = this.kind === 'etcd' ? [etcdBin, this.flags()] : [process.execPath, [...nodeFlags, ...(this.spec.nodeArgs ?? []), etcdTsScript, ...this.flags()]];
    let child: ChildProcess;
    try {
      child = spawn(file, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...this.spec.env, ...opts.env } });
    } finally {
      closeSync(fd);
    }
    track(child);
    this.child = child;
    this.lastExit = undefined;
    this.exitPromise = new Promise<ExitInfo>((resolveExit) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        const info = { code, signal };
        if (this.child === child) this.lastExit = info;
        resolveExit(info);
      };
      child.once('exit', done);
      child.once('error', (e) => {
        appendFileSync(this.logFile, `=== harness: spawn failed: ${e.message}\n`);
        done(127, null);
      });
    });
    if (opts.wait !== false) await this.waitReady(opts);
  }

  /** Polls until ready; fails at once with the log's tail if the process exits. */
  async waitReady(opts: WaitReadyOptions = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? readyTimeoutMsDefault;
    const until = opts.until ?? 'healthy';
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited (${describeExit(this.lastExit)}) before ready; log tail:\n${this.logTail(30)}`);
      const health = await getHealth(this.clientUrl, undefined, this.spec.tls);
      if (health !== undefined && (until === 'serving' || health === 'true')) return;
      if (Date.now() > deadline) throw new Error(`${this.name} not ${until} within ${timeoutMs} ms (last /health: ${health ?? 'no answer'}); log tail:\n${this.logTail(30)}`);
      await delay(readyPollMs);
    }
  }

  /** Resolves when the current run ends. */
  waitExit(): Promise<ExitInfo> {
    return this.exitPromise ?? Promise.resolve({ code: null, signal: null });
  }

  /** SIGTERM, then SIGKILL if still running after timeoutMs. Resolves with how it ended. */
  async stop(timeoutMs = stopTimeoutMsDefault): Promise<ExitInfo> {
    if (!this.running || this.child === undefined) return this.lastExit ?? { code: null, signal: null };
    const exited = this.waitExit();
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const first = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (first !== 'timeout') return first;
    appendFileSync(this.logFile, `=== harness: no exit ${timeoutMs} ms after SIGTERM; SIGKILL\n`);
    this.child.kill('SIGKILL');
    return exited;
  }

  /** SIGKILL (a crash): nothing gets flushed. Resolves once the process is gone. */
  async kill(): Promise<ExitInfo> {
    if (!this.running || this.child === undefined) return this.lastExit ?? { code: null, signal: null };
    const exited = this.waitExit();
    this.child.kill('SIGKILL');
    return exited;
  }

  /** SIGSTOP / SIGCONT, for pause faults. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }
  resume(): void {
    this.child?.kill('SIGCONT');
  }
  /** Any other signal to the running process (e.g. SIGUSR2 to re-arm failpoints). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child?.kill(sig);
  }

  /** Stops if running (SIGTERM), then starts again on the same data dir and ports. */
  async restart(opts: WaitReadyOptions = {}): Promise<void> {
    await this.stop();
    await this.start(opts);
  }

  /** The last lines of the log file. */
  logTail(lines: number): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

export function describeExit(e: ExitInfo | undefined): string {
  if (e === undefined) return 'running';
  return e.signal !== null ? `signal ${e.signal}` : `code ${String(e.code)}`;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
