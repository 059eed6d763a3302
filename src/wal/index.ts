/**
 * wal: the write-ahead log and the snapshot files. Nothing the member
 * acknowledges exists anywhere but here until the backend catches up.
 *
 * ## Contract
 *
 * - `Wal.save(hardState, entries, mustSync)` appends a raft Ready's entries and
 *   hard state as ONE write and, when mustSync, resolves after ONE fdatasync
 *   (group commit). Once it resolves the records survive a crash.
 * - `Wal.open` returns everything saved, minus at most a torn tail: records
 *   whose save never resolved. Any other damage is refused with
 *   `WalCorruptError` (file, offset, reason): the member does not start on a
 *   log it cannot trust.
 * - One Wal per directory (a lock file), one call at a time (asserted).
 * - A failed write or fsync rejects and leaves the Wal unusable (every
 *   further call fails an assertion): the member must stop.
 *
 * ## Usage (the server's raft loop)
 *
 * ```ts
 * // Boot. A new member: create() (the returned Wal is ready to use).
 * const wal = await Wal.create(walDir, metadata);
 * // A restarting member: one pass over the log, then pick the snapshot.
 * const r = await Wal.open(walDir);
 * const snap = await snapshotter.loadNewestAvailable(r.snapshots);
 * const entries = entriesAfterSnapshot(r, snap?.metadata ?? { index: 0, term: 0 });
 * // (or: Wal.open(walDir, { snapshot }) when the snapshot is known up front.)
 *
 * // Each Ready: the snap file, then its marker, then entries + hard state.
 * if (ready.snapshot) { await snapshotter.save(ready.snapshot); await wal.saveSnapshot(ready.snapshot.metadata); }
 * await wal.save(ready.hardState, ready.entries, ready.mustSync);
 *
 * // After a local snapshot at index i (snap file and marker saved):
 * await wal.releaseTo(i); await snapshotter.purge(5);
 * ```
 *
 * ## On disk: segments
 *
 * A WAL directory holds segment files `<seq>-<index>.wal` (16 lower-case hex
 * digits each): seq counts from 0 without gaps; index is the raft index the
 * segment was started at (last entry index + 1 when cut). Also `LOCK` (pid
 * and start time of the owner; see lock.ts) and at most one `segment.tmp`
 * (the next segment being zero-filled; deleted on open).
 *
 * A segment is a sequence of records, each starting at an 8-byte aligned
 * offset, so a record header never straddles a sector in a way that an
 * aligned length field could be half-written. All integers little-endian:
 *
 * ```
 * off size field
 *  0   4   dataBytes    payload length, padding excluded (<= 256 MiB)
 *  4   1   type         1 crc, 2 metadata, 3 entry, 4 hardState, 5 snapshot
 *  5   1   padBytes     zero bytes after the payload to the next 8-byte boundary
 *  6   2   reserved     0
 *  8   4   syncedBytes  bytes of this segment known fsynced when this record was written
 * 12   4   magic        0x4c415745 ("EWAL")
 * 16   4   prevCrc      the crc of the previous record (the chain)
 * 20   4   crc          CRC-32C seeded with prevCrc over header[0..16) and the payload
 * 24   …   payload, then padBytes zero bytes
 * ```
 *
 * Payloads: crc → empty (its prevCrc carries the chain into the segment);
 * metadata → the opaque bytes given to create(); entry → raftpb.Entry;
 * hardState → raftpb.HardState; snapshot → raftpb.SnapshotMetadata (index,
 * term, conf state) of a snapshot whose snap file was saved first.
 *
 * Every segment begins crc, metadata, hardState (the current one), so that
 * older segments can be deleted without losing either. The first segment
 * also holds a snapshot marker at index 0. Records are chained: each one's
 * prevCrc must equal the crc of the record before it, across segments too.
 * Storing prevCrc (rather than only seeding with it) makes every record
 * checkable on its own, which the torn-tail rule below needs.
 *
 * Writing: a batch is encoded into one reusable buffer, written with one
 * pwrite at the tail (a page-cache copy), then fdatasynced on the thread
 * pool, so the event loop keeps running during the sync. When the tail
 * passes segmentBytes (default 64 MiB) the log is cut: the tail is trimmed to
 * its last record and synced; the next segment, zero-filled in the
 * background as `segment.tmp`, gets its head records, is synced, renamed into
 * place, and the directory is synced.
 *
 * Reading (open): every segment is read and checked. A segment other than the
 * last must consist of valid chained records up to exactly its end. The last
 * may end in zeros (pre-allocation). If it ends in damage at offset X, that
 * is a torn write, cut away and logged, only if (1) no later record valid on
 * its own has syncedBytes > X (one would prove X was fsynced before it was
 * written) and (2) the damage looks like an interrupted write on a file
 * whose unwritten parts read as zeros: no header, a record running past the
 * end of the file, or a whole sector's share of the record still zero.
 * Otherwise open() throws WalCorruptError. Every length is bounds-checked
 * against the file before use; every index, term and commit must be a safe
 * integer; a gap in entry indexes not covered by a snapshot marker is
 * corruption.
 *
 * ## On disk: snap files
 *
 * `<term>-<index>.snap` in the snap directory: a 16-byte header (u32 magic
 * 0x504e5345 "ESNP", u32 CRC-32C of the body, u32 body length, u32 0) and the
 * body, an encoded raftpb.Snapshot. Written as `<name>.tmp`, fsynced,
 * renamed, directory fsynced. A file failing its checks is renamed
 * `<name>.broken` and skipped.
 *
 * ## Measured (2-core VM, ext4 on virtio; src/wal/bench.ts)
 *
 * See the figures in bench.ts's header comment.
 */
export {
  Wal,
  entriesAfterSnapshot,
  segmentBytesDefault,
  walMetrics,
  type Preallocate,
  type WalMetrics,
  type WalOpenOptions,
  type WalOpenResult,
  type WalOptions,
  type WalSnapshotMarker,
} from './wal.js';
export { Snapshotter, type SnapshotterOptions } from './snapshotter.js';
export {
  SnapshotCorruptError,
  WalCorruptError,
  WalError,
  WalExistsError,
  WalLockedError,
  WalNotFoundError,
  WalSnapshotNotFoundError,
  walErrorCodes,
  type WalErrorCode,
} from './errors.js';
