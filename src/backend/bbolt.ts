/**
 * bbolt database files: the on-disk format of etcd 3.4's backend
 * (go.etcd.io/bbolt 1.3.6). etcd's snapshot files are such a file with a
 * SHA-256 of it appended. BboltWriter lays out a new file from buckets and
 * entries given in order; BboltReader reads one, bucket by bucket, lazily.
 *
 * The format, as bbolt lays it out (integers are little-endian: bbolt writes
 * its structs as they are in memory, and etcd runs on little-endian CPUs):
 *
 * - The file is an array of pages of pageSize bytes (the OS page size, 4096
 *   on amd64); page n starts at n × pageSize. A page that holds more than
 *   fits continues over the pages after it: a run of 1 + overflow pages.
 * - Page header, 16 bytes: id u64 (the page's own number), flags u16
 *   (0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist), count u16 (number of
 *   elements), overflow u32 (pages the run takes past the first).
 * - Pages 0 and 1 are meta pages. After the header: magic u32 0xED0CDAED,
 *   version u32 = 2, pageSize u32, flags u32, the root bucket's header
 *   (root pgid u64, sequence u64), freelist pgid u64 (all ones when the
 *   freelist is not stored), high-water pgid u64 (pages from it on are not
 *   part of the database), txid u64, and a checksum u64: FNV-1a 64 of the 56
 *   bytes before it (0 means "not checked"). A commit writes meta page
 *   txid % 2 last, so one meta always describes a complete commit; a reader
 *   takes the valid meta with the higher txid.
 * - Each bucket is a B+tree whose leaves are all at one depth. A leaf page
 *   holds count elements of 16 bytes {flags u32, pos u32, ksize u32,
 *   vsize u32}, then the keys and values: an element's key starts pos bytes
 *   after the element itself and its value follows the key. A branch page
 *   holds elements {pos u32, ksize u32, pgid u64}: a child page and the first
 *   key under it. Keys within a page and across a level are in unsigned byte
 *   order.
 * - The meta's root bucket is a tree whose entries are the top-level buckets:
 *   element flag 0x01, value a 16-byte bucket header {root pgid u64,
 *   sequence u64}. Root 0 means an inline bucket: its only page (a leaf page
 *   whose header id is 0) follows the header inside the value. bbolt inlines
 *   a bucket without nested buckets whose leaf fits in a quarter page.
 * - The freelist page lists the page ids below the high-water mark that no
 *   tree uses, count u64s after its header (a count of 0xFFFF means the true
 *   count is in the first u64). bbolt's tx.Check wants every page below the
 *   high-water mark either reachable from a meta or listed there.
 *
 * Writes are synchronous (node:fs): this runs in a worker thread or an
 * offline tool, never on the server's event loop.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export const bboltDefaultPageSize = 4096;

export interface BboltEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** The file is not a bbolt database, or a part of it is damaged. */
export class BboltFormatError extends Error {
  override readonly name = 'BboltFormatError';
}

const pageHeaderBytes = 16;
/** Leaf and branch elements have the same size. */
const elementBytes = 16;
const bucketHeaderBytes = 16;
/** The meta fields the checksum covers: all but the checksum. */
const metaSummedBytes = 56;
const metaBytes = metaSummedBytes + 8;

const flagBranch = 0x01;
const flagLeaf = 0x02;
const flagMeta = 0x04;
const flagFreelist = 0x10;
/** A leaf element whose value is a bucket header. */
const elementIsBucket = 0x01;

const magic = 0xed0cdaed;
const formatVersion = 2;
/** bbolt's limits on what Put takes. */
const keyBytesMax = 32768;
const valueBytesMax = 2 ** 31 - 2;
/** bbolt refuses to write a page of 0xFFFF elements or more. */
const elementsPerPageMax = 0xfffe;
/**
 * bbolt learns the page size from the first 4096 bytes of the file, so a
 * file shorter than that does not open: 1024 is the smallest page size
 * whose minimal file (four pages) reaches it.
 */
const writerPageSizeMin = 1024;
const writerPageSizeMax = 65536;
/** What the reader takes from a meta page as a page size. */
const readerPageSizeMin = 512;
const readerPageSizeMax = 1 << 20;
/** Pages read at once by a scan going through consecutive pages (128 KiB at 4 KiB pages). */
const readAheadPages = 32;
/** Deeper trees than this are loops in a damaged file (bbolt's are a handful of levels). */
const treeDepthMax = 64;

const two32 = 2 ** 32;

function writeU64(b: Buffer, offset: number, n: number): void {
  b.writeUInt32LE(n % two32, offset);
  b.writeUInt32LE(Math.floor(n / two32), offset + 4);
}

/** A u64 as a number; undefined when it exceeds 2^53 (no page id or txid of a real file does). */
function readU64(b: Buffer, offset: number): number | undefined {
  const hi = b.readUInt32LE(offset + 4);
  if (hi >= 2 ** 21) return undefined;
  return hi * two32 + b.readUInt32LE(offset);
}

function isAllOnes64(b: Buffer, offset: number): boolean {
  return b.readUInt32LE(offset) === 0xffffffff && b.readUInt32LE(offset + 4) === 0xffffffff;
}

const fnvOffset = 0xcbf29ce484222325n;
const fnvPrime = 0x100000001b3n;
const mask64 = 0xffffffffffffffffn;

/** FNV-1a, 64 bits: the meta page checksum. */
function fnv1a64(data: Uint8Array): bigint {
  let h = fnvOffset;
  for (const byte of data) h = ((h ^ BigInt(byte)) * fnvPrime) & mask64;
  return h;
}

function writePageHeader(run: Buffer, offset: number, id: number, flags: number, count: number, overflow: number): void {
  writeU64(run, offset, id);
  run.writeUInt16LE(flags, offset + 8);
  run.writeUInt16LE(count, offset + 10);
  run.writeUInt32LE(overflow, offset + 12);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** A short, printable form of a name or key for messages. */
function label(b: Uint8Array): string {
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const printable = s.every((c) => c >= 0x20 && c < 0x7f);
  const text = printable ? JSON.stringify(s.toString('latin1')) : `0x${hex(s)}`;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// ---------------------------------------------------------------- meta pages

interface Meta {
  readonly pageSize: number;
  readonly root: number;
  /** undefined: the freelist is not stored (bbolt's NoFreelistSync). */
  readonly freelist: number | undefined;
  readonly highWater: number;
  readonly txid: number;
}

/** Meta page txid % 2, as bbolt would write it for that txid. */
function encodeMetaPage(meta: Meta): Buffer {
  const page = Buffer.alloc(meta.pageSize);
  writePageHeader(page, 0, meta.txid % 2, flagMeta, 0, 0);
  const m = pageHeaderBytes;
  page.writeUInt32LE(magic, m);
  page.writeUInt32LE(formatVersion, m + 4);
  page.writeUInt32LE(meta.pageSize, m + 8);
  page.writeUInt32LE(0, m + 12);
  writeU64(page, m + 16, meta.root);
  writeU64(page, m + 24, 0); // the root bucket's sequence
  if (meta.freelist === undefined) page.fill(0xff, m + 32, m + 40);
  else writeU64(page, m + 32, meta.freelist);
  writeU64(page, m + 40, meta.highWater);
  writeU64(page, m + 48, meta.txid);
  page.writeBigUInt64LE(fnv1a64(page.subarray(m, m + metaSummedBytes)), m + metaSummedBytes);
  return page;
}

/** The meta in bytes (a page header and a meta, at least), or what is wrong with it. */
function decodeMeta(bytes: Buffer): Meta | string {
  const m = pageHeaderBytes;
  if (bytes.length < m + metaBytes) return 'missing (the file ends before it)';
  const got = bytes.readUInt32LE(m);
  if (got !== magic) return `bad magic 0x${got.toString(16).padStart(8, '0')}`;
  const version = bytes.readUInt32LE(m + 4);
  if (version !== formatVersion) return `version ${version}, not ${formatVersion}`;
  const checksum = bytes.readBigUInt64LE(m + metaSummedBytes);
  if (checksum !== 0n && checksum !== fnv1a64(bytes.subarray(m, m + metaSummedBytes))) return 'checksum mismatch';
  const pageSize = bytes.readUInt32LE(m + 8);
  if (pageSize < readerPageSizeMin || pageSize > readerPageSizeMax) return `implausible page size ${pageSize}`;
  const root = readU64(bytes, m + 16);
  const freelist = isAllOnes64(bytes, m + 32) ? undefined : readU64(bytes, m + 32);
  const highWater = readU64(bytes, m + 40);
  const txid = readU64(bytes, m + 48);
  if (root === undefined || highWater === undefined || txid === undefined || (freelist === undefined && !isAllOnes64(bytes, m + 32))) {
    return 'a page id or txid beyond 2^53';
  }
  return { pageSize, root, freelist, highWater, txid };
}

// ---------------------------------------------------------------- writer

interface LeafItem {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly flags: number;
}

interface BranchItem {
  readonly key: Uint8Array;
  readonly pgid: number;
}

function leafItemBytes(item: LeafItem): number {
  return elementBytes + item.key.length + item.value.length;
}

function branchItemBytes(item: BranchItem): number {
  return elementBytes + item.key.length;
}

/** The content of a branch page holding these items: its header, elements and keys. */
function branchPageBytes(items: readonly BranchItem[]): number {
  let bytes = pageHeaderBytes;
  for (const item of items) bytes += branchItemBytes(item);
  return bytes;
}

/** Pages are written out in batches of about this many bytes: a write per page is most of the cost. */
const writeBatchBytes = 1 << 20;

/** Where pages go: in order into a stream. */
interface PageOutput {
  write(bytes: Buffer, pgid: number): void;
}

/**
 * Appends page runs from page 2 on (0 and 1 are the metas). Runs wait in a
 * batch of at most writeBatchBytes (plus one run) and go out in one write.
 * Without an output (a layout's dry run) nothing is encoded: runs are only
 * reserved, to learn where every page will go and where the file ends.
 */
class PageFile {
  /** The next free page: the high-water mark. */
  next = 2;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  /** The page the batch starts at. */
  private batchAt = 2;

  constructor(
    private readonly out: PageOutput | undefined,
    readonly pageSize: number,
  ) {}

  /** Pages are only counted, never encoded. */
  get dry(): boolean {
    return this.out === undefined;
  }

  private pagesFor(bytes: number): number {
    return Math.max(1, Math.ceil(bytes / this.pageSize));
  }

  /** A zeroed run for `bytes` of content (at least one page) that will go at page `next`. */
  allocRun(bytes: number): Buffer {
    return Buffer.alloc(this.pagesFor(bytes) * this.pageSize);
  }

  /** A dry run's append: the page a run of `bytes` of content would start at; moves the high-water mark past it. */
  reserve(bytes: number): number {
    const pgid = this.next;
    this.next += this.pagesFor(bytes);
    return pgid;
  }

  /** Appends a run from allocRun at page `next` and moves the high-water mark past it. */
  append(run: Buffer): number {
    const pgid = this.next;
    this.batch.push(run);
    this.batchBytes += run.length;
    this.next += run.length / this.pageSize;
    if (this.batchBytes >= writeBatchBytes) this.flush();
    return pgid;
  }

  /** Writes the batch out. */
  flush(): void {
    if (this.batch.length === 0) return;
    const bytes = this.batch.length === 1 ? (this.batch[0] as Buffer) : Buffer.concat(this.batch, this.batchBytes);
    this.out?.write(bytes, this.batchAt);
    this.batch = [];
    this.batchBytes = 0;
    this.batchAt = this.next;
  }
}

function encodeLeaf(file: PageFile, items: readonly LeafItem[]): Buffer {
  let bytes = pageHeaderBytes;
  for (const item of items) bytes += leafItemBytes(item);
  const run = file.allocRun(bytes);
  writePageHeader(run, 0, file.next, flagLeaf, items.length, run.length / file.pageSize - 1);
  let data = pageHeaderBytes + elementBytes * items.length;
  items.forEach((item, i) => {
    const e = pageHeaderBytes + elementBytes * i;
    run.writeUInt32LE(item.flags, e);
    run.writeUInt32LE(data - e, e + 4);
    run.writeUInt32LE(item.key.length, e + 8);
    run.writeUInt32LE(item.value.length, e + 12);
    run.set(item.key, data);
    run.set(item.value, data + item.key.length);
    data += item.key.length + item.value.length;
  });
  return run;
}

function encodeBranch(file: PageFile, items: readonly BranchItem[]): Buffer {
  const run = file.allocRun(branchPageBytes(items));
  writePageHeader(run, 0, file.next, flagBranch, items.length, run.length / file.pageSize - 1);
  let data = pageHeaderBytes + elementBytes * items.length;
  items.forEach((item, i) => {
    const e = pageHeaderBytes + elementBytes * i;
    run.writeUInt32LE(data - e, e);
    run.writeUInt32LE(item.key.length, e + 4);
    writeU64(run, e + 8, item.pgid);
    run.set(item.key, data);
    data += item.key.length;
  });
  return run;
}

/**
 * Splits one level of (first key, page) pairs into branch pages. Pages are
 * filled up to pageSize; every page gets at least two children (bbolt
 * merges a branch node with fewer, so it never writes one), which may make
 * a page with two long keys a run of several pages, as bbolt's own are.
 */
function branchGroups(items: readonly BranchItem[], pageSize: number): BranchItem[][] {
  const groups: BranchItem[][] = [];
  let group: BranchItem[] = [];
  let bytes = pageHeaderBytes;
  for (const item of items) {
    if (group.length >= 2 && bytes + branchItemBytes(item) > pageSize) {
      groups.push(group);
      group = [];
      bytes = pageHeaderBytes;
    }
    group.push(item);
    bytes += branchItemBytes(item);
  }
  groups.push(group);
  const last = groups[groups.length - 1] as BranchItem[];
  const before = groups[groups.length - 2];
  if (last.length === 1 && before !== undefined) {
    // The last child alone: take one from the page before if it can spare one, else join it.
    if (before.length >= 3) {
      last.unshift(before.pop() as BranchItem);
    } else {
      groups.pop();
      before.push(...last);
    }
  }
  return groups;
}

/**
 * One B+tree written bottom-up from entries in key order. The leaf being
 * filled is held as its keys and values back to back in one page-sized
 * buffer (no allocation per entry) and written when the next entry would
 * not fit; of each page written only (first key, page id) is kept, and the
 * branch levels are written from those at the end.
 */
class TreeWriter {
  private readonly data: Buffer;
  private dataBytes = 0;
  /** flags, key size, value size of each entry in data. */
  private readonly sizes: number[] = [];
  private count = 0;
  /** The last key of the pages written. */
  private lastWritten: Uint8Array | undefined;
  private readonly children: BranchItem[] = [];

  constructor(private readonly file: PageFile) {
    this.data = Buffer.allocUnsafe(file.pageSize);
  }

  /** The last key added (a view valid until the next add). */
  lastKey(): Uint8Array | undefined {
    if (this.count === 0) return this.lastWritten;
    const ksize = this.sizes[this.sizes.length - 2] as number;
    const end = this.dataBytes - (this.sizes[this.sizes.length - 1] as number);
    return this.data.subarray(end - ksize, end);
  }

  add(key: Uint8Array, value: Uint8Array, flags: number): void {
    const bytes = elementBytes + key.length + value.length;
    if (this.count > 0 && this.leafBytes() + bytes > this.file.pageSize) this.flushLeaf();
    if (this.count === 0 && pageHeaderBytes + bytes > this.file.pageSize) {
      // Larger than a page: a leaf of its own, a run of pages, written at once.
      const pgid = this.file.dry ? this.file.reserve(pageHeaderBytes + bytes) : this.file.append(encodeLeaf(this.file, [{ key, value, flags }]));
      this.lastWritten = Buffer.from(key);
      this.children.push({ key: this.lastWritten, pgid });
      return;
    }
    this.data.set(key, this.dataBytes);
    this.data.set(value, this.dataBytes + key.length);
    this.dataBytes += key.length + value.length;
    this.sizes.push(flags, key.length, value.length);
    this.count++;
  }

  /** Writes the last leaf and the branch levels; returns the root page (an empty leaf for an empty tree). */
  finish(): number {
    if (this.count > 0 || this.children.length === 0) this.flushLeaf();
    let level: readonly BranchItem[] = this.children;
    while (level.length > 1) level = this.writeBranchLevel(level);
    return (level[0] as BranchItem).pgid;
  }

  private leafBytes(): number {
    return pageHeaderBytes + elementBytes * this.count + this.dataBytes;
  }

  /** The leaf page from data: elements first, then the keys and values as they are in data. */
  private flushLeaf(): void {
    if (this.count > elementsPerPageMax) throw new Error(`bbolt writer: ${this.count} entries on one page`);
    const lastKey = this.lastKey();
    this.lastWritten = lastKey === undefined ? undefined : Buffer.from(lastKey);
    // A copy: a view would keep the whole page alive (or, dry, change with the next leaf).
    const firstKey = Buffer.from(this.data.subarray(0, this.count === 0 ? 0 : (this.sizes[1] as number)));
    const pgid = this.file.dry ? this.file.reserve(this.leafBytes()) : this.file.append(this.encodeLeaf());
    this.children.push({ key: firstKey, pgid });
    this.dataBytes = 0;
    this.sizes.length = 0;
    this.count = 0;
  }

  private encodeLeaf(): Buffer {
    const run = this.file.allocRun(this.leafBytes());
    writePageHeader(run, 0, this.file.next, flagLeaf, this.count, run.length / this.file.pageSize - 1);
    const dataAt = pageHeaderBytes + elementBytes * this.count;
    let at = dataAt;
    for (let i = 0; i < this.count; i++) {
      const e = pageHeaderBytes + elementBytes * i;
      const ksize = this.sizes[3 * i + 1] as number;
      const vsize = this.sizes[3 * i + 2] as number;
      run.writeUInt32LE(this.sizes[3 * i] as number, e);
      run.writeUInt32LE(at - e, e + 4);
      run.writeUInt32LE(ksize, e + 8);
      run.writeUInt32LE(vsize, e + 12);
      at += ksize + vsize;
    }
    this.data.copy(run, dataAt, 0, this.dataBytes);
    return run;
  }

  private writeBranchLevel(level: readonly BranchItem[]): BranchItem[] {
    const above: BranchItem[] = [];
    for (const group of branchGroups(level, this.file.pageSize)) {
      const pgid = this.file.dry ? this.file.reserve(branchPageBytes(group)) : this.file.append(encodeBranch(this.file, group));
      above.push({ key: (group[0] as BranchItem).key, pgid });
    }
    return above;
  }
}

function bucketHeader(root: number): Uint8Array {
  const header = Buffer.alloc(bucketHeaderBytes);
  writeU64(header, 0, root); // the sequence (NextSequence) stays 0: etcd does not use it
  return header;
}

/** A plain Uint8Array copy (a Buffer's own slice would share memory; a Buffer subclass costs more to make). */
function copyOf(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

interface OpenBucket {
  readonly name: Uint8Array;
  readonly tree: TreeWriter;
}

/** Where a layout put its root bucket, its freelist and the end of the file. */
interface Layout {
  readonly root: number;
  readonly freelist: number;
  readonly highWater: number;
}

/**
 * What becomes of the pages: a dry run (only the layout is learned), or a
 * stream in file order (the metas first: the dry run before it told where
 * everything goes).
 */
type Target = { readonly kind: 'dry' } | { readonly kind: 'stream'; readonly planned: Layout };

function metaPages(pageSize: number, layout: Layout): Buffer[] {
  return [0, 1].map((txid) => encodeMetaPage({ pageSize, ...layout, txid }));
}

/**
 * Lays out a new bbolt file holding top-level buckets of plain entries, as
 * etcd's backend has them, and gives its bytes in order (stream): the file
 * itself is written by whoever takes them (a client saving a snapshot).
 *
 * Every bucket gets a root page of its own, even an empty one: a bucket's
 * leaves are written while its entries come, before it is known to stay
 * small enough to inline, and bbolt reads a small bucket on its own page
 * like any other (it inlines it again itself when a later commit changes
 * it). The cost is a page per small bucket.
 *
 * The file: both metas (txids 0 and 1, describing the same tree, as a
 * fresh bbolt file has them), then data pages from page 2 in the order
 * written (each bucket's leaves, then its branch levels), the root bucket's
 * pages and an empty freelist page.
 *
 * Memory: the leaf being filled (one page), written pages waiting for their
 * batched write (about 1 MiB), an entry larger than a page while it is
 * written, and the first key of every page of the current bucket for its
 * branch levels (a 1M-key bucket of 17-byte keys: about 10,000 keys).
 */
export class BboltWriter {
  private file: PageFile | undefined;
  private current: OpenBucket | undefined;
  private readonly buckets: { readonly name: Uint8Array; readonly root: number }[] = [];
  /** A write failed: the layout is in an unknown state, and the writer is done. */
  private failed: unknown;
  /** The dry run's result. */
  private laidOut: Layout | undefined;

  private constructor(
    private readonly target: Target,
    out: PageOutput | undefined,
    pageSize: number,
  ) {
    this.file = new PageFile(out, pageSize);
  }

  private static checkedPageSize(options?: { pageSize?: number }): number {
    const pageSize = options?.pageSize ?? bboltDefaultPageSize;
    const powerOfTwo = Number.isInteger(pageSize) && (pageSize & (pageSize - 1)) === 0;
    if (!powerOfTwo || pageSize < writerPageSizeMin || pageSize > writerPageSizeMax) {
      throw new RangeError(`bbolt writer: page size ${pageSize} is not a power of two from ${writerPageSizeMin} to ${writerPageSizeMax}`);
    }
    return pageSize;
  }

  /**
   * The file's bytes, in order, with no file: `fill` gives the buckets and
   * entries to a writer, and is called twice, so it must give the same ones
   * both times (it reads one consistent view). The first time nothing is
   * encoded: the writer learns where every page goes and the file's size,
   * which `sized` gets before the first bytes. Then `emit` gets the file
   * from its first byte to its last, in pieces of about 1 MiB it may keep.
   * Returns the size.
   */
  static stream(fill: (w: BboltWriter) => void, sized: (bytes: number) => void, emit: (bytes: Buffer) => void, options?: { pageSize?: number }): number {
    const pageSize = BboltWriter.checkedPageSize(options);
    const dry = new BboltWriter({ kind: 'dry' }, undefined, pageSize);
    fill(dry);
    const size = dry.finish();
    const planned = dry.laidOut as Layout;
    sized(size);
    let emitted = 0;
    const out: PageOutput = {
      write(bytes: Buffer, pgid: number): void {
        if (pgid * pageSize !== emitted) throw new Error(`bbolt writer: page ${pgid} out of order in a stream at byte ${emitted}`);
        emitted += bytes.length;
        emit(bytes);
      },
    };
    for (const [i, page] of metaPages(pageSize, planned).entries()) out.write(page, i);
    const streamed = new BboltWriter({ kind: 'stream', planned }, out, pageSize);
    fill(streamed);
    streamed.finish();
    return size;
  }

  /** Starts the next top-level bucket; names strictly ascending in unsigned byte order; a bucket may stay empty. */
  bucket(name: Uint8Array): void {
    const file = this.usable();
    if (name.length === 0) throw new RangeError('bbolt writer: empty bucket name');
    if (name.length > keyBytesMax) throw new RangeError(`bbolt writer: bucket name of ${name.length} bytes (at most ${keyBytesMax})`);
    const previous = this.current?.name ?? this.buckets[this.buckets.length - 1]?.name;
    if (previous !== undefined && Buffer.compare(previous, name) >= 0) {
      throw new RangeError(`bbolt writer: bucket ${label(name)} does not come after ${label(previous)}`);
    }
    this.guarded(() => this.endBucket());
    this.current = { name: copyOf(name), tree: new TreeWriter(file) };
  }

  /** Adds an entry to the current bucket; keys strictly ascending (unsigned bytes), not empty. */
  put(key: Uint8Array, value: Uint8Array): void {
    this.usable();
    const bucket = this.current;
    if (bucket === undefined) throw new Error('bbolt writer: put before the first bucket');
    if (key.length === 0) throw new RangeError(`bbolt writer: empty key in bucket ${label(bucket.name)}`);
    if (key.length > keyBytesMax) throw new RangeError(`bbolt writer: key of ${key.length} bytes (at most ${keyBytesMax})`);
    if (value.length > valueBytesMax) throw new RangeError(`bbolt writer: value of ${value.length} bytes (at most ${valueBytesMax})`);
    const lastKey = bucket.tree.lastKey();
    if (lastKey !== undefined && Buffer.compare(lastKey, key) >= 0) {
      throw new RangeError(`bbolt writer: key ${label(key)} does not come after ${label(lastKey)} in bucket ${label(bucket.name)}`);
    }
    // The tree copies key and value: the caller may reuse its buffers.
    this.guarded(() => bucket.tree.add(key, value, 0));
  }

  /**
   * Lays out the remaining pages, the root bucket and an empty freelist
   * page (stream calls it after each fill). Returns the file size in bytes:
   * high-water page id × pageSize, what bbolt's tx.Size() reports.
   */
  private finish(): number {
    const file = this.usable();
    return this.guarded(() => {
      this.endBucket();
      const root = new TreeWriter(file);
      for (const b of this.buckets) root.add(b.name, bucketHeader(b.root), elementIsBucket);
      const rootPgid = root.finish();
      let freelist: number;
      if (file.dry) {
        freelist = file.reserve(pageHeaderBytes);
      } else {
        const freelistRun = file.allocRun(pageHeaderBytes);
        writePageHeader(freelistRun, 0, file.next, flagFreelist, 0, 0);
        freelist = file.append(freelistRun);
      }
      const layout: Layout = { root: rootPgid, freelist, highWater: file.next };
      file.flush();
      this.end(layout);
      this.file = undefined;
      return layout.highWater * file.pageSize;
    });
  }

  private end(layout: Layout): void {
    const target = this.target;
    switch (target.kind) {
      case 'dry':
        this.laidOut = layout;
        return;
      case 'stream': {
        // The metas went out first, from the dry run: a fill that gave other entries this time made them wrong.
        const p = target.planned;
        if (p.root !== layout.root || p.freelist !== layout.freelist || p.highWater !== layout.highWater) {
          throw new Error(`bbolt writer: the streamed entries differ from the dry run's (root ${layout.root}/${p.root}, end ${layout.highWater}/${p.highWater})`);
        }
        return;
      }
    }
  }

  private usable(): PageFile {
    if (this.failed !== undefined) throw new Error('bbolt writer: an earlier write failed', { cause: this.failed });
    if (this.file === undefined) throw new Error('bbolt writer: already finished');
    return this.file;
  }

  /** Runs a step that writes; a failure leaves the writer unusable. */
  private guarded<T>(step: () => T): T {
    try {
      return step();
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }

  private endBucket(): void {
    const bucket = this.current;
    if (bucket === undefined) return;
    this.current = undefined;
    this.buckets.push({ name: bucket.name, root: bucket.tree.finish() });
  }
}

// ---------------------------------------------------------------- reader

/** A leaf or branch page: the bytes holding it and where its header starts in them. */
interface TreePage {
  /** A page run read from the file, or an inline bucket's value. */
  readonly bytes: Buffer;
  readonly at: number;
  readonly isLeaf: boolean;
  readonly count: number;
  /** Names the page in messages. */
  readonly where: string;
}

interface LeafElement {
  readonly flags: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

function parseTreePage(bytes: Buffer, at: number, where: string): TreePage {
  if (bytes.length < at + pageHeaderBytes) throw new BboltFormatError(`${where}: too short for a page header`);
  const flags = bytes.readUInt16LE(at + 8);
  const kind = flags & (flagBranch | flagLeaf);
  if (kind !== flagBranch && kind !== flagLeaf) {
    throw new BboltFormatError(`${where}: not a leaf or branch page (flags 0x${flags.toString(16)})`);
  }
  const count = bytes.readUInt16LE(at + 10);
  if (at + pageHeaderBytes + count * elementBytes > bytes.length) {
    throw new BboltFormatError(`${where}: ${count} elements do not fit in ${bytes.length - at} bytes`);
  }
  return { bytes, at, isLeaf: kind === flagLeaf, count, where };
}

/** The element's key and what follows it, checked to lie within the page. */
function elementData(page: TreePage, e: number, pos: number, bytes: number, i: number): number {
  const start = e + pos;
  if (pos < elementBytes || start + bytes > page.bytes.length) {
    throw new BboltFormatError(`${page.where}: element ${i} points outside the page`);
  }
  return start;
}

function leafElement(page: TreePage, i: number): LeafElement {
  const e = page.at + pageHeaderBytes + elementBytes * i;
  const b = page.bytes;
  const ksize = b.readUInt32LE(e + 8);
  const vsize = b.readUInt32LE(e + 12);
  const start = elementData(page, e, b.readUInt32LE(e + 4), ksize + vsize, i);
  // Plain Uint8Array views: a Buffer subclass per key and value costs more to make.
  const at = b.byteOffset + start;
  return { flags: b.readUInt32LE(e), key: new Uint8Array(b.buffer, at, ksize), value: new Uint8Array(b.buffer, at + ksize, vsize) };
}

function branchChild(page: TreePage, i: number): number {
  const e = page.at + pageHeaderBytes + elementBytes * i;
  elementData(page, e, page.bytes.readUInt32LE(e), page.bytes.readUInt32LE(e + 4), i);
  const pgid = readU64(page.bytes, e + 8);
  if (pgid === undefined) throw new BboltFormatError(`${page.where}: element ${i} names a page beyond 2^53`);
  return pgid;
}

interface RootEntry {
  readonly name: Buffer;
  /** The bucket header, and the inline page after it if any. */
  readonly value: Buffer;
}

/**
 * Reads a bbolt file: its top-level buckets and their entries. Pages are
 * read with positioned reads as the iteration reaches them (a bucket of a
 * million keys is never in memory at once); the keys and values handed out
 * are views into the page read for them, never reused.
 */
export class BboltReader {
  readonly pageSize: number;
  readonly txid: number;
  /** tx.Size(): high-water page id × page size. */
  readonly size: number;
  private fd: number | undefined;
  private readonly highWater: number;
  private readonly roots: readonly RootEntry[];
  /** The last pages read, possibly ahead of the scan. */
  private chunk: { readonly at: number; readonly count: number; readonly bytes: Buffer } | undefined;
  /** The page after the last one asked for: asking for it is a sequential scan. */
  private nextPage = -1;

  private constructor(fd: number) {
    this.fd = fd;
    const meta = pickMeta(fd);
    this.pageSize = meta.pageSize;
    this.txid = meta.txid;
    this.highWater = meta.highWater;
    this.size = meta.highWater * meta.pageSize;
    this.checkFreelist(meta.freelist);
    this.roots = this.readRoots(meta.root);
  }

  /**
   * Opens read-only; picks the valid meta page with the higher txid, as
   * bbolt does. A file that is not a valid bbolt db → BboltFormatError.
   * Bytes past the high-water mark (etcd's SHA-256 trailer) are never read.
   */
  static open(path: string): BboltReader {
    const fd = openSync(path, 'r');
    try {
      return new BboltReader(fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Top-level bucket names, ascending. */
  bucketNames(): Uint8Array[] {
    return this.roots.map((r) => copyOf(r.name));
  }

  /**
   * The bucket's entries in key order, read lazily each time it is iterated;
   * undefined if there is no such bucket. A nested bucket → BboltFormatError.
   */
  entries(name: Uint8Array): Iterable<BboltEntry> | undefined {
    const root = this.roots.find((r) => Buffer.compare(r.name, name) === 0);
    if (root === undefined) return undefined;
    const where = `bucket ${label(name)}`;
    return {
      [Symbol.iterator]: (): Iterator<BboltEntry> => this.bucketEntries(root, where),
    };
  }

  close(): void {
    const fd = this.fd;
    this.fd = undefined;
    this.chunk = undefined;
    if (fd !== undefined) closeSync(fd);
  }

  private *bucketEntries(root: RootEntry, where: string): Generator<BboltEntry> {
    for (const element of this.walk(this.bucketRoot(root, where), where)) {
      if ((element.flags & elementIsBucket) !== 0) {
        throw new BboltFormatError(`${where} holds a nested bucket ${label(element.key)} (etcd's buckets hold none)`);
      }
      yield { key: element.key, value: element.value };
    }
  }

  /** The root bucket's entries: every one a bucket. */
  private readRoots(rootPgid: number): RootEntry[] {
    const roots: RootEntry[] = [];
    for (const element of this.walk(this.readTreePage(rootPgid, 'the root bucket'), 'the root bucket')) {
      if ((element.flags & elementIsBucket) === 0) {
        throw new BboltFormatError(`the root bucket holds ${label(element.key)}, which is not a bucket`);
      }
      if (element.value.length < bucketHeaderBytes) throw new BboltFormatError(`bucket ${label(element.key)}: header too short`);
      roots.push({ name: Buffer.from(element.key), value: Buffer.from(element.value) });
    }
    return roots;
  }

  private bucketRoot(root: RootEntry, where: string): TreePage {
    const pgid = readU64(root.value, 0);
    if (pgid === undefined) throw new BboltFormatError(`${where}: root page beyond 2^53`);
    if (pgid !== 0) return this.readTreePage(pgid, where);
    const page = parseTreePage(root.value, bucketHeaderBytes, `${where} (inline)`);
    if (!page.isLeaf) throw new BboltFormatError(`${where}: inline page is not a leaf`);
    return page;
  }

  /**
   * The leaf elements under a tree page in order, depth first, one branch
   * page per level held. Keys must be non-empty and strictly ascending.
   */
  private *walk(root: TreePage, where: string): Generator<LeafElement> {
    const path: { readonly page: TreePage; next: number }[] = [];
    let previous: Uint8Array | undefined;
    let page: TreePage | undefined = root;
    for (;;) {
      if (page !== undefined && page.isLeaf) {
        for (let i = 0; i < page.count; i++) {
          const element = leafElement(page, i);
          if (element.key.length === 0) throw new BboltFormatError(`${page.where}: empty key in ${where}`);
          if (previous !== undefined && Buffer.compare(previous, element.key) >= 0) {
            throw new BboltFormatError(`${page.where}: key ${label(element.key)} out of order in ${where}`);
          }
          previous = element.key;
          yield element;
        }
      } else if (page !== undefined) {
        if (path.length >= treeDepthMax) throw new BboltFormatError(`${where}: tree deeper than ${treeDepthMax} levels (a loop?)`);
        path.push({ page, next: 0 });
      }
      const top = path[path.length - 1];
      if (top === undefined) return;
      if (top.next >= top.page.count) {
        path.pop();
        page = undefined;
        continue;
      }
      page = this.readTreePage(branchChild(top.page, top.next++), where);
    }
  }

  /** A leaf or branch page run below the high-water mark. */
  private readTreePage(pgid: number, where: string): TreePage {
    const first = this.readPage(pgid, where);
    const overflow = first.readUInt32LE(12);
    if (pgid + overflow >= this.highWater) {
      throw new BboltFormatError(`${where}: page ${pgid} runs ${overflow + 1} pages, past the high-water mark ${this.highWater}`);
    }
    return parseTreePage(overflow === 0 ? first : this.pages(pgid, overflow + 1), 0, `page ${pgid}`);
  }

  /** Page pgid, which must be a data page whose header names it (bbolt writes every page's own id). */
  private readPage(pgid: number, where: string): Buffer {
    if (pgid < 2 || pgid >= this.highWater) {
      throw new BboltFormatError(`${where}: page ${pgid} is outside the database (pages 2 to ${this.highWater - 1})`);
    }
    const bytes = this.pages(pgid, 1);
    const id = readU64(bytes, 0);
    if (id !== pgid) throw new BboltFormatError(`${where}: page ${pgid} has the header of page ${id ?? 'beyond 2^53'}`);
    return bytes;
  }

  /**
   * The bytes of count pages from pgid (all below the high-water mark). A
   * scan that asks for the page after the last one gets the readAheadPages
   * after it in the same read, kept for the next asks; the buffers are
   * never reused, so views into them stay valid.
   */
  private pages(pgid: number, count: number): Buffer {
    const ps = this.pageSize;
    const chunk = this.chunk;
    const sequential = pgid === this.nextPage;
    this.nextPage = pgid + count;
    if (chunk !== undefined && pgid >= chunk.at && pgid + count <= chunk.at + chunk.count) {
      return chunk.bytes.subarray((pgid - chunk.at) * ps, (pgid - chunk.at + count) * ps);
    }
    const n = sequential ? Math.max(count, Math.min(readAheadPages, this.highWater - pgid)) : count;
    const fd = this.fd;
    if (fd === undefined) throw new Error('bbolt reader: closed');
    const bytes = Buffer.allocUnsafe(n * ps);
    readFully(fd, bytes, 0, pgid * ps);
    this.chunk = { at: pgid, count: n, bytes };
    return n === count ? bytes : bytes.subarray(0, count * ps);
  }

  private checkFreelist(freelist: number | undefined): void {
    if (freelist === undefined) return;
    const page = this.readPage(freelist, 'the freelist');
    if ((page.readUInt16LE(8) & flagFreelist) === 0) {
      throw new BboltFormatError(`the freelist: page ${freelist} is not a freelist page (flags 0x${page.readUInt16LE(8).toString(16)})`);
    }
  }
}

/** Fills bytes[from..] from the file at position; the file ending first → BboltFormatError. */
function readFully(fd: number, bytes: Buffer, from: number, position: number): void {
  let done = from;
  while (done < bytes.length) {
    const n = readSync(fd, bytes, done, bytes.length - done, position + done - from);
    if (n === 0) throw new BboltFormatError(`truncated: the file ends at ${position + done - from} bytes`);
    done += n;
  }
}

/** The bytes of a meta page (header and meta) at offset, as far as the file has them. */
function metaBytesAt(fd: number, fileBytes: number, offset: number): Buffer {
  const bytes = Buffer.alloc(Math.max(0, Math.min(pageHeaderBytes + metaBytes, fileBytes - offset)));
  if (bytes.length > 0) readFully(fd, bytes, 0, offset);
  return bytes;
}

/**
 * The meta bbolt would use: meta 0 gives the page size (bbolt takes the OS
 * page size, 4096 here, when meta 0 is damaged, so a file of another page
 * size with a damaged meta 0 does not open there either); of the valid
 * metas, the one with the higher txid (meta 0 on a tie).
 */
function pickMeta(fd: number): Meta {
  const fileBytes = fstatSync(fd).size;
  const meta0 = decodeMeta(metaBytesAt(fd, fileBytes, 0));
  const pageSize = typeof meta0 === 'string' ? bboltDefaultPageSize : meta0.pageSize;
  let meta1 = decodeMeta(metaBytesAt(fd, fileBytes, pageSize));
  if (typeof meta1 !== 'string' && meta1.pageSize !== pageSize) meta1 = `page size ${meta1.pageSize}, but it is at offset ${pageSize}`;
  let meta: Meta;
  if (typeof meta0 === 'string' && typeof meta1 === 'string') {
    throw new BboltFormatError(`not a bbolt database: meta page 0: ${meta0}; meta page 1: ${meta1}`);
  } else if (typeof meta0 === 'string') {
    meta = meta1 as Meta;
  } else if (typeof meta1 === 'string') {
    meta = meta0;
  } else {
    meta = meta1.txid > meta0.txid ? meta1 : meta0;
  }
  checkMeta(meta, fileBytes);
  return meta;
}

function checkMeta(meta: Meta, fileBytes: number): void {
  const held = meta.highWater * meta.pageSize;
  if (held > fileBytes) {
    throw new BboltFormatError(`truncated: the meta (txid ${meta.txid}) counts ${meta.highWater} pages of ${meta.pageSize} bytes (${held}), the file has ${fileBytes} bytes`);
  }
  if (meta.root < 2 || meta.root >= meta.highWater) throw new BboltFormatError(`the root bucket's page ${meta.root} is outside the database (${meta.highWater} pages)`);
  if (meta.freelist !== undefined && (meta.freelist < 2 || meta.freelist >= meta.highWater)) {
    throw new BboltFormatError(`the freelist page ${meta.freelist} is outside the database (${meta.highWater} pages)`);
  }
}
