/**
 * The multi-version key-value store: the in-memory index over the backend's
 * key bucket. Each write transaction that changes something gets the next
 * revision; every change in it is one key-bucket entry at {rev, sub}.
 * Reads at any revision from the compact revision on are answered from the
 * index plus one backend lookup per returned key.
 */
import { assert, crc32cExtend, crc32cUpdate, failpoint, failpointCorrupts, nopLogger, utf8, type LeaseId, type Logger } from '../base/index.js';
import { BackendCorruptError, bytesToKey, keyToBytes, realTimers, type Bucket, type Backend, type TimerHandle, type Timers } from '../backend/index.js';
import { bytesToMainRevision, isTombstoneBytes, revisionBytesLen, writeRevisionBytes, type Schema } from '../schema/index.js';
import { mvccpb } from '../pb/index.js';
import { KvError } from './errors.js';
import { KeyIndex, type RevisionSink } from './key-index.js';
import { MvccMetrics } from './metrics.js';
import { bytesToRev, revToBytes, RevisionSet, type Revision } from './revision.js';
import { RevisionHashes } from './revision-hashes.js';
import { TreeIndex, type KeySpan } from './tree-index.js';

/** etcd's --experimental-compaction-batch-limit default: revisions deleted per backend batch. */
export const compactionBatchLimitDefault = 1000;
/** etcd's pause between compaction batches, so that writes are not starved. */
export const compactionSleepMsDefault = 10;
/** Keys of the index compacted per slice before yielding. */
export const indexCompactionSliceKeysDefault = 10_000;
/** HashKV's slice: 5000 revisions of 256-byte values hash in about 5 ms. */
export const hashSliceKeysDefault = 5_000;

/** Answers whether a lease exists (etcd's lessor Lookup); the lessor implements it. */
export interface LeaseChecker {
  exists(id: LeaseId): boolean;
}

/**
 * Tells the lessor which keys belong to which lease, with the lessor's
 * signatures (src/lease Lessor.attach/detach). Called inside the write
 * transaction that changes the key: a put with a lease attaches; a put
 * replacing a leased version, and a delete of one, detach from the old lease
 * first. At open, every live key with a lease is attached again.
 */
export interface LeaseAttacher {
  attach(id: LeaseId, keys: readonly Uint8Array[]): void;
  detach(id: LeaseId, keys: readonly Uint8Array[]): void;
}

export type LeaseHooks = LeaseChecker & LeaseAttacher;

/** Told about every write transaction that changed something, as it ends (the watchable store). */
export interface TxnObserver {
  onTxnEnd(rev: number, changes: readonly mvccpb.KeyValue[]): void;
}

export interface KvStoreOptions {
  readonly schema: Schema;
  readonly leases?: LeaseHooks;
  readonly compactionBatchLimit?: number;
  readonly compactionSleepMs?: number;
  readonly indexCompactionSliceKeys?: number;
  /** Index keys, then backend entries, that HashKV visits between turns of the event loop. */
  readonly hashSliceKeys?: number;
  readonly timers?: Timers;
  readonly logger?: Logger;
  /** Shared by the stores a member opens one after another; default: counted, not exported. */
  readonly metrics?: MvccMetrics;
  /**
   * Called when a compaction finds fewer records to remove than the key
   * index dropped: the file hides records (a damaged LMDB page, which no
   * record checksum covers), and the member should repair its backend.
   */
  readonly onCorrupt?: (e: BackendCorruptError) => void;
}

export interface RangeOptions {
  /** 0: no limit. */
  readonly limit?: number;
  /** <= 0: the current revision. */
  readonly rev?: number;
  readonly countOnly?: boolean;
}

export interface RangeResult {
  readonly kvs: mvccpb.KeyValue[];
  /** Keys in the range at the revision, ignoring the limit. */
  readonly count: number;
  /** The store revision the read ran at (the txn's, inside a txn). */
  readonly rev: number;
}

export interface HashKvResult {
  readonly hash: number;
  readonly currentRev: number;
  readonly compactRev: number;
}

/** The keys a request names: range_end empty = one key, "\0" = every key from key on. */
export function spanOf(key: Uint8Array, rangeEnd: Uint8Array): KeySpan {
  const start = bytesToKey(key);
  if (rangeEnd.length === 0) return { start, end: undefined, single: true };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: undefined, single: false };
  return { start, end: bytesToKey(rangeEnd), single: false };
}

const noLeases: LeaseHooks = {
  exists: () => false,
  attach: () => undefined,
  detach: () => undefined,
};

const keyBucketName = utf8('key');

export class KvStore {
  readonly schema: Schema;
  readonly backend: Backend;
  readonly leases: LeaseHooks;
  private readonly keyBucket: Bucket;
  /** The lookup key of readAt, reused: the backend does not keep the keys it is given. */
  private readonly revKeyScratch = new Uint8Array(revisionBytesLen);
  private index = new TreeIndex();
  private readonly compactionBatchLimit: number;
  private readonly compactionSleepMs: number;
  private readonly indexSliceKeys: number;
  private readonly hashSliceKeys: number;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly onCorrupt: ((e: BackendCorruptError) => void) | undefined;
  readonly metrics: MvccMetrics;
  /** The revision of the last write transaction that changed something (1 for a new store). */
  private currentRev = 1;
  /** The revision of the last compaction (-1: never compacted). */
  private compactMainRev = -1;
  private txnOpen = false;
  private compactionChain: Promise<void> = Promise.resolve();
  private compactionTimer: TimerHandle | undefined;
  /** EncodedReads not yet released. */
  private readonly openReads = new Set<EncodedRead>();
  private closed = false;
  observer: TxnObserver | undefined;
  /** The hashes of the revisions applied since the store opened (revision-hashes.ts). */
  readonly revisionHashes: RevisionHashes;

  private constructor(options: KvStoreOptions) {
    this.schema = options.schema;
    this.backend = options.schema.backend;
    this.keyBucket = options.schema.buckets.key;
    this.leases = options.leases ?? noLeases;
    this.compactionBatchLimit = options.compactionBatchLimit ?? compactionBatchLimitDefault;
    this.compactionSleepMs = options.compactionSleepMs ?? compactionSleepMsDefault;
    this.indexSliceKeys = options.indexCompactionSliceKeys ?? indexCompactionSliceKeysDefault;
    this.hashSliceKeys = options.hashSliceKeys ?? hashSliceKeysDefault;
    this.timers = options.timers ?? realTimers;
    this.logger = options.logger ?? nopLogger;
    this.onCorrupt = options.onCorrupt;
    this.metrics = options.metrics ?? new MvccMetrics();
    this.revisionHashes = new RevisionHashes(1);
  }

  /**
   * Opens the store over the schema's backend: rebuilds the index from the
   * key bucket, re-attaches leased keys, and resumes a compaction that a
   * crash interrupted.
   */
  static open(options: KvStoreOptions): KvStore {
    const s = new KvStore(options);
    s.restore();
    return s;
  }

  get rev(): number {
    return this.currentRev;
  }

  /** -1 when never compacted. */
  get compactRev(): number {
    return this.compactMainRev;
  }

  /** Keys in the index, deleted ones included until compaction removes them. */
  get indexedKeys(): number {
    return this.index.size;
  }

  // ---- reads ----

  /** A read at the current revision (or an older one, opts.rev). */
  range(key: Uint8Array, rangeEnd: Uint8Array, opts: RangeOptions = {}): RangeResult {
    return this.rangeAt(spanOf(key, rangeEnd), this.currentRev, opts);
  }

  /** The read of a transaction whose view is at curRev. */
  rangeAt(span: KeySpan, curRev: number, opts: RangeOptions): RangeResult {
    const { rev, wanted } = this.readBounds(curRev, opts);
    // Revisions as (main, sub) pairs: a range over many keys makes no object per key until it reads one.
    const revs: number[] = [];
    const count = this.index.revisionsAt(span, rev, wanted, revs);
    const kvs: mvccpb.KeyValue[] = [];
    for (let i = 0; i < revs.length; i += 2) kvs.push(this.readAt(revs[i] as number, revs[i + 1] as number));
    return { kvs, count, rev: curRev };
  }

  /**
   * A read's revision (opts.rev, or curRev when not given) and how many kvs
   * it returns at most; counts the read. Throws for a revision past curRev or
   * below the compact revision.
   */
  private readBounds(curRev: number, opts: RangeOptions): { rev: number; wanted: number } {
    this.metrics.ranges.inc();
    let rev = opts.rev ?? 0;
    if (rev > curRev) throw new KvError('future-rev');
    if (rev <= 0) rev = curRev;
    if (rev < this.compactMainRev) throw new KvError('compacted');
    const wanted = opts.countOnly === true ? 0 : opts.limit === undefined || opts.limit <= 0 ? Number.MAX_SAFE_INTEGER : opts.limit;
    return { rev, wanted };
  }

  private readAt(main: number, sub: number): mvccpb.KeyValue {
    return mvccpb.KeyValue.decode(this.storedAt(main, sub, false));
  }

  /** The key-bucket entry of revision {main, sub}, an encoded mvccpb.KeyValue (transient: Backend.peek). */
  private storedAt(main: number, sub: number, transient: boolean): Uint8Array {
    const key = this.revKeyScratch;
    writeRevisionBytes(key, main, sub);
    const v = transient ? this.backend.peek(this.keyBucket, key) : this.backend.get(this.keyBucket, key);
    // The index was built from the backend: a revision gone from it is a damaged file (a flipped
    // bit in a key or a page), not a state to serve or to stop the process on.
    if (v === undefined) throw new BackendCorruptError(this.keyBucket.name, Uint8Array.from(key), `revision ${main}.${sub} is in the index but not in the backend`);
    return v;
  }

  /**
   * A read at the current revision (or opts.rev, as range) that walks the
   * index and reads the values in steps of the caller's size, the values in
   * the encoding the backend holds them in: a RangeResponse carries those
   * bytes as they are, and a large read goes on between other work. Until
   * it is released, a compaction past its revision waits before it starts,
   * so that every revision the read names stays in the index and backend.
   */
  openRead(key: Uint8Array, rangeEnd: Uint8Array, opts: RangeOptions = {}): EncodedRead {
    const curRev = this.currentRev;
    const { rev, wanted } = this.readBounds(curRev, opts);
    const read = new EncodedRead(this, spanOf(key, rangeEnd), rev, curRev, wanted);
    this.openReads.add(read);
    return read;
  }

  /** @internal EncodedRead's walk of the index. */
  revisionsSlice(span: KeySpan, atRev: number, limit: number, out: RevisionSink, fromKey: string, keysMax: number): { count: number; next: string | undefined } {
    if (this.closed) throw new Error('mvcc: the store was closed during the read');
    return this.index.revisionsSlice(span, atRev, limit, out, fromKey, keysMax);
  }

  /** @internal EncodedRead's value of one revision. */
  encodingAt(main: number, sub: number): Uint8Array {
    if (this.closed) throw new Error('mvcc: the store was closed during the read');
    return this.storedAt(main, sub, true);
  }

  /** @internal EncodedRead.release. */
  closeRead(read: EncodedRead): void {
    this.openReads.delete(read);
  }

  /** An open read at a revision below rev: a compaction at rev must not remove anything yet. */
  private readBelow(rev: number): boolean {
    for (const read of this.openReads) if (read.atRev < rev) return true;
    return false;
  }

  // ---- writes ----

  /**
   * Runs fn as one write transaction: all its changes get revision rev + 1,
   * which becomes the store revision at the end if anything changed. Runs in
   * a backend write scope (joining the caller's, if one is open).
   */
  write<T>(fn: (txn: KvWriteTxn) => T): T {
    assert(!this.txnOpen, 'mvcc write transactions do not nest');
    assert(!this.closed, 'mvcc store is closed');
    return this.backend.write(() => {
      const txn = new KvWriteTxn(this, this.currentRev);
      this.txnOpen = true;
      let result: T;
      try {
        result = fn(txn);
      } finally {
        this.txnOpen = false;
      }
      if (txn.changes.length > 0) {
        this.currentRev++;
        assert(this.currentRev === txn.beginRev + 1, 'one revision per write transaction');
        this.revisionHashes.push(this.currentRev, txn.hash);
        this.observer?.onTxnEnd(this.currentRev, txn.changes);
      }
      return result;
    });
  }

  /**
   * Deletes the given keys in one write transaction (a revoked lease's keys;
   * src/lease's RangeDeleter). Keys that do not exist are skipped.
   */
  deleteKeys(keys: readonly Uint8Array[]): void {
    const before = this.metrics.calls;
    this.write((txn) => {
      for (const key of keys) txn.deleteRange(key, new Uint8Array(0));
    });
    this.metrics.endRequest(before);
  }

  /** @internal KvWriteTxn's put. */
  putAt(txn: KvWriteTxn, key: Uint8Array, value: Uint8Array, lease: LeaseId): void {
    if (failpointCorrupts('mvccBeforePutValue')) value = flipLastBit(value);
    const rev = txn.beginRev + 1;
    const keyStr = bytesToKey(key);
    const prev = this.index.get(keyStr, rev);
    const idxRev: Revision = { main: rev, sub: txn.changes.length };
    const kv = mvccpb.KeyValue.create({
      key,
      value,
      createRevision: prev === undefined ? rev : prev.at.created,
      modRevision: rev,
      version: (prev === undefined ? 0 : prev.at.version) + 1,
      lease,
    });
    this.putRevision(txn, revToBytes(idxRev), mvccpb.KeyValue.encode(kv));
    const ki = this.index.put(keyStr, idxRev);
    txn.changes.push(kv);
    this.metrics.puts.inc();
    this.metrics.putBytes.inc(key.length + value.length);
    if (prev === undefined) this.metrics.keys.inc();
    // A deleted key has no lease left; a live one detaches from its old lease first.
    if (ki.lease !== 0n) this.leases.detach(ki.lease, [key]);
    if (lease !== 0n) this.leases.attach(lease, [key]);
    ki.lease = lease;
  }

  /** Writes one change of txn to the key bucket, and adds it to the transaction's hash. */
  private putRevision(txn: KvWriteTxn, revKey: Uint8Array, encoded: Uint8Array): void {
    // One pass over the record: its CRC is the backend's checksum of it, and extends the hash.
    const sum = crc32cUpdate(crc32cUpdate(0, revKey), encoded);
    this.backend.put(this.keyBucket, revKey, encoded, sum);
    txn.hash = crc32cExtend(txn.hash, sum, revKey.length + encoded.length);
  }

  /** @internal KvWriteTxn's delete of one existing key. */
  deleteAt(txn: KvWriteTxn, ki: KeyIndex): void {
    const idxRev: Revision = { main: txn.beginRev + 1, sub: txn.changes.length };
    const key = keyToBytes(ki.key);
    const kv = mvccpb.KeyValue.create({ key });
    this.putRevision(txn, revToBytes(idxRev, true), mvccpb.KeyValue.encode(kv));
    assert(ki.tombstone(idxRev), 'mvcc: tombstone of an existing key');
    txn.changes.push(kv);
    this.metrics.keys.dec();
    if (ki.lease !== 0n) this.leases.detach(ki.lease, [key]);
    ki.lease = 0n;
  }

  /** @internal The live keys of a span at rev, for a delete. */
  keysAt(span: KeySpan, rev: number): KeyIndex[] {
    const out: KeyIndex[] = [];
    this.index.visit(span, (ki) => {
      if (ki.existsAt(rev)) out.push(ki);
    });
    return out;
  }

  // ---- compaction ----

  /**
   * Compacts at rev: reads below rev fail from now on, and the history
   * below it is removed from the backend in batches, between writes. The
   * scheduled revision is written in the caller's write scope; the promise
   * resolves when the removal is complete (etcd's "physical" compaction).
   */
  compact(rev: number): Promise<void> {
    assert(!this.closed, 'mvcc store is closed');
    if (rev <= this.compactMainRev) throw new KvError('compacted');
    if (rev > this.currentRev) throw new KvError('future-rev');
    this.compactMainRev = rev;
    this.schema.setScheduledCompactRevision(rev);
    return this.scheduleCompaction(rev);
  }

  private scheduleCompaction(rev: number): Promise<void> {
    const job = this.compactionChain.then(() => this.runCompaction(rev));
    this.compactionChain = job.catch(() => undefined);
    return job;
  }

  private async runCompaction(rev: number): Promise<void> {
    // Reads opened before the compaction at a lower revision need what it removes: let them end.
    // (A read opened since then is at rev or above, which the compaction leaves as it is.)
    while (this.readBelow(rev)) {
      await this.pause(this.compactionSleepMs);
      if (this.closed) return;
    }
    const startedMs = performance.now();
    const available = new RevisionSet();
    const counts = { dropped: 0 };
    for (let from: string | undefined = ''; from !== undefined; ) {
      if (this.closed) return;
      const sliceStartMs = performance.now();
      from = this.index.compactSlice(rev, available, from, this.indexSliceKeys, counts);
      this.metrics.indexCompactionPauseMs.observe(performance.now() - sliceStartMs);
      if (from !== undefined) await this.pause(0);
    }
    const end = revToBytes({ main: rev + 1, sub: 0 });
    let last = revToBytes({ main: 0, sub: 0 });
    let deleted = 0;
    for (;;) {
      if (this.closed) return;
      assert(!this.backend.inWrite, 'compaction batches run between writes');
      failpoint('compactBeforeBatch');
      const batchStartMs = performance.now();
      const deletedBefore = deleted;
      const done = this.backend.write((tx) => {
        const keys = tx.keys(this.keyBucket, last, end, this.compactionBatchLimit);
        for (const key of keys) {
          if (!available.hasKey(key)) {
            tx.delete(this.keyBucket, key);
            deleted++;
          }
        }
        if (keys.length < this.compactionBatchLimit) {
          this.schema.setFinishedCompactRevision(rev);
          return true;
        }
        const r = bytesToRev(keys[keys.length - 1] as Uint8Array);
        last = revToBytes({ main: r.main, sub: r.sub + 1 });
        return false;
      });
      this.metrics.dbCompactionKeys.inc(deleted - deletedBefore);
      // As etcd, a pause is observed after a batch that more follow, not after the last.
      if (!done) this.metrics.dbCompactionPauseMs.observe(performance.now() - batchStartMs);
      if (done) {
        failpoint('compactAfterFinish');
        break;
      }
      failpoint('compactAfterBatch');
      await this.pause(this.compactionSleepMs);
    }
    this.metrics.dbCompactionTotalMs.observe(performance.now() - startedMs);
    this.logger.info('finished scheduled compaction', { compactRevision: rev, deletedRevisions: deleted, tookMs: Math.round(performance.now() - startedMs) });
    // Each revision the index dropped is one record of the file: fewer found means the file's
    // seeks passed over some, which only damage to LMDB's own pages does (the records it hides
    // would outlive the compaction, and a snapshot's walk of the file could still meet them).
    if (deleted < counts.dropped) {
      const e = new BackendCorruptError('key', last, `compaction at revision ${rev} found ${deleted} of the ${counts.dropped} records it removes`);
      this.logger.error('compaction found records missing from the backend', { compactRevision: rev, deleted, dropped: counts.dropped });
      this.onCorrupt?.(e);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.compactionTimer = this.timers.setTimeout(() => {
        this.compactionTimer = undefined;
        resolve();
      }, ms);
    });
  }

  // ---- hash ----

  /**
   * etcd's HashByRev: CRC-32C of "key" and then of each key-bucket entry
   * (key bytes, value bytes) with revision <= rev (0: the current one),
   * skipping revisions at or below the compact revision that a compaction
   * at rev would not keep. Equal histories give equal hashes, across
   * members and against etcd itself.
   */
  async hashByRev(rev: number): Promise<HashKvResult> {
    const startedMs = performance.now();
    for (;;) {
      const result = await this.hashOnce(rev);
      if (result !== undefined) {
        this.metrics.hashRevSeconds.observe((performance.now() - startedMs) / 1000);
        return result;
      }
    }
  }

  /**
   * One pass of hashByRev, in slices with a turn of the event loop between
   * them: a store of a million revisions takes seconds to hash, and a
   * member that stops its event loop that long misses its heartbeats. Writes
   * in between only add revisions above the hashed one. A compaction begun
   * in between changes which old revisions count: the pass gives up
   * (undefined) and the caller starts over with the new compact revision.
   * The physical removal of the compaction under way does not matter: the
   * revisions it removes are ones the hash skips.
   */
  private async hashOnce(rev: number): Promise<HashKvResult | undefined> {
    const compactRev = this.compactMainRev;
    const currentRev = this.currentRev;
    if (rev > 0 && rev <= compactRev) throw new KvError('compacted');
    if (rev > 0 && rev > currentRev) throw new KvError('future-rev');
    const hashRev = rev === 0 ? currentRev : rev;
    let crc = crc32cUpdate(0, keyBucketName);
    // As etcd, a negative revision hashes no entry at all.
    if (hashRev < 0) return { hash: crc, currentRev, compactRev };
    const moved = async (): Promise<boolean> => {
      await new Promise<void>((resolve) => this.timers.setTimeout(resolve, 0));
      if (this.closed) throw new Error('mvcc: the store was closed during HashKV');
      return this.compactMainRev !== compactRev;
    };
    // Only revisions at or below the compact revision are filtered (none below revision 1).
    const keep = new RevisionSet();
    const collectKeep = async (atRev: number): Promise<boolean> => {
      for (let from: string | undefined = ''; from !== undefined; ) {
        from = this.index.keepSlice(atRev, keep, from, this.hashSliceKeys);
        if (from !== undefined && (await moved())) return false;
      }
      return true;
    };
    if (compactRev > 0) {
      if (!(await collectKeep(hashRev))) return undefined;
      // etcd filters with that set only when it is not empty; when it is, it
      // hashes every entry its compaction left, which are the ones a keep at
      // the compact revision names. Asking for them here makes the hash the
      // same while the compaction is still removing entries, and leaves out
      // the tombstone at the compact revision that this store keeps and
      // etcd 3.4.23 removed.
      if (keep.size === 0 && !(await collectKeep(compactRev))) return undefined;
    }
    const end = revToBytes({ main: hashRev + 1, sub: 0 });
    for (let start: Uint8Array | undefined = new Uint8Array(0); start !== undefined; ) {
      let visited = 0;
      let from: Uint8Array | undefined;
      // Views of the backend's memory: each entry is hashed and let go.
      this.backend.forEachView(this.keyBucket, start, end, (key, value, sum) => {
        if (visited++ === this.hashSliceKeys) {
          from = Uint8Array.from(key);
          return false;
        }
        if (compactRev > 0 && bytesToMainRevision(key) <= compactRev && !keep.hasKey(key)) return true;
        // A committed record's checksum, just checked, is the CRC of these same bytes.
        crc = sum === undefined ? crc32cUpdate(crc32cUpdate(crc, key), value) : crc32cExtend(crc, sum, key.length + value.length);
        return true;
      });
      start = from;
      if (start !== undefined && (await moved())) return undefined;
    }
    return { hash: crc, currentRev, compactRev };
  }

  // ---- open / close ----

  private restore(): void {
    const { scheduled, finished } = this.schema.compactRevisions();
    this.compactMainRev = finished;
    const keys = new Map<string, KeyIndex>();
    let lastRev = 1;
    // Views of the backend's memory: what is kept is decoded out of them (numbers, the key as a string).
    this.backend.forEachView(this.keyBucket, new Uint8Array(0), undefined, (k, v) => {
      const rev = bytesToRev(k);
      const kv = mvccpb.KeyValue.decode(v);
      const keyStr = bytesToKey(kv.key);
      const tomb = isTombstoneBytes(k);
      lastRev = rev.main;
      const ki = keys.get(keyStr);
      if (ki !== undefined) {
        if (tomb) ki.tombstone(rev);
        else ki.put(rev);
        ki.lease = tomb ? 0n : kv.lease;
      } else {
        // Compaction removed the earlier versions: the surviving one says where the generation began.
        const fresh = new KeyIndex(keyStr);
        // A tombstone alone survives a compaction at its revision; the next compaction must find it (etcd #19179).
        if (tomb) fresh.restoreTombstone(rev);
        else {
          fresh.restore(kv.createRevision, rev, kv.version);
          fresh.lease = kv.lease;
        }
        keys.set(keyStr, fresh);
      }
    });
    this.index = new TreeIndex(keys);
    // Compaction may have removed every revision up to the compact revision.
    this.currentRev = Math.max(lastRev, this.compactMainRev);
    this.revisionHashes.reset(this.currentRev);
    let live = 0;
    this.index.visit({ start: '', end: undefined, single: false }, (ki) => {
      if (ki.get(this.currentRev) !== undefined) live++;
    });
    this.metrics.keys.set(live);
    this.reattachLeases();
    // As etcd, a scheduled compaction at revision 0 is not resumed (it has nothing to remove).
    if (scheduled > 0 && scheduled > this.compactMainRev) {
      this.logger.info('resume scheduled compaction', { scheduledCompactRevision: scheduled });
      this.compactMainRev = scheduled;
      void this.scheduleCompaction(scheduled);
    }
  }

  private reattachLeases(): void {
    const byLease = new Map<LeaseId, Uint8Array[]>();
    this.index.visit({ start: '', end: undefined, single: false }, (ki) => {
      if (ki.lease === 0n) return;
      let keys = byLease.get(ki.lease);
      if (keys === undefined) byLease.set(ki.lease, (keys = []));
      keys.push(keyToBytes(ki.key));
    });
    for (const [lease, keys] of byLease) this.leases.attach(lease, keys);
  }

  /** Stops the compaction job (a scheduled compaction resumes at the next open); the backend stays open. */
  close(): void {
    this.closed = true;
    if (this.compactionTimer !== undefined) this.timers.clearTimeout(this.compactionTimer);
  }

  /** Resolves when every compaction scheduled so far has finished (or stopped at close). */
  compactionsDone(): Promise<void> {
    return this.compactionChain;
  }
}

/** Numbers (two per revision) per chunk of a RevisionList. */
const revisionChunkNumbers = 8192;

/**
 * (main, sub) pairs in chunks of a bounded size: a list of a million grows
 * without copying what it holds (a number[] that size copies megabytes at
 * each growth, tens of ms at once), and a list of one costs one small array.
 */
class RevisionList implements RevisionSink {
  private readonly chunks: number[][] = [[]];
  length = 0;

  push(main: number, sub: number): void {
    let chunk = this.chunks[this.chunks.length - 1] as number[];
    if (chunk.length === revisionChunkNumbers) this.chunks.push((chunk = []));
    chunk.push(main, sub);
    this.length++;
  }

  main(i: number): number {
    const at = 2 * i;
    return (this.chunks[Math.floor(at / revisionChunkNumbers)] as number[])[at % revisionChunkNumbers] as number;
  }

  sub(i: number): number {
    const at = 2 * i + 1;
    return (this.chunks[Math.floor(at / revisionChunkNumbers)] as number[])[at % revisionChunkNumbers] as number;
  }
}

/** See KvStore.openRead. */
export class EncodedRead {
  /** The revision of each key to read, in key order. */
  private readonly revs = new RevisionList();
  /** Where the index walk goes on; undefined once it is done. */
  private from: string | undefined;
  private counted = 0;
  private released = false;

  /** @internal */
  constructor(
    private readonly store: KvStore,
    private readonly span: KeySpan,
    /** The revision the read sees. */
    readonly atRev: number,
    /** The store revision when it opened (a response header's). */
    readonly rev: number,
    /** Keys whose values are read, at most. */
    private readonly wanted: number,
  ) {
    this.from = span.start;
  }

  /** Walks at most keysMax more keys of the index; true once the walk is done. */
  scan(keysMax: number): boolean {
    assert(!this.released, 'mvcc: read after release');
    if (this.from === undefined) return true;
    const { count, next } = this.store.revisionsSlice(this.span, this.atRev, this.wanted - this.length, this.revs, this.from, keysMax);
    this.counted += count;
    this.from = next;
    return next === undefined;
  }

  /** Keys in the range at atRev, ignoring the limit (once scan is done). */
  get count(): number {
    return this.counted;
  }

  /** Keys to read: the count up to the limit (once scan is done). */
  get length(): number {
    return this.revs.length;
  }

  /**
   * The encoded mvccpb.KeyValue of the i-th key, in key order; possibly a
   * view of the backend's memory, valid until the next read (Backend.peek).
   */
  encoding(i: number): Uint8Array {
    assert(!this.released, 'mvcc: read after release');
    return this.store.encodingAt(this.revs.main(i), this.revs.sub(i));
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.store.closeRead(this);
  }
}

/** A copy of value with its last bit flipped (an empty value becomes one zero byte): the corrupt failpoint's change. */
function flipLastBit(value: Uint8Array): Uint8Array {
  if (value.length === 0) return new Uint8Array(1);
  const v = Uint8Array.from(value);
  v[v.length - 1] = (v[v.length - 1] as number) ^ 1;
  return v;
}

/** One write transaction; see KvStore.write. */
export class KvWriteTxn {
  readonly changes: mvccpb.KeyValue[] = [];
  /** CRC-32C of what the transaction wrote to the key bucket so far (RevisionHashes). */
  hash = 0;

  constructor(
    private readonly store: KvStore,
    /** The store revision before the transaction; its changes get beginRev + 1. */
    readonly beginRev: number,
  ) {}

  /** The revision this transaction's reads see: its own changes included. */
  get readRev(): number {
    return this.changes.length > 0 ? this.beginRev + 1 : this.beginRev;
  }

  range(key: Uint8Array, rangeEnd: Uint8Array, opts: RangeOptions = {}): RangeResult {
    return this.store.rangeAt(spanOf(key, rangeEnd), this.readRev, opts);
  }

  /** Puts key = value with lease (0n: none); returns the revision of the change. */
  put(key: Uint8Array, value: Uint8Array, lease: LeaseId): number {
    assert(key.length > 0, 'mvcc: empty key');
    this.store.putAt(this, key, value, lease);
    return this.beginRev + 1;
  }

  /**
   * Deletes every live key in the range; returns how many and the revision
   * (beginRev when nothing changed in the whole transaction so far).
   */
  deleteRange(key: Uint8Array, rangeEnd: Uint8Array): { deleted: number; rev: number } {
    this.store.metrics.deletes.inc();
    const keys = this.store.keysAt(spanOf(key, rangeEnd), this.readRev);
    for (const ki of keys) this.store.deleteAt(this, ki);
    return { deleted: keys.length, rev: this.readRev };
  }
}
