/**
 * The backend quota (etcd's quota KV and lease servers): a write whose cost
 * would take the backend file past --quota-backend-bytes raises the NOSPACE
 * alarm cluster-wide and is refused with "database space exceeded". Cost is
 * etcd's: key + value + 256 bytes per put (the larger txn branch), 64 bytes
 * per lease grant; a request that writes nothing always passes.
 */
import { quotaBackendBytesDefault } from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';
import { ServerError, type EtcdServer } from '../server/index.js';

const kvOverheadBytes = 256;
export const leaseOverheadBytes = 64;
/** The file size is read at most this often (a stat per write would cost more than the check). */
const sizeCacheMs = 100;

let cachedAtMs = -Infinity;
let cachedSize = 0;
let cachedFor: unknown;

function backendSize(s: EtcdServer): number {
  const now = s.clock.nowMs();
  if (cachedFor !== s.schema || now - cachedAtMs > sizeCacheMs) {
    cachedSize = s.schema.backend.size();
    cachedAtMs = now;
    cachedFor = s.schema;
  }
  return cachedSize;
}

export function putCost(r: etcdserverpb.PutRequest): number {
  return kvOverheadBytes + r.key.length + r.value.length;
}

export function txnCost(r: etcdserverpb.TxnRequest): number {
  const branch = (ops: readonly etcdserverpb.RequestOp[]): number => {
    let n = 0;
    for (const op of ops) if (op.request?.case === 'requestPut') n += putCost(op.request.value);
    return n;
  };
  return Math.max(branch(r.success), branch(r.failure));
}

export function quotaBytes(s: EtcdServer): number {
  return s.cfg.quotaBackendBytes > 0 ? s.cfg.quotaBackendBytes : quotaBackendBytesDefault;
}

/** Refuses (and raises NOSPACE) when the write would not fit. */
export async function checkQuota(s: EtcdServer, costBytes: number): Promise<void> {
  if (costBytes === 0) return;
  if (backendSize(s) + costBytes < quotaBytes(s)) return;
  await s
    .alarm(
      etcdserverpb.AlarmRequest.create({
        action: etcdserverpb.AlarmRequest_AlarmAction.ACTIVATE,
        memberID: s.memberId,
        alarm: etcdserverpb.AlarmType.NOSPACE,
      }),
    )
    .catch(() => undefined);
  throw new ServerError('NoSpace');
}
