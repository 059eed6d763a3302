import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Backend, ManualTimers, isBackendCorrupt } from './index.js';

const names = ['key', 'meta'];

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backend-crc-test-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function openAt(dir: string): Backend {
  return Backend.open({ path: join(dir, 'db'), bucketNames: names, timers: new ManualTimers() });
}

/** A value that occurs once in the file, so that a flip can aim at it. */
function marker(i: number): Uint8Array {
  return Buffer.from(`value-${i}-${'x'.repeat(40)}-end`);
}

/** Flips one bit of the only occurrence of `bytes` in the file. */
function flipInFile(path: string, bytes: Uint8Array, offset: number, bit: number): void {
  const file = readFileSync(path);
  const at = file.indexOf(Buffer.from(bytes));
  assert.ok(at >= 0, 'the value is in the file');
  assert.equal(file.indexOf(Buffer.from(bytes), at + 1), -1, 'and only once');
  file[at + offset] = (file[at + offset] as number) ^ (1 << bit);
  writeFileSync(path, file);
}

async function written(dir: string, count: number): Promise<void> {
  const be = openAt(dir);
  const key = be.bucket('key');
  be.write((tx) => {
    for (let i = 0; i < count; i++) tx.put(key, Buffer.from([i]), marker(i));
  });
  await be.close();
}

test('values read back as written, the trailer never shows', withDir(async (dir) => {
  await written(dir, 5);
  const be = openAt(dir);
  const key = be.bucket('key');
  for (let i = 0; i < 5; i++) assert.deepEqual(Buffer.from(be.get(key, Buffer.from([i])) ?? []), Buffer.from(marker(i)));
  assert.deepEqual(be.range(key, new Uint8Array(0), undefined).map((e) => Buffer.from(e.value).toString()), [0, 1, 2, 3, 4].map((i) => Buffer.from(marker(i)).toString()));
  be.verify();
  await be.close();
}));

test('a flipped bit in a stored value is a BackendCorruptError on get, range and verify, never data', withDir(async (dir) => {
  await written(dir, 5);
  flipInFile(join(dir, 'db'), marker(3), 17, 5);
  const be = openAt(dir);
  const key = be.bucket('key');
  assert.deepEqual(Buffer.from(be.get(key, Buffer.from([2])) ?? []), Buffer.from(marker(2)), 'other records still read');
  assert.throws(() => be.get(key, Buffer.from([3])), (e) => isBackendCorrupt(e) && /bucket "key", key 03: checksum mismatch/.test(e.message));
  assert.throws(() => be.range(key, new Uint8Array(0), undefined), isBackendCorrupt);
  assert.deepEqual(be.range(key, new Uint8Array(0), Buffer.from([3])).length, 3, 'a range short of it reads');
  assert.throws(() => be.verify(), isBackendCorrupt);
  await be.close();
}));

test('every single-bit flip in a value is caught', withDir(async (dir) => {
  await written(dir, 1);
  const path = join(dir, 'db');
  const clean = readFileSync(path);
  const value = marker(0);
  for (let offset = 0; offset < value.length; offset += 7) {
    for (const bit of [0, 3, 6]) {
      writeFileSync(path, clean);
      flipInFile(path, value, offset, bit);
      const be = openAt(dir);
      assert.throws(() => be.get(be.bucket('key'), Buffer.from([0])), isBackendCorrupt, `offset ${offset} bit ${bit}`);
      await be.close();
    }
  }
}));

test('a defrag refuses to copy a corrupt record, and keeps the file as it was', withDir(async (dir) => {
  await written(dir, 3);
  flipInFile(join(dir, 'db'), marker(1), 9, 2);
  const be = openAt(dir);
  await assert.rejects(be.defrag(), isBackendCorrupt);
  assert.deepEqual(Buffer.from(be.get(be.bucket('key'), Buffer.from([0])) ?? []), Buffer.from(marker(0)));
  assert.throws(() => be.get(be.bucket('key'), Buffer.from([1])), isBackendCorrupt);
  await be.close();
}));

test('a file without the format mark is read unchecked, and a defrag adds the checksums', withDir(async (dir) => {
  const path = join(dir, 'db');
  // Written as before checksums: raw values, no mark.
  const env = open<Buffer, Buffer>({ path, noSubdir: true, maxDbs: names.length + 1, keyEncoding: 'binary', encoding: 'binary' });
  for (const n of names) env.openDB<Buffer, Buffer>(n, { keyEncoding: 'binary', encoding: 'binary' });
  await env.openDB<Buffer, Buffer>('key', { keyEncoding: 'binary', encoding: 'binary' }).put(Buffer.from([7]), Buffer.from(marker(7)));
  await env.close();
  const be = openAt(dir);
  const key = be.bucket('key');
  assert.deepEqual(Buffer.from(be.get(key, Buffer.from([7])) ?? []), Buffer.from(marker(7)));
  await be.defrag();
  assert.deepEqual(Buffer.from(be.get(key, Buffer.from([7])) ?? []), Buffer.from(marker(7)));
  await be.close();
  flipInFile(path, marker(7), 4, 1);
  const again = openAt(dir);
  assert.throws(() => again.get(again.bucket('key'), Buffer.from([7])), isBackendCorrupt, 'checked after the defrag');
  await again.close();
}));
