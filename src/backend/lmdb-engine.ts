/**
 * The production engine: one LMDB environment in one file (no
 * subdirectory; its lock table in `${path}-lock`), one named LMDB database
 * per bucket. Commits run on lmdb's write thread; `flushed` follows its
 * fsync.
 *
 * LMDB checksums nothing it stores (nor does etcd's bbolt): a flipped bit in
 * a page is read back as data. So every value is stored with a trailer, the
 * CRC-32C of its key and value, checked at every read from the file; a
 * mismatch throws BackendCorruptError. A file written before trailers
 * existed (no format mark in LMDB's main database) is read unchecked, with a
 * warning; a defrag rewrites it with them.
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { open as openFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { open, type Database, type RootDatabase, type RootDatabaseOptions, type Transaction } from 'lmdb';
import { assert, crc32cUpdate, failpoint, type Logger } from '../base/index.js';
import type { BackendEngine, EngineBatch, EngineEntry } from './engine.js';
import { BackendCorruptError } from './errors.js';
import { isLongStored, longRecord, storedBounds, storedKey, storedKeyBytesMax, storedValue, within } from './long-keys.js';

type Db = Database<Buffer, Uint8Array>;
type Env = RootDatabase<Buffer, Uint8Array>;
/** lmdb's getBinaryFast takes read options too (its types list only the key). */
type PinnedGet = (this: Db, key: Uint8Array, options: { readonly transaction: Transaction }) => Buffer | undefined;

/**
 * A copy of bytes [start, end) of a buffer lmdb reuses (or of a view of its
 * map), in a Buffer from Node's shared pool. lmdb's 'binary' encodings
 * slice instead, which gives every key and value a fresh ArrayBuffer: in a
 * range over many entries that allocation cost more than the iteration
 * (HashKV over 20k revisions spent 40% of its time there).
 */
function pooledCopy(source: Uint8Array, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  // lmdb patches `length` of its reusable buffer: the view gives set() the true bounds.
  out.set(new Uint8Array(source.buffer, source.byteOffset + start, end - start));
  return out;
}

/** Keys as they are, read back as pooled copies (lmdb's documented keyEncoder). */
const keyCodec = {
  writeKey: (key: Uint8Array, target: Uint8Array, start: number): number => {
    target.set(key, start);
    return start + key.length;
  },
  readKey: pooledCopy,
};

/**
 * Values as they are, read back as pooled copies. `decode` is handed lmdb's
 * reusable buffer, valid until the next read: it must copy.
 */
const valueCodec = {
  encode: (value: Uint8Array): Uint8Array => value,
  decode: (bytes: Uint8Array, size: number): Buffer => pooledCopy(bytes, 0, size),
};

/**
 * Keys and values as views of lmdb's reusable buffers (or of its map),
 * valid only until the next read: a transient read view's (openReadView),
 * whose one reader copies what it keeps, spares an allocation per entry.
 */
const transientCodecs = {
  keyEncoder: { writeKey: keyCodec.writeKey, readKey: (source: Uint8Array, start: number, end: number): Uint8Array => new Uint8Array(source.buffer, source.byteOffset + start, end - start) },
  encoder: { encode: valueCodec.encode, decode: (bytes: Uint8Array, size: number): Uint8Array => new Uint8Array(bytes.buffer, bytes.byteOffset, size) },
};

/**
 * The format mark, a key of LMDB's main database (beside the names of the
 * buckets, which LMDB keeps there too): its value says values carry trailers.
 */
const formatKey = Buffer.from('etcd-ts/format');
const formatChecked = Buffer.from('value-crc32c/1');
const trailerBytes = 4;

/** The trailer of a value: CRC-32C of the key, then of the value. */
function trailerOf(key: Uint8Array, value: Uint8Array): number {
  return crc32cUpdate(crc32cUpdate(0, key), value);
}

/** The value as stored: value then its trailer (little-endian). */
function sealed(key: Uint8Array, value: Uint8Array): Buffer {
  return sealedWith(value, trailerOf(key, value));
}

function sealedWith(value: Uint8Array, trailer: number): Buffer {
  const out = Buffer.allocUnsafe(value.length + trailerBytes);
  out.set(value);
  out.writeUInt32LE(trailer, value.length);
  return out;
}

/** Where LMDB's meta page keeps its magic number (after the page header of this LMDB build), and the number. */
const magicOffset = 24;
const lmdbMagic = 0xbeefc0de;

/**
 * Throws BackendCorruptError unless the existing file at path starts as an
 * LMDB file does. LMDB checks the magic itself, but lmdb's open reads the
 * file before that and dies on a foreign one (a bbolt file, junk) with a
 * segmentation fault.
 */
function checkMagic(path: string): void {
  const head = Buffer.alloc(magicOffset + 4);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n < head.length || head.readUInt32LE(magicOffset) !== lmdbMagic) {
    throw new BackendCorruptError('(the file)', new Uint8Array(0), 'not an LMDB database (no LMDB magic number in its first page)');
  }
}

/** LMDB's codes for a file whose structure is damaged: MDB_PAGE_NOTFOUND, MDB_CORRUPTED, MDB_INVALID. */
const damagedCodes = new Set([-30797, -30796, -30793]);

/** e as BackendCorruptError when LMDB found the file's structure damaged; otherwise e. */
function asCorrupt(e: unknown, bucket: string, key: Uint8Array): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' && damagedCodes.has(code) ? new BackendCorruptError(bucket, key, (e as Error).message) : e;
}

interface OpenedEnv {
  env: Env;
  dbs: Db[];
  /** Values carry trailers (the file has the format mark). */
  checked: boolean;
}

function openEnv(path: string, noSync: boolean, names: readonly string[], transient = false): OpenedEnv {
  const fresh = !existsSync(path) || statSync(path).size === 0;
  if (!fresh) checkMagic(path);
  const env = open<Buffer, Uint8Array>({
    path,
    noSubdir: true,
    maxDbs: names.length + 1,
    keyEncoding: 'binary',
    encoding: 'binary',
    noSync,
  });
  // lmdb reads keyEncoder and encoder in openDB too; its types list them only for open().
  const dbOptions: RootDatabaseOptions = transient ? transientCodecs : { keyEncoder: keyCodec, encoder: valueCodec };
  const dbs = names.map((name) => env.openDB<Buffer, Uint8Array>(name, dbOptions));
  if (fresh) env.putSync(formatKey, formatChecked);
  const mark = env.getBinary(formatKey);
  return { env, dbs, checked: mark !== undefined && Buffer.compare(mark, formatChecked) === 0 };
}

interface TreeStats {
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
}

interface EnvStats {
  pageSize: number;
  numReaders: number;
  root: TreeStats;
  free: TreeStats;
}

export class LmdbEngine implements BackendEngine {
  private env: Env;
  private dbs: Db[];
  /** Values carry trailers: written with them, checked when read. */
  private checked: boolean;
  /** The CRC-32C (key, value) of the record opened() checked last: views() hands it on as an entry's sum. */
  private lastSum = 0;
  /** A read view's transaction (openReadView), which every read uses; undefined for the engine that writes. */
  private readonly pinned: { readonly transaction: Transaction } | undefined;
  /** The buckets read through views of lmdb's buffers (views()), opened at their first use. */
  private viewDbs: Db[] | undefined;

  private constructor(
    private readonly path: string,
    private readonly names: readonly string[],
    private readonly noSync: boolean,
    private readonly logger: Logger,
    readView: boolean,
    transient = false,
  ) {
    // An interrupted defrag leaves its copy behind; the file at `path` is intact. A read
    // view opens the file of a live engine, whose defrag may be under way.
    if (!readView) for (const stale of [`${path}.defrag`, `${path}.defrag-lock`, retiredPath(path)]) rmSync(stale, { force: true });
    let opened: OpenedEnv;
    try {
      opened = openEnv(path, noSync, names, transient);
    } catch (e) {
      throw asCorrupt(e, '(the file)', new Uint8Array(0));
    }
    const { env, dbs, checked } = opened;
    this.env = env;
    this.dbs = dbs;
    if (transient) this.viewDbs = dbs;
    this.checked = checked;
    this.pinned = readView ? { transaction: env.useReadTransaction() } : undefined;
    if (!checked && !readView) logger.warn('backend written without record checksums: reads are not checked until a defrag rewrites it', { path });
  }

  /** The value of a stored record, its trailer checked (lastSum) and cut off. */
  private opened(bucket: number, key: Uint8Array, stored: Uint8Array): Uint8Array {
    if (!this.checked) return stored;
    const n = stored.length - trailerBytes;
    if (n < 0) throw new BackendCorruptError(this.names[bucket] ?? String(bucket), key, `a value of ${stored.length} bytes has no room for its checksum`);
    const value = stored.subarray(0, n);
    const want = (stored[n] as number) | ((stored[n + 1] as number) << 8) | ((stored[n + 2] as number) << 16) | ((stored[n + 3] as number) << 24);
    const sum = trailerOf(key, value);
    if ((sum | 0) !== want) throw new BackendCorruptError(this.names[bucket] ?? String(bucket), key, 'checksum mismatch');
    this.lastSum = sum;
    return value;
  }

  /** What commit and defrag store for a value. */
  private toStore(key: Uint8Array, value: Uint8Array): Uint8Array {
    return this.checked ? sealed(key, value) : value;
  }

  static open(path: string, names: readonly string[], noSync: boolean, logger: Logger): LmdbEngine {
    return new LmdbEngine(path, names, noSync, logger, false);
  }

  /**
   * A read-only engine over the file of an engine open elsewhere in this
   * process (another thread; lmdb shares one LMDB environment per file in a
   * process, so the lock table is not reset under the writer). Every read
   * goes through one read transaction taken here: the view shows what was
   * committed when it was opened, whatever is committed after. It pins the
   * pages of that state until close, as any LMDB reader does. Writes,
   * copies and defrags are refused. `transient`: the keys and values a
   * range yields are views valid only until the next read, for a reader
   * that goes through entries one by one and copies what it keeps
   * (Backend.forEach, never Backend.range, which keeps them all).
   */
  static openReadView(path: string, names: readonly string[], logger: Logger, options?: { transient?: boolean }): LmdbEngine {
    assert(existsSync(path), `no backend file at ${path} to view`);
    return new LmdbEngine(path, names, false, logger, true, options?.transient === true);
  }

  private refuseInView(what: string): void {
    if (this.pinned !== undefined) throw new Error(`a read view of the backend does not ${what}`);
  }

  get(bucket: number, key: Uint8Array): Uint8Array | undefined {
    // Copied out as ranges are (pooledCopy): lmdb's get() would copy into a
    // fresh ArrayBuffer, which costs more than the lookup.
    const v = this.peek(bucket, key);
    return v === undefined ? undefined : pooledCopy(v, 0, v.length);
  }

  /** lmdb's own buffer (or a view of the map), valid until the next read. */
  peek(bucket: number, key: Uint8Array): Uint8Array | undefined {
    const sk = storedKey(key);
    const value = this.peekStored(bucket, sk, key);
    if (value === undefined || sk === key) return value;
    const r = this.longRecord(bucket, sk, value);
    return Buffer.compare(r.key, key) === 0 ? r.value : undefined;
  }

  /** The checked value stored under the stored key sk (key: the caller's, for errors), as peek gives it. */
  private peekStored(bucket: number, sk: Uint8Array, key: Uint8Array): Uint8Array | undefined {
    const db = this.dbs[bucket] as Db & { readonly lastSize: number };
    let fast: Uint8Array | undefined;
    try {
      fast = this.pinned === undefined ? db.getBinaryFast(sk) : (db.getBinaryFast as PinnedGet).call(db, sk, this.pinned);
    } catch (e) {
      throw asCorrupt(e, this.names[bucket] ?? String(bucket), key);
    }
    if (fast === undefined) return undefined;
    // lmdb patches `length` of its reusable buffer: a view with the true bounds.
    return this.opened(bucket, sk, new Uint8Array(fast.buffer, fast.byteOffset, db.lastSize));
  }

  range(bucket: number, start: Uint8Array, end: Uint8Array | undefined): Iterable<EngineEntry> {
    return this.entries(this.dbs[bucket] as Db, bucket, start, end);
  }

  /**
   * As range, but each key and value is a view of lmdb's buffer, valid until
   * the iteration moves on: no copy per entry (2-3x faster over many).
   */
  views(bucket: number, start: Uint8Array, end: Uint8Array | undefined): Iterable<EngineEntry> {
    return this.entries(this.viewDbsOpened()[bucket] as Db, bucket, start, end, this.checked);
  }

  private viewDbsOpened(): Db[] {
    const options: RootDatabaseOptions = transientCodecs;
    return (this.viewDbs ??= this.names.map((name) => this.env.openDB<Buffer, Uint8Array>(name, options)));
  }

  /** sums: each entry (but a long key's, whose trailer covers the stored record) carries its checked CRC. */
  private entries(db: Db, bucket: number, start: Uint8Array, end: Uint8Array | undefined, sums = false): Iterable<EngineEntry> {
    const b = storedBounds(start, end);
    const transaction = this.pinned?.transaction;
    const entries = db.getRange(b.end === undefined ? { start: b.start, transaction } : { start: b.start, end: b.end, transaction });
    const whole = entries.map(({ key, value }) => {
      const v = this.opened(bucket, key, value);
      return this.entry(bucket, key, v, sums ? this.lastSum : undefined);
    });
    return b.exact ? whole : whole.filter((e) => within(e.key, start, end));
  }

  keys(bucket: number, start: Uint8Array, end: Uint8Array | undefined): Iterable<Uint8Array> {
    const b = storedBounds(start, end);
    const transaction = this.pinned?.transaction;
    const stored = (this.dbs[bucket] as Db).getKeys(b.end === undefined ? { start: b.start, transaction } : { start: b.start, end: b.end, transaction });
    // A long key is stored under a digest of it, and whole in its record: that one record is read.
    const keys = stored.map((k) => {
      if (!isLongStored(k)) return k;
      const value = this.peekStored(bucket, k, k);
      if (value === undefined) throw new BackendCorruptError(this.names[bucket] ?? String(bucket), k, 'a long key listed has no record');
      // A copy: the record is a view of lmdb's buffer, which the next read reuses.
      return Buffer.from(this.longRecord(bucket, k, value).key);
    });
    return b.exact ? keys : keys.filter((k) => within(k, start, end));
  }

  /**
   * A stored record as the caller's key and value (a long key's taken from the value), with sum
   * when given: the trailer covers the record as stored, which is the caller's key and value
   * except a long key's.
   */
  private entry(bucket: number, stored: Uint8Array, value: Uint8Array, sum?: number): EngineEntry {
    if (isLongStored(stored)) return this.longRecord(bucket, stored, value);
    return sum === undefined ? { key: stored, value } : { key: stored, value, sum };
  }

  private longRecord(bucket: number, stored: Uint8Array, value: Uint8Array): { key: Uint8Array; value: Uint8Array } {
    const r = longRecord(stored, value);
    if (r === undefined) throw new BackendCorruptError(this.names[bucket] ?? String(bucket), stored, 'a long key\'s record does not hold its key');
    return r;
  }

  /** Reads every record of every bucket, checking each: throws BackendCorruptError at the first bad one. */
  verify(): void {
    const dbs = this.viewDbsOpened();
    // The last key read, copied out of lmdb's buffer (which the next read reuses) for the error.
    const last = Buffer.alloc(storedKeyBytesMax);
    for (let b = 0; b < dbs.length; b++) {
      let lastLen = 0;
      try {
        // Views: each record is checked and let go.
        for (const { key, value } of (dbs[b] as Db).getRange({ start: Buffer.alloc(0) })) {
          last.set(key);
          lastLen = key.length;
          this.entry(b, key, this.opened(b, key, value));
        }
      } catch (e) {
        throw asCorrupt(e, this.names[b] ?? String(b), Buffer.from(last.subarray(0, lastLen)));
      }
    }
  }

  commit(batch: EngineBatch): Promise<void> {
    this.refuseInView('commit');
    const dbs = this.dbs;
    const written = this.env.batch(() => {
      batch.buckets.forEach((overlay, i) => {
        const db = dbs[i] as Db;
        for (const e of overlay.entries.values()) {
          const sk = storedKey(e.key);
          if (e.value === undefined) void db.remove(sk);
          // The writer's sum is the trailer of the record as given, not of a long key's (stored under a digest).
          else if (sk === e.key && e.sum !== undefined && this.checked) void db.put(sk, sealedWith(e.value, e.sum));
          else void db.put(sk, this.toStore(sk, storedValue(e.key, e.value)) as Buffer);
        }
      });
    });
    return written.then(() => {
      // Reads must not go on using a snapshot older than the batch the backend drops from memory next.
      this.env.resetReadTxn();
    });
  }

  async flushed(): Promise<void> {
    await this.env.flushed;
  }

  size(): number {
    return statSync(this.path).size;
  }

  /** LMDB reader slots in use. */
  openReadTransactions(): number {
    return (this.env.getStats() as EnvStats).numReaders;
  }

  sizeInUse(): number {
    const pages = (s: TreeStats): number => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    const env = this.env.getStats() as EnvStats;
    let used = 2 + pages(env.root) + pages(env.free); // two meta pages, the catalog, the free list
    for (const db of this.dbs) used += pages(db.getStats() as TreeStats);
    return used * env.pageSize;
  }

  /**
   * Every entry is copied into a new file, the copy is swapped in (etcd's
   * defrag copies bbolt's buckets the same way). A crash at any point leaves
   * either the old file or the new one at `path`, both complete.
   *
   * Not LMDB's compacting copy (mdb_env_copy2 with MDB_CP_COMPACT): in the
   * lmdb package's LMDB, a transaction on such a copy that frees pages
   * enough for a multi-page free-list record crashes the process in
   * mdb_page_alloc (freeing 20 values of 64 KiB in one commit does), and a
   * member replaying that commit from its WAL crashes again at every start.
   * The callers hold commits while this runs, so the old file does not change.
   */
  async defrag(): Promise<void> {
    this.refuseInView('defragment');
    const tmp = `${this.path}.defrag`;
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-lock`, { force: true });
    failpoint('defragBeforeCopy');
    const next = openEnv(tmp, this.noSync, this.names);
    try {
      // Values are copied as stored, checked on the way (a defrag does not carry a corrupt
      // record into a fresh file), or sealed when the old file had no trailers.
      for (let i = 0; i < this.dbs.length; i++) {
        const store = this.checked ? (k: Uint8Array, v: Uint8Array): Uint8Array => (this.opened(i, k, v), v) : sealed;
        await copyEntries(this.dbs[i] as Db, next.env, next.dbs[i] as Db, store);
      }
      await next.env.flushed;
    } catch (e) {
      await next.env.close();
      throw e;
    }
    // On the thread pool: the copy's pages may be dirty still, and a sync of hundreds of
    // MB on this thread would hold every request meanwhile.
    await fsyncPathAsync(tmp);
    const old = this.env;
    this.env = next.env;
    this.dbs = next.dbs;
    this.viewDbs = undefined;
    this.checked = next.checked;
    await old.close();
    rmSync(`${this.path}-lock`, { force: true });
    // A second name keeps the old file's blocks allocated through the rename: replacing
    // its last name would free hundreds of MB inside rename(2), on this thread (170 ms
    // for 400 MB). The thread pool frees them after.
    const retired = retiredPath(this.path);
    rmSync(retired, { force: true });
    try {
      linkSync(this.path, retired);
    } catch {
      // A file system without hard links: the rename frees the blocks itself.
    }
    failpoint('defragBeforeRename');
    renameSync(tmp, this.path);
    renameSync(`${tmp}-lock`, `${this.path}-lock`);
    fsyncPath(dirname(this.path));
    await rm(retired, { force: true });
    this.logger.info('backend defragmented', { path: this.path, sizeBytes: this.size() });
  }

  close(): Promise<void> {
    this.pinned?.transaction.done();
    return this.env.close();
  }
}

/** Entries, and bytes, per transaction of a defrag's copy at most: the event loop turns between them. */
const defragChunkEntries = 2_000;
const defragChunkBytes = 1024 * 1024;

/**
 * Copies every entry of from into to, in key order, a chunk per transaction
 * (keys and values are read as copies); `stored` gives what to store for each.
 */
async function copyEntries(from: Db, env: Env, to: Db, stored: (key: Uint8Array, value: Uint8Array) => Uint8Array): Promise<void> {
  let after: Buffer | undefined;
  for (;;) {
    const chunk: { key: Buffer; value: Buffer }[] = [];
    let bytes = 0;
    let full = false;
    // An explicit start: with the raw key codec, a range without one finds nothing.
    for (const { key, value } of from.getRange({ start: after ?? Buffer.alloc(0) })) {
      const k = key as Buffer;
      if (after !== undefined && chunk.length === 0 && Buffer.compare(k, after) === 0) continue;
      chunk.push({ key: k, value: stored(k, value) as Buffer });
      bytes += k.length + value.length;
      full = chunk.length === defragChunkEntries || bytes >= defragChunkBytes;
      if (full) break;
    }
    if (chunk.length === 0) return;
    await env.batch(() => {
      for (const e of chunk) void to.put(e.key, e.value);
    });
    after = (chunk[chunk.length - 1] as { key: Buffer }).key;
    if (!full) return;
  }
}

/** The old file's second name during a defrag's swap (removed at open if a crash left it). */
function retiredPath(path: string): string {
  return `${path}.retired`;
}

async function fsyncPathAsync(path: string): Promise<void> {
  const f = await openFile(path, 'r');
  try {
    await f.sync();
  } finally {
    await f.close();
  }
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
