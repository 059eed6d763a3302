import { assert } from '../base/index.js';
import type { raftpb } from '../pb/index.js';
import { snapshotIndex, snapshotTerm } from './util.js';

/**
 * The part of the log not yet persisted: an optional incoming snapshot and
 * the entries after it. entries[i] has index offset+i. Everything here is
 * handed to the caller in a Ready and removed on advance (stableTo).
 */
export class Unstable {
  snapshot: raftpb.Snapshot | undefined = undefined;
  entries: raftpb.Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** The index of the first entry, if the unstable part starts with a snapshot. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : snapshotIndex(this.snapshot) + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : snapshotIndex(this.snapshot);
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && snapshotIndex(this.snapshot) === i) return snapshotTerm(this.snapshot);
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]?.term;
  }

  /** Entries up to (i, t) are durable: drop them, unless they were replaced meanwhile. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    // If the entry at i changed term (a new leader overwrote it after the
    // Ready was handed out), the persisted one is not this one: keep it.
    if (gt !== t || i < this.offset) return;
    const n = i + 1 - this.offset;
    this.entries = n >= this.entries.length ? [] : this.entries.slice(n);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && snapshotIndex(this.snapshot) === i) this.snapshot = undefined;
  }

  restore(s: raftpb.Snapshot): void {
    this.offset = snapshotIndex(s) + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Appends ents, replacing any unstable entries at or after their first index. */
  truncateAndAppend(ents: readonly raftpb.Entry[]): void {
    const first = ents[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // The new entries replace everything unstable (and overlap the stable
      // log, whose stale tail the caller overwrites when persisting).
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries.length = after - this.offset;
      for (const e of ents) this.entries.push(e);
    }
  }

  /** Entries [lo, hi) from the unstable part; shares the entry objects. */
  slice(lo: number, hi: number): raftpb.Entry[] {
    assert(lo <= hi && lo >= this.offset && hi <= this.offset + this.entries.length,
      `unstable.slice[${lo},${hi}) out of bound [${this.offset},${this.offset + this.entries.length}]`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
