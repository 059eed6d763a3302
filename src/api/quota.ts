/**
 * The quota check of etcd's quota KV and lease servers, on the member that
 * receives the request: a write that would take the backend past
 * --quota-backend-bytes raises the NOSPACE alarm cluster-wide and is refused
 * with "database space exceeded" (costs and sizes: src/server/quota.ts).
 */
import { ServerError, noSpaceAlarm, type EtcdServer } from '../server/index.js';

export { leaseGrantCost, putCost, txnCost } from '../server/index.js';

/** Refuses (and raises NOSPACE) when the write would not fit. */
export async function checkQuota(s: EtcdServer, costBytes: number): Promise<void> {
  if (s.quota.available(costBytes)) return;
  await s.alarm(noSpaceAlarm(s.memberId)).catch(() => undefined);
  throw new ServerError('NoSpace');
}
