/**
 * The store against a naive model: a full copy of the live keys at every
 * revision plus a list of every key-bucket entry. Random puts, deletes,
 * txns (nested ones too, and several ops on one key at one revision),
 * compactions, ranges at random revisions with random options, HashKV, and
 * reopening the store between steps; at the end, a watch over the history
 * the compaction left, with prev_kv.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareBytes, crc32cUpdate, utf8 } from '../base/index.js';
import { etcdserverpb, mvccpb } from '../pb/index.js';
import { revisionToBytes } from '../schema/index.js';
import { isKvError } from './errors.js';
import { compactionRequest, deleteRangeRequest, hashKvRequest, putRequest, rangeRequest, txnRequest } from './kv-requests.js';
import { finishCompactions, hashKv, opDel, opGet, opPut, opTxn, show, withStore, type TestStore } from './testing.js';
import { checkTxnRequest } from './validate.js';
import { WatchableStore } from './watchable-store.js';

interface MKv {
  readonly key: string;
  readonly value: string;
  readonly create: number;
  readonly mod: number;
  readonly version: number;
  readonly lease: bigint;
}

interface BucketEntry {
  readonly main: number;
  readonly sub: number;
  readonly key: string;
  readonly tomb: boolean;
  readonly bytes: Uint8Array;
}

function toPb(kv: MKv): mvccpb.KeyValue {
  return mvccpb.KeyValue.create({ key: utf8(kv.key), value: utf8(kv.value), createRevision: kv.create, modRevision: kv.mod, version: kv.version, lease: kv.lease });
}

class Model {
  rev = 1;
  compactRev = -1;
  /** states[r]: the live keys at revision r. */
  readonly states: Map<string, MKv>[] = [new Map(), new Map()];
  bucket: BucketEntry[] = [];
  /** Every entry ever written, compacted or not (what a watch sees above the compact revision). */
  readonly log: BucketEntry[] = [];

  now(): Map<string, MKv> {
    return this.states[this.rev] as Map<string, MKv>;
  }

  /** Keys of [key, end) ("" end: the key alone, "\0": from key on) present in state. */
  span(state: Map<string, MKv>, key: string, end: string): MKv[] {
    const inSpan = (k: string): boolean => (end === '' ? k === key : end === '\u0000' ? k >= key : k >= key && k < end);
    return [...state.values()].filter((kv) => inSpan(kv.key)).sort((a, b) => compareBytes(utf8(a.key), utf8(b.key)));
  }

  /** Applies a write transaction's ops to a working copy; commits a revision if anything changed. */
  writeTxn(fn: (w: Writer) => void): void {
    const w = new Writer(this, new Map(this.now()));
    fn(w);
    if (w.sub > 0) {
      this.rev++;
      this.states[this.rev] = w.state;
    }
  }

  record(e: BucketEntry): void {
    this.bucket.push(e);
    this.log.push(e);
  }

  compact(rev: number): void {
    this.compactRev = rev;
    const keep = this.keep(rev);
    this.bucket = this.bucket.filter((e) => e.main > rev || keep.has(`${e.main}_${e.sub}`));
  }

  /** For each key, its newest entry at or below rev, unless that is a tombstone. */
  keep(rev: number): Set<string> {
    const newest = new Map<string, BucketEntry>();
    for (const e of this.bucket) if (e.main <= rev) newest.set(e.key, e);
    const out = new Set<string>();
    for (const e of newest.values()) if (!e.tomb) out.add(`${e.main}_${e.sub}`);
    return out;
  }

  hash(rev: number): number {
    const keep = this.keep(rev);
    let crc = crc32cUpdate(0, utf8('key'));
    for (const e of this.bucket) {
      if (e.main > rev) continue;
      if (e.main <= this.compactRev && keep.size > 0 && !keep.has(`${e.main}_${e.sub}`)) continue;
      crc = crc32cUpdate(crc32cUpdate(crc, revisionToBytes(e.main, e.sub, e.tomb)), e.bytes);
    }
    return crc;
  }
}

class Writer {
  sub = 0;
  constructor(
    private readonly m: Model,
    readonly state: Map<string, MKv>,
  ) {}

  get readRev(): number {
    return this.sub > 0 ? this.m.rev + 1 : this.m.rev;
  }

  put(key: string, value: string, lease: bigint): void {
    const prev = this.state.get(key);
    const rev = this.m.rev + 1;
    const kv: MKv = { key, value, create: prev?.create ?? rev, mod: rev, version: (prev?.version ?? 0) + 1, lease };
    this.state.set(key, kv);
    this.m.record({ main: rev, sub: this.sub++, key, tomb: false, bytes: mvccpb.KeyValue.encode(toPb(kv)) });
  }

  del(key: string, end: string): number {
    const gone = this.m.span(this.state, key, end);
    for (const kv of gone) {
      this.state.delete(kv.key);
      this.m.record({ main: this.m.rev + 1, sub: this.sub++, key: kv.key, tomb: true, bytes: mvccpb.KeyValue.encode(mvccpb.KeyValue.create({ key: utf8(kv.key) })) });
    }
    return gone.length;
  }
}

const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
const endArb = fc.constantFrom('', '', '', 'c', 'f', 'z', '\u0000');
const leaseArb = fc.constantFrom(0n, 0n, 1n, 2n);

type Step =
  | { kind: 'put'; key: string; value: string; lease: bigint; prevKv: boolean }
  | { kind: 'del'; key: string; end: string; prevKv: boolean }
  | ({ kind: 'txn'; then: TxnOp[]; else: TxnOp[] } & TxnCompare)
  | { kind: 'compact'; back: number }
  | { kind: 'range'; key: string; end: string; back: number; limit: number; countOnly: boolean }
  | { kind: 'hash'; back: number }
  | { kind: 'reopen' };

type TxnCompare = { cmpKey: string; cmpEnd: string; target: number; result: number; cmpValue: number };
type TxnOp =
  | { op: 'put'; key: string; value: string }
  | { op: 'del'; key: string; end: string }
  | { op: 'get'; key: string; end: string }
  | ({ op: 'txn'; then: TxnOp[]; else: TxnOp[] } & TxnCompare);

const compareArb = {
  cmpKey: keyArb,
  cmpEnd: endArb,
  target: fc.integer({ min: 0, max: 4 }),
  result: fc.integer({ min: 0, max: 3 }),
  cmpValue: fc.integer({ min: 0, max: 6 }),
};

const flatOpArb: fc.Arbitrary<TxnOp> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: keyArb, value: fc.constantFrom('x', 'y') }),
  fc.record({ op: fc.constant('del' as const), key: keyArb, end: endArb }),
  fc.record({ op: fc.constant('get' as const), key: keyArb, end: endArb }),
);

/** An op of a txn: now and then a nested txn, one level deep (etcd checks puts and deletes across nested txns differently). */
const txnOpArb: fc.Arbitrary<TxnOp> = fc.oneof(
  { weight: 6, arbitrary: flatOpArb },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('txn' as const), ...compareArb, then: fc.array(flatOpArb, { maxLength: 3 }), else: fc.array(flatOpArb, { maxLength: 3 }) }) },
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArb, value: fc.constantFrom('1', '2', '3'), lease: leaseArb, prevKv: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), key: keyArb, end: endArb, prevKv: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('txn' as const),
      ...compareArb,
      then: fc.array(txnOpArb, { maxLength: 4 }),
      else: fc.array(txnOpArb, { maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), back: fc.integer({ min: -1, max: 8 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('range' as const), key: keyArb, end: endArb, back: fc.integer({ min: -1, max: 12 }), limit: fc.integer({ min: 0, max: 3 }), countOnly: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hash' as const), back: fc.integer({ min: -1, max: 12 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

function req(key: string, end: string): { key: Uint8Array; rangeEnd: Uint8Array } {
  return { key: utf8(key), rangeEnd: utf8(end) };
}

function txnOpPb(o: TxnOp): etcdserverpb.RequestOp {
  switch (o.op) {
    case 'put':
      return opPut(etcdserverpb.PutRequest.create({ key: utf8(o.key), value: utf8(o.value) }));
    case 'del':
      return opDel(etcdserverpb.DeleteRangeRequest.create(req(o.key, o.end)));
    case 'get':
      return opGet(etcdserverpb.RangeRequest.create(req(o.key, o.end)));
    case 'txn':
      return opTxn(txnPb(o));
  }
}

function txnPb(s: TxnCompare & { then: TxnOp[]; else: TxnOp[] }): etcdserverpb.TxnRequest {
  return etcdserverpb.TxnRequest.create({ compare: [compareOf(s)], success: s.then.map(txnOpPb), failure: s.else.map(txnOpPb) });
}

function compareOf(s: TxnCompare): etcdserverpb.Compare {
  const unions: etcdserverpb.Compare_TargetUnion[] = [
    { case: 'version', value: s.cmpValue % 3 },
    { case: 'createRevision', value: s.cmpValue },
    { case: 'modRevision', value: s.cmpValue },
    { case: 'value', value: utf8(['1', '2', 'x'][s.cmpValue % 3] as string) },
    { case: 'lease', value: BigInt(s.cmpValue % 3) },
  ];
  return etcdserverpb.Compare.create({ key: utf8(s.cmpKey), rangeEnd: utf8(s.cmpEnd), target: s.target as etcdserverpb.Compare_CompareTarget, result: s.result as etcdserverpb.Compare_CompareResult, targetUnion: unions[s.target] });
}

function modelCompare(m: Model, c: etcdserverpb.Compare): boolean {
  const kvs = m.span(m.now(), Buffer.from(c.key).toString(), Buffer.from(c.rangeEnd).toString());
  if (kvs.length === 0 && c.target === 3) return false;
  const list = kvs.length === 0 ? [{ key: '', value: '', create: 0, mod: 0, version: 0, lease: 0n }] : kvs;
  return list.every((kv) => {
    const t = c.targetUnion;
    const have = [kv.version, kv.create, kv.mod, 0, Number(kv.lease)][c.target] as number;
    const r = c.target === 3 ? compareBytes(utf8(kv.value), t?.case === 'value' ? t.value : new Uint8Array()) : Math.sign(have - Number(t?.value ?? 0));
    return [r === 0, r > 0, r < 0, r !== 0][c.result];
  });
}

/** The txn's ops on the model; compares, nested ones included, see the state before the txn. */
function modelTxnOps(m: Model, w: Writer, request: etcdserverpb.TxnRequest, ops: { then: TxnOp[]; else: TxnOp[] }, got: string[]): boolean {
  const ok = modelCompare(m, request.compare[0] as etcdserverpb.Compare);
  const taken = ok ? ops.then : ops.else;
  const reqs = ok ? request.success : request.failure;
  taken.forEach((o, i) => {
    if (o.op === 'put') w.put(o.key, o.value, 0n);
    else if (o.op === 'del') got.push(`del ${w.del(o.key, o.end)}`);
    else if (o.op === 'get') got.push(`get ${m.span(w.state, o.key, o.end).map((kv) => show(toPb(kv))).join(' ')} @${w.readRev}`);
    else {
      const nested = (reqs[i] as etcdserverpb.RequestOp).request;
      assert(nested?.case === 'requestTxn');
      got.push(`txn ${modelTxnOps(m, w, nested.value, o, got)}`);
    }
  });
  return ok;
}

/** What the store answered, in the order modelTxnOps lists it. */
function txnAnswers(resp: etcdserverpb.TxnResponse, have: string[]): void {
  for (const r of resp.responses) {
    const v = r.response;
    if (v?.case === 'responseDeleteRange') have.push(`del ${v.value.deleted}`);
    if (v?.case === 'responseRange') have.push(`get ${v.value.kvs.map(show).join(' ')} @${v.value.header?.revision}`);
    if (v?.case === 'responseTxn') {
      txnAnswers(v.value, have);
      have.push(`txn ${v.value.succeeded}`);
    }
  }
}

function runTxn(t: TestStore, m: Model, s: Extract<Step, { kind: 'txn' }>): void {
  const request = txnPb(s);
  if (checkTxnRequest(request) !== undefined) return; // the API layer would reject it
  const got: string[] = [];
  let ok = false;
  m.writeTxn((w) => (ok = modelTxnOps(m, w, request, s, got)));
  const resp = txnRequest(t.store, request);
  assert.equal(resp.succeeded, ok);
  assert.equal(resp.header?.revision, m.rev);
  const have: string[] = [];
  txnAnswers(resp, have);
  assert.deepEqual(have, got);
}

function runRange(t: TestStore, m: Model, s: Extract<Step, { kind: 'range' }>): void {
  const rev = s.back < 0 ? 0 : m.rev - s.back;
  const r = etcdserverpb.RangeRequest.create({ ...req(s.key, s.end), revision: rev, limit: s.limit, countOnly: s.countOnly });
  if (rev > 0 && rev < m.compactRev) {
    assert.throws(() => rangeRequest(t.store, r), (e) => isKvError(e, 'compacted'));
    return;
  }
  if (rev > m.rev) return;
  const all = m.span(m.states[rev <= 0 ? m.rev : rev] as Map<string, MKv>, s.key, s.end);
  const resp = rangeRequest(t.store, r);
  assert.equal(resp.count, all.length);
  assert.equal(resp.header?.revision, m.rev);
  const want = s.countOnly ? [] : s.limit > 0 ? all.slice(0, s.limit) : all;
  assert.deepEqual(resp.kvs.map(show), want.map((kv) => show(toPb(kv))));
  assert.equal(resp.more, !s.countOnly && s.limit > 0 && all.length > s.limit);
}

async function runStep(t: TestStore, m: Model, s: Step): Promise<void> {
  switch (s.kind) {
    case 'put': {
      const prev = m.now().get(s.key);
      m.writeTxn((w) => w.put(s.key, s.value, s.lease));
      const resp = putRequest(t.store, etcdserverpb.PutRequest.create({ key: utf8(s.key), value: utf8(s.value), lease: s.lease, prevKv: s.prevKv }));
      assert.equal(resp.header?.revision, m.rev);
      assert.equal(show(resp.prevKv), s.prevKv && prev !== undefined ? show(toPb(prev)) : '-');
      return;
    }
    case 'del': {
      const prev = m.span(m.now(), s.key, s.end);
      let n = 0;
      m.writeTxn((w) => (n = w.del(s.key, s.end)));
      const resp = deleteRangeRequest(t.store, etcdserverpb.DeleteRangeRequest.create({ ...req(s.key, s.end), prevKv: s.prevKv }));
      assert.equal(resp.deleted, n);
      assert.equal(resp.header?.revision, m.rev);
      assert.deepEqual(resp.prevKvs.map(show), s.prevKv ? prev.map((kv) => show(toPb(kv))) : []);
      return;
    }
    case 'txn':
      return runTxn(t, m, s);
    case 'compact': {
      const rev = m.rev - s.back;
      if (rev <= m.compactRev || rev > m.rev) {
        assert.throws(() => compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: rev })), (e) => isKvError(e));
        return;
      }
      m.compact(rev);
      compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: rev }));
      await finishCompactions(t);
      return;
    }
    case 'range':
      return runRange(t, m, s);
    case 'hash': {
      const rev = s.back < 0 ? 0 : m.rev - s.back;
      if (rev > 0 && (rev <= m.compactRev || rev > m.rev)) {
        await assert.rejects(hashKvRequest(t.store, etcdserverpb.HashKVRequest.create({ revision: rev })), (e) => isKvError(e));
        return;
      }
      const resp = await hashKv(t, etcdserverpb.HashKVRequest.create({ revision: rev }));
      assert.equal(resp.hash, m.hash(rev === 0 ? m.rev : rev), `HashKV(${rev})`);
      assert.equal(resp.compactRevision, m.compactRev);
      return;
    }
    case 'reopen': {
      const leases = t.leases;
      await t.reopen(leases);
      assert.equal(t.store.rev, Math.max(m.rev, m.compactRev));
      return;
    }
  }
}

/**
 * A watch of every key from the revision after the compact one, with
 * prev_kv: every change since, in order, each with the key as of the
 * revision before.
 */
function checkWatch(t: TestStore, m: Model): void {
  const from = Math.max(m.compactRev + 1, 2);
  const want: string[] = [];
  for (const e of m.log) {
    if (e.main < from) continue;
    const kv = mvccpb.KeyValue.decode(e.bytes);
    if (e.tomb) kv.modRevision = e.main;
    const create = !e.tomb && kv.createRevision === kv.modRevision;
    const prev = create ? undefined : (m.states[e.main - 1] as Map<string, MKv>).get(e.key);
    want.push(`${e.tomb ? 'DEL' : 'PUT'} ${show(kv)} prev ${show(prev === undefined ? undefined : toPb(prev))}`);
  }
  const w = new WatchableStore(t.store, { timers: t.timers });
  try {
    const s = w.newWatchStream();
    s.watch({ key: utf8('\u0000'), rangeEnd: utf8('\u0000'), startRevision: from, prevKv: true });
    t.timers.advance(0);
    const have: string[] = [];
    for (let r = s.next(); r !== undefined; r = s.next()) {
      assert.equal(r.compactRevision, 0);
      for (const ev of r.events) have.push(`${ev.type === mvccpb.Event_EventType.DELETE ? 'DEL' : 'PUT'} ${show(ev.kv)} prev ${show(ev.prevKv)}`);
    }
    assert.deepEqual(have, want, `watch from ${from}`);
  } finally {
    w.close();
  }
}

/** Runs steps against a fresh store and the model, then checks every retained revision and the final HashKV. */
async function runHistory(steps: readonly Step[]): Promise<void> {
  await withStore(async (t) => {
    t.leases.live.add(1n);
    t.leases.live.add(2n);
    const m = new Model();
    for (const s of steps) await runStep(t, m, s);
    // Every retained revision reads back exactly.
    for (let rev = Math.max(m.compactRev, 1); rev <= m.rev; rev++) {
      const resp = rangeRequest(t.store, etcdserverpb.RangeRequest.create({ ...req('\u0000', '\u0000'), revision: rev }));
      assert.deepEqual(resp.kvs.map(show), m.span(m.states[rev] as Map<string, MKv>, '\u0000', '\u0000').map((kv) => show(toPb(kv))), `state at ${rev}`);
    }
    assert.equal((await hashKv(t, etcdserverpb.HashKVRequest.create())).hash, m.hash(m.rev));
    checkWatch(t, m);
    // HashKV's slices are 3 keys here: every hash above spans several.
  }, { hashSliceKeys: 3 });
}

test('property: mvcc matches a naive model of revisions, compaction, HashKV and a watch of the history left, across reopens', async () => {
  await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 45 }), runHistory), { numRuns: Number(process.env['MVCC_MODEL_RUNS'] ?? 300) });
});

test('model: histories the property found', async () => {
  const noOps = { cmpKey: 'a', cmpEnd: '', target: 0, result: 0, cmpValue: 0 } as const;
  // A compaction at a delete's revision with no key left: the store keeps the
  // tombstone (for watches from that revision), HashKV must not count it.
  await runHistory([
    { kind: 'put', key: 'a', value: '1', lease: 0n, prevKv: false },
    { kind: 'txn', ...noOps, then: [], else: [{ op: 'del', key: 'a', end: '' }] },
    { kind: 'compact', back: 0 },
    { kind: 'txn', ...noOps, then: [], else: [] },
  ]);
  // A transaction that deletes a key and puts it again (the "\0" range end
  // passes etcd's overlap check), compacted at its revision: the put stays.
  await runHistory([
    { kind: 'put', key: 'f', value: '1', lease: 0n, prevKv: false },
    { kind: 'txn', ...noOps, cmpValue: 4, then: [], else: [{ op: 'del', key: 'a', end: '\u0000' }, { op: 'put', key: 'f', value: 'x' }] },
    { kind: 'compact', back: 0 },
    { kind: 'range', key: 'a', end: '', back: 0, limit: 0, countOnly: false },
  ]);
});
