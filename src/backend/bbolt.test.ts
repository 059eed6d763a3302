import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRand } from '../base/index.js';
import { BboltFormatError, BboltReader, BboltWriter, bboltDefaultPageSize, type BboltEntry } from './index.js';

interface Bucket {
  readonly name: Uint8Array;
  readonly entries: readonly BboltEntry[];
}

let dir = '';
let fileNo = 0;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bbolt-test-'));
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

function newPath(): string {
  return join(dir, `db-${fileNo++}`);
}

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const bytes = (n: number, fill: number): Uint8Array => Buffer.alloc(n, fill);

/** 8-byte big-endian n: keys that sort as numbers. */
function be64(n: number): Uint8Array {
  const k = Buffer.alloc(8);
  k.writeBigUInt64BE(BigInt(n));
  return k;
}

/** The same buckets as a stream: its size first, then every byte; the pieces joined. */
function streamed(buckets: readonly Bucket[], pageSize?: number): { size: number; sized: number[]; bytes: Buffer } {
  const sized: number[] = [];
  const pieces: Buffer[] = [];
  const size = BboltWriter.stream(
    (w) => {
      for (const bucket of buckets) {
        w.bucket(bucket.name);
        for (const e of bucket.entries) w.put(e.key, e.value);
      }
    },
    (n) => {
      assert.equal(pieces.length, 0, 'the size comes before the first bytes');
      sized.push(n);
    },
    (piece) => void pieces.push(Buffer.from(piece)),
    pageSize === undefined ? undefined : { pageSize },
  );
  return { size, sized, bytes: Buffer.concat(pieces) };
}

/** The stream saved to a new file at path, as a client saving a snapshot does; the size it told first. */
function write(path: string, buckets: readonly Bucket[], pageSize?: number): number {
  const s = streamed(buckets, pageSize);
  assert.deepEqual(s.sized, [s.size], 'the size is told once, and is the size returned');
  assert.equal(s.bytes.length, s.size, 'the size told first is what comes');
  writeFileSync(path, s.bytes, { flag: 'wx' });
  return s.size;
}

function readAll(path: string): Bucket[] {
  const r = BboltReader.open(path);
  try {
    return r.bucketNames().map((name) => ({
      name: Buffer.from(name),
      entries: [...(r.entries(name) ?? [])].map((e) => ({ key: Buffer.from(e.key), value: Buffer.from(e.value) })),
    }));
  } finally {
    r.close();
  }
}

/** Buckets with Buffer bytes, so that deepEqual compares contents only. */
function normal(buckets: readonly Bucket[]): Bucket[] {
  return buckets.map((x) => ({ name: Buffer.from(x.name), entries: x.entries.map((e) => ({ key: Buffer.from(e.key), value: Buffer.from(e.value) })) }));
}

/** Writes, checks the size reported against the file and the reader, and reads back. */
function roundTrip(buckets: readonly Bucket[], pageSize?: number): { path: string; size: number } {
  const path = newPath();
  const size = write(path, buckets, pageSize);
  assert.equal(statSync(path).size, size, 'the file is as long as the stream said');
  assert.equal(size % (pageSize ?? bboltDefaultPageSize), 0);
  const r = BboltReader.open(path);
  assert.equal(r.size, size);
  assert.equal(r.pageSize, pageSize ?? bboltDefaultPageSize);
  assert.equal(r.txid, 1);
  r.close();
  assert.deepEqual(readAll(path), normal(buckets));
  return { path, size };
}

/** Levels of a bucket's tree, from the raw file: down the first child of each branch page. */
function treeHeight(path: string, name: Uint8Array): number {
  const file = readFileSync(path);
  const pageSize = file.readUInt32LE(16 + 8);
  const page = (id: number): number => id * pageSize;
  const rootBucket = page(Number(file.readBigUInt64LE(16 + 16)));
  assert.equal(file.readUInt16LE(rootBucket + 8), 0x02, 'the root bucket is one leaf page');
  let root = -1;
  for (let i = 0; i < file.readUInt16LE(rootBucket + 10); i++) {
    const e = rootBucket + 16 + 16 * i;
    const key = file.subarray(e + file.readUInt32LE(e + 4), e + file.readUInt32LE(e + 4) + file.readUInt32LE(e + 8));
    if (Buffer.compare(key, name) === 0) root = Number(file.readBigUInt64LE(e + file.readUInt32LE(e + 4) + key.length));
  }
  assert.ok(root > 0, 'the bucket has a root page');
  let levels = 1;
  for (let p = page(root); file.readUInt16LE(p + 8) === 0x01; levels++) p = page(Number(file.readBigUInt64LE(p + 16 + 8)));
  return levels;
}

test('an empty database: no buckets, four pages', () => {
  const { size } = roundTrip([]);
  assert.equal(size, 4 * 4096, 'two metas, the root bucket leaf, the freelist');
});

test('empty buckets, one key, binary names', () => {
  roundTrip([{ name: b('a'), entries: [] }]);
  roundTrip([{ name: b('key'), entries: [{ key: b('k'), value: b('v') }] }]);
  roundTrip([
    { name: Buffer.from([0]), entries: [] },
    { name: Buffer.from([0, 0]), entries: [{ key: Buffer.from([0]), value: Buffer.from([0xff]) }] },
    { name: Buffer.from([0x7f, 0x80]), entries: [] },
    { name: Buffer.from([0xff, 0xfe, 0x00]), entries: [{ key: Buffer.from([0xff]), value: new Uint8Array(0) }] },
    { name: bytes(300, 0xff), entries: [] },
  ]);
});

test("etcd's buckets, the key bucket with revision keys", () => {
  const rev = (main: number, sub: number): Uint8Array => Buffer.concat([be64(main), b('_'), be64(sub)]);
  const names = ['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta'];
  const buckets = names.map((name) => ({
    name: b(name),
    entries: name === 'key' ? Array.from({ length: 3000 }, (_, i) => ({ key: rev(i + 2, i % 3), value: b(`value ${i}`) })) : [],
  }));
  roundTrip(buckets);
});

test('many keys over several branch levels, at three page sizes', () => {
  // 40-byte keys at 1 KiB pages: about 11 entries a leaf, 18 children a branch page.
  for (const [pageSize, count, pad, height] of [[1024, 20_000, 31, 4], [4096, 30_000, 0, 3], [65536, 30_000, 0, 2]] as const) {
    const prefix = Buffer.concat([b('k'), bytes(pad, 0x2d)]);
    const entries = Array.from({ length: count }, (_, i) => ({ key: Buffer.concat([prefix, be64(i * 7)]), value: bytes(i % 60, i & 0xff) }));
    const { path } = roundTrip([{ name: b('big'), entries }, { name: b('small'), entries: entries.slice(0, 3) }], pageSize);
    assert.equal(treeHeight(path, b('big')), height, `page size ${pageSize}`);
    assert.equal(treeHeight(path, b('small')), 1);
  }
});

test('values of 0 bytes, exactly a page, several pages; keys of 1 and 5000 bytes', () => {
  const page = 4096;
  roundTrip([
    {
      name: b('values'),
      entries: [
        { key: b('a'), value: new Uint8Array(0) },
        { key: b('b'), value: bytes(page, 1) },
        { key: b('c'), value: bytes(page - 16 - 16 - 1, 2) }, // fills a page exactly
        { key: b('d'), value: bytes(page - 16 - 16, 3) }, // one byte over
        { key: b('e'), value: bytes(3 * page + 17, 4) },
        { key: b('f'), value: bytes(1 << 20, 5) },
        { key: b('g'), value: new Uint8Array(0) },
      ],
    },
  ]);
  const longKeys = Array.from({ length: 40 }, (_, i) => ({ key: Buffer.concat([bytes(4999, 0x61 + (i % 26)), Buffer.from([i])]), value: b(`${i}`) }));
  longKeys.sort((x, y) => Buffer.compare(x.key, y.key));
  const { path } = roundTrip([{ name: b('keys'), entries: [{ key: Buffer.from([0]), value: b('one') }, ...longKeys] }]);
  // A leaf each; branch pages of two children (three for the odd one out), each a run of
  // three pages, as bbolt's own splits make them: 41 → 20 → 10 → 5 → 2 → 1.
  assert.equal(treeHeight(path, b('keys')), 6);
  const longest = { key: bytes(32768, 0x6b), value: bytes(10, 1) };
  roundTrip([{ name: bytes(32768, 0x6e), entries: [longest] }]);
});

/** Streams what `fill` gives into a new file at path; the size. */
function writeWith(path: string, fill: (w: BboltWriter) => void, pageSize?: number): number {
  const pieces: Buffer[] = [];
  const size = BboltWriter.stream(fill, () => undefined, (piece) => void pieces.push(Buffer.from(piece)), pageSize === undefined ? undefined : { pageSize });
  writeFileSync(path, Buffer.concat(pieces), { flag: 'wx' });
  return size;
}

test('keys and values are copied: the caller may reuse its buffers', () => {
  const path = newPath();
  writeWith(path, (w) => {
    const name = Buffer.from('bucket');
    w.bucket(name);
    name.fill(0);
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(4);
    for (let i = 0; i < 2000; i++) {
      key.writeUInt32BE(i);
      value.writeUInt32LE(i);
      w.put(key, value);
    }
  });
  const got = readAll(path);
  assert.deepEqual(got[0]?.name, Buffer.from('bucket'));
  assert.equal(got[0]?.entries.length, 2000);
  got[0]?.entries.forEach((e, i) => assert.equal(Buffer.from(e.value).readUInt32LE(), i));
});

test('writer misuse throws and leaves the writer as it was; a writer is done when its stream is', () => {
  const path = newPath();
  const writers: BboltWriter[] = [];
  const size = writeWith(path, (w) => {
    writers.push(w);
    assert.throws(() => w.put(b('k'), b('v')), /put before the first bucket/);
    assert.throws(() => w.bucket(new Uint8Array(0)), /empty bucket name/);
    w.bucket(b('m'));
    assert.throws(() => w.bucket(b('m')), /bucket "m" does not come after "m"/);
    assert.throws(() => w.bucket(b('a')), /bucket "a" does not come after "m"/);
    assert.throws(() => w.put(new Uint8Array(0), b('v')), /empty key in bucket "m"/);
    w.put(b('k2'), b('v'));
    assert.throws(() => w.put(b('k2'), b('v')), /key "k2" does not come after "k2" in bucket "m"/);
    assert.throws(() => w.put(b('k1'), b('v')), /key "k1" does not come after "k2"/);
    assert.throws(() => w.put(bytes(32769, 0xff), b('v')), /key of 32769 bytes/);
    w.put(b('k3'), b('v'));
    w.bucket(b('z'));
  });
  assert.equal(writers.length, 2, 'a dry run, then the stream');
  for (const w of writers) {
    assert.throws(() => w.put(b('k'), b('v')), /already finished/);
    assert.throws(() => w.bucket(b('zz')), /already finished/);
  }
  assert.equal(statSync(path).size, size);
  assert.deepEqual(readAll(path), normal([
    { name: b('m'), entries: [{ key: b('k2'), value: b('v') }, { key: b('k3'), value: b('v') }] },
    { name: b('z'), entries: [] },
  ]));
});

test('a fill that throws ends the stream with its error, before any byte', () => {
  let emitted = 0;
  const failure = new Error('the fill failed');
  assert.throws(
    () =>
      BboltWriter.stream(
        (w) => {
          w.bucket(b('a'));
          for (let i = 0; i < 5000; i++) w.put(be64(i), bytes(100, 1));
          throw failure;
        },
        () => undefined,
        () => void emitted++,
      ),
    (e) => e === failure,
  );
  assert.equal(emitted, 0, 'the dry run failed: nothing was emitted');
});

test('a bad page size is refused', () => {
  for (const pageSize of [0, 512, 3000, 131072]) {
    assert.throws(() => BboltWriter.stream(() => undefined, () => undefined, () => undefined, { pageSize }), /page size .* is not a power of two from 1024 to 65536/);
  }
});

/** A few buckets, one of them several levels deep. */
function sample(): Bucket[] {
  return [
    { name: b('alpha'), entries: [{ key: b('a1'), value: b('first') }, { key: b('a2'), value: b('second') }] },
    { name: b('key'), entries: Array.from({ length: 3000 }, (_, i) => ({ key: be64(i), value: b(`marker-${i}`) })) },
    { name: b('zeta'), entries: [] },
  ];
}

function sampleFile(pageSize?: number): { path: string; size: number; file: Buffer } {
  const path = newPath();
  const size = write(path, sample(), pageSize);
  return { path, size, file: readFileSync(path) };
}

function fnv1a64(data: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of data) h = ((h ^ BigInt(x)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

/** Sets meta page n's txid (re-signed, or with checksum 0: "not checked"). */
function setTxid(file: Buffer, pageSize: number, n: number, txid: number, checksum: 'sign' | 'zero'): void {
  const m = n * pageSize + 16;
  file.writeBigUInt64LE(BigInt(txid), m + 48);
  file.writeBigUInt64LE(checksum === 'sign' ? fnv1a64(file.subarray(m, m + 56)) : 0n, m + 56);
}

function rewritten(file: Buffer, change: (copy: Buffer) => void): string {
  const copy = Buffer.from(file);
  change(copy);
  const path = newPath();
  writeFileSync(path, copy);
  return path;
}

function refused(path: string, message: RegExp): void {
  assert.throws(() => readAll(path), (e) => e instanceof BboltFormatError && message.test(e.message), `expected ${message}`);
}

test('trailing bytes (the sha256 etcd appends) are ignored: nothing past the high-water mark is read', () => {
  const { path, size } = sampleFile();
  appendFileSync(path, Buffer.alloc(32, 0xee));
  appendFileSync(path, Buffer.alloc(4096 * 3, 0xab));
  const r = BboltReader.open(path);
  assert.equal(r.size, size);
  r.close();
  assert.deepEqual(readAll(path), normal(sample()));
});

test('the reader refuses what is not a bbolt database, saying what is wrong', () => {
  const { file, size } = sampleFile();
  const empty = newPath();
  writeFileSync(empty, '');
  refused(empty, /^not a bbolt database: meta page 0: missing \(the file ends before it\); meta page 1: missing/);
  const text = newPath();
  writeFileSync(text, 'x'.repeat(10_000));
  refused(text, /^not a bbolt database: meta page 0: bad magic 0x78787878; meta page 1: bad magic 0x78787878$/);
  const bothMetas = (change: (copy: Buffer, meta: number) => void): string =>
    rewritten(file, (copy) => {
      change(copy, 16);
      change(copy, 4096 + 16);
    });
  refused(bothMetas((c, m) => c.writeUInt32LE(3, m + 4)), /^not a bbolt database: meta page 0: version 3, not 2; meta page 1: version 3, not 2$/);
  refused(bothMetas((c, m) => (c[m + 16] = (c[m + 16] as number) ^ 1)), /meta page 0: checksum mismatch; meta page 1: checksum mismatch$/);
  const pages = size / 4096;
  const truncate = (bytesKept: number): string => {
    const path = newPath();
    writeFileSync(path, file.subarray(0, bytesKept));
    return path;
  };
  const truncated = new RegExp(`^truncated: the meta \\(txid \\d\\) counts ${pages} pages of 4096 bytes \\(${size}\\), the file has`);
  refused(truncate(size - 1), truncated);
  refused(truncate(Math.floor(size / 2)), truncated);
  refused(truncate(4096), truncated);
});

test('a damaged meta falls back to the other; of two valid metas the higher txid wins', () => {
  const { file } = sampleFile();
  const damage = (n: number) => (c: Buffer): void => {
    c[n * 4096 + 16 + 40] = (c[n * 4096 + 16 + 40] as number) ^ 0x80;
  };
  const txidOf = (path: string): number => {
    const r = BboltReader.open(path);
    r.close();
    return r.txid;
  };
  for (const [change, txid] of [
    [damage(1), 0],
    [damage(0), 1],
    [(c: Buffer) => setTxid(c, 4096, 0, 7, 'sign'), 7],
    [(c: Buffer) => setTxid(c, 4096, 0, 9, 'zero'), 9], // checksum 0 is not checked, as in bbolt
    [(c: Buffer) => setTxid(c, 4096, 1, 1, 'zero'), 1],
  ] as const) {
    const path = rewritten(file, change);
    assert.equal(txidOf(path), txid);
    assert.deepEqual(readAll(path), normal(sample()));
  }
});

test('with meta 0 damaged, a file of another page size does not open (bbolt then assumes 4096 too)', () => {
  const { file } = sampleFile(16384);
  refused(rewritten(file, (c) => (c[16 + 40] = (c[16 + 40] as number) ^ 1)), /meta page 0: checksum mismatch; meta page 1: bad magic 0x00000000$/);
  const intact = rewritten(file, () => {});
  assert.deepEqual(readAll(intact), normal(sample()));
});

test('damaged tree pages are BboltFormatErrors, never wrong data', () => {
  const { file } = sampleFile();
  const pageOf = (text: string): number => Math.floor(file.indexOf(Buffer.from(text)) / 4096) * 4096;
  const leaf = pageOf('marker-1500');
  refused(rewritten(file, (c) => c.writeUInt16LE(0x10, leaf + 8)), /^page \d+: not a leaf or branch page \(flags 0x10\)$/);
  refused(rewritten(file, (c) => c.writeUInt32LE(7, leaf)), /^bucket "key": page \d+ has the header of page 7$/);
  refused(rewritten(file, (c) => c.writeUInt32LE(5000, leaf + 16 + 4)), /^page \d+: element 0 points outside the page$/);
  refused(rewritten(file, (c) => c.writeUInt32LE(1, leaf + 16 + 16 + 16 + 8)), /^page \d+: key .* out of order in bucket "key"$/);
  refused(rewritten(file, (c) => c.writeUInt32LE(1, leaf + 16)), /^bucket "key" holds a nested bucket 0x[0-9a-f]{16} \(etcd's buckets hold none\)$/);
  refused(rewritten(file, (c) => c.writeUInt32LE(0xffff, leaf + 12)), /^bucket "key": page \d+ runs 65536 pages, past the high-water mark \d+$/);
  // The root bucket's entry for "alpha" names page 1 (a meta page) as the bucket's root.
  const alphaHeader = file.indexOf(Buffer.from('alpha')) + 5;
  refused(rewritten(file, (c) => c.writeUInt32LE(1, alphaHeader)), /^bucket "alpha": page 1 is outside the database \(pages 2 to \d+\)$/);
});

test('a file with random bytes damaged reads to its end or fails with a BboltFormatError, never otherwise (seeded)', () => {
  // etcdutl-ts reads files a user hands it: whatever is in them, the reader must end and say so.
  const { file } = sampleFile();
  const rand = new SeededRand(Number(process.env['BBOLT_SEED'] ?? 7));
  let refusedCount = 0;
  for (let run = 0; run < 200; run++) {
    const copy = Buffer.from(file);
    // A few bytes anywhere, most often in the page headers and elements where the structure is.
    for (let n = 1 + rand.intn(4); n > 0; n--) {
      const page = rand.intn(copy.length / bboltDefaultPageSize);
      const at = page * bboltDefaultPageSize + (rand.intn(2) === 0 ? rand.intn(64) : rand.intn(bboltDefaultPageSize));
      copy[at] = rand.intn(256);
    }
    const path = newPath();
    writeFileSync(path, copy);
    try {
      readAll(path);
    } catch (e) {
      assert.ok(e instanceof BboltFormatError, `run ${run}: ${String(e)}`);
      refusedCount++;
      continue;
    } finally {
      rmSync(path, { force: true });
    }
    // Read without an error: a byte the reader does not check (bbolt has no page checksums, so a
    // changed value or length reads as it now is, as bbolt would read it).
  }
  assert.ok(refusedCount > 20, `only ${refusedCount} of 200 damaged files were refused`);
});

test('entries(): undefined for a missing bucket, lazy, and readable again', () => {
  const { path } = sampleFile();
  const r = BboltReader.open(path);
  assert.equal(r.entries(b('nope')), undefined);
  assert.equal(r.entries(b('ke')), undefined);
  const key = r.entries(b('key'));
  assert.ok(key !== undefined);
  let n = 0;
  for (const e of key) {
    assert.deepEqual(Buffer.from(e.key), Buffer.from(be64(n)));
    if (++n === 10) break;
  }
  assert.equal([...key].length, 3000, 'iterated again from the start');
  assert.deepEqual(r.bucketNames().map((x) => Buffer.from(x).toString()), ['alpha', 'key', 'zeta']);
  r.close();
  assert.throws(() => [...key], /closed/);
  r.close();
});

/** Random bytes whose length is usually small and sometimes large. */
function randomBytes(rand: SeededRand, small: number, large: number, minLength: number): Buffer {
  const n = rand.intn(50) === 0 ? rand.intn(large + 1) : rand.intn(small + 1);
  const out = Buffer.alloc(Math.max(minLength, n));
  // Few distinct first bytes, so that keys share prefixes.
  for (let i = 0; i < out.length; i++) out[i] = i < 2 ? rand.intn(4) * 85 : rand.intn(256);
  return out;
}

function sortedUnique(items: Buffer[]): Buffer[] {
  items.sort((x, y) => Buffer.compare(x, y));
  return items.filter((x, i) => i === 0 || Buffer.compare(items[i - 1] as Buffer, x) !== 0);
}

function randomDb(rand: SeededRand): Bucket[] {
  const names = sortedUnique(Array.from({ length: rand.intn(6) }, () => randomBytes(rand, 12, 300, 1)));
  return names.map((name) => {
    const size = rand.intn(8) === 0 ? rand.intn(1500) : rand.intn(40);
    const keys = sortedUnique(Array.from({ length: size }, () => randomBytes(rand, 24, 6000, 1)));
    return { name, entries: keys.map((key) => ({ key, value: randomBytes(rand, 40, 20_000, 0) })) };
  });
}

test('random databases read back as written (seeded)', () => {
  const seed = Number(process.env['BBOLT_SEED'] ?? 20240601);
  const runs = Number(process.env['BBOLT_RUNS'] ?? 300);
  for (let run = 0; run < runs; run++) {
    const rand = new SeededRand(seed + run);
    const pageSize = [1024, 4096, 4096, 16384][rand.intn(4)] as number;
    const db = randomDb(rand);
    try {
      const { path } = roundTrip(db, pageSize);
      rmSync(path);
    } catch (e) {
      assert.fail(`seed ${seed + run} (page size ${pageSize}): ${String(e)}`);
    }
  }
});

test('a stream whose second fill gives other entries than its dry run fails', () => {
  let calls = 0;
  assert.throws(
    () =>
      BboltWriter.stream(
        (w) => {
          w.bucket(b('key'));
          const n = calls++ === 0 ? 10 : 400;
          for (let i = 0; i < n; i++) w.put(be64(i), bytes(100, 1));
        },
        () => undefined,
        () => undefined,
      ),
    /differ from the dry run/,
  );
});
