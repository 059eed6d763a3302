import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb } from '../pb/index.js';
import { revisionToBytes } from '../schema/index.js';
import { isKvError } from './errors.js';
import {
  compactionRequest,
  deleteRangeRequest,
  hashKvRequest,
  putRequest,
  rangeRequest,
  txnRequest,
} from './kv-requests.js';
import { b, del, finishCompactions, get, hashKv, opDel, opGet, opPut, opTxn, put, runTimersUntil, show, withStore, TestLeases } from './testing.js';

const { SortOrder, SortTarget } = { SortOrder: etcdserverpb.RangeRequest_SortOrder, SortTarget: etcdserverpb.RangeRequest_SortTarget };
const CR = etcdserverpb.Compare_CompareResult;
const CT = etcdserverpb.Compare_CompareTarget;

function cmp(key: string, target: etcdserverpb.Compare_CompareTarget, result: etcdserverpb.Compare_CompareResult, union: etcdserverpb.Compare_TargetUnion, rangeEnd = ''): etcdserverpb.Compare {
  return etcdserverpb.Compare.create({ key: b(key), target, result, targetUnion: union, rangeEnd: b(rangeEnd) });
}

function keys(resp: etcdserverpb.RangeResponse): string {
  return resp.kvs.map(show).join(' ');
}

test('revisions: create, modify, delete, version reset; a write that changes nothing keeps the revision', () =>
  withStore(({ store }) => {
    assert.equal(store.rev, 1, 'a new store is at revision 1');
    assert.equal(putRequest(store, put('a', '1')).header?.revision, 2);
    assert.equal(putRequest(store, put('a', '2')).header?.revision, 3);
    assert.equal(keys(rangeRequest(store, get('a'))), 'a=2@2/3/2');
    const d = deleteRangeRequest(store, del('a'));
    assert.equal(d.deleted, 1);
    assert.equal(d.header?.revision, 4);
    const none = deleteRangeRequest(store, del('a'));
    assert.equal(none.deleted, 0);
    assert.equal(none.header?.revision, 4, 'deleting nothing does not bump the revision');
    putRequest(store, put('a', '3'));
    assert.equal(keys(rangeRequest(store, get('a'))), 'a=3@5/5/1', 'recreated: new create revision, version 1');
    assert.equal(keys(rangeRequest(store, get('a', { revision: 3 }))), 'a=2@2/3/2');
    assert.equal(rangeRequest(store, get('a', { revision: 4 })).kvs.length, 0);
    assert.equal(rangeRequest(store, get('a', { revision: 4 })).header?.revision, 5, 'the header carries the current revision');
  }));

test('ranges: count ignores limit and filters, more, keys_only, count_only, prefix and from-key', () =>
  withStore(({ store }) => {
    for (const [k, v] of [['a', 'z'], ['b', 'y'], ['c', 'x'], ['d', 'w'], ['e', 'v']]) putRequest(store, put(k as string, v as string));
    putRequest(store, put('b', 'yy'));
    const r = rangeRequest(store, get('a', { rangeEnd: b('e'), limit: 2 }));
    assert.equal(keys(r), 'a=z@2/2/1 b=yy@3/7/2');
    assert.equal(r.count, 4);
    assert.equal(r.more, true);
    assert.equal(rangeRequest(store, get('a', { rangeEnd: b('e'), limit: 4 })).more, false);
    const all = rangeRequest(store, get('\u0000', { rangeEnd: b('\u0000') }));
    assert.equal(all.count, 5);
    assert.equal(rangeRequest(store, get('c', { rangeEnd: b('\u0000') })).count, 3, 'range_end "\\0": every key from key on');
    assert.equal(rangeRequest(store, get('e', { rangeEnd: b('a') })).count, 0, 'key past range_end selects nothing');
    const ko = rangeRequest(store, get('a', { rangeEnd: b('c'), keysOnly: true }));
    assert.equal(keys(ko), 'a=@2/2/1 b=@3/7/2');
    const co = rangeRequest(store, get('a', { rangeEnd: b('z'), countOnly: true, limit: 1 }));
    assert.equal(co.kvs.length, 0);
    assert.equal(co.count, 5);
    assert.equal(co.more, false);
    const filtered = rangeRequest(store, get('a', { rangeEnd: b('z'), minModRevision: 4, maxModRevision: 6, limit: 1 }));
    assert.equal(keys(filtered), 'c=x@4/4/1');
    assert.equal(filtered.count, 5, 'count is taken before the filters');
    assert.equal(filtered.more, true, 'more counts the filtered keys past the limit');
    assert.equal(keys(rangeRequest(store, get('a', { rangeEnd: b('z'), minCreateRevision: 3, maxCreateRevision: 4 }))), 'b=yy@3/7/2 c=x@4/4/1');
  }));

test('ranges: every sort target and order, with etcd defaults', () =>
  withStore(({ store }) => {
    putRequest(store, put('c', '1'));
    putRequest(store, put('a', '3'));
    putRequest(store, put('b', '2'));
    putRequest(store, put('a', '0'));
    const order = (sortOrder: etcdserverpb.RangeRequest_SortOrder, sortTarget: etcdserverpb.RangeRequest_SortTarget, limit = 0): string =>
      rangeRequest(store, get('a', { rangeEnd: b('z'), sortOrder, sortTarget, limit })).kvs.map((kv) => Buffer.from(kv.key).toString()).join('');
    assert.equal(order(SortOrder.NONE, SortTarget.KEY), 'abc');
    assert.equal(order(SortOrder.ASCEND, SortTarget.KEY), 'abc');
    assert.equal(order(SortOrder.DESCEND, SortTarget.KEY), 'cba');
    assert.equal(order(SortOrder.NONE, SortTarget.VALUE), 'acb', 'a target other than KEY sorts ascending by default');
    assert.equal(order(SortOrder.DESCEND, SortTarget.VALUE), 'bca');
    assert.equal(order(SortOrder.ASCEND, SortTarget.CREATE), 'cab');
    assert.equal(order(SortOrder.DESCEND, SortTarget.MOD), 'abc');
    assert.equal(order(SortOrder.ASCEND, SortTarget.MOD), 'cba');
    assert.equal(order(SortOrder.DESCEND, SortTarget.VERSION), 'abc', 'ties keep key order');
    assert.equal(order(SortOrder.DESCEND, SortTarget.MOD, 2), 'ab', 'the limit applies after sorting');
    assert.equal(rangeRequest(store, get('a', { rangeEnd: b('z'), sortOrder: SortOrder.DESCEND, limit: 2 })).more, true);
  }));

test('ranges: more than 12 kvs that tie leave in the order of Go 1.19 sort.Sort, as from etcd 3.4.23', () =>
  withStore(({ store }) => {
    // Orders read from etcd 3.4.23 after the same puts (etcdctl get t/ --prefix --sort-by=... --order=...).
    const name = (i: number): string => `t/k${String(i).padStart(2, '0')}`;
    for (let i = 0; i < 40; i++) putRequest(store, put(name(i), `${(i * 7) % 3}`));
    const order = (sortOrder: etcdserverpb.RangeRequest_SortOrder, sortTarget: etcdserverpb.RangeRequest_SortTarget): string =>
      rangeRequest(store, get('t/', { rangeEnd: b('t0'), sortOrder, sortTarget })).kvs.map((kv) => Buffer.from(kv.key).toString().slice(3)).join(' ');
    assert.equal(order(SortOrder.ASCEND, SortTarget.VALUE), '15 39 36 03 33 30 06 27 24 09 00 21 12 18 10 04 16 01 13 19 37 34 22 31 28 25 07 14 08 29 05 23 32 26 11 35 02 20 38 17');
    assert.equal(order(SortOrder.DESCEND, SortTarget.VALUE), '14 38 02 35 32 05 29 26 08 23 20 11 17 10 04 01 16 37 34 19 13 31 22 28 07 25 00 24 09 06 30 21 27 33 36 03 18 12 15 39');
    for (let i = 0; i < 40; i += 4) putRequest(store, put(name(i), 'x'));
    assert.equal(order(SortOrder.ASCEND, SortTarget.VERSION), '30 34 02 03 39 05 18 07 38 09 10 11 37 13 14 15 35 19 06 01 17 21 22 23 33 25 26 27 31 29 00 28 32 24 20 16 36 12 08 04');
    assert.equal(order(SortOrder.DESCEND, SortTarget.VERSION), '00 36 32 28 04 24 20 16 08 12 10 25 09 13 14 15 07 17 18 19 06 21 22 23 05 11 26 27 03 29 30 31 02 33 34 35 01 37 38 39');
    // Keys are unique: by key, the order is the same whichever the algorithm.
    assert.equal(order(SortOrder.DESCEND, SortTarget.KEY).split(' ')[0], '39');
  }));

test('ranges at past revisions, compacted and future revisions', () =>
  withStore(async (t) => {
    const { store } = t;
    for (let i = 0; i < 5; i++) putRequest(store, put('k', `v${i}`));
    assert.equal(store.rev, 6);
    assert.throws(() => rangeRequest(store, get('k', { revision: 7 })), (e) => isKvError(e, 'future-rev') && e.message === 'etcdserver: mvcc: required revision is a future revision');
    const c = compactionRequest(store, etcdserverpb.CompactionRequest.create({ revision: 4 }));
    assert.equal(c.response.header?.revision, 6);
    assert.throws(() => rangeRequest(store, get('k', { revision: 3 })), (e) => isKvError(e, 'compacted') && e.message === 'etcdserver: mvcc: required revision has been compacted');
    assert.equal(keys(rangeRequest(store, get('k', { revision: 4 }))), 'k=v2@2/4/3', 'the compact revision itself is readable');
    assert.equal(keys(rangeRequest(store, get('k', { revision: -5 }))), 'k=v4@2/6/5', 'revision <= 0 is the current one');
    assert.throws(() => compactionRequest(store, etcdserverpb.CompactionRequest.create({ revision: 4 })), (e) => isKvError(e, 'compacted'));
    assert.throws(() => compactionRequest(store, etcdserverpb.CompactionRequest.create({ revision: 9 })), (e) => isKvError(e, 'future-rev'));
    await finishCompactions(t);
    await c.physical;
    assert.equal(keys(rangeRequest(store, get('k', { revision: 5 }))), 'k=v3@2/5/4');
  }));

test('put: prev_kv, ignore_value, ignore_lease, leases checked and attached', () =>
  withStore((t) => {
    const { store, leases } = t;
    assert.throws(() => putRequest(store, put('a', 'x', { lease: 7n })), (e) => isKvError(e, 'lease-not-found') && e.message === 'etcdserver: requested lease not found');
    leases.live.add(7n);
    leases.live.add(8n);
    const first = putRequest(store, put('a', 'x', { lease: 7n, prevKv: true }));
    assert.equal(first.prevKv, undefined);
    assert.throws(() => putRequest(store, put('nope', '', { ignoreValue: true })), (e) => isKvError(e, 'key-not-found') && e.message === 'etcdserver: key not found');
    assert.equal(store.rev, 2, 'a failed put changes nothing');
    const iv = putRequest(store, put('a', '', { ignoreValue: true, lease: 8n, prevKv: true }));
    assert.equal(show(iv.prevKv), 'a=x@2/2/1+7');
    assert.equal(keys(rangeRequest(store, get('a'))), 'a=x@2/3/2+8');
    putRequest(store, put('a', 'y', { ignoreLease: true }));
    assert.equal(keys(rangeRequest(store, get('a'))), 'a=y@2/4/3+8');
    deleteRangeRequest(store, del('a'));
    assert.deepEqual(leases.log, ['attach 7 a', 'detach 7 a', 'attach 8 a', 'detach 8 a', 'attach 8 a', 'detach 8 a']);
    assert.equal(leases.keysOf.get(8n)?.size, 0);
  }));

test('delete ranges return prev_kvs and one revision for all deleted keys', () =>
  withStore(({ store }) => {
    for (const k of ['a', 'b', 'c']) putRequest(store, put(k, k));
    const d = deleteRangeRequest(store, del('a', { rangeEnd: b('c'), prevKv: true }));
    assert.equal(d.deleted, 2);
    assert.equal(d.prevKvs.map(show).join(' '), 'a=a@2/2/1 b=b@3/3/1');
    assert.equal(d.header?.revision, 5);
    assert.equal(deleteRangeRequest(store, del('\u0000', { rangeEnd: b('\u0000') })).deleted, 1);
  }));

test('txn: compares on every target and result, missing keys, ranges of keys', () =>
  withStore((t) => {
    const { store, leases } = t;
    leases.live.add(5n);
    putRequest(store, put('a', 'v1', { lease: 5n }));
    putRequest(store, put('b', 'v2'));
    const ok = (...compare: etcdserverpb.Compare[]): boolean => txnRequest(store, etcdserverpb.TxnRequest.create({ compare })).succeeded;
    assert.equal(ok(cmp('a', CT.VERSION, CR.EQUAL, { case: 'version', value: 1 })), true);
    assert.equal(ok(cmp('a', CT.CREATE, CR.LESS, { case: 'createRevision', value: 3 })), true);
    assert.equal(ok(cmp('b', CT.MOD, CR.GREATER, { case: 'modRevision', value: 2 })), true);
    assert.equal(ok(cmp('a', CT.VALUE, CR.NOT_EQUAL, { case: 'value', value: b('v2') })), true);
    assert.equal(ok(cmp('a', CT.LEASE, CR.EQUAL, { case: 'lease', value: 5n })), true);
    assert.equal(ok(cmp('b', CT.LEASE, CR.EQUAL, { case: 'lease', value: 0n })), true);
    assert.equal(ok(cmp('zz', CT.MOD, CR.EQUAL, { case: 'modRevision', value: 0 })), true, 'a missing key compares as 0');
    assert.equal(ok(cmp('zz', CT.VALUE, CR.NOT_EQUAL, { case: 'value', value: b('x') })), false, 'a VALUE compare on a missing key fails');
    assert.equal(ok(cmp('a', CT.VERSION, CR.EQUAL, { case: 'version', value: 1 }, 'c')), true, 'every key in the range');
    assert.equal(ok(cmp('a', CT.MOD, CR.EQUAL, { case: 'modRevision', value: 2 }, 'c')), false, 'b fails it');
    assert.equal(ok(cmp('a', CT.MOD, CR.EQUAL, { case: 'version', value: 2 })), false, 'a mismatched union compares against 0');
    assert.equal(ok(cmp('a', CT.VERSION, CR.EQUAL, { case: 'version', value: 1 }), cmp('b', CT.VERSION, CR.EQUAL, { case: 'version', value: 9 })), false);
    assert.equal(store.rev, 3, 'compares alone change nothing');
  }));

test('txn: ops in order see their own writes, one revision, nested txns, sub-response headers', () =>
  withStore(({ store }) => {
    putRequest(store, put('x', '0'));
    const resp = txnRequest(
      store,
      etcdserverpb.TxnRequest.create({
        compare: [cmp('x', CT.VALUE, CR.EQUAL, { case: 'value', value: b('0') })],
        success: [
          opGet(get('x')),
          opPut(put('a', '1')),
          opGet(get('a')),
          opTxn(
            etcdserverpb.TxnRequest.create({
              // Nested compares see the store before the txn: "a" does not exist yet.
              compare: [cmp('a', CT.VERSION, CR.EQUAL, { case: 'version', value: 0 })],
              success: [opPut(put('b', '2')), opGet(get('a', { rangeEnd: b('z') }))],
              failure: [opPut(put('c', '3'))],
            }),
          ),
          opDel(del('x', { prevKv: true })),
        ],
        failure: [opPut(put('never', 'x'))],
      }),
    );
    assert.equal(resp.succeeded, true);
    assert.equal(resp.header?.revision, 3);
    assert.equal(store.rev, 3);
    const [r0, r1, r2, r3, r4] = resp.responses.map((r) => r.response);
    assert.equal(r0?.case === 'responseRange' && r0.value.header?.revision, 2, 'a range before any change sees the old revision');
    assert.equal(r1?.case === 'responsePut' && r1.value.header?.revision, 3);
    assert.equal(r2?.case === 'responseRange' && keys(r2.value), 'a=1@3/3/1');
    assert.equal(r2?.case === 'responseRange' && r2.value.header?.revision, 3);
    assert.ok(r3?.case === 'responseTxn');
    assert.equal(r3.value.succeeded, true);
    assert.equal(r3.value.header?.revision, 0, 'nested txn headers stay empty, as etcd');
    const nested = r3.value.responses[1]?.response;
    assert.equal(nested?.case === 'responseRange' && keys(nested.value), 'a=1@3/3/1 b=2@3/3/1 x=0@2/2/1');
    assert.equal(r4?.case === 'responseDeleteRange' && r4.value.prevKvs.map(show).join(), 'x=0@2/2/1');
    assert.equal(rangeRequest(store, get('c')).count, 0);
    const readOnly = txnRequest(store, etcdserverpb.TxnRequest.create({ success: [opGet(get('a'))] }));
    assert.equal(readOnly.header?.revision, 3);
    const noop = txnRequest(store, etcdserverpb.TxnRequest.create({ success: [opDel(del('gone'))] }));
    assert.equal(noop.header?.revision, 3, 'a txn that changes nothing keeps the revision');
  }));

test('txn: checks of the taken branch fail the whole txn before any change', () =>
  withStore(({ store, leases }) => {
    putRequest(store, put('a', '1'));
    compactionRequest(store, etcdserverpb.CompactionRequest.create({ revision: 2 }));
    const run = (...success: etcdserverpb.RequestOp[]): unknown => txnRequest(store, etcdserverpb.TxnRequest.create({ success }));
    assert.throws(() => run(opPut(put('b', '1')), opPut(put('nope', '', { ignoreValue: true }))), (e) => isKvError(e, 'key-not-found'));
    assert.throws(() => run(opPut(put('b', '1', { lease: 3n }))), (e) => isKvError(e, 'lease-not-found'));
    assert.throws(() => run(opPut(put('b', '1')), opGet(get('a', { revision: 9 }))), (e) => isKvError(e, 'future-rev'));
    assert.throws(() => run(opGet(get('a', { revision: 1 }))), (e) => isKvError(e, 'compacted'));
    assert.throws(() => run(opGet(get('a', { revision: -1 }))), (e) => isKvError(e, 'compacted'), 'as etcd: negative revisions in a txn are below the compact revision');
    assert.throws(() => run(opTxn(etcdserverpb.TxnRequest.create({ success: [opPut(put('c', '', { ignoreLease: true }))] }))), (e) => isKvError(e, 'key-not-found'));
    assert.equal(store.rev, 2);
    assert.equal(rangeRequest(store, get('b')).count, 0);
    leases.live.add(3n);
    run(opPut(put('b', '1', { lease: 3n })), opGet(get('a', { revision: 2 })));
    assert.equal(store.rev, 3);
  }));

test('HashKV in slices: a compaction begun between two slices makes it start over, and writes do not change it', () =>
  withStore(
    async (t) => {
      for (let i = 0; i < 40; i++) putRequest(t.store, put(`k${i % 10}`, `v${i}`));
      assert.equal(t.store.rev, 41);
      const req = etcdserverpb.HashKVRequest.create({ revision: 41 });
      const quietBefore = await hashKv(t, req);
      assert.equal(quietBefore.compactRevision, -1, 'never compacted');
      // The first slice is hashed at once; the rest wait for a timer.
      let settled = false;
      const busy = hashKvRequest(t.store, req).finally(() => (settled = true));
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.equal(settled, false, 'the hash is between two slices');
      compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 30 }));
      for (let i = 0; i < 5; i++) putRequest(t.store, put(`k${i}`, `later${i}`));
      await finishCompactions(t);
      const during = await runTimersUntil(t, busy);
      const quietAfter = await hashKv(t, req);
      assert.equal(during.compactRevision, 30, 'the hash started over at the new compact revision');
      assert.equal(during.hash, quietAfter.hash);
      assert.notEqual(quietAfter.hash, quietBefore.hash, 'the compaction changed which revisions count');
    },
    { hashSliceKeys: 4 },
  ));

test('state survives a reopen: revisions, history, compaction, leases re-attached', () =>
  withStore(async (t) => {
    t.leases.live.add(9n);
    putRequest(t.store, put('a', '1', { lease: 9n }));
    putRequest(t.store, put('b', '1', { lease: 9n }));
    putRequest(t.store, put('a', '2'));
    deleteRangeRequest(t.store, del('b'));
    putRequest(t.store, put('c', '1', { lease: 9n }));
    compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 3 }));
    await finishCompactions(t);
    const hash = (await hashKvRequest(t.store, etcdserverpb.HashKVRequest.create())).hash;
    const store = await t.reopen();
    assert.equal(store.rev, 6);
    assert.equal(store.compactRev, 3);
    assert.equal(keys(rangeRequest(store, get('a', { rangeEnd: b('z') }))), 'a=2@2/4/2 c=1@6/6/1+9');
    assert.equal(keys(rangeRequest(store, get('a', { revision: 3, rangeEnd: b('z') }))), 'a=1@2/2/1+9 b=1@3/3/1+9');
    assert.throws(() => rangeRequest(store, get('a', { revision: 2 })), (e) => isKvError(e, 'compacted'));
    assert.deepEqual(t.leases.log, ['attach 9 c'], 'only live keys with a lease are re-attached');
    assert.equal((await hashKvRequest(store, etcdserverpb.HashKVRequest.create())).hash, hash);
    assert.equal(putRequest(store, put('a', '3')).header?.revision, 7);
  }));

test('an interrupted compaction resumes at open', () =>
  withStore(
    async (t) => {
      for (let i = 0; i < 30; i++) putRequest(t.store, put(`k${i % 5}`, `${i}`));
      compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 25 }));
      // Let the first batch of deletes land, then "crash" (close without finishing).
      t.timers.advance(0);
      await new Promise<void>((resolve) => setImmediate(resolve));
      await t.store.backend.forceCommit();
      assert.deepEqual(t.store.schema.compactRevisions(), { scheduled: 25, finished: -1 });
      const store = await t.reopen(new TestLeases());
      assert.equal(store.compactRev, 25);
      await finishCompactions(t);
      assert.deepEqual(store.schema.compactRevisions(), { scheduled: 25, finished: 25 });
      let revisions = 0;
      store.backend.forEach(store.schema.buckets.key, new Uint8Array(0), undefined, () => void revisions++);
      assert.equal(revisions, 5 + 6, 'one kept version per key at 25, and the 6 later ones');
    },
    // The resumed compaction finds every record it removes (those the first batch removed are gone from the index too).
    { compactionBatchLimit: 4, onCorrupt: (e) => assert.fail(`no record is missing: ${e.message}`) },
  ));

test('a compaction that finds fewer records than the index dropped reports the backend damaged', () => {
  const found: string[] = [];
  return withStore(
    async (t) => {
      for (let i = 0; i < 30; i++) putRequest(t.store, put(`k${i % 5}`, `${i}`));
      // Two records of revisions the compaction removes vanish behind the index's back, as records
      // a damaged LMDB branch page routes seeks past would.
      t.store.backend.write((tx) => {
        for (const main of [3, 14]) tx.delete(t.store.schema.buckets.key, revisionToBytes(main, 0, false));
      });
      compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 25 }));
      await finishCompactions(t);
      assert.deepEqual(found, ['compaction at revision 25 found 17 of the 19 records it removes']);
      // A whole file: nothing reported.
      for (let i = 0; i < 10; i++) putRequest(t.store, put(`k${i % 5}`, `again ${i}`));
      compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 35 }));
      await finishCompactions(t);
      assert.equal(found.length, 1);
    },
    { compactionBatchLimit: 4, onCorrupt: (e) => void found.push(e.message.replace(/^.*: compaction/, 'compaction')) },
  );
});

test('deleteKeys deletes a lease\'s keys at one revision, skipping missing ones', () =>
  withStore(({ store }) => {
    putRequest(store, put('a', '1'));
    putRequest(store, put('b', '1'));
    store.deleteKeys([b('a'), b('b'), b('zz')]);
    assert.equal(store.rev, 4);
    assert.equal(rangeRequest(store, get('a', { rangeEnd: b('z') })).count, 0);
  }));
