/**
 * Running Debian's etcdctl (API v3) against members: one command to its end
 * with a hard timeout, or a long-running one (watch, lease keep-alive) in the
 * background whose output can be awaited and which is stopped on demand.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { track } from './reaper.js';

/** ETCDCTL_BIN overrides. */
export const etcdctlBin = process.env['ETCDCTL_BIN'] ?? '/usr/bin/etcdctl';

export function etcdctlMissing(): string | false {
  return existsSync(etcdctlBin) ? false : `${etcdctlBin} is not installed (apt-get install etcd-client)`;
}

export interface CtlOptions {
  /** host:port list, joined for --endpoints. */
  readonly endpoints: readonly string[] | string;
  /** The process is SIGKILLed after this. Default 15 s. */
  readonly timeoutMs?: number;
  readonly stdin?: string | Buffer;
  /** Leave stdin open for write() (etcdctl watch -i, txn -i). */
  readonly keepStdinOpen?: boolean;
  readonly env?: Readonly<Record<string, string>>;
}

export interface CtlResult {
  /** Exit code; null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
  readonly timedOut: boolean;
}

const ctlTimeoutMsDefault = 15_000;

function spawnCtl(args: readonly string[], opts: CtlOptions): ChildProcess {
  const endpoints = typeof opts.endpoints === 'string' ? opts.endpoints : opts.endpoints.join(',');
  const child = spawn(etcdctlBin, [`--endpoints=${endpoints}`, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ETCDCTL_API: '3', ...opts.env },
  });
  track(child);
  // etcdctl may exit before reading stdin; a broken pipe there is not the test's concern.
  child.stdin?.on('error', () => undefined);
  if (opts.keepStdinOpen === true) {
    if (opts.stdin !== undefined) child.stdin?.write(opts.stdin);
  } else if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  else child.stdin?.end();
  return child;
}

/** The output of a running etcdctl so far, and its end. */
export class CtlProcess {
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private timedOut = false;
  private readonly timer: NodeJS.Timeout;
  private readonly listeners = new Set<() => void>();
  readonly done: Promise<CtlResult>;

  constructor(
    private readonly child: ChildProcess,
    timeoutMs: number,
  ) {
    child.stdout?.on('data', (c: Buffer) => {
      this.out.push(c);
      for (const l of this.listeners) l();
    });
    child.stderr?.on('data', (c: Buffer) => this.err.push(c));
    this.timer = setTimeout(() => {
      this.timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    this.done = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        clearTimeout(this.timer);
        const stdoutBytes = Buffer.concat(this.out);
        resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(this.err).toString('utf8'), timedOut: this.timedOut });
      });
      child.once('error', (e) => {
        clearTimeout(this.timer);
        resolve({ code: 127, signal: null, stdout: '', stdoutBytes: Buffer.alloc(0), stderr: e.message, timedOut: false });
      });
    });
  }

  /** Writes to stdin (opened with keepStdinOpen). */
  write(text: string): void {
    this.child.stdin?.write(text);
  }

  stdout(): string {
    return Buffer.concat(this.out).toString('utf8');
  }

  /** Resolves once stdout satisfies pred; rejects on timeout or when the process ends first. */
  waitFor(pred: (stdout: string) => boolean, timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const s = this.stdout();
        if (pred(s)) finish(() => resolve(s));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`etcdctl output not as awaited within ${timeoutMs} ms:\n${this.stdout()}`))), timeoutMs);
      const finish = (f: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        f();
      };
      this.listeners.add(check);
      void this.done.then((r) => finish(() => (pred(r.stdout) ? resolve(r.stdout) : reject(new Error(`etcdctl ended (${String(r.code)}) before the awaited output:\n${r.stdout}${r.stderr}`)))));
      check();
    });
  }

  /** Signals the process (default SIGINT, as ^C) and resolves with its result. */
  stop(signal: NodeJS.Signals = 'SIGINT'): Promise<CtlResult> {
    this.child.kill(signal);
    return this.done;
  }
}

/** Runs one etcdctl command to its end. */
export function etcdctl(args: readonly string[], opts: CtlOptions): Promise<CtlResult> {
  return new CtlProcess(spawnCtl(args, opts), opts.timeoutMs ?? ctlTimeoutMsDefault).done;
}

/** Starts an etcdctl command that runs until stopped (watch, lease keep-alive). */
export function etcdctlBackground(args: readonly string[], opts: CtlOptions): CtlProcess {
  return new CtlProcess(spawnCtl(args, opts), opts.timeoutMs ?? 60_000);
}
