/**
 * The differential tests' fixture: a fresh real etcd and a fresh one-member
 * etcd-ts in one workspace, each with a hand-framed gRPC connection, set up
 * before the suite's tests and torn down after them.
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

export function useEtcdPair(label: string): EtcdPair {
  const ws = useWorkspace(label);
  const pair = { clusters: [] as Cluster[], raw: [] as RawGrpc[] };
  before(async () => {
    pair.clusters.push(...(await Promise.all([ws.startCluster({ kind: 'etcd' }), ws.startCluster({ kind: 'etcd-ts' })])));
    pair.raw.push(...pair.clusters.map((c) => new RawGrpc(c.member(0).clientUrl)));
  });
  after(() => {
    for (const r of pair.raw) r.close();
  });
  return pair;
}
