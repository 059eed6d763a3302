/**
 * What the lessor needs from the rest of the server, declared here so that
 * lease imports neither mvcc nor schema (DESIGN.md §2): mvcc implements
 * RangeDeleter, schema implements LeaseStore over LMDB. Both are called from
 * inside the apply transaction that the caller has open; the lessor never
 * begins or commits a transaction itself.
 */
import { assert, type LeaseId } from '../base/index.js';

/**
 * Deletes the keys of a revoked lease. mvcc implements it.
 *
 * Contract: `keys` is non-empty, distinct, sorted byte-wise ascending (the
 * same order on every member, so backend hashes agree). All of them are
 * deleted as ONE write at ONE new revision, each producing a DELETE event.
 * A key that no longer exists is skipped. While it runs the lease still
 * exists, so mvcc's ordinary delete path may call Lessor.detach (or leaseOf)
 * for each key it deletes.
 */
export interface RangeDeleter {
  deleteKeys(keys: readonly Uint8Array[]): void;
}

/** One persisted lease, as etcd's leasepb.Lease {ID, TTL, RemainingTTL}. */
export interface LeaseRecord {
  readonly id: LeaseId;
  /** The granted TTL in seconds, after raising to the minimum. */
  readonly ttlSeconds: number;
  /** The last checkpointed remaining TTL in seconds; 0 means none (use ttlSeconds). */
  readonly remainingTtlSeconds: number;
}

/**
 * Durable lease records. schema implements it over LMDB; etcd keeps them in
 * the `lease` bucket, key = the id as 8 bytes big-endian (two's complement),
 * value = leasepb.Lease protobuf (1: ID int64, 2: TTL int64, 3: RemainingTTL int64).
 * Keys attached to a lease are NOT stored here: they are rebuilt from the
 * lease field of mvcc's keys on restart.
 */
export interface LeaseStore {
  /** Inserts or overwrites the record with this id. */
  put(record: LeaseRecord): void;
  /** Removes the record; a missing id is not an error. */
  delete(id: LeaseId): void;
  /** Every record, in any order; read once when the lessor starts or recovers. */
  loadAll(): Iterable<LeaseRecord>;
}

/** A LeaseStore in memory, for tests and for a member without a backend. */
export class MemoryLeaseStore implements LeaseStore {
  private readonly records = new Map<LeaseId, LeaseRecord>();

  put(record: LeaseRecord): void {
    assert(Number.isSafeInteger(record.ttlSeconds) && Number.isSafeInteger(record.remainingTtlSeconds), 'lease record TTLs must be integers');
    this.records.set(record.id, { ...record });
  }

  delete(id: LeaseId): void {
    this.records.delete(id);
  }

  loadAll(): LeaseRecord[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }

  get(id: LeaseId): LeaseRecord | undefined {
    return this.records.get(id);
  }

  get size(): number {
    return this.records.size;
  }
}
