import { assert } from '../base/index.js';
import type { raftpb } from '../pb/index.js';
import { RaftError, RaftErrorCode, isRaftError } from './errors.js';
import { Unstable } from './log-unstable.js';
import type { Storage } from './storage.js';
import { limitSize, snapshotIndex, snapshotTerm } from './util.js';

/** A term lookup that failed because the index is compacted (0 is never a real term of a real entry). */
export const termCompacted = -1;
/** A term lookup past the end of the log. */
export const termUnavailable = -2;

/**
 * The raft log: the persisted part (Storage) followed by the unstable part.
 * committed and applied are the classic Raft indexes; applied <= committed.
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;

  constructor(
    readonly storage: Storage,
    /** Bound on the bytes of committed entries handed out in one Ready. */
    readonly committedBytesMax: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = first - 1;
    this.applied = first - 1;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, unstable.offset=${this.unstable.offset}, len(unstable.Entries)=${this.unstable.entries.length}`;
  }

  /**
   * The follower's append: if the log has (index, logTerm), merge ents after
   * it and advance commit to min(committed, last new index). Returns the last
   * new index, or undefined when the log does not match at index.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly raftpb.Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, `entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      const first = ents[0]?.index ?? 0;
      this.append(ents.slice(ci - first));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries at the end (possibly truncating the unstable tail); returns the new last index. */
  append(ents: readonly raftpb.Entry[]): number {
    const first = ents[0];
    if (first === undefined) return this.lastIndex();
    assert(first.index - 1 >= this.committed, `after(${first.index - 1}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry that is new or conflicts (same index,
   * different term) with the log; 0 when all are already present.
   */
  findConflict(ents: readonly raftpb.Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * For fast backtracking (thesis §5.3 optimisation): the largest index <= index
   * whose term is <= term, so that a whole term of mismatching entries is
   * skipped in one round trip. Returns [index, term of it].
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = index; i >= 0; i--) {
      const t = this.term(i);
      // Unknown (compacted) terms end the search: the leader can sort it out.
      if (t < 0) return [i, 0];
      if (t <= term) return [i, t];
    }
    return [0, 0];
  }

  unstableEntries(): raftpb.Entry[] {
    return this.unstable.entries;
  }

  /** Committed entries not yet applied, bounded by committedBytesMax. */
  nextCommittedEnts(): raftpb.Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= off) return [];
    return this.slice(off, this.committed + 1, this.committedBytesMax);
  }

  hasNextCommittedEnts(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  /** The snapshot to install: the unstable one, or storage's. */
  snapshot(): raftpb.Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined && snapshotIndex(this.unstable.snapshot) > 0;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  commitTo(toCommit: number): void {
    // Never decrease commit.
    if (this.committed < toCommit) {
      assert(this.lastIndex() >= toCommit, `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`);
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(this.committed >= i && i >= this.applied, `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t >= 0, 'unexpected error when getting the last term');
    return t;
  }

  /** The term of entry i, or termCompacted / termUnavailable. */
  term(i: number): number {
    const ut = this.unstable.maybeTerm(i);
    if (ut !== undefined) return ut;
    // The valid range includes the dummy entry before the first index.
    if (i < this.firstIndex() - 1) return termCompacted;
    if (i > this.lastIndex()) return termUnavailable;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (isRaftError(e, RaftErrorCode.Compacted)) return termCompacted;
      if (isRaftError(e, RaftErrorCode.Unavailable)) return termUnavailable;
      throw e;
    }
  }

  /** Entries from i on, at most bytesMax; throws Compacted when i is gone. */
  entries(i: number, bytesMax: number): raftpb.Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, bytesMax);
  }

  /** Whether a log ending at (lasti, term) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    const t = this.term(i);
    return t >= 0 && t === term;
  }

  /** Commits up to maxIndex if the entry there is of `term` (a leader commits only its own term's entries). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: raftpb.Snapshot): void {
    this.committed = snapshotIndex(s);
    this.unstable.restore(s);
  }

  /** Entries [lo, hi) across storage and unstable, at most bytesMax (at least one). */
  slice(lo: number, hi: number, bytesMax: number): raftpb.Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    const uoff = this.unstable.offset;
    let ents: raftpb.Entry[] = [];
    if (lo < uoff) {
      const stored = this.storage.entries(lo, Math.min(hi, uoff), bytesMax);
      // Storage cut the range short (size limit): done.
      if (stored.length < Math.min(hi, uoff) - lo) return stored;
      ents = stored;
    }
    if (hi > uoff) {
      const u = this.unstable.slice(Math.max(lo, uoff), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, bytesMax);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    assert(lo <= hi, `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new RaftError(RaftErrorCode.Compacted, `slice from ${lo} < first ${fi}`);
    const length = this.lastIndex() + 1 - fi;
    assert(hi <= fi + length, `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }

  /** All entries: tests only. */
  allEntries(): raftpb.Entry[] {
    return this.entries(this.firstIndex(), Number.MAX_SAFE_INTEGER);
  }

  snapshotTerm(): number {
    return snapshotTerm(this.snapshot());
  }
}
