import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c, crc32cUpdate } from '../base/index.js';
import { Backend, ManualTimers } from './index.js';

const names = ['auth', 'meta'];

test('keys longer than LMDB takes are stored, read, listed in order, deleted, kept across a reopen and a defrag', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'backend-long-keys-'));
  try {
    const open = (): Backend => Backend.open({ path: join(dir, 'db'), bucketNames: names, timers: new ManualTimers() });
    const long = (c: string, n: number): Buffer => Buffer.alloc(n, c);
    const keys = [Buffer.from('a'), long('b', 1931), long('b', 2000), long('c', 5000), Buffer.concat([long('c', 5000), Buffer.from('d')]), Buffer.from('z')];
    let be = open();
    const bucket = be.bucket('auth');
    be.write((tx) => keys.forEach((k, i) => tx.put(bucket, k, Buffer.from(`v${i}`))));
    await be.forceCommit();
    const listed = (b: Backend): string[] => b.range(bucket, new Uint8Array(0), undefined).map((e) => `${e.key.length}:${Buffer.from(e.value).toString()}`);
    const want = ['1:v0', '1931:v1', '2000:v2', '5000:v3', '5001:v4', '1:v5'];
    assert.deepEqual(listed(be), want);
    await be.close();
    be = open();
    assert.deepEqual(listed(be), want, 'after a reopen, read from LMDB');
    assert.deepEqual(Buffer.from(be.get(bucket, keys[3] as Buffer) ?? []).toString(), 'v3');
    assert.equal(be.get(bucket, long('c', 4999)), undefined, 'a key sharing the long one\'s prefix is another key');
    // A range whose bounds are long keys, and its keys alone (each long one read from its record).
    assert.deepEqual(be.range(bucket, keys[2] as Buffer, keys[4] as Buffer).map((e) => e.key.length), [2000, 5000]);
    const keysIn = (start: Uint8Array, end: Uint8Array | undefined): Buffer[] => be.keys(bucket, start, end).map((k) => Buffer.from(k));
    assert.deepEqual(keysIn(keys[2] as Buffer, keys[4] as Buffer), [keys[2], keys[3]]);
    assert.deepEqual(keysIn(new Uint8Array(0), undefined), keys);
    const viewed: string[] = [];
    const sums: string[] = [];
    be.forEachView(bucket, new Uint8Array(0), undefined, (k, v, sum) => {
      viewed.push(`${k.length}:${Buffer.from(v).toString()}`);
      // A long key's record is stored under a digest: its checksum is not that of this key and value.
      sums.push(sum === undefined ? `${k.length}: none` : `${k.length}: ${sum === crc32cUpdate(crc32c(k), v) ? 'right' : 'wrong'}`);
    });
    assert.deepEqual(viewed, want, 'views, long keys included');
    assert.deepEqual(sums, ['1: right', '1931: right', '2000: none', '5000: none', '5001: none', '1: right']);
    be.verify();
    await be.defrag();
    assert.deepEqual(listed(be), want, 'after a defrag');
    be.write((tx) => tx.delete(bucket, keys[3] as Buffer));
    await be.forceCommit();
    assert.equal(be.get(bucket, keys[3] as Buffer), undefined);
    assert.deepEqual(listed(be), ['1:v0', '1931:v1', '2000:v2', '5001:v4', '1:v5']);
    await be.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
