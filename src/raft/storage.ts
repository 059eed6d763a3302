import { assert } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { RaftError, RaftErrorCode } from './errors.js';
import { isEmptyHardState, limitSize, snapshotIndex, snapshotTerm } from './util.js';

/**
 * The durable log as raft reads it. Raft never writes through this
 * interface: the caller persists what a Ready hands out and then makes it
 * visible here. Reads of compacted indexes throw RaftError(Compacted); reads
 * past the end throw RaftError(Unavailable).
 */
export interface Storage {
  /** The persisted hard state and membership at startup. */
  initialState(): { hardState: raftpb.HardState; confState: raftpb.ConfState };
  /**
   * Entries [lo, hi), at most bytesMax of them (but at least one when the
   * range is not empty). lo >= firstIndex(), hi <= lastIndex()+1.
   */
  entries(lo: number, hi: number, bytesMax: number): raftpb.Entry[];
  /** The term of entry i, for firstIndex()-1 <= i <= lastIndex(). */
  term(i: number): number;
  /** The index of the last entry (or of the snapshot when the log is empty). */
  lastIndex(): number;
  /** The index of the first entry still available; snapshot index + 1. */
  firstIndex(): number;
  /** The most recent snapshot; may throw SnapshotTemporarilyUnavailable while one is being made. */
  snapshot(): raftpb.Snapshot;
}

/**
 * A Storage held in memory: tests, the simulation, and the server's view of
 * its WAL all use it. Entry 0 of `ents` is a dummy that records the index
 * and term of the last compacted (snapshotted) entry.
 */
export class MemoryStorage implements Storage {
  private hardState = raftpb.HardState.create();
  private snap = raftpb.Snapshot.create({ metadata: raftpb.SnapshotMetadata.create({ confState: raftpb.ConfState.create() }) });
  private ents: raftpb.Entry[] = [raftpb.Entry.create()];

  initialState(): { hardState: raftpb.HardState; confState: raftpb.ConfState } {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata?.confState ?? raftpb.ConfState.create() };
  }

  setHardState(hs: raftpb.HardState): void {
    this.hardState = { ...hs };
  }

  hardStateNow(): raftpb.HardState {
    return { ...this.hardState };
  }

  private offset(): number {
    return this.ents[0]?.index ?? 0;
  }

  entries(lo: number, hi: number, bytesMax: number): raftpb.Entry[] {
    const off = this.offset();
    if (lo <= off) throw new RaftError(RaftErrorCode.Compacted, `index ${lo} <= compacted ${off}`);
    if (hi > this.lastIndex() + 1) throw new RaftError(RaftErrorCode.Unavailable, `entries up to ${hi} past last ${this.lastIndex()}`);
    // Only the dummy entry: nothing stored.
    if (this.ents.length === 1) throw new RaftError(RaftErrorCode.Unavailable, 'empty log');
    return limitSize(this.ents.slice(lo - off, hi - off), bytesMax);
  }

  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new RaftError(RaftErrorCode.Compacted, `index ${i} < compacted ${off}`);
    const e = this.ents[i - off];
    if (e === undefined) throw new RaftError(RaftErrorCode.Unavailable, `index ${i} past last ${this.lastIndex()}`);
    return e.term;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  snapshot(): raftpb.Snapshot {
    return this.snap;
  }

  /** Replaces the whole log with a snapshot (a follower installing one). */
  applySnapshot(snap: raftpb.Snapshot): void {
    const idx = snapshotIndex(snap);
    if (idx <= snapshotIndex(this.snap)) throw new RaftError(RaftErrorCode.SnapshotOutOfDate, `snapshot ${idx}`);
    this.snap = snap;
    this.ents = [raftpb.Entry.create({ index: idx, term: snapshotTerm(snap) })];
  }

  /**
   * Makes a snapshot at applied index i with the application's data and the
   * membership at i. Entries stay until compact().
   */
  createSnapshot(i: number, cs: raftpb.ConfState | undefined, data: Uint8Array): raftpb.Snapshot {
    if (i <= snapshotIndex(this.snap)) throw new RaftError(RaftErrorCode.SnapshotOutOfDate, `snapshot ${i}`);
    assert(i <= this.lastIndex(), `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    const off = this.offset();
    const e = this.ents[i - off];
    assert(e !== undefined);
    this.snap = raftpb.Snapshot.create({
      data,
      metadata: raftpb.SnapshotMetadata.create({
        index: i,
        term: e.term,
        confState: cs ?? this.snap.metadata?.confState ?? raftpb.ConfState.create(),
      }),
    });
    return this.snap;
  }

  /** Drops entries before compactIndex; the entry at compactIndex becomes the dummy. */
  compact(compactIndex: number): void {
    const off = this.offset();
    if (compactIndex <= off) throw new RaftError(RaftErrorCode.Compacted, `compact ${compactIndex} <= ${off}`);
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const i = compactIndex - off;
    const head = this.ents[i];
    assert(head !== undefined);
    const rest = this.ents.slice(i + 1);
    rest.unshift(raftpb.Entry.create({ index: head.index, term: head.term }));
    this.ents = rest;
  }

  /**
   * Appends entries that the caller has made durable. Entries that overlap the
   * log replace its tail from their first index on; entries older than the
   * snapshot are ignored.
   */
  append(entries: readonly raftpb.Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const lastNew = (entries[entries.length - 1]?.index ?? 0);
    if (lastNew < first) return;
    let ents = entries;
    const head = ents[0]?.index ?? 0;
    if (first > head) ents = ents.slice(first - head);
    const start = ents[0]?.index ?? 0;
    const off = start - this.offset();
    assert(off >= 1 && off <= this.ents.length, `missing log entry [last: ${this.lastIndex()}, append at: ${start}]`);
    if (off < this.ents.length) this.ents.length = off;
    for (const e of ents) this.ents.push(e);
  }

  /** Whether nothing has ever been stored: a brand-new member. */
  isEmpty(): boolean {
    return this.lastIndex() === 0 && isEmptyHardState(this.hardState);
  }
}
