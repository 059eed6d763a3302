/**
 * Key-range permissions as sets of keys, with etcd's range conventions:
 *
 *   range_end empty    the single key `key`
 *   range_end "\x00"   every key >= `key` (open ended, "from key")
 *   otherwise          every key in [key, range_end)
 *
 * A user's grants are merged, per permission kind, into a sorted list of
 * disjoint half-open intervals [start, end) over byte strings (end null =
 * unbounded). A single key k is the interval [k, k+"\x00"): no byte string
 * lies strictly between k and k+"\x00". Intervals that touch are merged, so
 * a request range is permitted exactly when ONE merged interval covers it,
 * found by binary search: O(log n) byte comparisons per check.
 */
import { authpb } from '../pb/index.js';

/**
 * Byte-wise comparison, as base's compareBytes, but in JS for short keys:
 * a check makes ~log2(grants) comparisons and the call into Buffer.compare
 * costs three times a short loop. Long keys still go to memcmp.
 */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  if (n > 64) return Buffer.compare(a, b);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** A half-open interval of byte strings; `end` null is unbounded. */
export interface KeyInterval {
  readonly start: Uint8Array;
  readonly end: Uint8Array | null;
}

export function isOpenEnded(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

function pointEnd(key: Uint8Array): Uint8Array {
  const end = new Uint8Array(key.length + 1);
  end.set(key);
  return end;
}

/**
 * A grant range etcd accepts since PR #15619: a non-empty key, and a range
 * end that is empty (one key), "\x00" (from key) or after the key. Empty
 * ranges would be grants that grant nothing, which hide mistakes.
 */
export function isValidPermissionRange(key: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (key.length === 0) return false;
  if (rangeEnd.length === 0 || isOpenEnded(rangeEnd)) return true;
  return compareBytes(key, rangeEnd) < 0;
}

function grantInterval(key: Uint8Array, rangeEnd: Uint8Array): KeyInterval {
  if (rangeEnd.length === 0) return { start: key, end: pointEnd(key) };
  if (isOpenEnded(rangeEnd)) return { start: key, end: null };
  return { start: key, end: rangeEnd };
}

/** end a >= end b, with null the greatest. */
function endCovers(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  return compareBytes(a, b) >= 0;
}

/** Sorted, disjoint, non-touching intervals covering the union of the input. */
function merge(input: readonly KeyInterval[]): KeyInterval[] {
  const sorted = [...input].sort((x, y) => compareBytes(x.start, y.start));
  const out: KeyInterval[] = [];
  let cur: KeyInterval | undefined;
  for (const iv of sorted) {
    if (cur === undefined) {
      cur = iv;
      continue;
    }
    // Touching counts: [a, b) and [b, c) leave no key between them.
    if (cur.end === null || compareBytes(iv.start, cur.end) <= 0) {
      if (!endCovers(cur.end, iv.end)) cur = { start: cur.start, end: iv.end };
    } else {
      out.push(cur);
      cur = iv;
    }
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

/** One permission kind (read or write) of one user, merged. */
export class KeyRangeSet {
  private readonly starts: Uint8Array[];
  private readonly ends: (Uint8Array | null)[];

  constructor(intervals: readonly KeyInterval[]) {
    const merged = merge(intervals);
    this.starts = merged.map((iv) => iv.start);
    this.ends = merged.map((iv) => iv.end);
  }

  get intervalCount(): number {
    return this.starts.length;
  }

  /** The index of the last interval starting at or before key, or -1. */
  private floor(key: Uint8Array): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.starts[mid] as Uint8Array, key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Whether every key in [start, end) (end null: unbounded) is in the set. */
  private coversInterval(start: Uint8Array, end: Uint8Array | null): boolean {
    const i = this.floor(start);
    if (i < 0) return false;
    return endCovers(this.ends[i] ?? null, end);
  }

  /**
   * Whether every key a request with this key and range_end can touch is in
   * the set. An empty key in a range request stands for the smallest key
   * ("" is not a key; "\x00" is the first). A range that selects nothing
   * (range_end at or before key) is judged as its key alone, never less safe
   * than the empty selection. etcd 3.4.23 often judges it so too, but its
   * interval tree search, which assumes a start before the end, can skip the
   * grant holding the key: its answer hangs on the tree's shape (README).
   */
  covers(key: Uint8Array, rangeEnd: Uint8Array): boolean {
    if (rangeEnd.length === 0) return this.coversKey(key);
    const start = key.length === 0 ? zeroKey : key;
    if (isOpenEnded(rangeEnd)) return this.coversInterval(start, null);
    if (compareBytes(rangeEnd, start) <= 0) return this.coversKey(start);
    return this.coversInterval(start, rangeEnd);
  }

  /** Whether the single key is in the set; [k, k+"\x00") needs no allocation. */
  coversKey(key: Uint8Array): boolean {
    const i = this.floor(key);
    if (i < 0) return false;
    const end = this.ends[i] ?? null;
    return end === null || compareBytes(key, end) < 0;
  }
}

const zeroKey = new Uint8Array([0]);

/** The read and write sets of one user: the union of the grants of all their roles. */
export class UserPermissions {
  constructor(
    readonly read: KeyRangeSet,
    readonly write: KeyRangeSet,
  ) {}

  static fromRoles(roles: Iterable<authpb.Role>): UserPermissions {
    const read: KeyInterval[] = [];
    const write: KeyInterval[] = [];
    for (const role of roles) {
      for (const perm of role.keyPermission) {
        // Stored grants were validated when granted; skip anything else rather than widen.
        if (!isValidPermissionRange(perm.key, perm.rangeEnd)) continue;
        const iv = grantInterval(perm.key, perm.rangeEnd);
        const t = perm.permType;
        if (t === authpb.Permission_Type.READ || t === authpb.Permission_Type.READWRITE) read.push(iv);
        if (t === authpb.Permission_Type.WRITE || t === authpb.Permission_Type.READWRITE) write.push(iv);
      }
    }
    return new UserPermissions(new KeyRangeSet(read), new KeyRangeSet(write));
  }
}
