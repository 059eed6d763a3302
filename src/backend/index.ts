/**
 * backend: the only user of LMDB (the npm `lmdb` package).
 *
 * Promises:
 * - One file at `path` (LMDB, no subdirectory; lock table in `${path}-lock`)
 *   holding the named databases ("buckets") the caller lists; keys and values
 *   are raw bytes, ordered by unsigned byte comparison. LMDB stores each
 *   value with a CRC-32C of its key and value; a read that finds them apart
 *   throws BackendCorruptError (errors.ts) instead of returning the bytes.
 * - Writes go through `write(fn)` scopes. Reads see every write applied so
 *   far, committed to LMDB or not.
 * - Writes are committed in batches (every `batchIntervalMs` = 100 ms, or at
 *   the end of the scope that reaches `batchOpsMax` = 10,000 operations), each
 *   batch as ONE LMDB transaction, and never in the middle of a scope: what a
 *   scope wrote survives a crash entirely or not at all.
 * - `forceCommit()` resolves once everything written before it is durable.
 * - Maintenance: size, sizeInUse, hash (CRC-32C of all buckets), whileViewed
 *   (a consistent read view for another thread), defrag (online compacting
 *   copy + swap), installSnapshotFile.
 * - Timers are injected (`Timers`; `ManualTimers` for tests).
 * - The store under the batches is injected too (`BackendEngine`, LMDB by
 *   default): a simulation runs the same batching over an in-memory engine
 *   with the same atomicity and durability promises (engine.ts).
 * - A read view (LmdbEngine.openReadView): the database as one read
 *   transaction saw it, for another thread of the same process to read
 *   while the backend goes on committing (Backend.whileViewed).
 * - bbolt files (bbolt.ts), the format of etcd's backend and snapshot files:
 *   BboltWriter lays out a new one from buckets and entries given in order
 *   and gives its bytes as a stream, with no file (BboltWriter.stream),
 *   which Debian's bbolt 1.3.6 (etcd 3.4.23, etcdctl snapshot status and
 *   restore) opens, checks and writes to; BboltReader reads one lazily,
 *   etcd's own included. Synchronous I/O: for a worker thread or a CLI.
 */
export {
  Backend,
  Bucket,
  batchIntervalMsDefault,
  batchOpsMaxDefault,
  installSnapshotFile,
  type BackendOptions,
  type Entry,
  type HashIgnore,
  type ReadTx,
  type WriteTx,
} from './backend.js';
export { bytesToKey, keyToBytes } from './bytes-key.js';
export { BackendCorruptError, isBackendCorrupt } from './errors.js';
export type { BackendEngine, EngineBatch, EngineEntry, EngineOpener } from './engine.js';
export { LmdbEngine } from './lmdb-engine.js';
export type { BucketOverlay, OverlayEntry } from './overlay.js';
export { ManualTimers, realTimers, type TimerHandle, type Timers } from './timers.js';
export { BboltFormatError, BboltReader, BboltWriter, bboltDefaultPageSize, type BboltEntry } from './bbolt.js';
