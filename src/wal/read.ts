/**
 * Reading a WAL back: checking each segment record by record (with the rules
 * that tell a torn tail from corruption) and replaying the records into the
 * state open() returns.
 */
import { AssertionError, equalBytes, unreachable } from '../base/index.js';
import { DecodeError, raftpb, type MessageType } from '../pb/index.js';
import { WalCorruptError } from './errors.js';
import { checkRecordAt, findSyncedClaimAfter, isZeroRange, looksTorn, recordType, type RawRecord } from './record.js';

export interface SegmentScan {
  /** Offset just past the last good record. */
  end: number;
  /** Chain value after the last good record. */
  crc: number;
  /** Set when the last segment ends in a torn write at `end` that must be cut away. */
  torn?: string;
}

/**
 * Checks one segment's bytes and calls visit for each good record in order.
 *
 * - Every record must be valid on its own and continue the chain (its stored
 *   prevCrc equals the previous record's crc; chainCrc, when given, is the
 *   value the previous segment ended with).
 * - A segment other than the last was fsynced and trimmed before the next
 *   one was created, so it must end exactly at the end of its file.
 * - The last segment may end in zeros (pre-allocation). Damage there is a
 *   torn write, cut away, only if no later record says the damaged bytes had
 *   been fsynced and the damage looks like an interrupted write (looksTorn).
 *   Otherwise it is refused.
 */
export function scanSegment(
  buf: Buffer,
  file: string,
  isLast: boolean,
  chainCrc: number | undefined,
  visit: (rec: RawRecord) => void,
): SegmentScan {
  let crc = chainCrc;
  let off = 0;
  for (let guard = 0; guard <= buf.length; guard++) {
    if (off === buf.length) {
      if (crc === undefined || off === 0) throw new WalCorruptError(file, off, 'empty segment');
      return { end: off, crc };
    }
    const c = checkRecordAt(buf, off);
    if (c.ok) {
      const rec = c.rec;
      if (off === 0 && rec.type !== recordType.crc) throw new WalCorruptError(file, off, 'segment does not start with a crc record');
      if (off !== 0 && rec.type === recordType.crc) throw new WalCorruptError(file, off, 'crc record inside a segment');
      if (crc !== undefined && rec.prevCrc !== crc) {
        throw new WalCorruptError(file, off, 'crc chain broken: record does not follow the one before it');
      }
      crc = rec.crc;
      visit(rec);
      off = rec.end;
      continue;
    }
    if (off === 0 || crc === undefined) throw new WalCorruptError(file, off, `segment head damaged: ${c.reason}`);
    if (!isLast) throw new WalCorruptError(file, off, c.reason);
    if (c.zeroHeader && isZeroRange(buf, off, buf.length)) return { end: off, crc };
    const claim = findSyncedClaimAfter(buf, off);
    if (claim !== undefined) {
      const why = `${c.reason}, followed by a record at offset ${claim.offset} written after offset ${claim.syncedBytes} was synced`;
      throw new WalCorruptError(file, off, why);
    }
    if (!looksTorn(buf, off, c)) throw new WalCorruptError(file, off, c.reason);
    return { end: off, crc, torn: c.reason };
  }
  throw new AssertionError('wal: segment scan did not terminate');
}

export interface WalSnapshotMarker {
  index: number;
  term: number;
  confState?: raftpb.ConfState;
}

function decodeOrCorrupt<T>(type: MessageType<T>, rec: RawRecord, file: string): T {
  try {
    return type.decode(rec.data);
  } catch (e: unknown) {
    if (e instanceof DecodeError) throw new WalCorruptError(file, rec.offset, `undecodable record: ${e.message}`);
    throw e;
  }
}

function checkCounter(n: number, min: number, what: string, file: string, offset: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new WalCorruptError(file, offset, `bad ${what} ${n}`);
}

/**
 * Replay folds records into what open() returns. Entries are kept as a
 * contiguous run: an entry at an index at or below the last one replaces it
 * and everything after it (a new leader truncated this member's uncommitted
 * tail). An entry past the end is allowed only when a snapshot marker covers
 * the gap (the member installed a snapshot); anything else is corruption.
 */
export class Replay {
  metadata: Uint8Array | undefined;
  hardState: raftpb.HardState = raftpb.HardState.create();
  entries: raftpb.Entry[] = [];
  markers: WalSnapshotMarker[] = [];
  /** The index of the last entry record read (before any filtering), as the next segment's name wants it. */
  lastIndex = 0;
  /** The highest snapshot marker index seen so far. */
  private markerIndexMax = 0;

  /** Entries at or below this index are skipped (covered by the snapshot open() starts after). */
  constructor(private readonly skipThrough: number) {}

  apply(rec: RawRecord, file: string): void {
    switch (rec.type) {
      case recordType.crc:
        return;
      case recordType.metadata:
        if (this.metadata !== undefined && !equalBytes(this.metadata, rec.data)) {
          throw new WalCorruptError(file, rec.offset, 'metadata conflict');
        }
        this.metadata ??= rec.data.slice();
        return;
      case recordType.entry:
        return this.applyEntry(decodeOrCorrupt(raftpb.Entry, rec, file), file, rec.offset);
      case recordType.hardState: {
        const hs = decodeOrCorrupt(raftpb.HardState, rec, file);
        checkCounter(hs.term, 0, 'hard state term', file, rec.offset);
        checkCounter(hs.commit, 0, 'hard state commit', file, rec.offset);
        this.hardState = hs;
        return;
      }
      case recordType.snapshot: {
        const m = decodeOrCorrupt(raftpb.SnapshotMetadata, rec, file);
        checkCounter(m.index, 0, 'snapshot index', file, rec.offset);
        checkCounter(m.term, 0, 'snapshot term', file, rec.offset);
        const marker: WalSnapshotMarker = { index: m.index, term: m.term };
        if (m.confState !== undefined) marker.confState = m.confState;
        this.markers.push(marker);
        this.markerIndexMax = Math.max(this.markerIndexMax, m.index);
        this.lastIndex = Math.max(this.lastIndex, m.index);
        return;
      }
      default:
        return unreachable(rec.type);
    }
  }

  private applyEntry(e: raftpb.Entry, file: string, offset: number): void {
    checkCounter(e.index, 1, 'entry index', file, offset);
    checkCounter(e.term, 0, 'entry term', file, offset);
    this.lastIndex = e.index;
    if (e.index <= this.skipThrough) return;
    // Copy out of the segment's buffer so that it can be freed once read.
    e.data = e.data.slice();
    const first = this.entries[0]?.index;
    if (first === undefined || e.index < first) {
      this.entries.length = 0;
    } else {
      const next = first + this.entries.length;
      if (e.index > next) {
        if (e.index - 1 > this.markerIndexMax) {
          throw new WalCorruptError(file, offset, `entry index gap: expected at most ${next}, got ${e.index}`);
        }
        this.entries.length = 0;
      } else {
        this.entries.length = e.index - first;
      }
    }
    this.entries.push(e);
  }
}
