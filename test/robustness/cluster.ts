/**
 * The cluster a robustness run drives: N etcd-ts members on 127.0.0.1 with
 * the harness's fault proxy in front of every peer port, tuned so that
 * faults reach the interesting code: a snapshot every 100 entries with 50
 * kept for catch-up (a follower cut off for a few seconds is caught up by
 * snapshot), compaction in batches of 20.
 */
import { startCluster, type Cluster } from '../harness/index.js';

export const robustnessFlags = [
  '--snapshot-count', '100',
  '--experimental-snapshot-catchup-entries', '50',
  '--experimental-compaction-batch-limit', '20',
] as const;

export function startRobustCluster(dir: string, size: number, readyTimeoutMs: number): Promise<Cluster> {
  return startCluster({ kind: 'etcd-ts', size, dir, faultProxy: size > 1, extraFlags: robustnessFlags, readyTimeoutMs });
}
