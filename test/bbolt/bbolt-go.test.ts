// src/backend/bbolt.ts against Debian's go.etcd.io/bbolt 1.3.6, the bbolt
// etcd 3.4.23 links. main.go is the Go side: it opens the files BboltWriter
// writes, runs tx.Check on them and dumps them, then writes to them as a
// later etcd would (splits, merges, a grown file, freed pages) and checks
// again; and it writes files of its own (inline buckets, a freelist, many
// commits) for BboltReader to read. Skipped when Go or the bbolt sources are
// not installed (apt-get install golang-go golang-github-coreos-bbolt-dev).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SeededRand } from '../../src/base/index.js';
import { BboltReader, BboltWriter, type BboltEntry } from '../../src/backend/index.js';
// etcd's key bucket keys, as etcd-ts's schema writes them.
import { revisionToBytes } from '../../src/schema/index.js';
import { goBuild, goMissing } from '../harness/go.js';

const sourceDir = resolve(import.meta.dirname, '../../../test/bbolt');

const skip = goMissing('go.etcd.io/bbolt', 'golang-github-coreos-bbolt-dev');
const buildTimeoutMs = 120_000;
const runTimeoutMs = 60_000;

interface Bucket {
  readonly name: Uint8Array;
  readonly entries: readonly BboltEntry[];
}

interface Case {
  readonly title: string;
  readonly pageSize?: number;
  readonly buckets: readonly Bucket[];
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const text = (s: string): Uint8Array => Buffer.from(s);

/** The dump format of main.go: size, then each bucket and its entries, in hex. */
function dumpOf(size: number, buckets: Iterable<Bucket>): string[] {
  const lines = [`size ${size}`];
  for (const b of buckets) {
    lines.push(`bucket ${hex(b.name)}`);
    for (const e of b.entries) lines.push(`${hex(e.key)} ${hex(e.value)}`);
  }
  return lines;
}

/** What BboltReader makes of the file, in main.go's dump format. */
function readerDump(path: string): string[] {
  const r = BboltReader.open(path);
  try {
    const lines = [`size ${r.size}`];
    for (const name of r.bucketNames()) {
      lines.push(`bucket ${hex(name)}`);
      for (const e of r.entries(name) ?? []) lines.push(`${hex(e.key)} ${hex(e.value)}`);
    }
    return lines;
  } finally {
    r.close();
  }
}

/** Equal line lists, or the first difference (cut short: values can be megabytes of hex). */
function assertSameLines(got: readonly string[], want: readonly string[], what: string): void {
  const cut = (s: string | undefined): string => (s === undefined ? '(none)' : s.length > 160 ? `${s.slice(0, 157)}...` : s);
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) assert.fail(`${what}: line ${i + 1} of ${got.length} (want ${want.length}):\n got  ${cut(got[i])}\n want ${cut(want[i])}`);
  }
}

/** The case's stream saved to a new file at path, as a client saving a snapshot does; its size. */
function write(path: string, c: Case): number {
  const fd = openSync(path, 'wx', 0o600);
  try {
    let told = -1;
    let written = 0;
    const size = BboltWriter.stream(
      (w) => {
        for (const b of c.buckets) {
          w.bucket(b.name);
          for (const e of b.entries) w.put(e.key, e.value);
        }
      },
      (n) => (told = n),
      (piece) => {
        for (let at = 0; at < piece.length; ) at += writeSync(fd, piece, at);
        written += piece.length;
      },
      c.pageSize === undefined ? undefined : { pageSize: c.pageSize },
    );
    assert.equal(told, size, 'the size told first');
    assert.equal(written, size, 'the bytes streamed');
    return size;
  } finally {
    closeSync(fd);
  }
}

function randomBytes(rand: SeededRand, n: number): Uint8Array {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = rand.intn(256);
  return out;
}

/** etcd's buckets, 50,000 revisions in "key", a 1 MiB value in "meta", some left empty. */
function etcdCase(seed: number, pageSize?: number): Case {
  const rand = new SeededRand(seed);
  const entries = (n: number, valueBytes: number): BboltEntry[] =>
    Array.from({ length: n }, (_, i) => ({ key: text(`k${String(i).padStart(6, '0')}`), value: randomBytes(rand, rand.intn(valueBytes + 1)) }));
  const byName: Record<string, BboltEntry[]> = {
    alarm: [],
    auth: [{ key: text('authEnabled'), value: Buffer.from([0]) }, { key: text('authRevision'), value: randomBytes(rand, 8) }],
    authRoles: [],
    authUsers: [],
    cluster: [{ key: text('clusterVersion'), value: text('3.4.0') }],
    key: Array.from({ length: 50_000 }, (_, i) => ({ key: revisionToBytes(2 + Math.floor(i / 3), i % 3), value: randomBytes(rand, rand.intn(200)) })),
    lease: entries(300, 40),
    members: entries(3, 120),
    members_removed: [],
    meta: [
      { key: text('consistent_index'), value: randomBytes(rand, 8) },
      { key: text('large'), value: randomBytes(rand, 1 << 20) },
      { key: text('scheduledCompactRev'), value: revisionToBytes(100, 0) },
    ],
  };
  const buckets = Object.keys(byName).sort().map((name) => ({ name: text(name), entries: byName[name] ?? [] }));
  return { title: `etcd's buckets, 50,000 keys, a 1 MiB value${pageSize === undefined ? '' : `, ${pageSize}-byte pages`}`, buckets, ...(pageSize === undefined ? {} : { pageSize }) };
}

/** Long keys, values around a page, binary names, at 1 KiB pages. */
function shapesCase(): Case {
  const rand = new SeededRand(7);
  const longKeys = Array.from({ length: 30 }, (_, i) => ({ key: Buffer.concat([Buffer.alloc(5000, 0x61), Buffer.from([i])]), value: randomBytes(rand, i * 50) }));
  const pageish = [0, 1, 990, 991, 992, 1024, 1025, 3000, 70_000].map((n, i) => ({ key: Buffer.from([0, i]), value: randomBytes(rand, n) }));
  return {
    title: '5000-byte keys, values around a page, binary names, 1 KiB pages',
    pageSize: 1024,
    buckets: [
      { name: Buffer.from([0]), entries: pageish },
      { name: Buffer.from([0x00, 0xff]), entries: [] },
      { name: Buffer.from('long'), entries: longKeys },
      { name: Buffer.from([0x7f]), entries: [{ key: Buffer.from([0xff]), value: new Uint8Array(0) }] },
      { name: Buffer.alloc(200, 0xff), entries: [] },
    ],
  };
}

describe("bbolt files against Debian's go.etcd.io/bbolt 1.3.6", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bbolt-go-'));
  const bin = join(dir, 'bbolt-check');

  before(() => goBuild(sourceDir, bin, buildTimeoutMs));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** main.go's output lines; its ERROR lines (tx.Check's among them) fail the test. */
  function go(args: readonly string[]): string[] {
    const run = spawnSync(bin, args, { encoding: 'utf8', timeout: runTimeoutMs, maxBuffer: 1 << 30 });
    const lines = run.stdout.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.filter((l) => l.startsWith('ERROR')), [], `bbolt-check ${args.join(' ')}: ${run.stderr}`);
    assert.equal(run.status, 0, `bbolt-check ${args.join(' ')}: ${run.error?.message ?? ''} ${run.stderr}`);
    return lines;
  }

  /** A dump without the inline count, which the TS side does not see. */
  const withoutInline = (lines: readonly string[]): string[] => lines.filter((l) => !l.startsWith('inline '));

  const cases = (): Case[] => [{ title: 'an empty database', buckets: [] }, etcdCase(1), etcdCase(2, 16384), shapesCase()];

  test('files BboltWriter writes pass tx.Check and read the same in Go; Go can write to them, and BboltReader reads the result as Go does', () => {
    for (const [i, c] of cases().entries()) {
      const path = join(dir, `ts-${i}.db`);
      const size = write(path, c);
      const want = dumpOf(size, c.buckets);
      const inGo = go(['check', path]);
      assert.equal(inGo[1], 'inline 0', 'BboltWriter inlines no bucket');
      assertSameLines(withoutInline(inGo), want, `${c.title}: Go's dump of the written file`);
      assertSameLines(readerDump(path), want, `${c.title}: BboltReader's dump`);

      go(['modify', path, String(i + 1)]);
      const modified = withoutInline(go(['check', path]));
      assert.ok(Number(modified[0]?.slice(5)) > size, `${c.title}: the file grew`);
      assertSameLines(readerDump(path), modified, `${c.title}: BboltReader's dump after Go wrote to the file`);
      const r = BboltReader.open(path);
      assert.equal(r.txid, 4, 'three commits after the two metas BboltWriter writes (txids 0 and 1)');
      r.close();
      rmSync(path);
    }
  });

  test('files bbolt writes over many commits (inline buckets, freed pages, 1 MiB values) read the same in BboltReader', () => {
    for (const [seed, pageSize] of [[1, 4096], [2, 1024], [3, 16384]] as const) {
      const path = join(dir, `go-${seed}.db`);
      const inGo = go(['write', path, String(seed), String(pageSize)]);
      assert.ok(Number(inGo[1]?.slice(7)) > 0, 'bbolt inlined some buckets');
      assertSameLines(readerDump(path), withoutInline(inGo), `seed ${seed}, ${pageSize}-byte pages`);
      const r = BboltReader.open(path);
      assert.equal(r.pageSize, pageSize);
      r.close();
      rmSync(path);
    }
  });
});
