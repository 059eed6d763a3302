/**
 * One lease as the lessor holds it. The deterministic fields (id, TTLs, keys)
 * are equal on every member; the expiry and queue fields belong to the leader
 * and mean nothing elsewhere.
 */
import type { LeaseId } from '../base/index.js';
import type { DueSlot } from './due-queue.js';
import type { LeaseRecord } from './ports.js';

/** What callers may read about a lease. */
export interface LeaseView {
  readonly id: LeaseId;
  /** The granted TTL in seconds (after raising to the minimum). */
  readonly ttlSeconds: number;
  /** The last checkpointed remaining TTL in seconds; 0 (or less) means none. */
  readonly remainingTtlSeconds: number;
  readonly keyCount: number;
  /** The attached keys, sorted byte-wise; fresh copies. */
  keys(): Uint8Array[];
}

/**
 * Keys are held as latin1 strings (one char per byte): a Map needs a value
 * key, the conversion is exact both ways, and comparing such strings by code
 * unit is byte-wise unsigned comparison, so sorting them sorts the keys.
 */
export function keyToString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

export function keyFromString(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

export class Lease implements LeaseView {
  /** Allocated on first attach: most leases in a big cluster carry one key or none. */
  keySet: Set<string> | undefined = undefined;
  /** When the leader considers the lease expired; Infinity when not primary ("forever"). */
  expiryMs = Infinity;
  /** Expiry queue: when to look at the lease next (its expiry, or a retry after reporting it). */
  expiryDueMs = Infinity;
  expiryPosition = -1;
  /** Checkpoint queue: when to checkpoint its remaining TTL next. */
  checkpointDueMs = Infinity;
  checkpointPosition = -1;

  constructor(
    readonly id: LeaseId,
    readonly ttlSeconds: number,
    public remainingTtlSeconds: number,
  ) {}

  get keyCount(): number {
    return this.keySet?.size ?? 0;
  }

  keyStrings(): string[] {
    return this.keySet === undefined ? [] : [...this.keySet].sort();
  }

  keys(): Uint8Array[] {
    return this.keyStrings().map(keyFromString);
  }

  /** The TTL a promotion counts from: the checkpointed remainder when there is one. */
  effectiveTtlSeconds(): number {
    return this.remainingTtlSeconds > 0 ? this.remainingTtlSeconds : this.ttlSeconds;
  }

  record(): LeaseRecord {
    return { id: this.id, ttlSeconds: this.ttlSeconds, remainingTtlSeconds: this.remainingTtlSeconds };
  }
}

export function compareLeaseIds(a: Lease, b: Lease): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export const expirySlot: DueSlot<Lease> = {
  dueMs: (l) => l.expiryDueMs,
  setDueMs: (l, ms) => {
    l.expiryDueMs = ms;
  },
  position: (l) => l.expiryPosition,
  setPosition: (l, p) => {
    l.expiryPosition = p;
  },
};

export const checkpointSlot: DueSlot<Lease> = {
  dueMs: (l) => l.checkpointDueMs,
  setDueMs: (l, ms) => {
    l.checkpointDueMs = ms;
  },
  position: (l) => l.checkpointPosition,
  setPosition: (l, p) => {
    l.checkpointPosition = p;
  },
};
