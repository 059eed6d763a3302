/**
 * The write buffer: operations applied but not yet committed to LMDB, held in
 * memory so that reads see every write the moment it is applied (etcd's
 * txReadBuffer plays this role over bbolt). One Batch is filling, and batches
 * already handed to LMDB stay readable until their commit has landed.
 */
import { assert } from '../base/index.js';

export interface OverlayEntry {
  readonly key: Uint8Array;
  /** bytesToKey(key). */
  readonly keyStr: string;
  /** undefined: the key was deleted. */
  value: Uint8Array | undefined;
  /** CRC-32C of key then value, when the writer gave it (WriteTx.put). */
  sum: number | undefined;
}

/** One bucket's share of a batch. */
export class BucketOverlay {
  readonly entries = new Map<string, OverlayEntry>();
  /** Every entry in key order, while `sortedValid`; appends in key order keep it valid. */
  private sorted: OverlayEntry[] = [];
  private sortedValid = true;

  set(key: Uint8Array, keyStr: string, value: Uint8Array | undefined, sum: number | undefined = undefined): void {
    const old = this.entries.get(keyStr);
    if (old !== undefined) {
      old.value = value;
      old.sum = sum;
      return;
    }
    const entry: OverlayEntry = { key, keyStr, value, sum };
    this.entries.set(keyStr, entry);
    if (!this.sortedValid) return;
    const last = this.sorted[this.sorted.length - 1];
    if (last === undefined || last.keyStr < keyStr) this.sorted.push(entry);
    else this.sortedValid = false;
  }

  /** Entries with startStr <= keyStr < endStr (endStr undefined: no upper bound), in key order. */
  inRange(startStr: string, endStr: string | undefined): OverlayEntry[] {
    if (!this.sortedValid) {
      this.sorted = [...this.entries.values()].sort((a, b) => (a.keyStr < b.keyStr ? -1 : a.keyStr > b.keyStr ? 1 : 0));
      this.sortedValid = true;
    }
    const s = this.sorted;
    let lo = lowerBound(s, startStr);
    const out: OverlayEntry[] = [];
    for (; lo < s.length; lo++) {
      const e = s[lo] as OverlayEntry;
      if (endStr !== undefined && e.keyStr >= endStr) break;
      out.push(e);
    }
    return out;
  }
}

function lowerBound(sorted: readonly OverlayEntry[], keyStr: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as OverlayEntry).keyStr < keyStr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The operations of one future LMDB commit, per bucket. */
export class Batch {
  readonly buckets: BucketOverlay[];
  /** Puts and deletes recorded (a key written twice counts twice, as etcd's pending count). */
  ops = 0;

  constructor(bucketCount: number) {
    this.buckets = [];
    for (let i = 0; i < bucketCount; i++) this.buckets.push(new BucketOverlay());
  }

  bucket(index: number): BucketOverlay {
    const b = this.buckets[index];
    if (b === undefined) assert(false, `no bucket #${index}`);
    return b;
  }
}

/**
 * Merges the batches' entries in [startStr, endStr) into one key-ordered
 * list, a later batch's entry for a key replacing an earlier one's. `layers`
 * goes oldest first.
 */
export function mergeOverlays(
  layers: readonly BucketOverlay[],
  startStr: string,
  endStr: string | undefined,
): OverlayEntry[] {
  let only: OverlayEntry[] | undefined;
  let merged: Map<string, OverlayEntry> | undefined;
  for (const layer of layers) {
    if (layer.entries.size === 0) continue;
    const part = layer.inRange(startStr, endStr);
    if (part.length === 0) continue;
    if (only === undefined && merged === undefined) {
      only = part;
      continue;
    }
    if (merged === undefined) {
      merged = new Map();
      for (const e of only as OverlayEntry[]) merged.set(e.keyStr, e);
    }
    for (const e of part) merged.set(e.keyStr, e);
  }
  if (merged === undefined) return only ?? [];
  return [...merged.values()].sort((a, b) => (a.keyStr < b.keyStr ? -1 : a.keyStr > b.keyStr ? 1 : 0));
}
