/**
 * The differential tests' fixture: a fresh real etcd and a fresh one-member
 * etcd-ts in one workspace (useServerPair), each with a hand-framed gRPC
 * connection (useEtcdPair), set up before the suite's tests and torn down
 * after them (the workspace stops the servers).
 */
import { after, before } from 'node:test';
import { useWorkspace, type Cluster } from './cluster.js';
import { RawGrpc } from './raw-grpc.js';

export interface EtcdPair {
  /** [the real etcd, etcd-ts] */
  readonly clusters: readonly Cluster[];
  /** A RawGrpc to each, in the same order. */
  readonly raw: readonly RawGrpc[];
}

/** [the real etcd, etcd-ts], one member each (extraFlags on both), filled in before the suite's tests. */
export function useServerPair(label: string, extraFlags: readonly string[] = []): readonly Cluster[] {
  const ws = useWorkspace(label);
  const clusters: Cluster[] = [];
  before(async () => {
    clusters.push(...(await Promise.all([ws.startCluster({ kind: 'etcd', extraFlags }), ws.startCluster({ kind: 'etcd-ts', extraFlags })])));
  });
  return clusters;
}

export function useEtcdPair(label: string, extraFlags: readonly string[] = []): EtcdPair {
  const pair = { clusters: useServerPair(label, extraFlags), raw: [] as RawGrpc[] };
  before(() => {
    pair.raw.push(...pair.clusters.map((c) => new RawGrpc(c.member(0).clientUrl)));
  });
  after(() => {
    for (const r of pair.raw) r.close();
  });
  return pair;
}

const backendCommits = /^etcd_disk_backend_commit_duration_seconds_count (\S+)$/m;

async function backendCommitCount(c: Cluster, timeoutMs: number): Promise<number> {
  const text = await (await fetch(`${c.member(0).clientUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) })).text();
  const m = backendCommits.exec(text);
  if (m === null) throw new Error('no etcd_disk_backend_commit_duration_seconds_count in /metrics');
  return Number(m[1]);
}

/**
 * Resolves once c's one member has committed its backend with everything it had applied when
 * called. Its backend-commit counter is read, then write (a change the caller makes, so that the
 * backend has something to commit: etcd counts only commits that hold writes), then the counter is
 * awaited past the first value. etcd counts a commit before it lets an apply take the batch again,
 * so a commit counted after the first read began after everything applied before it.
 */
async function backendCommitted(c: Cluster, write: () => Promise<unknown>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const first = await backendCommitCount(c, timeoutMs);
  await write();
  while ((await backendCommitCount(c, Math.max(1, deadline - Date.now()))) <= first) {
    if (Date.now() >= deadline) throw new Error(`the backend did not commit within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Kills (SIGKILL) or stops (SIGTERM) both servers of the pair, their raw connections closed first
 * (calls after the restart go on new connections: one on an old connection could start before it
 * is seen to close). A kill waits until the real etcd's backend has committed what it applied,
 * commitWrite (a plain put, sent to both) giving it a commit to count: etcd 3.4.23 replays the
 * entries after its last backend commit without the ranges of their txns (removeNeedlessRangeReqs),
 * so a txn it refused for a range would be applied by the replay; a put left to the replay is
 * replayed faithfully.
 */
export async function stopPair(pair: EtcdPair, how: 'kill' | 'stop', commitWrite: () => Promise<unknown>): Promise<void> {
  const etcd = pair.clusters[0];
  if (etcd === undefined) throw new Error('the pair has not started');
  if (how === 'kill') await backendCommitted(etcd, commitWrite);
  for (const r of pair.raw) r.close();
  await Promise.all(pair.clusters.map(async (c) => (how === 'kill' ? c.member(0).kill() : c.member(0).stop())));
}
