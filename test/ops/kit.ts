/**
 * Helpers of the operations tests: running etcdutl-ts, members built from
 * explicit specs (restored data dirs, members added at run time), and small
 * polling loops with deadlines.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Member, delay, freePorts, memberStatus, type MemberKind } from '../harness/index.js';

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
