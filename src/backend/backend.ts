/**
 * The LMDB backend: one LMDB environment in one file, a fixed set of named
 * databases ("buckets"), one write batch at a time.
 *
 * Writes happen inside `write(fn)` scopes. They land in an in-memory batch
 * (overlay.ts) that every read consults first, so a read sees each write the
 * moment it is applied. The batch is committed to LMDB as ONE LMDB
 * transaction every `batchIntervalMs`, or at the end of the scope that brings
 * it to `batchOpsMax` operations, whichever comes first (etcd's backend
 * batching). A commit only ever happens between top-level scopes: what one
 * scope writes is never split across two LMDB transactions, which is what
 * lets a caller write its data and its applied index in one scope and know
 * that a crash keeps both or neither.
 *
 * Commits go to the engine (engine.ts: LMDB by default, on lmdb's write
 * thread); the batch stays readable in memory until its commit has landed. `forceCommit()` resolves once everything
 * written before the call is durable on disk.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { assert, crc32cUpdate, failpoint, nopLogger, utf8, type Logger } from '../base/index.js';
import { bytesToKey } from './bytes-key.js';
import { isBackendCorrupt } from './errors.js';
import type { BackendEngine, EngineEntry, EngineOpener } from './engine.js';
import { LmdbEngine, fsyncPath } from './lmdb-engine.js';
import { Batch, mergeOverlays, type BucketOverlay, type OverlayEntry } from './overlay.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

/** etcd's --backend-batch-interval default. */
export const batchIntervalMsDefault = 100;
/** etcd's --backend-batch-limit default. */
export const batchOpsMaxDefault = 10_000;

export interface BackendOptions {
  /** The database file. LMDB keeps its lock table beside it in `${path}-lock`. */
  readonly path: string;
  /** Every bucket the caller uses (schema names them all); created if missing. */
  readonly bucketNames: readonly string[];
  /** Commit the batch at most this long after its first write. */
  readonly batchIntervalMs?: number;
  /** ... or once it holds this many operations (checked at the end of a top-level scope). */
  readonly batchOpsMax?: number;
  readonly timers?: Timers;
  /** Never fsync. Only for tests and CPU benchmarks: a machine crash may lose or corrupt data. */
  readonly noSync?: boolean;
  readonly logger?: Logger;
  /** The store under the batches; default LMDB at `path`. */
  readonly engine?: EngineOpener;
}

/** A handle on one named database, from Backend.bucket(). */
export class Bucket {
  constructor(
    readonly name: string,
    /** Position in BackendOptions.bucketNames. */
    readonly index: number,
  ) {}
}

export interface Entry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * Reads. Every read sees every write applied so far, committed or not.
 * Returned arrays belong to the backend or to the writer: never modify them.
 */
export interface ReadTx {
  get(bucket: Bucket, key: Uint8Array): Uint8Array | undefined;
  /**
   * Calls fn for each entry with start <= key < end (end undefined: to the
   * last key), in key order, until fn returns false.
   */
  forEach(bucket: Bucket, start: Uint8Array, end: Uint8Array | undefined, fn: (key: Uint8Array, value: Uint8Array) => boolean | void): void;
  /** The entries forEach would visit, at most limit of them. */
  range(bucket: Bucket, start: Uint8Array, end: Uint8Array | undefined, limit?: number): Entry[];
  /** Their keys alone: committed values are not read. */
  keys(bucket: Bucket, start: Uint8Array, end: Uint8Array | undefined, limit?: number): Uint8Array[];
}

/** Writes, inside Backend.write. The backend keeps the arrays passed in: never modify them afterwards. */
export interface WriteTx extends ReadTx {
  /**
   * sum, when given, must be crc32cUpdate(crc32c(key), value): a caller that
   * hashed the record already spares the commit another pass over it (the
   * stored record's checksum is that CRC; a wrong one makes the record read
   * as corrupt).
   */
  put(bucket: Bucket, key: Uint8Array, value: Uint8Array, sum?: number): void;
  delete(bucket: Bucket, key: Uint8Array): void;
}

/** A (bucket, key) pair that Backend.hash skips. */
export interface HashIgnore {
  readonly bucket: string;
  readonly key: Uint8Array;
}

const emptyKey = new Uint8Array(0);

function* map<T, U>(items: Iterable<T>, f: (t: T) => U): Generator<U> {
  for (const t of items) yield f(t);
}

export class Backend implements WriteTx {
  readonly path: string;
  private readonly names: readonly string[];
  private readonly buckets: Bucket[];
  private readonly batchIntervalMs: number;
  private readonly batchOpsMax: number;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly engine: BackendEngine;
  /** The batch being filled. */
  private pending: Batch;
  /** Batches handed to the engine whose commit has not landed yet, oldest first. */
  private readonly inflight: Batch[] = [];
  private lastCommit: Promise<void> = Promise.resolve();
  private commitTimer: TimerHandle | undefined;
  /** Depth of nested write scopes; commits happen only at depth 0. */
  private depth = 0;
  /** Settles when the last view-taking or defrag asked for has (oneAtATime); never rejects. */
  private maintenance: Promise<void> = Promise.resolve();
  /** View-takings and defrags asked for and not yet finished. */
  private maintenanceRunning = 0;
  /** Read views open on the file (whileViewed), which a defrag must not swap under them. */
  private views = 0;
  /** Called when the last view closes. */
  private viewWaiters: (() => void)[] = [];
  /** While > 0 (a defrag, a view being taken) batches are held in memory instead of committed. */
  private pauses = 0;
  private resumed: Promise<void> = Promise.resolve();
  private resume: (() => void) | undefined;
  /** Set once a scope failed half-way or LMDB failed: nothing is committed any more. */
  private failure: Error | undefined;
  private closed = false;
  /** Told how long each batch commit took, from handing it to LMDB until it landed (metrics). */
  onCommit: ((seconds: number) => void) | undefined;

  private constructor(options: BackendOptions) {
    this.path = options.path;
    this.names = [...options.bucketNames];
    assert(new Set(this.names).size === this.names.length, 'bucket names must be distinct');
    this.buckets = this.names.map((name, i) => new Bucket(name, i));
    this.batchIntervalMs = options.batchIntervalMs ?? batchIntervalMsDefault;
    this.batchOpsMax = options.batchOpsMax ?? batchOpsMaxDefault;
    assert(this.batchIntervalMs >= 0 && this.batchOpsMax >= 1, 'backend batch bounds must be positive');
    this.timers = options.timers ?? realTimers;
    this.logger = options.logger ?? nopLogger;
    const noSync = options.noSync ?? false;
    const logger = this.logger;
    const openEngine: EngineOpener = options.engine ?? ((path, names) => LmdbEngine.open(path, names, noSync, logger));
    this.engine = openEngine(this.path, this.names);
    this.pending = new Batch(this.names.length);
  }

  static open(options: BackendOptions): Backend {
    return new Backend(options);
  }

  bucket(name: string): Bucket {
    const i = this.names.indexOf(name);
    assert(i >= 0, `backend: unknown bucket ${name}`);
    return this.buckets[i] as Bucket;
  }

  // ---- writes ----

  /**
   * Runs fn with the write transaction. Scopes nest (an inner scope is part
   * of the outer one). fn must be synchronous. If fn throws after writing,
   * the backend refuses all further commits: a half-applied scope must
   * never reach disk.
   */
  write<T>(fn: (tx: WriteTx) => T): T {
    this.checkOpen();
    const opsBefore = this.pending.ops;
    this.depth++;
    let result: T;
    try {
      result = fn(this);
    } catch (e) {
      if (this.pending.ops !== opsBefore) this.failure ??= asError(e);
      throw e;
    } finally {
      this.depth--;
    }
    assert(!(result instanceof Promise), 'backend write scopes are synchronous');
    if (this.depth === 0 && this.pending.ops >= this.batchOpsMax) this.commitInBackground();
    return result;
  }

  /** True inside a write scope. */
  get inWrite(): boolean {
    return this.depth > 0;
  }

  put(bucket: Bucket, key: Uint8Array, value: Uint8Array, sum?: number): void {
    this.record(bucket, key, value, sum);
  }

  delete(bucket: Bucket, key: Uint8Array): void {
    this.record(bucket, key, undefined, undefined);
  }

  private record(bucket: Bucket, key: Uint8Array, value: Uint8Array | undefined, sum: number | undefined): void {
    assert(this.depth > 0, 'backend writes happen inside write()');
    assert(key.length > 0, 'LMDB keys are never empty');
    this.pending.bucket(bucket.index).set(key, bytesToKey(key), value, sum);
    if (this.pending.ops++ === 0) this.armTimer();
  }

  // ---- reads ----

  get(bucket: Bucket, key: Uint8Array): Uint8Array | undefined {
    const e = this.overlayEntry(bucket, key);
    return e !== undefined ? e.value : this.engine.get(bucket.index, key);
  }

  /**
   * As get, but a value read from the store may be a view of the engine's
   * memory, valid only until the next read: for a caller that copies it at
   * once (it spares one copy).
   */
  peek(bucket: Bucket, key: Uint8Array): Uint8Array | undefined {
    const e = this.overlayEntry(bucket, key);
    return e !== undefined ? e.value : this.engine.peek(bucket.index, key);
  }

  /** The newest write of key not yet committed (its value undefined for a delete), if any. */
  private overlayEntry(bucket: Bucket, key: Uint8Array): OverlayEntry | undefined {
    this.checkOpen();
    if (this.pending.ops === 0 && this.inflight.length === 0) return undefined;
    const i = bucket.index;
    const keyStr = bytesToKey(key);
    const hit = this.pending.bucket(i).entries.get(keyStr);
    if (hit !== undefined) return hit;
    for (let j = this.inflight.length - 1; j >= 0; j--) {
      const e = (this.inflight[j] as Batch).bucket(i).entries.get(keyStr);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  forEach(
    bucket: Bucket,
    start: Uint8Array,
    end: Uint8Array | undefined,
    fn: (key: Uint8Array, value: Uint8Array) => boolean | void,
  ): void {
    this.checkOpen();
    this.merged(bucket, start, end, this.engine.range(bucket.index, start, end), fn);
  }

  /**
   * As forEach, but key and value may be views valid only until fn returns
   * (copy what you keep): no copy per entry, for passes over many (HashKV).
   * sum, when defined, is the CRC-32C of key then value, computed to check
   * the committed record (EngineEntry.sum); uncommitted entries have none.
   */
  forEachView(bucket: Bucket, start: Uint8Array, end: Uint8Array | undefined, fn: (key: Uint8Array, value: Uint8Array, sum: number | undefined) => boolean | void): void {
    this.checkOpen();
    const engine = this.engine;
    this.merged(bucket, start, end, engine.views === undefined ? engine.range(bucket.index, start, end) : engine.views(bucket.index, start, end), fn);
  }

  /** The keys forEach would visit, at most limit of them, without reading the committed values. */
  keys(bucket: Bucket, start: Uint8Array, end: Uint8Array | undefined, limit = Number.POSITIVE_INFINITY): Uint8Array[] {
    this.checkOpen();
    const out: Uint8Array[] = [];
    if (limit <= 0) return out;
    const engine = this.engine;
    const committed: Iterable<EngineEntry> =
      engine.keys === undefined ? engine.range(bucket.index, start, end) : map(engine.keys(bucket.index, start, end), (key) => ({ key, value: emptyKey }));
    this.merged(bucket, start, end, committed, (key) => {
      out.push(key);
      return out.length < limit;
    });
    return out;
  }

  /** Calls fn for the committed entries with the uncommitted writes over them, in key order, until fn returns false. */
  private merged(
    bucket: Bucket,
    start: Uint8Array,
    end: Uint8Array | undefined,
    committed: Iterable<EngineEntry>,
    fn: (key: Uint8Array, value: Uint8Array, sum: number | undefined) => boolean | void,
  ): void {
    const over = this.overlayRange(bucket.index, start, end);
    if (over.length === 0) {
      for (const { key, value, sum } of committed) {
        if (fn(key, value, sum) === false) return;
      }
      return;
    }
    let i = 0;
    for (const { key, value, sum } of committed) {
      // Overlay entries before this key first.
      while (i < over.length && Buffer.compare((over[i] as OverlayEntry).key, key) < 0) {
        const o = over[i++] as OverlayEntry;
        if (o.value !== undefined && fn(o.key, o.value, undefined) === false) return;
      }
      const o = over[i];
      if (o !== undefined && Buffer.compare(o.key, key) === 0) {
        // The overlay's entry for this very key replaces (or deletes) the committed one.
        i++;
        if (o.value !== undefined && fn(o.key, o.value, undefined) === false) return;
        continue;
      }
      if (fn(key, value, sum) === false) return;
    }
    for (; i < over.length; i++) {
      const o = over[i] as OverlayEntry;
      if (o.value !== undefined && fn(o.key, o.value, undefined) === false) return;
    }
  }

  range(bucket: Bucket, start: Uint8Array, end: Uint8Array | undefined, limit = Number.POSITIVE_INFINITY): Entry[] {
    const out: Entry[] = [];
    if (limit <= 0) return out;
    this.forEach(bucket, start, end, (key, value) => {
      out.push({ key, value });
      return out.length < limit;
    });
    return out;
  }

  private overlayRange(index: number, start: Uint8Array, end: Uint8Array | undefined): OverlayEntry[] {
    if (this.pending.ops === 0 && this.inflight.length === 0) return [];
    const layers: BucketOverlay[] = [];
    for (const b of this.inflight) layers.push(b.bucket(index));
    layers.push(this.pending.bucket(index));
    return mergeOverlays(layers, bytesToKey(start), end === undefined ? undefined : bytesToKey(end));
  }

  // ---- commits ----

  /** Operations applied but not yet handed to LMDB. */
  get pendingOps(): number {
    return this.pending.ops;
  }

  /**
   * Resolves once everything written before the call is committed and
   * flushed to disk. Rejects (and the backend is unusable) if LMDB fails.
   */
  async forceCommit(): Promise<void> {
    this.checkOpen();
    assert(this.depth === 0, 'forceCommit inside a write scope would split it');
    while (this.pauses > 0) await this.resumed;
    await this.commit();
    await this.engine.flushed();
    if (this.failure !== undefined) throw this.failure;
  }

  private armTimer(): void {
    if (this.commitTimer !== undefined) return;
    this.commitTimer = this.timers.setTimeout(() => {
      this.commitTimer = undefined;
      this.commitInBackground();
    }, this.batchIntervalMs);
  }

  /**
   * A commit nobody waits for. A backend whose scope failed on a corrupt
   * record commits nothing more, and says so to forceCommit and close; its
   * owner repairs it (the server replaces it), so that is no crash here. Any
   * other failure still is.
   */
  private commitInBackground(): void {
    this.commit().catch((e: unknown) => {
      if (!isBackendCorrupt(e)) throw e;
    });
  }

  private commit(): Promise<void> {
    assert(this.depth === 0, 'a batch commit never splits a write scope');
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.commitTimer !== undefined) {
      this.timers.clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
    }
    const batch = this.pending;
    if (batch.ops === 0 || this.pauses > 0 || this.closed) return this.lastCommit;
    failpoint('backendBeforeCommit');
    this.pending = new Batch(this.names.length);
    this.inflight.push(batch);
    const startedMs = performance.now();
    const written = this.engine.commit(batch);
    this.lastCommit = written.then(
      () => {
        // LMDB commits in the order batches were handed to it, but the
        // promises of two batches in flight may settle out of that order
        // (seen at a stop: the last batch's before the one before it). This
        // batch landed, so every one before it did too.
        const i = this.inflight.indexOf(batch);
        if (i >= 0) this.inflight.splice(0, i + 1);
        this.onCommit?.((performance.now() - startedMs) / 1000);
        failpoint('backendAfterCommit');
      },
      (e: unknown) => {
        this.failure ??= asError(e);
        this.logger.error('backend commit failed', { error: e });
        throw e;
      },
    );
    return this.lastCommit;
  }

  private pause(): void {
    if (this.pauses++ === 0) this.resumed = new Promise((resolve) => (this.resume = resolve));
  }

  private unpause(): void {
    assert(this.pauses > 0, 'unpause without pause');
    if (--this.pauses > 0) return;
    this.resume?.();
    this.resume = undefined;
    if (this.pending.ops >= this.batchOpsMax) this.commitInBackground();
    else if (this.pending.ops > 0) this.armTimer();
  }

  // ---- maintenance ----

  /** The database file's size in bytes (etcd's dbSize). */
  size(): number {
    this.checkOpen();
    return this.engine.size();
  }

  /** Bytes of the file in use by pages that hold data (etcd's dbSizeInUse); the rest is free pages. */
  sizeInUse(): number {
    this.checkOpen();
    return this.engine.sizeInUse();
  }

  /** Reads every committed record and checks its checksum; throws BackendCorruptError at the first bad one. */
  verify(): void {
    this.checkOpen();
    this.engine.verify?.();
  }

  /** Every bucket, in the byte order of their names (bbolt's order of top-level buckets). */
  bucketsInNameOrder(): Bucket[] {
    return [...this.buckets].sort((a, b) => Buffer.compare(utf8(a.name), utf8(b.name)));
  }

  /**
   * CRC-32C over every bucket in name order: the name, then each key and
   * value in key order, skipping `ignores` (etcd's backend Hash, used by
   * Maintenance.Hash). Sees uncommitted writes like every read.
   */
  hash(ignores: readonly HashIgnore[] = []): number {
    const skip = new Set(ignores.map((g) => `${g.bucket}\u0000${bytesToKey(g.key)}`));
    let crc = 0;
    for (const bucket of this.bucketsInNameOrder()) {
      crc = crc32cUpdate(crc, utf8(bucket.name));
      this.forEach(bucket, emptyKey, undefined, (key, value) => {
        if (skip.size > 0 && skip.has(`${bucket.name}\u0000${bytesToKey(key)}`)) return;
        crc = crc32cUpdate(crc32cUpdate(crc, key), value);
      });
    }
    return crc;
  }

  /**
   * Runs fn, which reads the database through a read view of its own
   * (LmdbEngine.openReadView, typically on a worker thread): everything
   * applied before the call is committed first, and commits are held from
   * then until fn calls `opened` (its view taken), so the view holds exactly
   * that; then they go on, and other views may be taken. No defrag runs until
   * fn settles: it would swap the file under the view. For Maintenance.Snapshot
   * and for a member sending its database to another, which stream it from
   * the view for as long as the receiver takes.
   */
  whileViewed<T>(fn: (opened: () => void) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const taking = this.holdingCommits(async (release) => {
        let taken: () => void = () => undefined;
        const viewTaken = new Promise<void>((r) => (taken = r));
        this.views++;
        // Called from an async function, so that a throw counts as a rejection and the view is let go.
        const viewing = (async (): Promise<T> =>
          fn(() => {
            release();
            taken();
          }))();
        viewing
          .finally(() => {
            taken();
            if (--this.views > 0) return;
            const waiters = this.viewWaiters;
            this.viewWaiters = [];
            for (const w of waiters) w();
          })
          .then(resolve, reject);
        // Other views and defrags wait only until the view is taken (or fn gave up before).
        await viewTaken;
      });
      taking.catch(reject);
    });
  }

  /** Settles when no view is open. */
  private viewsClosed(): Promise<void> {
    if (this.views === 0) return Promise.resolve();
    return new Promise((resolve) => this.viewWaiters.push(resolve));
  }

  /**
   * One at a time with every other view-taking and defrag: commits what was applied,
   * then holds commits (writes go on in memory) while fn runs, or until it
   * calls `release`.
   */
  private holdingCommits<T>(fn: (release: () => void) => Promise<T>): Promise<T> {
    return this.oneAtATime(async () => {
      await this.forceCommit();
      this.pause();
      let held = true;
      const release = (): void => {
        if (!held) return;
        held = false;
        this.unpause();
      };
      try {
        return await fn(release);
      } finally {
        release();
      }
    });
  }

  /**
   * Rewrites the file without its free pages, online: the engine copies
   * every entry into a new file while writes go on into memory, the copy is
   * swapped in, and the held writes are committed to it. A crash at any point
   * leaves either the old file or the new one at `path`, both complete.
   */
  async defrag(): Promise<void> {
    for (;;) {
      await this.viewsClosed();
      // The copy holds everything committed, and nothing committed since: commits are held.
      const done = await this.holdingCommits(async () => {
        // A view taken while this defrag waited for its turn: wait for that one too.
        if (this.views > 0) return false;
        await this.engine.defrag();
        return true;
      });
      if (done) return;
    }
  }

  /**
   * Runs fn once every view-taking or defrag asked for before it has
   * finished. Two defrags at once would share the engine's temporary file and
   * swap the database under each other (two Maintenance.Defragment calls a
   * few ms apart lost committed writes that way), and a view must not be
   * taken on a file that a defrag is closing. A view that waits holds at
   * least what was applied before it was asked for, which is all its callers
   * need.
   */
  private oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    // Started at once when nothing runs, so that a view's commit takes exactly what was applied before the call.
    const run = this.maintenanceRunning === 0 ? fn() : this.maintenance.then(fn);
    this.maintenanceRunning++;
    this.maintenance = run.then(
      () => void this.maintenanceRunning--,
      () => void this.maintenanceRunning--,
    );
    return run;
  }

  /** LMDB reader slots in use: the read transactions open on the file (etcd_mvcc_db_open_read_transactions). */
  openReadTransactions(): number {
    return this.closed ? 0 : (this.engine.openReadTransactions?.() ?? 0);
  }

  /** Commits what is pending and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    assert(this.depth === 0, 'close inside a write scope');
    while (this.pauses > 0) await this.resumed;
    try {
      await this.commit();
      await this.engine.flushed();
    } finally {
      this.closed = true;
      if (this.commitTimer !== undefined) this.timers.clearTimeout(this.commitTimer);
      await this.engine.close();
    }
  }

  private checkOpen(): void {
    assert(!this.closed, 'backend is closed');
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Replaces the database file at `path` with another backend file (the
 * backend at `path` must be closed). Used to install a snapshot received
 * from the leader or given to a restore command.
 */
export function installSnapshotFile(snapshotPath: string, path: string): void {
  assert(existsSync(snapshotPath), `no snapshot file at ${snapshotPath}`);
  rmSync(`${path}-lock`, { force: true });
  renameSync(snapshotPath, path);
  fsyncPath(dirname(path));
}
