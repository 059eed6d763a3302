/**
 * The store under the backend's write batches: where a batch goes when it is
 * committed, and where reads find what is no longer in memory. Production
 * uses LMDB (lmdb-engine.ts); a simulation passes an in-memory engine with
 * the same guarantees, so that the backend's batching and the state above it
 * run unchanged and a seed fixes when each commit lands.
 *
 * What an engine must guarantee:
 * - commit(batch) applies ALL of the batch or (after a crash) none of it,
 *   and commits land in the order they were started;
 * - once commit's promise resolves, get/range return the batch's writes;
 * - once flushed() resolves, every commit started before it survives a
 *   crash; nothing else is promised to survive.
 */
import type { BucketOverlay } from './overlay.js';

export interface EngineEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  /**
   * CRC-32C of key then value, when the engine computed it to check the
   * record (views() of a backend written with record checksums): a reader
   * that hashes the entry extends its hash with it (crc32cExtend) instead
   * of another pass over the bytes.
   */
  readonly sum?: number | undefined;
}

/** The writes of one commit, per bucket (a value undefined deletes the key). */
export interface EngineBatch {
  readonly buckets: readonly BucketOverlay[];
}

export interface BackendEngine {
  /** The committed value of key in the bucket at position `bucket` of the backend's names. */
  get(bucket: number, key: Uint8Array): Uint8Array | undefined;
  /** As get, but possibly a view of the engine's own memory, valid until its next call: copy what you keep. */
  peek(bucket: number, key: Uint8Array): Uint8Array | undefined;
  /** Committed entries with start <= key < end (end undefined: to the last key), in unsigned byte order. */
  range(bucket: number, start: Uint8Array, end: Uint8Array | undefined): Iterable<EngineEntry>;
  /**
   * The keys range would give, their values neither read nor checked;
   * absent: the backend takes them from range.
   */
  keys?(bucket: number, start: Uint8Array, end: Uint8Array | undefined): Iterable<Uint8Array>;
  /**
   * As range, but each entry's key and value may be views of the engine's
   * memory, valid only until the iteration moves on; absent: range.
   */
  views?(bucket: number, start: Uint8Array, end: Uint8Array | undefined): Iterable<EngineEntry>;
  /** Starts committing the batch as one transaction; resolves once it is readable through get/range. */
  commit(batch: EngineBatch): Promise<void>;
  /** Resolves once every commit started before the call is durable. */
  flushed(): Promise<void>;
  /** Bytes the store occupies (etcd's dbSize). */
  size(): number;
  /** Bytes of it that hold data (etcd's dbSizeInUse). */
  sizeInUse(): number;
  /** Read transactions open on the store now (etcd_mvcc_db_open_read_transactions); absent: none are kept open. */
  openReadTransactions?(): number;
  /** Reads every committed record, checking what the engine can check (LMDB: each record's checksum); throws BackendCorruptError at the first bad one. */
  verify?(): void;
  /** Rewrites the store without its free space; everything committed stays. */
  defrag(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the engine for a backend: the file at path holding the named buckets. */
export type EngineOpener = (path: string, bucketNames: readonly string[]) => BackendEngine;
