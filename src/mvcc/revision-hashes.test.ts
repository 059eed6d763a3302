import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32cUpdate } from '../base/index.js';
import { deleteRangeRequest, putRequest, txnRequest } from './kv-requests.js';
import { RevisionHashes } from './revision-hashes.js';
import { del, opDel, opPut, put, withStore, type TestStore } from './testing.js';

/** The digest of hashes in order, computed the plain way. */
function plainDigest(hashes: readonly number[]): number {
  const bytes = new Uint8Array(hashes.length * 4);
  const view = new DataView(bytes.buffer);
  hashes.forEach((h, i) => view.setUint32(i * 4, h, true));
  return crc32cUpdate(0, bytes);
}

test('revision hashes: a ring of the newest revisions; digests of spans it holds, and only those', () => {
  const r = new RevisionHashes(10, 4);
  assert.equal(r.digest(10, 10), 0, 'an empty span');
  assert.equal(r.digest(10, 11), undefined, 'a revision not applied yet');
  const h = (rev: number): number => (rev * 2654435761) >>> 0;
  for (let rev = 11; rev <= 13; rev++) r.push(rev, h(rev));
  assert.deepEqual([r.oldest, r.newest], [10, 13]);
  assert.equal(r.digest(10, 13), plainDigest([h(11), h(12), h(13)]));
  assert.equal(r.digest(11, 12), plainDigest([h(12)]));
  // Past capacity the oldest go; a span across the ring's end digests the same as in order.
  for (let rev = 14; rev <= 18; rev++) r.push(rev, h(rev));
  assert.deepEqual([r.oldest, r.newest], [14, 18]);
  assert.equal(r.digest(14, 18), plainDigest([h(15), h(16), h(17), h(18)]));
  assert.equal(r.digest(13, 18), undefined, 'revision 14 is gone');
  assert.equal(r.digest(16, 15), undefined);
  assert.throws(() => r.push(20, 1), /20 after 18/);
  r.reset(40);
  assert.deepEqual([r.oldest, r.newest], [40, 40]);
  assert.equal(r.digest(18, 40), undefined);
  r.push(41, 7);
  assert.equal(r.digest(40, 41), plainDigest([7]));
});

/** The same requests on a store: puts, a delete, a txn with a put and a delete, a put over an existing key. */
function history(t: TestStore, value5 = 'v5'): void {
  for (let i = 1; i <= 4; i++) putRequest(t.store, put(`k${i}`, `v${i}`));
  deleteRangeRequest(t.store, del('k2'));
  txnRequest(t.store, { compare: [], success: [opPut(put('k9', value5)), opDel(del('k3'))], failure: [] });
  putRequest(t.store, put('k1', 'again'));
}

test('revision hashes: two stores applying the same writes hash every revision alike; one different value differs from there', async () => {
  const digests: Array<{ oldest: number; newest: number; all: number | undefined; last: number | undefined }> = [];
  for (const value5 of ['v5', 'v5', 'v6']) {
    await withStore((t) => {
      history(t, value5);
      const r = t.store.revisionHashes;
      digests.push({ oldest: r.oldest, newest: r.newest, all: r.digest(r.oldest, r.newest), last: r.digest(r.newest - 1, r.newest) });
    });
  }
  const [a, b, c] = digests as [typeof digests[0], typeof digests[0], typeof digests[0]];
  assert.deepEqual([a.oldest, a.newest], [1, 8], 'seven write transactions after revision 1');
  assert.deepEqual(b, a);
  assert.deepEqual([c.oldest, c.newest], [1, 8]);
  assert.notEqual(c.all, a.all);
  assert.equal(c.last, a.last, 'the revision after the different one wrote the same');
});

test('revision hashes: a reopened store starts over at its revision; a write that changed nothing adds no revision', async () => {
  await withStore(async (t) => {
    history(t);
    const before = t.store.revisionHashes.newest;
    deleteRangeRequest(t.store, del('missing'));
    assert.equal(t.store.revisionHashes.newest, before);
    await t.reopen();
    const r = t.store.revisionHashes;
    assert.deepEqual([r.oldest, r.newest], [before, before]);
    putRequest(t.store, put('k1', 'after'));
    assert.deepEqual([r.oldest, r.newest], [before, before + 1]);
    assert.notEqual(r.digest(before, before + 1), undefined);
  });
});
