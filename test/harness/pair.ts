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
