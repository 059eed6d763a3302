/**
 * Leases in the backend: key = the lease id as 8 big-endian bytes (two's
 * complement), value = serverpb.Lease, the same fields as etcd's leasepb.Lease.
 * It has the shape of src/lease's LeaseStore (schema may not import lease).
 * Writes join the caller's write scope: a grant or revoke commits together
 * with the entry that applied it.
 */
import { assert, type LeaseId } from '../base/index.js';
import { serverpb } from '../pb/index.js';
import type { Schema } from './meta.js';

export interface StoredLease {
  readonly id: LeaseId;
  readonly ttlSeconds: number;
  readonly remainingTtlSeconds: number;
}

function leaseKey(id: LeaseId): Uint8Array {
  const k = new Uint8Array(8);
  new DataView(k.buffer).setBigInt64(0, id);
  return k;
}

// LMDB has no empty key; every 8-byte key sorts at or after a single zero byte.
const firstKey = new Uint8Array([0]);

export class LeaseStorage {
  constructor(private readonly schema: Schema) {}

  put(record: StoredLease): void {
    assert(record.id !== 0n, 'a lease has a non-zero id');
    const value = serverpb.Lease.encode(
      serverpb.Lease.create({ ID: record.id, TTL: record.ttlSeconds, RemainingTTL: record.remainingTtlSeconds }),
    );
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.lease, leaseKey(record.id), value));
  }

  delete(id: LeaseId): void {
    this.schema.backend.write((tx) => tx.delete(this.schema.buckets.lease, leaseKey(id)));
  }

  loadAll(): StoredLease[] {
    return this.schema.backend.range(this.schema.buckets.lease, firstKey, undefined).map((e) => {
      const l = serverpb.Lease.decode(e.value);
      return { id: l.ID, ttlSeconds: l.TTL, remainingTtlSeconds: l.RemainingTTL };
    });
  }
}
