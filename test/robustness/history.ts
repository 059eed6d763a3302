/**
 * The recorded history of a robustness run, in plain JSON-able data: every
 * client request with its invoke and return time and what came back, and
 * every watch stream with what it delivered. The checkers read only this, so
 * a saved history can be checked again offline (main.ts --check FILE).
 *
 * Requests are modelled as etcd's Txn (a plain Put is a txn with no compares
 * and one put), with compares limited to `mod_revision(key) == n` (n = 0:
 * the key does not exist) — the only compare the traffic uses (CAS and
 * Kubernetes' optimistic concurrency). Keys and values are strings: the
 * traffic only writes ASCII, and every value it puts is unique, which is how
 * a write is recognised in the watch history.
 */

/** A key-value as the server returned it; lease is a decimal string (JSON has no bigint). */
export interface Kv {
  readonly key: string;
  readonly value: string;
  readonly createRev: number;
  readonly modRev: number;
  readonly version: number;
  readonly lease: string;
}

export interface RangeOp {
  readonly type: 'range';
  readonly key: string;
  /** Exclusive end; undefined: the single key. */
  readonly end?: string;
  readonly limit?: number;
  /** Historical read at this revision; undefined: the latest. */
  readonly revision?: number;
  readonly serializable?: boolean;
}
export interface PutOp {
  readonly type: 'put';
  readonly key: string;
  readonly value: string;
  readonly lease?: string;
  readonly prevKv?: boolean;
  /** Bytes of padding sent after the value (the space fault's big values); the history records the value without them. */
  readonly pad?: number;
}
export interface DeleteOp {
  readonly type: 'delete';
  readonly key: string;
}
export type TxnOp = RangeOp | PutOp | DeleteOp;

/** mod_revision(key) == modRev; 0 means the key does not exist. */
export interface ModRevCompare {
  readonly key: string;
  readonly modRev: number;
}

export interface TxnRequest {
  readonly compares: readonly ModRevCompare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

export type Request =
  | { readonly kind: 'txn'; readonly txn: TxnRequest }
  | { readonly kind: 'leaseGrant'; readonly id: string; readonly ttl: number }
  | { readonly kind: 'leaseRevoke'; readonly id: string };

export type OpResult =
  | { readonly type: 'range'; readonly kvs: readonly Kv[]; readonly count: number; readonly more: boolean }
  | { readonly type: 'put'; readonly prevKv?: Kv }
  | { readonly type: 'delete'; readonly deleted: number };

export interface Response {
  /** The header's revision. */
  readonly revision: number;
  /** A lease grant's TTL as granted. */
  readonly leaseTtl?: number;
  /** The header's member id (hex). */
  readonly memberId: string;
  readonly succeeded: boolean;
  readonly results: readonly OpResult[];
}

/**
 * ok: the answer is known. failed: a read that failed (dropped by the
 * checker). indeterminate: a write that failed or timed out — it may or
 * may not have happened, and if it did, at any time after its invoke.
 */
export type OpStatus = 'ok' | 'failed' | 'indeterminate';

export interface OpRecord {
  readonly id: number;
  readonly client: number;
  /** What the client called it (get, cas, k8s-update, ...), for reports. */
  readonly label: string;
  readonly endpoint: string;
  readonly invokeMs: number;
  /** undefined while running or when indeterminate (it may take effect any time later). */
  returnMs?: number;
  status?: OpStatus;
  readonly req: Request;
  res?: Response;
  error?: string;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: Kv;
  readonly prevKv?: Kv;
}

export interface WatchResponseRecord {
  readonly atMs: number;
  readonly revision: number;
  readonly events: readonly WatchEvent[];
  readonly compactRevision?: number;
  readonly canceled?: boolean;
  /** A progress response (watch id -1) of the stream this watch shares (mux-watchers.ts): everything up to revision was sent. */
  readonly progress?: boolean;
}

/** One Watch call: from its create request to the end of its stream. */
export interface WatchSegment {
  readonly endpoint: string;
  readonly startRev: number;
  readonly invokeMs: number;
  readonly responses: WatchResponseRecord[];
  end?: string;
}

export interface WatchRecord {
  readonly id: number;
  readonly label: string;
  readonly key: string;
  /** Exclusive end; '\0' means every key from key on. */
  readonly end: string;
  readonly prevKv: boolean;
  readonly segments: WatchSegment[];
}

/** One keep-alive that the leader answered with a TTL (the lease lives on from its invoke). */
export interface KeepAliveRecord {
  readonly invokeMs: number;
  readonly returnMs: number;
  readonly ttl: number;
  /** Who answered (hex). */
  readonly memberId: string;
}

/**
 * A short lease of the lease traffic (leases.ts): its grant and revoke are
 * ops of the history; keep-alives and the client's intent are here.
 */
export interface LeaseRecord {
  readonly id: string;
  readonly client: number;
  readonly ttlAsked: number;
  /** The op that granted it (its response carries the TTL granted). */
  readonly grantOp: number;
  /** Keys put with this lease (unique to it). */
  readonly keys: string[];
  readonly keepAlives: KeepAliveRecord[];
  /** The client stopped keeping it alive at this time and lets it expire; undefined: revoked or kept to the end. */
  abandonedMs?: number;
  /** The op that revoked it. */
  revokeOp?: number;
  /** After an acknowledged revoke: a keep-alive's TTL (0: the lease is gone) and who answered, and LeaseTimeToLive's TTL and granted TTL (-1 and 0: gone). */
  afterRevoke?: { readonly keepAliveTtl?: number; readonly memberId?: string; readonly timeToLive?: number; readonly grantedTtl?: number };
}

/** One Lock that succeeded (locks.ts): who held which key, from which revision. */
export interface LockRecord {
  readonly name: string;
  readonly key: string;
  readonly client: number;
  /** The LockResponse header's revision: the holder's key must be the oldest under name/ there. */
  readonly rev: number;
  readonly acquiredMs: number;
  releasedMs?: number;
}

/** A Maintenance.Snapshot taken during the run: its newest revision and every key it held then. */
export interface SnapshotRecord {
  readonly atMs: number;
  readonly endpoint: string;
  readonly revision: number;
  readonly kvs: readonly Kv[];
}

export interface History {
  readonly seed: number;
  readonly ops: OpRecord[];
  readonly watches: WatchRecord[];
  /** The short leases (absent in histories saved before there were any). */
  readonly leases?: LeaseRecord[];
  /** Locks acquired through the v3lock service (absent in older histories). */
  readonly locks?: LockRecord[];
  /** The cluster's minimum lease TTL in seconds, as etcd computes it from the heartbeat and election timeout. */
  readonly minLeaseTtl?: number;
  /** Compactions the run asked for, at the time each was sent (absent in older histories). */
  readonly compactions?: { readonly atMs: number; readonly revision: number }[];
  /** Snapshots taken during the run, with the store each held (absent in older histories). */
  readonly snapshots?: SnapshotRecord[];
  /** Member id (hex) -> endpoint, for reports. */
  readonly members: Record<string, string>;
  readonly faults: { atMs: number; what: string }[];
}

/**
 * Where "every key" starts, as clients send it: clientv3's WithPrefix('')
 * and WithFromKey('') send the key \x00, which an auth permission can name
 * (a permission for the empty key is refused). With end '\0': every key.
 */
export const firstKey = '\u0000';

/** What pads a value on the wire (no value of the traffic has it). */
export const padChar = '~';

/** A value as the history records it: without its padding. */
export function recordedValue(wire: string): string {
  let end = wire.length;
  while (end > 0 && wire[end - 1] === padChar) end--;
  return end === wire.length ? wire : wire.slice(0, end);
}

/** Wall-clock-free monotonic milliseconds, the time base of every record. */
export function nowMs(): number {
  return performance.now();
}

/** Keys compare as byte strings; the traffic writes ASCII only, where that is string order. */
export function keyCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether key lies in [start, end) ('\0' end: from start on; undefined end: exactly start). */
export function inRange(key: string, start: string, end: string | undefined): boolean {
  if (end === undefined) return key === start;
  if (end === '\0') return key >= start;
  return key >= start && key < end;
}
