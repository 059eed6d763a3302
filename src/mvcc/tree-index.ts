/**
 * The in-memory index: every key's KeyIndex, in key order. Keys are in
 * bytesToKey form throughout (one char per byte).
 */
import { assert } from '../base/index.js';
import { SortedMap } from './btree.js';
import { KeyIndex, type KeyAt, type RevisionSink } from './key-index.js';
import type { Revision, RevisionSet } from './revision.js';

/**
 * Which keys a request names: just `start` (single), or start <= key < end,
 * with end undefined meaning no upper bound (range_end "\0").
 */
export interface KeySpan {
  readonly start: string;
  readonly end: string | undefined;
  readonly single: boolean;
}

export interface IndexHit {
  readonly ki: KeyIndex;
  readonly at: KeyAt;
}

export class TreeIndex {
  /** Every key in order, for ranges. */
  private readonly tree: SortedMap<KeyIndex>;
  /** The same keys hashed: single-key reads and writes skip the tree's descent. */
  private readonly byKey: Map<string, KeyIndex>;

  constructor(byKey = new Map<string, KeyIndex>()) {
    this.byKey = byKey;
    const keys = [...byKey.keys()];
    // The default sort orders strings by UTF-16 code unit: for bytesToKey strings, byte order.
    keys.sort();
    this.tree = SortedMap.fromSorted(keys, keys.map((k) => byKey.get(k) as KeyIndex));
  }

  /** Keys with at least one generation (deleted keys stay until compacted). */
  get size(): number {
    return this.byKey.size;
  }

  keyIndex(key: string): KeyIndex | undefined {
    return this.byKey.get(key);
  }

  get(key: string, atRev: number): IndexHit | undefined {
    const ki = this.byKey.get(key);
    if (ki === undefined) return undefined;
    const at = ki.get(atRev);
    return at === undefined ? undefined : { ki, at };
  }

  put(key: string, rev: Revision): KeyIndex {
    let ki = this.byKey.get(key);
    if (ki === undefined) {
      ki = new KeyIndex(key);
      this.tree.set(key, ki);
      this.byKey.set(key, ki);
    }
    ki.put(rev);
    return ki;
  }

  /** Inserts a KeyIndex built elsewhere (restore). */
  insert(ki: KeyIndex): void {
    assert(!this.byKey.has(ki.key), 'index insert of an existing key');
    this.tree.set(ki.key, ki);
    this.byKey.set(ki.key, ki);
  }

  /**
   * Counts the keys in the span that exist at atRev, in key order, and
   * appends the revisions (main, sub) of the first `limit` of them to `out`
   * (numbers, not an object per key: reads of many keys).
   */
  revisionsAt(span: KeySpan, atRev: number, limit: number, out: RevisionSink): number {
    return this.revisionsSlice(span, atRev, limit, out, span.start, Number.POSITIVE_INFINITY).count;
  }

  /**
   * revisionsAt over at most keysMax index keys of the span, from fromKey
   * on; `next` is the key to go on from (undefined: the span is done).
   */
  revisionsSlice(span: KeySpan, atRev: number, limit: number, out: RevisionSink, fromKey: string, keysMax: number): { count: number; next: string | undefined } {
    let count = 0;
    if (span.single) {
      const ki = this.byKey.get(span.start);
      if (ki !== undefined && ki.existsAt(atRev, limit > 0 ? out : undefined)) count++;
      return { count, next: undefined };
    }
    let seen = 0;
    let next: string | undefined;
    this.tree.forEachFrom(fromKey, span.end, (k, ki) => {
      if (seen === keysMax) {
        next = k;
        return false;
      }
      seen++;
      if (ki.existsAt(atRev, count < limit ? out : undefined)) count++;
      return true;
    });
    return { count, next };
  }

  /** Calls fn for each KeyIndex in the span, in key order (the index must not change meanwhile). */
  visit(span: KeySpan, fn: (ki: KeyIndex) => void): void {
    if (span.single) {
      const ki = this.byKey.get(span.start);
      if (ki !== undefined) fn(ki);
      return;
    }
    this.tree.forEachFrom(span.start, span.end, (_k, ki) => {
      fn(ki);
    });
  }

  /**
   * Compacts at most keysMax keys from `fromKey` on (etcd compacts the whole
   * index in one go; doing it in slices lets writes run in between). Returns
   * the key to continue from, or undefined when done.
   */
  compactSlice(atRev: number, available: RevisionSet, fromKey: string, keysMax: number, counts?: { dropped: number }): string | undefined {
    const { slice, next } = this.sliceFrom(fromKey, keysMax);
    for (const ki of slice) {
      const before = counts === undefined ? 0 : ki.revisionCount();
      ki.compact(atRev, available);
      if (counts !== undefined) counts.dropped += before - ki.revisionCount();
      if (ki.isEmpty()) {
        this.tree.delete(ki.key);
        this.byKey.delete(ki.key);
      }
    }
    return next;
  }

  /**
   * Adds to `available` the revisions a compaction at atRev would keep
   * (etcd's Keep, for HashKV), for at most keysMax keys from `fromKey` on.
   * Returns the key to continue from, or undefined when done.
   */
  keepSlice(atRev: number, available: RevisionSet, fromKey: string, keysMax: number): string | undefined {
    const { slice, next } = this.sliceFrom(fromKey, keysMax);
    for (const ki of slice) ki.keep(atRev, available);
    return next;
  }

  /**
   * At most keysMax keys from fromKey on, and the key after them (undefined
   * at the end): the unit of work between two turns of the event loop.
   * Collected first, so that the caller may change the tree meanwhile.
   */
  private sliceFrom(fromKey: string, keysMax: number): { slice: KeyIndex[]; next: string | undefined } {
    const slice: KeyIndex[] = [];
    let next: string | undefined;
    this.tree.forEachFrom(fromKey, undefined, (k, ki) => {
      if (slice.length === keysMax) {
        next = k;
        return false;
      }
      slice.push(ki);
      return true;
    });
    return { slice, next };
  }
}
