/**
 * wal: the write-ahead log and the snapshot files. Nothing the member
 * acknowledges exists anywhere but here until the backend catches up.
 *
 * ## Contract
 *
 * - `Wal.save(hardState, entries, mustSync)` appends a raft Ready's entries and
 *   hard state as ONE write and, when mustSync, resolves after ONE fdatasync
 *   (group commit). Once it resolves the records survive a crash; a save
 *   with !mustSync is durable only once a later call syncs (or close()).
 * - `Wal.open` returns everything saved, minus at most a torn tail: records
 *   whose save never resolved. Any other damage is refused with
 *   `WalCorruptError` (file, offset, reason): the member does not start on a
 *   log it cannot trust.
 * - One Wal per directory (a lock file, see lock.ts: Node has no flock), one
 *   call at a time (asserted).
 * - Expected failures are typed, with stable codes (walErrorCodes):
 *   WalCorruptError, WalNotFoundError, WalExistsError, WalLockedError,
 *   WalSnapshotNotFoundError, SnapshotCorruptError.
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
 * pwrite at the tail (a page-cache copy), then fdatasynced: a batch of at
 * most inlineSyncBytes (4 KiB) on the calling thread unless the last sync
 * was slow, a larger one on the thread pool so that the event loop keeps
 * running during the sync (see
 * Wal.syncTail and bench/RESULTS.md section 4 for why). When the tail
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
 * ## Measured (src/wal/bench.ts; 2 vCPU EPYC VM, ext4 on virtio, quiet machine)
 *
 * Raw segment file, 320-byte records, one fdatasync per write (syncs/s):
 *
 * | file                        | 1 record/sync | 100 records/sync |
 * | --------------------------- | ------------- | ---------------- |
 * | growing (no preallocation)  | 3.7-6.1k      | 3.4-4.8k         |
 * | ftruncate'd (sparse)        | 7.4-8.3k      | 3.8-4.7k         |
 * | zero-filled                 | 7.4-8.0k      | 5.8-6.9k         |
 * | fallocate(1) (etcd's way)   | 6.9-8.1k      | 4.3-5.1k         |
 *
 * A write into a hole or past the end changes block allocation or size, so
 * its fdatasync also commits the journal; only the zero-filled file avoids
 * that for large batches. Node has no fallocate, and fallocate's unwritten
 * extents need converting on first write anyway. Write call, zero-filled file,
 * 100 records/sync: writeSync + fdatasync on the thread pool 5.8-6.9k;
 * async write + fdatasync 5.4-6.3k; writev of one buffer per record
 * 5.7-6.1k. Hence one encoded buffer, one pwrite (a page-cache copy, µs),
 * then, for a large batch, an async fdatasync during which the event loop
 * runs. A one-entry batch is faster synced inline: the pool's two thread
 * wake-ups cost as much as the sync (1.2k puts/s against 0.7k through the
 * gRPC server, bench/RESULTS.md section 4).
 *
 * Wal.save with 300-byte entries plus a hard state, mustSync, 64 MiB segments:
 *
 * | preallocate | 1 entry/save                   | 100 entries/save back to back (a cut every ~0.7 s)       |
 * | ----------- | ------------------------------ | -------------------------------------------------------- |
 * | 'zero'      | 6.8-7.2k saves/s, p50 127-136 µs | 2.7-3.6k saves/s (0.27-0.36M entries/s), p50 195-240 µs, p99 2.6-3.6 ms |
 * | 'sparse'    | 6.6-7.2k, p50 125-138 µs       | 1.7-2.7k, p50 310-350 µs, p99 0.7-4.4 ms                  |
 * | 'none'      | 5.0-5.5k, p50 174-185 µs       | 2.5-3.1k, p50 290-313 µs, p99 0.6-3.3 ms                  |
 *
 * At a steadier 400 saves/s of 100 entries (a cut every ~5 s): 'zero' p50
 * 260-350 µs, p99 3.0-3.6 ms; 'none' p50 465-590 µs, p99 4.1-6.0 ms. So
 * 'zero' is the default: lowest latency at every batch size; its cost is the
 * background fill (every byte written twice), which can show in the p99
 * when the log is written flat out. A segment whose syncs averaged 128 KiB
 * or more gets a sparse successor instead (values of hundreds of KiB):
 * 256 KiB puts, one member, took 3083-3283 µs of CPU a put so, against
 * 3583-4100 with every segment filled. The event loop is held ~25-30 µs per
 * 1-entry save and ~90-100 µs per 100-entry save (encode, CRC, pwrite).
 * For reference, etcd 3.4 on this machine peaks at ~450 fsyncs/s of ~45
 * puts each (reference/perf-etcd.md).
  *
 * Every file-system call goes through a WalFs (fs.ts): node:fs unless the
 * options pass another, as the whole-member simulation does with its fake
 * disk.
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
export { Snapshotter, type SnapName, type SnapshotterOptions } from './snapshotter.js';
export { nodeWalFs, type WalFs } from './fs.js';
export { DirLock } from './lock.js';
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
