/**
 * mvcc: etcd's multi-version key-value store over the backend.
 *
 * Promises:
 * - Revisions as etcd's: the store starts at revision 1; each write
 *   transaction that changes something gets the next revision, each change
 *   in it a sub revision; create/mod revision and version per key, version 0
 *   after a delete, tombstones.
 * - On disk: the `key` bucket, key = 8-byte BE main + '_' + 8-byte BE sub
 *   (+ 't' for a tombstone), value = mvccpb.KeyValue (a tombstone's holds only
 *   the key), exactly etcd 3.4's layout, so HashKV equals etcd's for the same
 *   history. Compaction progress in meta (scheduledCompactRev,
 *   finishedCompactRev).
 * - Requests (kv-requests.ts) with etcd 3.4's semantics, and the checks etcd
 *   makes before proposing (validate.ts); errors are KvError with a stable code
 *   and etcd's message.
 * - Compaction removes history in batches between writes and resumes after
 *   a crash; HashKV follows etcd's HashByRev.
 * - A Range can be answered as encoded bytes (rangeEncoded): the stored
 *   KeyValues copied as they are, a large range read in slices between
 *   other work at a revision fixed when it opens (KvStore.openRead; a
 *   compaction past it waits).
 * - The index is rebuilt from the key bucket at open.
 * - Each revision applied since the store opened has a hash of what its
 *   write transaction put in the key bucket; the newest 64k are kept
 *   (KvStore.revisionHashes, revision-hashes.ts), for members to compare.
 * - The watchable store (watchable-store.ts): watchers per stream, synced /
 *   unsynced / victim, every buffer bounded; pull-based WatchStream.
 *
 * Wiring, for the server: open Schema, let the lessor load its leases, then
 * KvStore.open({ schema, leases: lessor-adapter, timers }) (it re-attaches
 * leased keys), then new WatchableStore(kv, { timers }). The lessor's
 * RangeDeleter is kv.deleteKeys. Each raft entry is applied inside ONE
 * `schema.backend.write(() => { ...requests...; schema.setConsistentIndex(...) })`.
 * After installing a snapshot file: open a new Schema + KvStore and call
 * watchable.restore(newKv).
 */
export { KvError, isKvError, kvErrorCodes, type KvErrorCode } from './errors.js';
export {
  EncodedRead,
  KvStore,
  KvWriteTxn,
  compactionBatchLimitDefault,
  compactionSleepMsDefault,
  spanOf,
  type HashKvResult,
  type KvStoreOptions,
  type LeaseAttacher,
  type LeaseChecker,
  type LeaseHooks,
  type RangeOptions,
  type RangeResult,
  type TxnObserver,
} from './kv-store.js';
export {
  compactionRequest,
  deleteRangeRequest,
  hashKvRequest,
  putRequest,
  rangeEncoded,
  rangeRequest,
  rangeSliceDefault,
  type RangeSlice,
  txnRequest,
} from './kv-requests.js';
export { checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from './validate.js';
export { type Revision } from './revision.js';
export {
  WatchStream,
  WatchableStore,
  streamResponsesMaxDefault,
  syncIntervalMsDefault,
  syncReadEntriesMaxDefault,
  watchersPerSyncMaxDefault,
  type WatchRequest,
  type WatchResponse,
  type WatchableStoreOptions,
} from './watchable-store.js';
export { eventBatchRevsMax } from './watcher-group.js';
export { MvccMetrics } from './metrics.js';
export { RevisionHashes, revisionHashesCapacityDefault } from './revision-hashes.js';
