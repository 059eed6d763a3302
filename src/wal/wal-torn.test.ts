/**
 * Damage on disk: torn tails are cut away, everything else is refused with a
 * WalCorruptError naming the file and offset.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SeededRand } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { Wal, WalCorruptError, type WalOptions } from './index.js';
import { recordHeaderBytes } from './record.js';
import { copyDir, describeEntries, makeEntries, makeTmpDir, removeDir } from './test-helpers.js';

const root = makeTmpDir('torn');
after(() => removeDir(root));
let dirCount = 0;
function freshDir(): string {
  return join(root, `d${dirCount++}`);
}

const meta = new Uint8Array([9, 9, 9]);

interface Batch {
  entries: raftpb.Entry[];
  hardState: raftpb.HardState;
  file: string;
  start: number;
  end: number;
  /** Offsets of the records in this batch. */
  records: number[];
}

/** Writes batches of entries (sizes given) with a hard state each; returns where each landed. */
async function buildLog(dir: string, opts: WalOptions, sizes: readonly number[], lastPayloadBytes?: number): Promise<Batch[]> {
  const w = await Wal.create(dir, meta, opts);
  const out: Batch[] = [];
  let next = 1;
  for (const [k, n] of sizes.entries()) {
    const fixed = k === sizes.length - 1 && lastPayloadBytes !== undefined;
    const entries = fixed ? makeEntries(next, next + n - 1, 1, 1, lastPayloadBytes) : makeEntries(next, next + n - 1, 1, 300);
    next += n;
    const hardState = raftpb.HardState.create({ term: 1, commit: next - 1 });
    const before = w.position();
    await w.save(hardState, entries, true);
    const afterPos = w.position();
    const sameFile = afterPos.file === before.file;
    out.push({ entries, hardState, file: before.file, start: before.offset, end: sameFile ? afterPos.offset : -1, records: [] });
  }
  await w.close();
  for (const b of out) {
    if (b.end < 0) b.end = fs.statSync(b.file).size; // The batch that filled a segment ends where the file was trimmed.
    b.records = recordOffsets(fs.readFileSync(b.file), b.start, b.end);
  }
  return out;
}

function recordOffsets(buf: Buffer, start: number, end: number): number[] {
  const out: number[] = [];
  for (let off = start; off < end; ) {
    out.push(off);
    const n = buf.readUInt32LE(off);
    off += recordHeaderBytes + n + ((8 - (n % 8)) % 8);
  }
  return out;
}

function entriesOf(batches: readonly Batch[]): raftpb.Entry[] {
  return batches.flatMap((b) => b.entries);
}

function patch(file: string, fn: (buf: Buffer) => Buffer): void {
  fs.writeFileSync(file, fn(fs.readFileSync(file)));
}

function flipBit(file: string, byteOffset: number, bit: number): void {
  patch(file, (buf) => {
    buf[byteOffset] = (buf[byteOffset] as number) ^ (1 << bit);
    return buf;
  });
}

async function openAndClose(dir: string, opts: WalOptions) {
  const r = await Wal.open(dir, opts);
  await r.wal.close();
  return r;
}

async function expectCorrupt(dir: string, opts: WalOptions, file: string, offset: number, reason?: RegExp): Promise<void> {
  await assert.rejects(Wal.open(dir, opts), (e: unknown) => {
    assert.ok(e instanceof WalCorruptError, `expected WalCorruptError, got ${String(e)}`);
    assert.equal(e.code, 'wal-corrupt');
    assert.equal(basename(e.file), basename(file));
    assert.equal(e.offset, offset, e.message);
    if (reason !== undefined) assert.match(e.reason, reason);
    return true;
  });
  assert.equal(fs.existsSync(join(dir, 'LOCK')), false, 'a refused open releases the lock');
}

describe('torn tails are repaired', () => {
  for (const preallocate of ['none', 'sparse', 'zero'] as const) {
    test(`a tail cut at every byte offset of the last record recovers everything before it (preallocate=${preallocate})`, async () => {
      const opts: WalOptions = { segmentBytes: 8192, preallocate };
      const base = freshDir();
      const batches = await buildLog(base, opts, [3, 1, 2, 1], 300);
      assert.equal(batches.at(-1)?.records.length, 2);
      const last = batches[batches.length - 1] as Batch;
      const kept = batches.slice(0, -1);
      const [entryRecord, stateRecord] = last.records as [number, number];
      assert.ok(stateRecord - entryRecord > 300, 'the entry record is a few hundred bytes');
      for (let cut = last.start; cut < last.end; cut++) {
        const dir = freshDir();
        copyDir(base, dir);
        fs.truncateSync(join(dir, basename(last.file)), cut);
        const r = await Wal.open(dir, opts);
        // The entry survives once its record is whole; the hard state record after it never is.
        const expected = [...entriesOf(kept), ...(cut >= stateRecord ? last.entries : [])];
        assert.deepEqual(describeEntries(r.entries), describeEntries(expected), `cut at ${cut}`);
        assert.deepEqual(r.hardState, (kept[kept.length - 1] as Batch).hardState);
        if (cut % 37 === 0) {
          // The repaired log takes the lost batch again and reads back whole.
          await r.wal.save(last.hardState, last.entries, true);
          await r.wal.close();
          const r2 = await openAndClose(dir, opts);
          assert.deepEqual(describeEntries(r2.entries), describeEntries(entriesOf(batches)));
        } else {
          await r.wal.close();
        }
        removeDir(dir);
      }
    });
  }

  test('any unwritten sector of the last batch loses at most that batch, from the damaged record on', async () => {
    const opts: WalOptions = { segmentBytes: 16384 };
    const base = freshDir();
    const batches = await buildLog(base, opts, [2, 3, 12]);
    const last = batches[batches.length - 1] as Batch;
    const kept = entriesOf(batches.slice(0, -1));
    const firstSector = Math.floor(last.start / 512);
    const lastSector = Math.floor((last.end - 1) / 512);
    assert.ok(lastSector - firstSector >= 4);
    for (let s = firstSector; s <= lastSector; s++) {
      const dir = freshDir();
      copyDir(base, dir);
      const from = Math.max(s * 512, last.start);
      patch(join(dir, basename(last.file)), (buf) => buf.fill(0, from, (s + 1) * 512));
      const r = await openAndClose(dir, opts);
      // The records of the last batch that lie wholly before the zeroed sector survive.
      const survivors = last.records.filter((off, i) => (last.records[i + 1] ?? last.end) <= from && off < from).length;
      const expected = [...kept, ...last.entries.slice(0, survivors)];
      assert.deepEqual(describeEntries(r.entries), describeEntries(expected), `sector ${s}`);
      removeDir(dir);
    }
  });

  test('garbage in the pre-allocated zeros after the last record is cut away and zeroed', async () => {
    const opts: WalOptions = { segmentBytes: 8192 };
    const dir = freshDir();
    const batches = await buildLog(dir, opts, [2, 2]);
    const last = batches[batches.length - 1] as Batch;
    const file = last.file;
    patch(file, (buf) => {
      buf[last.end + 100] = 0x5a;
      buf[last.end + 2000] = 0x01;
      return buf;
    });
    const r = await openAndClose(dir, opts);
    assert.deepEqual(describeEntries(r.entries), describeEntries(entriesOf(batches)));
    const buf = fs.readFileSync(file);
    assert.equal(buf.length, 8192);
    assert.ok(buf.subarray(last.end).every((b) => b === 0));
  });

  test('a flipped bit inside a torn last record is still a torn record', async () => {
    const opts: WalOptions = { segmentBytes: 8192 };
    const dir = freshDir();
    const batches = await buildLog(dir, opts, [2, 6]);
    const last = batches[batches.length - 1] as Batch;
    // A record of the last batch that straddles a sector boundary with some payload before it.
    const i = last.records.findIndex((off, k) => Math.ceil((off + recordHeaderBytes + 8) / 512) * 512 < (last.records[k + 1] ?? last.end));
    assert.ok(i >= 0 && i < last.entries.length);
    const rec = last.records[i] as number;
    const sector = Math.ceil((rec + recordHeaderBytes + 8) / 512) * 512;
    patch(last.file, (buf) => buf.fill(0, sector, last.end));
    flipBit(last.file, rec + recordHeaderBytes + 3, 2);
    const r = await openAndClose(dir, opts);
    assert.deepEqual(describeEntries(r.entries), describeEntries([...entriesOf(batches.slice(0, -1)), ...last.entries.slice(0, i)]));
  });
});

describe('damage a crash cannot explain is refused', () => {
  test('a flipped bit in any record followed by later synced batches is refused at that record', async () => {
    const opts: WalOptions = { segmentBytes: 2048 };
    const base = freshDir();
    const batches = await buildLog(base, opts, [1, 2, 3, 1, 2, 4, 1, 3, 2, 5, 1, 1, 2, 3]);
    const files = [...new Set(batches.map((b) => b.file))];
    assert.ok(files.length >= 3, 'records in several segments');
    const rand = new SeededRand(7);
    // Every record but those of the final batch (which nothing after it shows was synced).
    const targets = batches.slice(0, -1).flatMap((b) => b.records.map((off) => ({ file: b.file, off })));
    for (const { file, off } of targets) {
      const dir = freshDir();
      copyDir(base, dir);
      const buf = fs.readFileSync(file);
      const n = buf.readUInt32LE(off);
      const byte = off + rand.intn(recordHeaderBytes + n);
      flipBit(join(dir, basename(file)), byte, rand.intn(8));
      await expectCorrupt(dir, opts, file, off);
      removeDir(dir);
    }
  });

  test('a zeroed sector in the middle of the log is refused: later records show it had been synced', async () => {
    const opts: WalOptions = { segmentBytes: 16384 };
    const dir = freshDir();
    const batches = await buildLog(dir, opts, [3, 8, 2, 2]);
    const mid = batches[1] as Batch;
    const sector = Math.ceil(((mid.records[2] as number) + 1) / 512) * 512;
    assert.ok(sector + 512 < mid.end);
    patch(mid.file, (buf) => buf.fill(0, sector, sector + 512));
    const damaged = [...mid.records].reverse().find((off) => off < sector) as number;
    await expectCorrupt(dir, opts, mid.file, damaged, /followed by a record at offset \d+ written after offset \d+ was synced/);
  });

  test('a complete last record with a bad checksum is refused (a crash leaves zeros, not flipped bits)', async () => {
    const opts: WalOptions = { segmentBytes: 8192 };
    const dir = freshDir();
    const batches = await buildLog(dir, opts, [2, 1]);
    const last = batches[batches.length - 1] as Batch;
    flipBit(last.file, (last.records[0] as number) + 40, 5);
    await expectCorrupt(dir, opts, last.file, last.records[0] as number, /crc mismatch/);
  });

  test('a huge length in a record is refused without allocating', async () => {
    const opts: WalOptions = { segmentBytes: 8192 };
    const dir = freshDir();
    const batches = await buildLog(dir, opts, [2, 2, 2]);
    const mid = batches[1] as Batch;
    const off = mid.records[1] as number;
    patch(mid.file, (buf) => {
      buf.writeUInt32LE(0xfffffff0, off);
      return buf;
    });
    await expectCorrupt(dir, opts, mid.file, off, /bad record length/);
  });

  test('a segment other than the last must end exactly at its last record', async () => {
    const opts: WalOptions = { segmentBytes: 2048 };
    const base = freshDir();
    const batches = await buildLog(base, opts, [2, 2, 2, 2, 2, 2, 2, 2]);
    const first = batches[0] as Batch;
    const size = fs.statSync(first.file).size;
    let dir = freshDir();
    copyDir(base, dir);
    fs.truncateSync(join(dir, basename(first.file)), size - 8);
    const lastOff = recordOffsets(fs.readFileSync(first.file), 0, size).at(-1) as number;
    await expectCorrupt(dir, opts, first.file, lastOff, /past end of file/);
    dir = freshDir();
    copyDir(base, dir);
    fs.truncateSync(join(dir, basename(first.file)), size + 512);
    await expectCorrupt(dir, opts, first.file, size, /zero record header/);
  });

  test('a missing segment and a segment from another history are refused', async () => {
    const opts: WalOptions = { segmentBytes: 2048 };
    const a = freshDir();
    await buildLog(a, opts, [4, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
    const names = fs.readdirSync(a).filter((n) => n.endsWith('.wal')).sort();
    assert.ok(names.length >= 4);
    const gap = freshDir();
    copyDir(a, gap);
    fs.rmSync(join(gap, names[1] as string));
    await expectCorrupt(gap, opts, names[2] as string, 0, /missing segment/);
    // Another log with the same metadata but other entries: its second segment does not chain on.
    const b = freshDir();
    await buildLog(b, opts, [3, 5, 4, 4, 4, 4, 4, 4, 4, 4]);
    const bNames = fs.readdirSync(b).filter((n) => n.endsWith('.wal')).sort();
    const mixed = freshDir();
    copyDir(a, mixed);
    for (const n of names.slice(1)) fs.rmSync(join(mixed, n));
    fs.copyFileSync(join(b, bNames[1] as string), join(mixed, bNames[1] as string));
    await expectCorrupt(mixed, opts, bNames[1] as string, 0, /crc chain broken/);
  });
});
