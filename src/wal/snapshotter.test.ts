import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { raftpb } from '../pb/index.js';
import { SnapshotCorruptError, Snapshotter } from './index.js';
import { decodeSnapFile, encodeSnapFile } from './snapshotter.js';
import { makeTmpDir, payloadFor, removeDir } from './test-helpers.js';

const root = makeTmpDir('snap');
after(() => removeDir(root));
let n = 0;
function snapDir(): string {
  return join(root, `s${n++}`);
}

function snap(index: number, term: number): raftpb.Snapshot {
  return raftpb.Snapshot.create({
    data: payloadFor(index, term, 2000),
    metadata: raftpb.SnapshotMetadata.create({ index, term, confState: raftpb.ConfState.create({ voters: [1n, 2n], learners: [3n] }) }),
  });
}

const marker = (index: number, term: number) => ({ index, term });

test('save then load the newest snapshot whose marker is in the WAL', async () => {
  const dir = snapDir();
  const s = new Snapshotter(dir);
  assert.equal(await s.loadNewestAvailable([marker(5, 1)]), undefined, 'no directory yet');
  await s.save(snap(5, 1));
  await s.save(snap(10, 1));
  await s.save(snap(20, 2));
  assert.deepEqual(fs.readdirSync(dir).sort(), [
    '0000000000000001-0000000000000005.snap',
    '0000000000000001-000000000000000a.snap',
    '0000000000000002-0000000000000014.snap',
  ]);
  assert.deepEqual(await s.loadNewestAvailable([marker(5, 1), marker(10, 1), marker(20, 2)]), snap(20, 2));
  // A snap file without its marker (its WAL record never made it) is not used.
  assert.deepEqual(await s.loadNewestAvailable([marker(5, 1), marker(10, 1)]), snap(10, 1));
  assert.deepEqual(await s.loadNewestAvailable([marker(0, 0), marker(10, 2)]), undefined);
});

test('a corrupt snap file is renamed .broken and the next older one is used', async () => {
  const dir = snapDir();
  const s = new Snapshotter(dir);
  for (const i of [3, 6, 9]) await s.save(snap(i, 1));
  const markers = [marker(3, 1), marker(6, 1), marker(9, 1)];
  const newest = join(dir, '0000000000000001-0000000000000009.snap');
  const buf = fs.readFileSync(newest);
  buf[buf.length - 10] = (buf[buf.length - 10] as number) ^ 0x10;
  fs.writeFileSync(newest, buf);
  fs.truncateSync(join(dir, '0000000000000001-0000000000000006.snap'), 100);
  assert.deepEqual(await s.loadNewestAvailable(markers), snap(3, 1));
  assert.deepEqual(fs.readdirSync(dir).sort(), [
    '0000000000000001-0000000000000003.snap',
    '0000000000000001-0000000000000006.snap.broken',
    '0000000000000001-0000000000000009.snap.broken',
  ]);
});

test('decoding refuses every kind of damage with SnapshotCorruptError', () => {
  const good = encodeSnapFile(snap(7, 2));
  assert.deepEqual(decodeSnapFile(good, 'f'), snap(7, 2));
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['short', (b) => b.subarray(0, 10), /shorter than its header/],
    ['magic', (b) => (b.writeUInt32LE(0, 0), b), /bad header/],
    ['length', (b) => (b.writeUInt32LE(0xffffffff, 8), b), /does not match the file size/],
    ['truncated body', (b) => b.subarray(0, b.length - 1), /does not match the file size/],
    ['crc', (b) => ((b[20] = (b[20] as number) ^ 1), b), /crc mismatch/],
  ];
  for (const [name, damage, reason] of cases) {
    assert.throws(
      () => decodeSnapFile(damage(Buffer.from(good)), 'f'),
      (e: unknown) => e instanceof SnapshotCorruptError && e.code === 'snap-corrupt' && reason.test(e.reason),
      name,
    );
  }
  // A well-formed file whose body is not a snapshot.
  const junk = Buffer.alloc(16 + 3);
  junk.set([0xff, 0xff, 0xff], 16);
  const reencoded = encodeSnapFile(snap(1, 1));
  reencoded.copy(junk, 0, 0, 16);
  junk.writeUInt32LE(3, 8);
  assert.throws(() => decodeSnapFile(junk, 'f'), SnapshotCorruptError);
});

test('a file whose contents do not match its name is skipped as corrupt', async () => {
  const dir = snapDir();
  const s = new Snapshotter(dir);
  await s.save(snap(4, 1));
  fs.copyFileSync(join(dir, '0000000000000001-0000000000000004.snap'), join(dir, '0000000000000001-0000000000000008.snap'));
  assert.deepEqual(await s.loadNewestAvailable([marker(4, 1), marker(8, 1)]), snap(4, 1));
  assert.ok(fs.existsSync(join(dir, '0000000000000001-0000000000000008.snap.broken')));
});

test('purge keeps the newest files and removes leftover temporaries', async () => {
  const dir = snapDir();
  const s = new Snapshotter(dir);
  for (const i of [1, 2, 3, 4, 5, 6]) await s.save(snap(i * 10, 1 + (i >> 2)));
  fs.writeFileSync(join(dir, '0000000000000001-0000000000000063.snap.tmp'), 'partial');
  await s.purge(2);
  assert.deepEqual(
    s.snapNames().map((x) => x.index),
    [60, 50],
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), ['0000000000000002-0000000000000032.snap', '0000000000000002-000000000000003c.snap']);
});
