/**
 * The Wal: segment files in one directory, written through a RecordEncoder,
 * fsynced once per batch, cut into a new pre-allocated segment past
 * segmentBytes, and read back (with torn-tail repair) by open().
 */
import { dirname, join, resolve } from 'node:path';
import {
  AssertionError,
  assert,
  exponentialBuckets,
  nopLogger,
  type Gauge,
  type Histogram,
  type Logger,
  type Registry,
  unreachable,
} from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { WalCorruptError, WalExistsError, WalNotFoundError, WalSnapshotNotFoundError } from './errors.js';
import { pairName, parsePairName, readDirNames, writeAllSync, zeroFill } from './files.js';
import { nodeWalFs, type WalFs } from './fs.js';
import { Replay, scanSegment, type WalSnapshotMarker } from './read.js';
import { RecordEncoder, recordType, segmentOffsetMax } from './record.js';

export type { WalSnapshotMarker } from './read.js';

/** The default segment size, etcd's: 64 MiB. */
export const segmentBytesDefault = 64 * 1024 * 1024;
const segmentBytesMin = 512;
const segmentBytesMax = 1024 * 1024 * 1024;
const segmentExt = '.wal';
const tmpExt = '.tmp';
/** The one file a segment is prepared in before it is renamed into the sequence. */
const preparedName = `segment${tmpExt}`;
/**
 * The background zero fill syncs after every this many bytes, so that the
 * disk never has much of it queued ahead of the live tail's fdatasync.
 * Measured with 100-entry saves back to back (a cut every ~0.7 s): every
 * 1 MiB 3.0-3.6k saves/s, p99 2.6-3.2 ms; every 4 MiB 2.7-3.3k; only at the
 * end 2.4k, p99 5.1 ms, max 29 ms. Pausing between stretches (5-15 ms) did
 * not help: it only made cuts wait.
 */
const fillSyncEveryBytes = 1024 * 1024;
/**
 * Bytes per sync, on average over a segment, from which its successor is
 * reserved sparse rather than zero-filled (Preallocate). A busy member's
 * batches of small entries stay below it (100 entries of 300 bytes are 30
 * KiB, where the filled file's syncs are the faster: index.ts).
 */
const largeSyncBytes = 128 * 1024;

export interface WalMetrics {
  /** etcd_disk_wal_fsync_duration_seconds: one observation per fdatasync of the tail. */
  fsyncSeconds: Histogram;
  /** etcd_disk_wal_write_bytes_total (a gauge in etcd): bytes handed to write(2) for records. */
  writeBytes: Gauge;
}

/** Registers the WAL's metrics (once per registry; share the result between Wal instances). */
export function walMetrics(registry: Registry): WalMetrics {
  return {
    fsyncSeconds: registry.histogram(
      'etcd_disk_wal_fsync_duration_seconds',
      'The latency distributions of fsync called by WAL.',
      exponentialBuckets(0.001, 2, 14),
    ),
    writeBytes: registry.gauge('etcd_disk_wal_write_bytes_total', 'Total number of bytes written in WAL.'),
  };
}

/**
 * Preallocate: how segment files get their space. fdatasync is cheapest when
 * the write changes neither the file size nor its block allocation, since
 * then no metadata has to reach the journal.
 * - 'zero': each segment is filled with zeros (in the background, one
 *   segment ahead, paced) before use. Every fdatasync flushes data only; but
 *   every byte goes to disk twice. So a segment written in large syncs
 *   (largeSyncBytes or more each, on average: values of hundreds of KiB, or
 *   large batches) gets a sparse successor instead: there a sync's
 *   allocation is small beside its data, and the fill costs as much again
 *   (figures in index.ts).
 * - 'sparse': each segment is ftruncate'd to segmentBytes. No size change per
 *   write, but a write into a hole still allocates blocks.
 * - 'none': the file grows with each write (size changes every time).
 */
export type Preallocate = 'zero' | 'sparse' | 'none';

export interface WalOptions {
  /**
   * Cut to a new segment once the tail reaches this many bytes (default 64
   * MiB, etcd's). Smaller segments are released sooner after a snapshot but
   * cost a cut (two extra syncs and a rename) more often. Multiple of 8.
   */
  segmentBytes?: number;
  /**
   * A batch of at most this many bytes is fdatasynced on the calling
   * thread (default 4 KiB, about a dozen small entries); a larger one on the
   * thread pool. See syncTail.
   */
  inlineSyncBytes?: number;
  /**
   * How a segment's space is reserved before records are written into it
   * (default 'zero'); see Preallocate and the figures in index.ts.
   */
  preallocate?: Preallocate;
  logger?: Logger;
  metrics?: WalMetrics;
  /** The file system (default node:fs; a simulation passes a fake). */
  fs?: WalFs;
  /** Milliseconds on a monotonic clock, for timing syncs (default performance.now; a simulation passes its own). */
  nowMs?: () => number;
}

export interface WalOpenOptions extends WalOptions {
  /**
   * Start after this snapshot: its marker must be in the log (unless index
   * is 0), entries at or below its index are skipped, and the entries after
   * it must follow it without a gap.
   */
  snapshot?: WalSnapshotMarker;
}

export interface WalOpenResult {
  wal: Wal;
  /** The opaque metadata given to create(). */
  metadata: Uint8Array;
  /** The last hard state saved (all zero if none was). */
  hardState: raftpb.HardState;
  /**
   * The log entries after opts.snapshot (all entries in the remaining
   * segments when no snapshot was given), after overwrites: a later entry at
   * an index at or below an earlier one replaced it and everything after it.
   */
  entries: raftpb.Entry[];
  /**
   * The snapshot markers found, oldest first, whose index is at or below the
   * hard state's commit (a marker above it belongs to a snapshot whose save
   * did not complete), for picking a snap file (Snapshotter.loadNewestAvailable).
   */
  snapshots: WalSnapshotMarker[];
}

interface Settings {
  segmentBytes: number;
  inlineSyncBytes: number;
  preallocate: Preallocate;
  logger: Logger;
  metrics: WalMetrics | undefined;
  fs: WalFs;
  nowMs: () => number;
}

interface SegmentInfo {
  seq: number;
  firstIndex: number;
  name: string;
}

interface Prepared {
  path: string;
  fd: number;
}

/**
 * Measured on the 2-vCPU VM of bench/RESULTS.md (section 4): one client
 * writing gets 1.8x the puts/s with its 1-entry batches synced inline; 1000
 * clients lose nothing, their batches (hundreds of entries, tens of KiB)
 * still going to the pool.
 */
const inlineSyncBytesDefault = 4096;

/**
 * After a sync this slow, small batches go to the pool too until a sync is
 * fast again: on a slow or stalling disk, an event loop blocked in
 * fdatasync (no serializable reads, /metrics or peer traffic meanwhile)
 * would cost far more than the thread wake-ups it saves.
 */
const inlineSyncSlowMs = 10;

function settingsOf(opts: WalOptions | undefined): Settings {
  const segmentBytes = opts?.segmentBytes ?? segmentBytesDefault;
  assert(
    Number.isSafeInteger(segmentBytes) && segmentBytes % 8 === 0 && segmentBytes >= segmentBytesMin && segmentBytes <= segmentBytesMax,
    `wal: segmentBytes must be a multiple of 8 in [${segmentBytesMin}, ${segmentBytesMax}]: ${segmentBytes}`,
  );
  return {
    segmentBytes,
    inlineSyncBytes: opts?.inlineSyncBytes ?? inlineSyncBytesDefault,
    preallocate: opts?.preallocate ?? 'zero',
    logger: opts?.logger ?? nopLogger,
    metrics: opts?.metrics,
    fs: opts?.fs ?? nodeWalFs,
    nowMs: opts?.nowMs ?? (() => performance.now()),
  };
}

/** The segments in dir, by sequence; refuses a gap in the sequence. */
function listSegments(fs: WalFs, dir: string): SegmentInfo[] {
  const segs: SegmentInfo[] = [];
  for (const name of readDirNames(fs, dir)) {
    const parsed = parsePairName(name, segmentExt);
    if (parsed !== undefined) segs.push({ seq: parsed[0], firstIndex: parsed[1], name });
  }
  segs.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segs.length; i++) {
    const prev = segs[i - 1] as SegmentInfo;
    const cur = segs[i] as SegmentInfo;
    if (cur.seq !== prev.seq + 1) throw new WalCorruptError(join(dir, cur.name), 0, `missing segment before sequence ${cur.seq}`);
  }
  return segs;
}

/** Reserves [size, segmentBytes) of a segment file as mode says (settings.preallocate unless given). */
async function reserveSpace(fd: number, size: number, settings: Settings, stop?: () => boolean, mode: Preallocate = settings.preallocate): Promise<void> {
  if (size >= settings.segmentBytes) return;
  switch (mode) {
    case 'zero':
      await zeroFill(settings.fs, fd, size, settings.segmentBytes, fillSyncEveryBytes, stop);
      await settings.fs.fsync(fd);
      return;
    case 'sparse':
      settings.fs.ftruncate(fd, settings.segmentBytes);
      return;
    case 'none':
      return;
    default:
      return unreachable(mode);
  }
}

/** Opens the file a segment is prepared in and reserves its space. */
async function prepareSegmentFile(dir: string, settings: Settings, stop?: () => boolean, mode?: Preallocate): Promise<Prepared> {
  const path = join(dir, preparedName);
  const fd = settings.fs.open(path, 'w+');
  try {
    await reserveSpace(fd, 0, settings, stop, mode);
    return { path, fd };
  } catch (e: unknown) {
    settings.fs.close(fd);
    throw e;
  }
}

function removeTmpFiles(fs: WalFs, dir: string): void {
  for (const name of readDirNames(fs, dir)) if (name.endsWith(tmpExt)) fs.rmSync(join(dir, name));
}

function sameMarker(a: WalSnapshotMarker, b: WalSnapshotMarker): boolean {
  return a.index === b.index && a.term === b.term;
}

/** Records of saves that need no sync are held in memory up to this many bytes (Wal.holding). */
const heldBytesMax = 64 * 1024;

/**
 * Wal is an open write-ahead log. One caller at a time: save, saveSnapshot,
 * releaseTo and close each assert that no other call is in progress (the raft
 * loop awaits each before the next). After a failed write or fsync every
 * further call fails an assertion: the member must stop.
 */
export class Wal {
  private busyOp: string | undefined;
  /** How long the last tail sync took (ms), wherever it ran. */
  private lastSyncMs = 0;
  private failed: unknown;
  private closed = false;
  /**
   * The encoder holds records of saves that needed no sync (a hard state
   * whose commit index moved), not yet written: they go out ahead of the
   * next write. Writing them at once cost a pwrite on the way from applying
   * a write to answering it (p50 19 µs, p99 80 µs, up to 2.5 ms seen), for
   * records no crash is sure to keep anyway (etcd buffers them as well).
   */
  private holding = false;
  /** The next segment file, being zero-filled in the background. */
  private prepared: Promise<Prepared> | undefined;
  /** Where this process started writing the tail segment, and the syncs since: its bytes per sync. */
  private segmentBaseOffset: number;
  private segmentSyncs = 0;

  private constructor(
    readonly dir: string,
    private readonly settings: Settings,
    private readonly lock: { release(): void },
    private readonly metadata: Uint8Array,
    private segments: SegmentInfo[],
    private tailFd: number,
    /** Invariant: tailOffset is 8-byte aligned and is where the next record goes. */
    private tailOffset: number,
    /** Invariant: syncedBytes <= tailOffset; bytes [0, syncedBytes) of the tail are fsynced. */
    private syncedBytes: number,
    private readonly encoder: RecordEncoder,
    /** The index of the last entry written; a new segment is named after lastIndex + 1. */
    private lastIndex: number,
    private hardState: raftpb.HardState,
  ) {
    this.segmentBaseOffset = tailOffset;
    this.maybeStartPrepare();
  }

  /** True when dir holds at least one WAL segment. */
  static exists(dir: string, fs: WalFs = nodeWalFs): boolean {
    return readDirNames(fs, dir).some((name) => parsePairName(name, segmentExt) !== undefined);
  }

  /**
   * Creates a new, empty log in dir (made, mode 0700, if missing) holding
   * metadata and a snapshot marker at index 0. The first segment is written
   * under a temporary name, synced and renamed, so a crash leaves either no
   * log or a complete one.
   */
  static async create(dir: string, metadata: Uint8Array, opts?: WalOptions): Promise<Wal> {
    const settings = settingsOf(opts);
    const fs = settings.fs;
    const made = fs.mkdirp(dir);
    if (made !== undefined) await fsyncCreatedDirs(fs, dir, made);
    const lock = fs.lock(dir);
    try {
      if (Wal.exists(dir, fs)) throw new WalExistsError(dir);
      removeTmpFiles(fs, dir);
      const encoder = new RecordEncoder(0);
      const hardState = raftpb.HardState.create();
      const prepared = await prepareSegmentFile(dir, settings);
      const first: SegmentInfo = { seq: 0, firstIndex: 0, name: pairName(0, 0, segmentExt) };
      const head = await installSegment(fs, dir, first, prepared, encoder, (enc) => {
        writeHead(enc, metadata, hardState);
        enc.addMessage(recordType.snapshot, raftpb.SnapshotMetadata, raftpb.SnapshotMetadata.create(), 0);
      }).catch((e: unknown) => {
        fs.close(prepared.fd);
        throw e;
      });
      settings.logger.info('wal: created', { dir, segment: first.name });
      return new Wal(dir, settings, lock, metadata.slice(), [first], prepared.fd, head, head, encoder, 0, hardState);
    } catch (e: unknown) {
      lock.release();
      throw e;
    }
  }

  /**
   * Opens the log in dir for appending: locks the directory, reads and
   * verifies every segment, cuts a torn tail off the last segment (logged),
   * and refuses any other damage with WalCorruptError.
   */
  static async open(dir: string, opts?: WalOpenOptions): Promise<WalOpenResult> {
    const settings = settingsOf(opts);
    if (!Wal.exists(dir, settings.fs)) throw new WalNotFoundError(dir);
    const lock = settings.fs.lock(dir);
    try {
      removeTmpFiles(settings.fs, dir);
      return await Wal.openLocked(dir, settings, lock, opts?.snapshot);
    } catch (e: unknown) {
      lock.release();
      throw e;
    }
  }

  private static async openLocked(
    dir: string,
    settings: Settings,
    lock: { release(): void },
    snapshot: WalSnapshotMarker | undefined,
  ): Promise<WalOpenResult> {
    const fs = settings.fs;
    const segments = listSegments(fs, dir);
    const lastSeg = segments[segments.length - 1];
    if (lastSeg === undefined) throw new WalNotFoundError(dir);
    const replay = new Replay(snapshot?.index ?? 0);
    let chain: number | undefined;
    let tail: { end: number; size: number; torn: string | undefined } | undefined;
    for (const seg of segments) {
      const file = join(dir, seg.name);
      const buf = await fs.readFile(file);
      const isLast = seg === lastSeg;
      const scan = scanSegment(buf, file, isLast, chain, (rec) => replay.apply(rec, file));
      chain = scan.crc;
      if (isLast) tail = { end: scan.end, size: buf.length, torn: scan.torn };
    }
    assert(tail !== undefined && chain !== undefined, 'wal: tail not scanned');
    const firstFile = join(dir, (segments[0] as SegmentInfo).name);
    if (replay.metadata === undefined) throw new WalCorruptError(firstFile, 0, 'no metadata record');
    const entries = snapshot === undefined ? replay.entries : entriesAfterSnapshot({ entries: replay.entries, snapshots: replay.markers }, snapshot);
    const tailFile = join(dir, lastSeg.name);
    const fd = fs.open(tailFile, 'r+');
    try {
      await repairTail(fd, tailFile, tail, settings);
    } catch (e: unknown) {
      fs.close(fd);
      throw e;
    }
    const encoder = new RecordEncoder(chain);
    const wal = new Wal(dir, settings, lock, replay.metadata, segments, fd, tail.end, tail.end, encoder, replay.lastIndex, replay.hardState);
    const snapshots = replay.markers.filter((m) => m.index <= replay.hardState.commit);
    return { wal, metadata: replay.metadata.slice(), hardState: replay.hardState, entries, snapshots };
  }

  /**
   * Appends entries, then the hard state (when given), as one write; when
   * mustSync, waits for ONE fdatasync of the tail before resolving (group
   * commit: the raft loop batches a whole Ready into one call). A batch that
   * takes the tail past segmentBytes is synced even when !mustSync, and then
   * cuts a new segment: one more fdatasync (the new head) and a directory
   * fsync.
   */
  async save(hardState: raftpb.HardState | undefined, entries: readonly raftpb.Entry[], mustSync: boolean): Promise<void> {
    return this.run('save', async () => {
      if (hardState === undefined && entries.length === 0) return;
      const enc = this.encoder;
      if (!this.holding) enc.reset();
      for (const e of entries) {
        assert(Number.isSafeInteger(e.index) && e.index >= 1, `wal: bad entry index ${e.index}`);
        enc.addMessage(recordType.entry, raftpb.Entry, e, this.syncedBytes);
      }
      const last = entries[entries.length - 1];
      if (last !== undefined) this.lastIndex = last.index;
      if (hardState !== undefined) {
        enc.addMessage(recordType.hardState, raftpb.HardState, hardState, this.syncedBytes);
        this.hardState = { ...hardState };
      }
      if (!mustSync && entries.length === 0 && enc.length <= heldBytesMax) {
        this.holding = true;
        return;
      }
      await this.writeBatch(mustSync);
    });
  }

  /** True when everything written is synced (a small batch's sync runs on the calling thread, within save). */
  allSynced(): boolean {
    return this.syncedBytes === this.tailOffset;
  }

  /**
   * Records that a snapshot at marker.index exists (the snap file must be
   * saved first) and syncs. Later segments are named past marker.index, so
   * releaseTo(marker.index) keeps the segment holding this marker.
   */
  async saveSnapshot(marker: WalSnapshotMarker): Promise<void> {
    return this.run('saveSnapshot', async () => {
      assert(Number.isSafeInteger(marker.index) && marker.index >= 0, `wal: bad snapshot index ${marker.index}`);
      const meta = raftpb.SnapshotMetadata.create({ index: marker.index, term: marker.term, confState: marker.confState });
      if (!this.holding) this.encoder.reset();
      this.encoder.addMessage(recordType.snapshot, raftpb.SnapshotMetadata, meta, this.syncedBytes);
      this.lastIndex = Math.max(this.lastIndex, marker.index);
      await this.writeBatch(true);
    });
  }

  /**
   * Deletes the segments wholly below the one that holds index: every
   * segment before the last one whose first index is at or below index. The
   * tail segment is never deleted. Call it with the index of a snapshot
   * whose snap file and marker are saved.
   */
  async releaseTo(index: number): Promise<void> {
    return this.run('releaseTo', async () => {
      let keepFrom = 0;
      for (let i = 0; i < this.segments.length; i++) if ((this.segments[i] as SegmentInfo).firstIndex <= index) keepFrom = i;
      if (keepFrom === 0) return;
      const dropped = this.segments.slice(0, keepFrom);
      this.segments = this.segments.slice(keepFrom);
      // Oldest first, each unlink made durable before the next: a crash can
      // only leave a shorter run of old segments, never a gap in the sequence.
      for (const seg of dropped) {
        await this.settings.fs.rm(join(this.dir, seg.name));
        await this.settings.fs.fsyncDir(this.dir);
      }
      this.settings.logger.info('wal: released segments', { dir: this.dir, count: dropped.length, index });
    });
  }

  /** Syncs anything unsynced, closes the files and releases the directory lock. */
  async close(): Promise<void> {
    assert(!this.closed, 'wal: close after close');
    assert(this.busyOp === undefined, `wal: close called while ${this.busyOp ?? ''} is in progress`);
    this.busyOp = 'close';
    this.closed = true;
    try {
      const prepared = await this.prepared?.catch(() => undefined);
      if (prepared !== undefined) {
        this.settings.fs.close(prepared.fd);
        this.settings.fs.rmSync(prepared.path);
      }
      if (this.failed === undefined && this.holding) this.writeEncoded();
      if (this.failed === undefined && this.tailOffset > this.syncedBytes) {
        await this.settings.fs.fdatasync(this.tailFd);
        this.syncedBytes = this.tailOffset;
      }
    } finally {
      this.settings.fs.close(this.tailFd);
      this.lock.release();
      this.busyOp = undefined;
    }
  }

  /** The sequence-index names of the live segments, oldest first (for tests and tools). */
  segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /**
   * Where the next record goes: the tail segment's file, offset, and how much
   * of it is fsynced; `held`: records wait in memory for the next write (a
   * crash now loses them too). For tests and tools.
   */
  position(): { file: string; offset: number; syncedBytes: number; held: boolean } {
    const tail = this.segments[this.segments.length - 1];
    assert(tail !== undefined, 'wal: no tail segment');
    return { file: join(this.dir, tail.name), offset: this.tailOffset, syncedBytes: this.syncedBytes, held: this.holding };
  }

  /**
   * Runs one mutating call: asserts that none is in progress and that no
   * earlier one failed; a failure of this one makes the Wal unusable.
   */
  private async run(op: string, fn: () => Promise<void>): Promise<void> {
    assert(!this.closed, `wal: ${op} after close`);
    assert(this.busyOp === undefined, `wal: ${op} called while ${this.busyOp ?? ''} is in progress`);
    if (this.failed !== undefined) {
      const cause = this.failed instanceof Error ? this.failed.message : 'unknown error';
      throw new AssertionError(`wal: ${op} after an earlier write or sync failed: ${cause}`);
    }
    this.busyOp = op;
    try {
      await fn();
    } catch (e: unknown) {
      this.failed = e;
      throw e;
    } finally {
      this.busyOp = undefined;
    }
  }

  /** Writes what the encoder holds at the tail (a memcpy into the page cache); returns the byte count. */
  private writeEncoded(): number {
    this.holding = false;
    const bytes = this.encoder.bytes();
    assert(this.tailOffset % 8 === 0 && bytes.length % 8 === 0, 'wal: unaligned batch');
    assert(this.tailOffset + bytes.length <= segmentOffsetMax, 'wal: segment would pass 4 GiB');
    writeAllSync(this.settings.fs, this.tailFd, bytes, this.tailOffset);
    this.tailOffset += bytes.length;
    this.settings.metrics?.writeBytes.inc(undefined, bytes.length);
    return bytes.length;
  }

  /** Writes the encoded batch at the tail, then syncs it if it must (or when the segment is full, and cuts it). */
  private async writeBatch(mustSync: boolean): Promise<void> {
    const written = this.writeEncoded();
    const fs = this.settings.fs;
    const cutting = this.tailOffset >= this.settings.segmentBytes;
    // A segment other than the last must end at its last record: trim the
    // pre-allocated zeros now, so that this batch's one sync covers the trim.
    if (cutting && fs.fsize(this.tailFd) > this.tailOffset) fs.ftruncate(this.tailFd, this.tailOffset);
    if (mustSync || cutting) await this.syncTail(written <= this.settings.inlineSyncBytes && this.lastSyncMs < inlineSyncSlowMs);
    if (cutting) await this.cut();
    else this.maybeStartPrepare();
  }

  /**
   * A small batch (a lightly loaded member: one or a few writes per Ready) is
   * synced on this thread. Handing it to the thread pool costs two thread
   * wake-ups around the sync (the pool thread's, then the event loop's),
   * which on a VM whose idle vCPUs halt cost as much as the sync itself;
   * blocking the event loop for one short sync costs nothing when little
   * else is waiting. A large batch means many clients: it is synced on the
   * pool, and meanwhile the event loop reads, proposes and replicates the
   * next batch. So is every batch after a slow sync (inlineSyncSlowMs).
   */
  private async syncTail(inline: boolean): Promise<void> {
    const startMs = this.settings.nowMs();
    const fs = this.settings.fs;
    if (inline && fs.fdatasyncSync !== undefined) fs.fdatasyncSync(this.tailFd);
    else await fs.fdatasync(this.tailFd);
    this.lastSyncMs = this.settings.nowMs() - startMs;
    this.settings.metrics?.fsyncSeconds.observe(this.lastSyncMs / 1000);
    this.syncedBytes = this.tailOffset;
    this.segmentSyncs++;
  }

  /**
   * Starts zero-filling the next segment once the tail is half full: early
   * enough to be ready at the cut, late enough that an idle or young log
   * does not write 64 MiB of zeros it may never need.
   */
  private maybeStartPrepare(): void {
    if (this.closed || this.prepared !== undefined || this.tailOffset < this.settings.segmentBytes / 2) return;
    // close() stops the fill early: the file is deleted anyway.
    const p = prepareSegmentFile(this.dir, this.settings, () => this.closed, this.nextPreallocate());
    // A failure surfaces when cut() awaits it; this only keeps it from being reported as unhandled.
    p.catch(() => undefined);
    this.prepared = p;
  }

  /** How the next segment is reserved: 'sparse' instead of 'zero' after large syncs (see Preallocate). */
  private nextPreallocate(): Preallocate {
    const mode = this.settings.preallocate;
    if (mode !== 'zero' || this.segmentSyncs === 0) return mode;
    return (this.tailOffset - this.segmentBaseOffset) / this.segmentSyncs >= largeSyncBytes ? 'sparse' : mode;
  }

  /**
   * Moves to a new segment once the old tail is trimmed to its last record
   * and synced (writeBatch): writes the new segment's head (crc, metadata,
   * hard state) into the prepared file, syncs it, renames it into the
   * sequence and syncs the directory. A crash at any point leaves a readable
   * log: the new segment appears whole or not at all.
   */
  private async cut(): Promise<void> {
    const fs = this.settings.fs;
    const oldFd = this.tailFd;
    assert(this.syncedBytes === this.tailOffset && fs.fsize(oldFd) === this.tailOffset, 'wal: cut before the tail is trimmed and synced');
    const prev = this.segments[this.segments.length - 1];
    assert(prev !== undefined, 'wal: no tail segment');
    const seg: SegmentInfo = { seq: prev.seq + 1, firstIndex: this.lastIndex + 1, name: '' };
    seg.name = pairName(seg.seq, seg.firstIndex, segmentExt);
    this.maybeStartPrepare();
    assert(this.prepared !== undefined, 'wal: no prepared segment');
    const prepared = await this.prepared;
    this.prepared = undefined;
    const head = await installSegment(fs, this.dir, seg, prepared, this.encoder, (enc) => writeHead(enc, this.metadata, this.hardState));
    fs.close(oldFd);
    this.segments.push(seg);
    this.tailFd = prepared.fd;
    this.tailOffset = head;
    this.segmentBaseOffset = head;
    this.segmentSyncs = 0;
    this.syncedBytes = head;
    this.settings.logger.debug('wal: cut segment', { dir: this.dir, segment: seg.name });
    this.maybeStartPrepare();
  }
}

/** Syncs the parent of every directory mkdir created, from dir up to made (the top-most one). */
async function fsyncCreatedDirs(fs: WalFs, dir: string, made: string): Promise<void> {
  let d = resolve(dir);
  const top = resolve(made);
  for (let guard = 0; guard < 4096; guard++) {
    await fs.fsyncDir(dirname(d));
    if (d === top || dirname(d) === d) return;
    d = dirname(d);
  }
}

function writeHead(enc: RecordEncoder, metadata: Uint8Array, hardState: raftpb.HardState): void {
  enc.addBytes(recordType.crc, new Uint8Array(0), 0);
  enc.addBytes(recordType.metadata, metadata, 0);
  enc.addMessage(recordType.hardState, raftpb.HardState, hardState, 0);
}

/** Writes a segment's head into the prepared file, syncs it, renames it to seg.name and syncs the directory. */
async function installSegment(
  fs: WalFs,
  dir: string,
  seg: SegmentInfo,
  prepared: Prepared,
  enc: RecordEncoder,
  head: (enc: RecordEncoder) => void,
): Promise<number> {
  enc.reset();
  head(enc);
  const bytes = enc.bytes();
  writeAllSync(fs, prepared.fd, bytes, 0);
  await fs.fdatasync(prepared.fd);
  await fs.rename(prepared.path, join(dir, seg.name));
  await fs.fsyncDir(dir);
  return bytes.length;
}

/**
 * entriesAfterSnapshot picks, from what open() without a snapshot returned,
 * the entries after the snapshot the caller loaded (one pass over the log
 * instead of reopening with opts.snapshot). Throws WalSnapshotNotFoundError
 * when the marker is not among markers or the entries do not continue right
 * after it.
 */
export function entriesAfterSnapshot(
  r: { readonly entries: readonly raftpb.Entry[]; readonly snapshots: readonly WalSnapshotMarker[] },
  snapshot: WalSnapshotMarker,
): raftpb.Entry[] {
  if (snapshot.index > 0 && !r.snapshots.some((m) => sameMarker(m, snapshot))) {
    throw new WalSnapshotNotFoundError(snapshot.index, snapshot.term, 'no such marker in the wal');
  }
  const start = r.entries.findIndex((e) => e.index > snapshot.index);
  const after = start < 0 ? [] : r.entries.slice(start);
  const first = after[0];
  if (first !== undefined && first.index !== snapshot.index + 1) {
    throw new WalSnapshotNotFoundError(snapshot.index, snapshot.term, `the wal continues at index ${first.index}, not right after it (a newer snapshot is needed)`);
  }
  return after;
}

/**
 * Cuts a torn tail off (zeroing what followed it), pre-allocates the tail
 * segment up to segmentBytes, and syncs it. The sync is unconditional: what
 * open() read may have come from the page cache of a process that was killed
 * before its fsync, and the records appended next will claim (syncedBytes)
 * that everything before them is on disk.
 */
async function repairTail(
  fd: number,
  file: string,
  tail: { end: number; size: number; torn: string | undefined },
  settings: Settings,
): Promise<void> {
  let size = tail.size;
  if (tail.torn !== undefined) {
    settings.logger.warn('wal: cut off a torn tail', { file, offset: tail.end, reason: tail.torn, bytes: size - tail.end });
    settings.fs.ftruncate(fd, tail.end);
    size = tail.end;
  }
  await reserveSpace(fd, size, settings);
  await settings.fs.fsync(fd);
}
