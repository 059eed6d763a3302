/**
 * Clusters of N members of one kind on 127.0.0.1, and the Workspace that
 * owns their files: data dirs and logs live under one temp dir, removed when
 * every test passed and kept (its path printed) when one failed.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach } from 'node:test';
import { freePorts } from './ports.js';
import { FaultNet } from './fault-proxy.js';
import { Member, delay, type MemberKind, type MemberSpec, type MemberTls, type Readiness } from './member.js';
import { memberStatus } from './rpc.js';

export interface ClusterOptions {
  readonly kind: MemberKind;
  /** Default 1. */
  readonly size?: number;
  /** Flags appended to every member's command line. */
  readonly extraFlags?: readonly string[];
  /** Member names; default "default" for one member (etcd's default name), m1..mN otherwise. */
  readonly names?: readonly string[];
  /** Parent dir for data dirs and logs; default a new temp dir (removed by close()). */
  readonly dir?: string;
  /** Per member, for readiness. Default 30 s. */
  readonly readyTimeoutMs?: number;
  readonly until?: Readiness;
  readonly env?: Readonly<Record<string, string>>;
  /** Variables of one member (by name), over env. */
  readonly memberEnv?: (name: string) => Readonly<Record<string, string>>;
  /** Put a FaultNet proxy in front of every member's peer port (Cluster.net). */
  readonly faultProxy?: boolean;
  /** https client and/or peer URLs; the certificate flags go in extraFlags. */
  readonly tls?: MemberTls;
  /** Node options for etcd-ts members (e.g. --cpu-prof); ignored for etcd. */
  readonly nodeArgs?: readonly string[];
}

/** A start is retried this often with fresh ports when a port was taken meanwhile. */
const startAttemptsMax = 3;
const leaderTimeoutMsDefault = 10_000;

export class Cluster {
  constructor(
    readonly kind: MemberKind,
    readonly dir: string,
    readonly members: readonly Member[],
    private readonly ownsDir: boolean,
    private readonly faultNet?: FaultNet,
  ) {}

  /** The peer-traffic proxies (started with faultProxy: true). */
  get net(): FaultNet {
    if (this.faultNet === undefined) throw new Error('cluster started without faultProxy');
    return this.faultNet;
  }

  /** host:port of every member, in member order. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }
  get clientUrls(): string[] {
    return this.members.map((m) => m.clientUrl);
  }
  get peerUrls(): string[] {
    return this.members.map((m) => m.peerUrl);
  }

  member(i: number): Member {
    const m = this.members[i];
    if (m === undefined) throw new RangeError(`no member ${i} in a cluster of ${this.members.length}`);
    return m;
  }

  /** The member that is leader by every running member's Status, polled until they agree. */
  async leader(timeoutMs = leaderTimeoutMsDefault): Promise<Member> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.filter((m) => m.running);
      const statuses = await Promise.all(running.map((m) => memberStatus(m.endpoint).catch(() => undefined)));
      const leaders = new Set(statuses.map((s) => (s === undefined ? 0n : s.leader)));
      const [only] = leaders;
      if (leaders.size === 1 && only !== undefined && only !== 0n) {
        const i = statuses.findIndex((s) => s?.header?.memberId === only);
        const m = running[i];
        if (m !== undefined) return m;
      }
      if (Date.now() > deadline) throw new Error(`no agreed leader within ${timeoutMs} ms`);
      await delay(50);
    }
  }

  /**
   * Puts a new Member in slot i, made from member i's spec with the changes
   * given — member replacement: same name and ports, a new data dir state,
   * --initial-cluster-state existing. The old process must have exited. The
   * fault proxy follows the slot (it asks the members array for pids).
   */
  replaceMember(i: number, changes: Partial<MemberSpec>): Member {
    const old = this.member(i);
    if (old.running) throw new Error(`${old.name}: still running, cannot be replaced`);
    const m = new Member({ ...old.spec, ...changes });
    (this.members as Member[])[i] = m;
    return m;
  }

  /** SIGTERM every running member (SIGKILL after the timeout). */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** Stops every member; removes the files unless keepFiles (or the dir was given by the caller). */
  async close(opts: { readonly keepFiles?: boolean } = {}): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    await this.faultNet?.close();
    if (this.ownsDir && opts.keepFiles !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}

function memberNames(size: number, names: readonly string[] | undefined): string[] {
  if (names !== undefined) {
    if (names.length !== size) throw new RangeError(`${names.length} names for ${size} members`);
    return [...names];
  }
  return size === 1 ? ['default'] : Array.from({ length: size }, (_, i) => `m${i + 1}`);
}

let clusterSeq = 0;

/** Starts size members of one kind as a new cluster and waits until each is ready. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const size = opts.size ?? 1;
  const names = memberNames(size, opts.names);
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `etcd-${opts.kind}-`));
  const seq = ++clusterSeq;
  let lastError: unknown;
  for (let attempt = 1; attempt <= startAttemptsMax; attempt++) {
    const proxied = opts.faultProxy === true;
    const ports = await freePorts((proxied ? 3 : 2) * size);
    const listenPeerPort = (i: number): number | undefined => (proxied ? ports[2 * size + i] : undefined);
    const peerUrl = (i: number): string => `${opts.tls?.peer === true ? 'https' : 'http'}://127.0.0.1:${ports[2 * i + 1] ?? 0}`;
    const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
    const base = join(dir, `${opts.kind}-c${seq}`);
    mkdirSync(base, { recursive: true });
    const members = names.map(
      (name, i) =>
        new Member({
          kind: opts.kind,
          name,
          dataDir: join(base, `${name}.etcd`),
          clientPort: ports[2 * i] ?? 0,
          peerPort: ports[2 * i + 1] ?? 0,
          listenPeerPort: listenPeerPort(i),
          initialCluster,
          initialClusterState: 'new',
          clusterToken: `etcd-cluster-${seq}`,
          extraFlags: opts.extraFlags ?? [],
          logFile: join(base, `${name}.log`),
          env: { ...opts.env, ...opts.memberEnv?.(name) },
          nodeArgs: opts.nodeArgs,
          tls: opts.tls,
        }),
    );
    const net = proxied
      ? new FaultNet({
          routes: members.map((m, i) => ({ name: m.name, listenPort: ports[2 * i + 1] ?? 0, targetPort: listenPeerPort(i) ?? 0 })),
          members: () => members.map((m) => ({ name: m.name, pid: m.running ? m.pid : undefined })),
        })
      : undefined;
    try {
      await net?.start();
      // All first, then wait: a member of a bigger cluster is healthy only once a quorum runs.
      for (const m of members) await m.start({ wait: false });
      await Promise.all(members.map((m) => m.waitReady({ timeoutMs: opts.readyTimeoutMs, until: opts.until })));
      return new Cluster(opts.kind, dir, members, ownsDir, net);
    } catch (e) {
      await Promise.all(members.map((m) => m.kill()));
      await net?.close();
      lastError = e;
      const portTaken = (e instanceof Error && /EADDRINUSE/.test(e.message)) || members.some((m) => /address already in use|EADDRINUSE/i.test(m.logTail(40)));
      if (!portTaken) break;
    }
  }
  if (ownsDir) rmSync(dir, { recursive: true, force: true });
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/**
 * The files and clusters of one test file. useWorkspace() registers node:test
 * hooks: afterEach notes failures, after closes every cluster and removes the
 * dir, or keeps it and prints where when any test failed.
 */
export class Workspace {
  readonly dir: string;
  private failed = false;
  /** A cluster failed to start since the last test ended: a hook's failure, unless a test that passed asked for it. */
  private startFailed = false;
  private readonly clusters: Cluster[] = [];

  constructor(label: string) {
    this.dir = mkdtempSync(join(tmpdir(), `etcd-e2e-${label}-`));
  }

  startCluster(opts: Omit<ClusterOptions, 'dir'>): Promise<Cluster> {
    return startCluster({ ...opts, dir: this.dir }).then(
      (c) => {
        this.clusters.push(c);
        return c;
      },
      (e: unknown) => {
        // A failed start in a hook fails it, which afterEach does not see: keep the logs then.
        this.startFailed = true;
        throw e;
      },
    );
  }

  /** Takes node:test's context after a test: a test that did not pass keeps the files. */
  noteResult(t: object): void {
    if ('passed' in t && t.passed === false) this.failed = true;
    // A test that passed with a start that failed expected it (a refused configuration).
    else this.startFailed = false;
  }

  markFailed(): void {
    this.failed = true;
  }

  async close(): Promise<void> {
    await Promise.all(this.clusters.map((c) => c.close()));
    if (this.failed || this.startFailed) {
      process.stderr.write(`# harness: a test failed; logs and data dirs kept in ${this.dir}\n`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A Workspace whose cleanup is hooked into the current node:test suite. */
export function useWorkspace(label: string): Workspace {
  const ws = new Workspace(label);
  afterEach((t) => ws.noteResult(t));
  after(() => ws.close());
  return ws;
}
