/**
 * Helpers of the operations tests: running etcdutl-ts, members built from
 * explicit specs (restored data dirs, members added at run time), and small
 * polling loops with deadlines.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Member, delay, etcdctl, freePorts, memberStatus, type CtlResult, type MemberKind } from '../harness/index.js';

export const etcdutlTsScript = resolve(import.meta.dirname, '../../src/cmd/etcdutl-ts.js');

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (killed after timeoutMs). */
export function run(file: string, args: readonly string[], timeoutMs = 30_000, env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((done) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

export function etcdutl(args: readonly string[]): Promise<RunResult> {
  return run(process.execPath, [etcdutlTsScript, ...args]);
}

/** The distinct "Error: ..." lines of a command's stderr (log lines dropped; cobra repeats flag errors after the usage). */
export function errorLines(stderr: string): string {
  return [...new Set(stderr.split('\n').filter((l) => l.startsWith('Error:')))].join('\n');
}

export interface SpecOptions {
  readonly kind: MemberKind;
  readonly dir: string;
  readonly names: readonly string[];
  readonly token: string;
  readonly state?: 'new' | 'existing';
  readonly extraFlags?: readonly string[];
}

/** Members with fresh ports and the initial cluster they form (not started). */
export async function planMembers(o: SpecOptions): Promise<{ members: Member[]; initialCluster: string }> {
  const ports = await freePorts(2 * o.names.length);
  const peer = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1] ?? 0}`;
  const initialCluster = o.names.map((n, i) => `${n}=${peer(i)}`).join(',');
  const members = o.names.map(
    (name, i) =>
      new Member({
        kind: o.kind,
        name,
        dataDir: join(o.dir, `${name}.etcd`),
        clientPort: ports[2 * i] ?? 0,
        peerPort: ports[2 * i + 1] ?? 0,
        initialCluster,
        initialClusterState: o.state ?? 'new',
        clusterToken: o.token,
        extraFlags: o.extraFlags ?? [],
        logFile: join(o.dir, `${name}.log`),
      }),
  );
  return { members, initialCluster };
}

/** A member that joins a running cluster: its initial cluster is the given one plus itself. */
export async function joiningMember(o: { kind: MemberKind; dir: string; name: string; token: string; others: string; extraFlags?: readonly string[] }): Promise<Member> {
  const [client, peer] = await freePorts(2);
  const peerUrl = `http://127.0.0.1:${peer ?? 0}`;
  return new Member({
    kind: o.kind,
    name: o.name,
    dataDir: join(o.dir, `${o.name}.etcd`),
    clientPort: client ?? 0,
    peerPort: peer ?? 0,
    initialCluster: `${o.others},${o.name}=${peerUrl}`,
    initialClusterState: 'existing',
    clusterToken: o.token,
    extraFlags: o.extraFlags ?? [],
    logFile: join(o.dir, `${o.name}.log`),
  });
}

/** Polls fn until it returns a value other than undefined; fails with what it last saw after timeoutMs. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last !== undefined ? ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ''}`);
    await delay(everyMs);
  }
}

/** The leader id every running member agrees on. */
export async function agreedLeader(members: readonly Member[], timeoutMs = 20_000): Promise<bigint> {
  return eventually(
    'an agreed leader',
    async () => {
      const st = await Promise.all(members.filter((m) => m.running).map((m) => memberStatus(m.endpoint)));
      const ids = new Set(st.map((s) => s.leader));
      const [only] = ids;
      return ids.size === 1 && only !== undefined && only !== 0n ? only : undefined;
    },
    timeoutMs,
  );
}

/**
 * The server the membership tests run against: etcd-ts, or real etcd with
 * OPS_KIND=etcd, which is how those tests were checked to encode etcd's
 * behaviour rather than ours.
 */
export const opsKind: MemberKind = process.env['OPS_KIND'] === 'etcd' ? 'etcd' : 'etcd-ts';

/** What `etcdctl member add` printed: the new id, the cluster id and the ETCD_* lines for the new member. */
export interface MemberAdded {
  readonly id: string;
  readonly clusterId: string;
  readonly env: ReadonlyMap<string, string>;
}

/** What `member add` printed: stdout, and stderr to name the failure when it is not that. */
export function parseMemberAdd(stdout: string, stderr = ''): MemberAdded {
  const head = /^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)\n\n/.exec(stdout);
  if (head === null) throw new Error(`not a member add output:\n${stdout}\nstderr:\n${stderr}`);
  const env = new Map<string, string>();
  for (const line of stdout.slice(head[0].length).split('\n')) {
    const kv = /^(ETCD_[A-Z_]+)="(.*)"$/.exec(line);
    if (kv !== null) env.set(kv[1] ?? '', kv[2] ?? '');
  }
  return { id: head[1] ?? '', clusterId: head[2] ?? '', env };
}

/** The member `member add` printed the settings of, configured exactly from them (its data dir still empty). */
export async function memberFromAdd(added: MemberAdded, o: { kind: MemberKind; dir: string; token: string; extraFlags?: readonly string[] }): Promise<Member> {
  const setting = (k: string): string => {
    const v = added.env.get(k);
    if (v === undefined) throw new Error(`member add printed no ${k}`);
    return v;
  };
  const name = setting('ETCD_NAME');
  const peerPort = Number(new URL(setting('ETCD_INITIAL_ADVERTISE_PEER_URLS')).port);
  const state = setting('ETCD_INITIAL_CLUSTER_STATE');
  if (state !== 'existing') throw new Error(`member add printed ETCD_INITIAL_CLUSTER_STATE=${state}`);
  const [clientPort] = await freePorts(1);
  return new Member({
    kind: o.kind,
    name,
    dataDir: join(o.dir, `${name}.etcd`),
    clientPort: clientPort ?? 0,
    peerPort,
    initialCluster: setting('ETCD_INITIAL_CLUSTER'),
    initialClusterState: state,
    clusterToken: o.token,
    extraFlags: o.extraFlags ?? [],
    logFile: join(o.dir, `${name}.log`),
  });
}

/** The member ids by member, from each one's Status header (hex, as etcdctl prints and takes them). */
export async function memberIds(members: readonly Member[]): Promise<Map<Member, string>> {
  const st = await Promise.all(members.map((m) => memberStatus(m.endpoint)));
  return new Map(members.map((m, i) => [m, (st[i]?.header?.memberId ?? 0n).toString(16)]));
}

/**
 * Once the members agree on revision and applied index (nothing is writing),
 * `etcdctl endpoint hashkv --rev` over all of them: endpoint -> hash.
 */
export async function hashKvOfAll(members: readonly Member[], timeoutMs = 30_000): Promise<{ revision: number; hashes: Map<string, string> }> {
  const revision = await eventually(
    'every member at the same revision and applied index',
    async () => {
      const st = await Promise.all(members.map((m) => memberStatus(m.endpoint)));
      const revs = new Set(st.map((s) => s.header?.revision ?? 0));
      const applied = new Set(st.map((s) => s.raftAppliedIndex));
      const [rev] = revs;
      return revs.size === 1 && applied.size === 1 ? rev : undefined;
    },
    timeoutMs,
    200,
  );
  const r = await etcdctl(['endpoint', 'hashkv', `--rev=${revision}`], { endpoints: members.map((m) => m.endpoint) });
  if (r.code !== 0) throw new Error(`endpoint hashkv: ${r.stderr}`);
  const hashes = new Map<string, string>();
  for (const line of r.stdout.split('\n').filter((l) => l !== '')) {
    const [ep, hash] = line.split(', ');
    hashes.set(ep ?? '', hash ?? '');
  }
  return { revision, hashes };
}

/** hashKvOfAll, and every member's hash the same. */
export async function assertHashesAgree(members: readonly Member[]): Promise<void> {
  const { hashes } = await hashKvOfAll(members);
  if (new Set(hashes.values()).size !== 1) throw new Error(`the members' HashKV differ: ${JSON.stringify([...hashes])}`);
}

/**
 * Runs a membership change with etcdctl, again while the member refuses it as
 * "unhealthy cluster": strict reconfiguration wants every voter connected for
 * 5 s, which a member that just (re)started is not yet. Any other failure fails.
 */
export async function memberChange(args: readonly string[], endpoints: readonly string[], timeoutMs = 20_000): Promise<CtlResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await etcdctl(args, { endpoints });
    const err = errorLines(r.stderr);
    if (r.code === 0 || err !== 'Error: etcdserver: unhealthy cluster' || Date.now() > deadline) return r;
    await delay(500);
  }
}
