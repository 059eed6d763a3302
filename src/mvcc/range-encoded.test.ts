import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb } from '../pb/index.js';
import { isKvError } from './errors.js';
import { compactionRequest, deleteRangeRequest, putRequest, rangeEncoded, rangeRequest, type RangeSlice } from './kv-requests.js';
import type { KvStore } from './kv-store.js';
import { b, del, finishCompactions, get, put, withStore, TestLeases } from './testing.js';

const { SortOrder, SortTarget } = { SortOrder: etcdserverpb.RangeRequest_SortOrder, SortTarget: etcdserverpb.RangeRequest_SortTarget };

const header = (rev: number): etcdserverpb.ResponseHeader =>
  etcdserverpb.ResponseHeader.create({ clusterId: 0x1234n, memberId: 0xabcdn, revision: rev, raftTerm: 7 });

/** The bytes the gRPC service sent before rangeEncoded: rangeRequest's answer, encoded. */
function viaObjects(store: KvStore, r: etcdserverpb.RangeRequest): Buffer {
  const resp = rangeRequest(store, r);
  resp.header = header(resp.header?.revision ?? 0);
  return Buffer.from(etcdserverpb.RangeResponse.encode(resp));
}

const nextTick = (): Promise<void> => Promise.resolve();

/** Every slice size down to one key and one value at a time. */
const slices: readonly RangeSlice[] = [
  { indexKeys: 5000, kvs: 500, bytes: 512 * 1024 },
  { indexKeys: 1, kvs: 1, bytes: 1 },
  { indexKeys: 2, kvs: 3, bytes: 40 },
  { indexKeys: 3, kvs: 100, bytes: 1 << 20 },
];

function fill(store: KvStore, leases: TestLeases): void {
  leases.live.add(5n);
  for (let i = 0; i < 12; i++) putRequest(store, put(`k${String(i).padStart(2, '0')}`, 'v'.repeat(i * 20), { lease: i % 4 === 0 ? 5n : 0n }));
  putRequest(store, put('k03', 'again'));
  putRequest(store, put('k07', ''));
  deleteRangeRequest(store, del('k05'));
  putRequest(store, put('z', 'last'));
  putRequest(store, put('\u0001', 'first'));
}

test('encoded ranges equal the encoding of rangeRequest\'s answer, at once and in slices', () =>
  withStore(async (t) => {
    fill(t.store, t.leases);
    const rev = t.store.rev;
    const requests: Array<[string, etcdserverpb.RangeRequest]> = [
      ['one key', get('k03')],
      ['a missing key', get('nope')],
      ['a deleted key', get('k05')],
      ['a span', get('k', { rangeEnd: b('l') })],
      ['limit 1', get('k', { rangeEnd: b('l'), limit: 1 })],
      ['limit 3', get('k', { rangeEnd: b('l'), limit: 3 })],
      ['limit = count', get('k', { rangeEnd: b('l'), limit: 11 })],
      ['limit past count', get('k', { rangeEnd: b('l'), limit: 100 })],
      ['keys only', get('k', { rangeEnd: b('l'), keysOnly: true })],
      ['keys only, one key', get('k11', { keysOnly: true })],
      ['count only', get('k', { rangeEnd: b('l'), countOnly: true })],
      ['count only with limit', get('k', { rangeEnd: b('l'), countOnly: true, limit: 2 })],
      ['every key (range_end "\\0")', get('\u0000', { rangeEnd: b('\u0000') })],
      ['from a key on', get('k06', { rangeEnd: b('\u0000') })],
      ['an empty span', get('k5', { rangeEnd: b('k') })],
      ['descending', get('k', { rangeEnd: b('l'), sortOrder: SortOrder.DESCEND })],
      ['descending, limit 4', get('k', { rangeEnd: b('l'), sortOrder: SortOrder.DESCEND, limit: 4 })],
      ['descending by key, keys only, limit 2', get('k', { rangeEnd: b('l'), sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.KEY, keysOnly: true, limit: 2 })],
      ['ascending by key, limit 2', get('k', { rangeEnd: b('l'), sortOrder: SortOrder.ASCEND, limit: 2 })],
      ['an older revision', get('k', { rangeEnd: b('l'), revision: 8 })],
      ['an older revision, one key', get('k03', { revision: 5 })],
      ['the revision before the delete', get('k05', { revision: rev - 3 })],
    ];
    for (const [name, r] of requests) {
      const want = viaObjects(t.store, r);
      for (const slice of slices) {
        const got = rangeEncoded(t.store, r, header, slice, nextTick);
        assert.ok(got !== undefined, name);
        assert.deepEqual(Buffer.from(await got), want, `${name}, slices of ${JSON.stringify(slice)}`);
      }
    }
    // Filters and other sort targets read every kv as an object.
    for (const r of [
      get('k', { rangeEnd: b('l'), minModRevision: 3 }),
      get('k', { rangeEnd: b('l'), maxCreateRevision: 3 }),
      get('k', { rangeEnd: b('l'), sortTarget: SortTarget.MOD }),
      get('k', { rangeEnd: b('l'), sortOrder: SortOrder.ASCEND, sortTarget: SortTarget.VALUE }),
    ]) {
      assert.equal(rangeEncoded(t.store, r, header), undefined);
    }
    assert.throws(() => rangeEncoded(t.store, get('k03', { revision: rev + 1 }), header), (e) => isKvError(e, 'future-rev'));
  }));

test('a range in slices reads at its revision: writes in between do not show, and a compaction waits for it', () =>
  withStore(async (t) => {
    for (let i = 0; i < 10; i++) putRequest(t.store, put(`k${i}`, `old${i}`));
    const r = get('k', { rangeEnd: b('l') });
    const want = viaObjects(t.store, r);
    const gates: Array<() => void> = [];
    const turn = (): Promise<void> => new Promise((resolve) => gates.push(resolve));
    const got = rangeEncoded(t.store, r, header, { indexKeys: 3, kvs: 2, bytes: 1 << 20 }, turn);
    assert.ok(got instanceof Promise, 'more than one slice');
    let settled = false;
    void got.finally(() => (settled = true));
    // Between slices: every key overwritten and deleted, then a compaction past them all.
    for (let i = 0; i < 10; i++) putRequest(t.store, put(`k${i}`, `new${i}`));
    deleteRangeRequest(t.store, del('k', { rangeEnd: b('l') }));
    putRequest(t.store, put('k4', 'again'));
    compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: t.store.rev }));
    for (let i = 0; i < 20; i++) {
      t.timers.advance(10);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    assert.equal(t.store.schema.compactRevisions().finished, -1, 'the compaction waits for the read');
    for (let i = 0; i < 1000 && !settled; i++) {
      gates.shift()?.();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(Buffer.from(await got), want);
    await finishCompactions(t);
    assert.equal(t.store.schema.compactRevisions().finished, t.store.rev, 'then it runs');
    assert.throws(() => rangeEncoded(t.store, get('k0', { revision: 11 }), header), (e) => isKvError(e, 'compacted'));
    assert.equal(rangeRequest(t.store, get('k', { rangeEnd: b('l') })).count, 1);
  }));

test('a range in slices fails when its store closes', () =>
  withStore(async (t) => {
    for (let i = 0; i < 10; i++) putRequest(t.store, put(`k${i}`, `v${i}`));
    const gates: Array<() => void> = [];
    const turn = (): Promise<void> => new Promise((resolve) => gates.push(resolve));
    const got = rangeEncoded(t.store, get('k', { rangeEnd: b('l') }), header, { indexKeys: 2, kvs: 2, bytes: 1 << 20 }, turn);
    assert.ok(got instanceof Promise);
    const outcome = got.then(
      () => 'resolved',
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    t.store.close();
    gates.shift()?.();
    assert.match(await outcome, /store was closed/);
    await t.reopen();
  }));
