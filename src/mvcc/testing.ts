/**
 * Helpers for mvcc's tests (not part of the module's API): a store in a
 * temporary directory on hand-driven timers, request builders, a lease table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8, type LeaseId } from '../base/index.js';
import { ManualTimers } from '../backend/index.js';
import { etcdserverpb, type mvccpb } from '../pb/index.js';
import { Schema } from '../schema/index.js';
import { KvStore, type KvStoreOptions, type LeaseHooks } from './kv-store.js';
import { hashKvRequest } from './kv-requests.js';

export class TestLeases implements LeaseHooks {
  readonly live = new Set<LeaseId>();
  readonly keysOf = new Map<LeaseId, Set<string>>();
  readonly log: string[] = [];

  exists(id: LeaseId): boolean {
    return this.live.has(id);
  }

  attach(id: LeaseId, keys: readonly Uint8Array[]): void {
    for (const k of keys) {
      this.log.push(`attach ${id} ${Buffer.from(k).toString()}`);
      let set = this.keysOf.get(id);
      if (set === undefined) this.keysOf.set(id, (set = new Set()));
      set.add(Buffer.from(k).toString());
    }
  }

  detach(id: LeaseId, keys: readonly Uint8Array[]): void {
    for (const k of keys) {
      this.log.push(`detach ${id} ${Buffer.from(k).toString()}`);
      this.keysOf.get(id)?.delete(Buffer.from(k).toString());
    }
  }
}

export interface TestStore {
  readonly dir: string;
  readonly timers: ManualTimers;
  store: KvStore;
  leases: TestLeases;
  /** Closes and opens the store again over the same file (fresh lease table unless given). */
  reopen(leases?: TestLeases): Promise<KvStore>;
  close(): Promise<void>;
}

export async function withStore(
  fn: (t: TestStore) => Promise<void> | void,
  options: Partial<Omit<KvStoreOptions, 'schema'>> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mvcc-test-'));
  const timers = new ManualTimers();
  const open = (leases: TestLeases): KvStore => {
    const schema = Schema.open({ path: join(dir, 'db'), timers });
    return KvStore.open({ schema, leases, timers, ...options });
  };
  const leases = new TestLeases();
  const t: TestStore = {
    dir,
    timers,
    leases,
    store: open(leases),
    async reopen(next = new TestLeases()) {
      await t.close();
      t.leases = next;
      t.store = open(next);
      return t.store;
    },
    async close() {
      t.store.close();
      await t.store.backend.close();
    },
  };
  try {
    await fn(t);
    await t.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs ManualTimers and microtasks until the store's compactions are done. */
export async function finishCompactions(t: TestStore): Promise<void> {
  let done = false;
  void t.store.compactionsDone().then(() => (done = true));
  for (let i = 0; i < 100_000 && !done; i++) {
    t.timers.advance(10);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!done) throw new Error('compaction did not finish');
}

/** Runs ManualTimers and microtasks until p settles; returns what it gives. */
export async function runTimersUntil<T>(t: TestStore, p: Promise<T>): Promise<T> {
  let done = false;
  const watched = p.finally(() => (done = true));
  for (let i = 0; i < 100_000 && !done; i++) {
    t.timers.advance(1);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return watched;
}

/** HashKV of the test store, running ManualTimers between its slices. */
export function hashKv(t: TestStore, r: etcdserverpb.HashKVRequest): Promise<etcdserverpb.HashKVResponse> {
  return runTimersUntil(t, hashKvRequest(t.store, r));
}

export const b = utf8;

export function put(key: string, value: string, extra: Partial<etcdserverpb.PutRequest> = {}): etcdserverpb.PutRequest {
  return etcdserverpb.PutRequest.create({ key: utf8(key), value: utf8(value), ...extra });
}

export function get(key: string, extra: Partial<etcdserverpb.RangeRequest> = {}): etcdserverpb.RangeRequest {
  return etcdserverpb.RangeRequest.create({ key: utf8(key), ...extra });
}

export function del(key: string, extra: Partial<etcdserverpb.DeleteRangeRequest> = {}): etcdserverpb.DeleteRangeRequest {
  return etcdserverpb.DeleteRangeRequest.create({ key: utf8(key), ...extra });
}

export function opPut(p: etcdserverpb.PutRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: p } });
}

export function opGet(r: etcdserverpb.RangeRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: r } });
}

export function opDel(d: etcdserverpb.DeleteRangeRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestDeleteRange', value: d } });
}

export function opTxn(t: etcdserverpb.TxnRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestTxn', value: t } });
}

/** A one-line view of a KeyValue: key=value@create/mod/version(+lease). */
export function show(kv: mvccpb.KeyValue | undefined): string {
  if (kv === undefined) return '-';
  const lease = kv.lease !== 0n ? `+${kv.lease}` : '';
  return `${Buffer.from(kv.key).toString()}=${Buffer.from(kv.value).toString()}@${kv.createRevision}/${kv.modRevision}/${kv.version}${lease}`;
}

function txnOf(success: etcdserverpb.RequestOp[], failure: etcdserverpb.RequestOp[] = [], compare: etcdserverpb.Compare[] = []): etcdserverpb.TxnRequest {
  return etcdserverpb.TxnRequest.create({ compare, success, failure });
}

function delRange(key: string, rangeEnd: string): etcdserverpb.RequestOp {
  return opDel(del(key, { rangeEnd: utf8(rangeEnd) }));
}

/**
 * Txn requests and etcd's verdict on them (the v3rpc checks), shared by the
 * unit test and the differential test against the real etcd. `want` is the
 * error code, or undefined when etcd lets the request through.
 */
export const txnValidationCases: ReadonlyArray<{ readonly name: string; readonly txn: etcdserverpb.TxnRequest; readonly want: string | undefined }> = [
  { name: 'two puts of a key', txn: txnOf([opPut(put('v/a', '1')), opPut(put('v/a', '2'))]), want: 'duplicate-key' },
  { name: 'a put and a delete of a key', txn: txnOf([opPut(put('v/a', '1')), opDel(del('v/a'))]), want: 'duplicate-key' },
  { name: 'a delete then a put of a key', txn: txnOf([opDel(del('v/a')), opPut(put('v/a', '1'))]), want: 'duplicate-key' },
  { name: 'a put inside a deleted range', txn: txnOf([delRange('v/a', 'v/c'), opPut(put('v/b', '1'))]), want: 'duplicate-key' },
  { name: 'a put at the end of a deleted range', txn: txnOf([delRange('v/a', 'v/c'), opPut(put('v/c', '1'))]), want: undefined },
  { name: 'overlapping deletes', txn: txnOf([opDel(del('v/a')), delRange('v/a', 'v/z')]), want: undefined },
  { name: 'a put after a from-key delete (etcd misses it)', txn: txnOf([delRange('v/a', '\u0000'), opPut(put('v/b', '1'))]), want: undefined },
  { name: 'a nested put and an outer put', txn: txnOf([opTxn(txnOf([opPut(put('v/a', '1'))])), opPut(put('v/a', '2'))]), want: 'duplicate-key' },
  { name: 'one key in both branches of a nested txn', txn: txnOf([opTxn(txnOf([opPut(put('v/a', '1'))], [opPut(put('v/a', '2'))]))]), want: undefined },
  { name: 'the same put in two nested txns', txn: txnOf([opTxn(txnOf([opPut(put('v/a', '1'))])), opTxn(txnOf([opPut(put('v/a', '2'))]))]), want: 'duplicate-key' },
  { name: 'a nested delete over an outer put', txn: txnOf([opTxn(txnOf([delRange('v/a', 'v/c')])), opPut(put('v/b', '1'))]), want: 'duplicate-key' },
  { name: 'an outer delete over a nested put', txn: txnOf([opDel(del('v/b')), opTxn(txnOf([opPut(put('v/b', '1'))]))]), want: 'duplicate-key' },
  { name: 'a nested put after a nested delete', txn: txnOf([opTxn(txnOf([opDel(del('v/a'))])), opTxn(txnOf([opPut(put('v/a', '1'))]))]), want: 'duplicate-key' },
  { name: 'a nested delete after a nested put (etcd misses it)', txn: txnOf([opTxn(txnOf([opPut(put('v/a', '1'))])), opTxn(txnOf([opDel(del('v/a'))]))]), want: undefined },
  { name: 'then in one nested txn, else in another', txn: txnOf([opTxn(txnOf([opPut(put('v/a', '1'))])), opTxn(txnOf([], [opPut(put('v/a', '2'))]))]), want: 'duplicate-key' },
  { name: 'duplicates in the failure branch', txn: txnOf([], [opPut(put('v/a', '1')), opPut(put('v/a', '2'))]), want: 'duplicate-key' },
  { name: '129 ops', txn: txnOf(Array.from({ length: 129 }, (_, i) => opPut(put(`v/${i}`, '1')))), want: 'too-many-ops' },
  { name: '128 ops', txn: txnOf(Array.from({ length: 128 }, (_, i) => opPut(put(`v/${i}`, '1')))), want: undefined },
  {
    name: 'a nested txn over what its parent leaves',
    txn: txnOf([...Array.from({ length: 99 }, (_, i) => opPut(put(`v/${i}`, '1'))), opTxn(txnOf(Array.from({ length: 29 }, (_, i) => opPut(put(`w/${i}`, '1')))))]),
    want: 'too-many-ops',
  },
  { name: 'a compare without a key', txn: txnOf([], [], [etcdserverpb.Compare.create({ key: new Uint8Array(0) })]), want: 'empty-key' },
  { name: 'an empty op', txn: txnOf([etcdserverpb.RequestOp.create()]), want: 'key-not-found' },
  { name: 'a put with a value and ignore_value', txn: txnOf([opPut(put('v/a', 'x', { ignoreValue: true }))]), want: 'value-provided' },
  { name: 'a put with a lease and ignore_lease', txn: txnOf([opPut(put('v/a', '', { ignoreLease: true, lease: 5n }))]), want: 'lease-provided' },
  { name: 'a range without a key', txn: txnOf([opGet(get(''))]), want: 'empty-key' },
  { name: 'a delete without a key', txn: txnOf([opDel(del(''))]), want: 'empty-key' },
];
