/**
 * The backend quota (etcd's quota: --quota-backend-bytes, 0 = 2 GiB). A
 * request's cost is etcd's: key + value + 256 bytes per put (the larger txn
 * branch), 64 bytes per lease grant, 0 for what writes nothing. It is
 * checked twice, as etcd checks it: by the member that receives the request
 * (which raises NOSPACE and refuses it), and when each member applies it: a
 * request applied past the quota is kept — apply stays deterministic — but
 * answered "database space exceeded", and the member raises NOSPACE if no
 * member has yet.
 */
import { quotaBackendBytesDefault, type Clock } from '../base/index.js';
import { etcdserverpb, type serverpb } from '../pb/index.js';

const kvOverheadBytes = 256;
const leaseOverheadBytes = 64;
/** The file size is read at most this often (a stat per write would cost more than the check). */
const sizeCacheMs = 100;

export function putCost(r: etcdserverpb.PutRequest): number {
  return kvOverheadBytes + r.key.length + r.value.length;
}

export function txnCost(r: etcdserverpb.TxnRequest): number {
  const branch = (ops: readonly etcdserverpb.RequestOp[]): number => {
    let n = 0;
    // As etcd: puts inside a nested txn are not counted.
    for (const op of ops) if (op.request?.case === 'requestPut') n += putCost(op.request.value);
    return n;
  };
  return Math.max(branch(r.success), branch(r.failure));
}

export function leaseGrantCost(): number {
  return leaseOverheadBytes;
}

/** The cost of a raft request; 0 for those the quota does not limit. */
export function requestCost(r: serverpb.InternalRaftRequest['request']): number {
  switch (r?.case) {
    case 'put':
      return putCost(r.value);
    case 'txn':
      return txnCost(r.value);
    case 'leaseGrant':
      return leaseGrantCost();
    default:
      return 0;
  }
}

export class BackendQuota {
  /** The quota: --quota-backend-bytes, or the default for 0; negative when the quota is off. */
  readonly bytes: number;
  private cachedAtMs = -Infinity;
  private cachedSize = 0;

  constructor(
    quotaBackendBytes: number,
    private readonly backendSize: () => number,
    private readonly clock: Clock,
  ) {
    this.bytes = quotaBackendBytes !== 0 ? quotaBackendBytes : quotaBackendBytesDefault;
  }

  /** A negative --quota-backend-bytes turns the quota off, as in etcd: every write fits. */
  get disabled(): boolean {
    return this.bytes < 0;
  }

  /** Whether a write of this cost fits (etcd: size + cost < quota; a free request always fits). */
  available(costBytes: number): boolean {
    if (costBytes === 0 || this.disabled) return true;
    const now = this.clock.nowMs();
    if (now - this.cachedAtMs > sizeCacheMs) {
      this.cachedSize = this.backendSize();
      this.cachedAtMs = now;
    }
    return this.cachedSize + costBytes < this.bytes;
  }

  /** Forgets the cached size (the file was replaced or defragmented). */
  invalidate(): void {
    this.cachedAtMs = -Infinity;
  }
}

/** The request that raises NOSPACE for a member. */
export function noSpaceAlarm(memberId: bigint): etcdserverpb.AlarmRequest {
  return etcdserverpb.AlarmRequest.create({
    action: etcdserverpb.AlarmRequest_AlarmAction.ACTIVATE,
    memberID: memberId,
    alarm: etcdserverpb.AlarmType.NOSPACE,
  });
}
