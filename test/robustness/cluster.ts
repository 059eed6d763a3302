/**
 * The cluster a robustness run drives: N etcd-ts members on 127.0.0.1 with
 * the harness's fault proxy in front of every peer port, tuned so that
 * faults reach the interesting code: a snapshot every 100 entries with 50
 * kept for catch-up (a follower cut off for a few seconds is caught up by
 * snapshot), compaction in batches of 20, a backend quota small enough for
 * the space fault to fill (space.ts).
 */
import { failpointsFileEnv } from '../../src/base/index.js';
import { startCluster, type Cluster } from '../harness/index.js';
import type { MemberClocks } from './clock.js';
import { quotaBytes } from './space.js';

export const robustnessFlags = [
  '--snapshot-count', '100',
  '--experimental-snapshot-catchup-entries', '50',
  '--experimental-compaction-batch-limit', '20',
  '--quota-backend-bytes', String(quotaBytes),
];

/**
 * Every member re-arms its failpoints from failpointsFile on SIGUSR2 (the
 * stall fault). peerTls: https peer URLs with self-signed certificates
 * (--peer-auto-tls); the fault proxy forwards the TLS bytes as any others.
 * clocks: every member's wall clock under the clock fault's control.
 */
export function startRobustCluster(dir: string, size: number, readyTimeoutMs: number, failpointsFile: string, peerTls = false, extraFlags: readonly string[] = [], clocks?: MemberClocks): Promise<Cluster> {
  return startCluster({
    kind: 'etcd-ts',
    size,
    dir,
    faultProxy: size > 1,
    extraFlags: [...robustnessFlags, ...(peerTls ? ['--peer-auto-tls'] : []), ...extraFlags],
    ...(peerTls ? { tls: { peer: true } } : {}),
    readyTimeoutMs,
    env: { [failpointsFileEnv]: failpointsFile },
    ...(clocks !== undefined ? { memberEnv: (name: string) => clocks.env(name) } : {}),
  });
}
