// The KV service against the real etcd 3.4.23, driven by a seeded PRNG: the
// same random Puts, Ranges, DeleteRanges, Txns and Compacts (and a few lease
// grants and revokes) go to both servers in lockstep over a small key space
// (keys with \x00 and \xff bytes among them), so that ranges, compares and
// duplicate-key checks hit. Every answer must be equal: status, message, each
// response decoded and its bytes, but for the header's cluster id, member id
// and raft term. Halfway both members are killed or stopped and started again.
// A watch of every key from revision 1 on each side (opened again after the
// restart) must have seen the same events at the end, and HashKV must agree.
// Around the random run: compactions of a fresh store, keys over the request
// limits, the txn op limit across nested txns.
//
// One difference is kept on purpose, and kept out of the run: etcd 3.4.23
// applies an entry no client waits for (a follower's, or one replayed after a
// restart) without the ranges of its txn, so a txn refused for a range at a
// future or compacted revision is applied by a replay and the history clients
// saw changes; etcd-ts applies every entry the same way everywhere.
//
// KV_RANDOM_SEED picks the sequence (the default is fixed), KV_RANDOM_OPS its
// length; a failure names the seed and the step.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixRangeEnd } from '../../src/client/index.js';
import { SeededRand } from '../../src/base/index.js';
import { etcdserverpb, mvccpb } from '../../src/pb/index.js';
import type { MethodInfo } from '../../src/pb/runtime.js';
import { Choices, compared, delay, etcdMissing, methods, plain, RawGrpc, stopPair, useEtcdPair, type RawAnswer, type RawStream } from '../harness/index.js';

const pb = etcdserverpb;
const seed = Number(process.env['KV_RANDOM_SEED'] ?? '20261207');
const opsCount = Number(process.env['KV_RANDOM_OPS'] ?? '300');
/** Both members restart (killed or stopped, as the seed picks) halfway. */
const restartAt = Math.floor(opsCount / 2);

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
/**
 * Twelve keys: near each other, with \x00 and \xff bytes, the smallest and one of the largest,
 * two longer than LMDB's keys (511 bytes).
 */
const keys = ['\x00', 'a', 'a\x00', 'a\xff', 'ab', 'b', 'b\x00\xff', 'b\xff\xff', `c${'x'.repeat(600)}`, `c${'x'.repeat(600)}\x00`, '\xff', '\xff\xff'].map(bytes);
/** Keys written many at a time, with few distinct values, for sorts with many ties (Go's sort.Sort is not stable past 12). */
const wideKeys = Array.from({ length: 60 }, (_, i) => bytes(`w${String(i).padStart(2, '0')}`));
const values = ['', 'v', 'value', '\x00', '\xff\xfe', 'v\x00v'].map(bytes);
/** Leases granted before the run (ids chosen: etcd and etcd-ts pick different random ones), and one never granted. */
const leaseIds = [0x1001n, 0x1002n, 0x1003n];
const leaseUnknown = 0x9999n;
const leaseTtl = 600;

const rangeOp = (value: etcdserverpb.RangeRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestRange', value } });
const putOp = (value: etcdserverpb.PutRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestPut', value } });
const deleteOp = (value: etcdserverpb.DeleteRangeRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestDeleteRange', value } });
const txnOp = (value: etcdserverpb.TxnRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestTxn', value } });

/** Every op of a txn's branches, nested ones too, in the order they run when their branch runs. */
function* opsOf(ops: readonly etcdserverpb.RequestOp[]): Generator<etcdserverpb.RequestOp> {
  for (const op of ops) {
    yield op;
    if (op.request?.case === 'requestTxn') yield* [...opsOf(op.request.value.success), ...opsOf(op.request.value.failure)];
  }
}

/**
 * A delete from a key to the end ("\0") is no write of any key to the duplicate check, so
 * a later put in the txn may name a key it deleted; with ignore_value or ignore_lease that
 * put finds no key, and etcd 3.4 panics ("unexpected error during txn"), as etcd-ts stops.
 * Such puts after such a delete lose their ignore flags (when valid without them).
 */
function forgoIgnoresAfterFromKeyDeletes(txn: etcdserverpb.TxnRequest): void {
  for (const branch of [txn.success, txn.failure]) {
    let fromKeyDelete = false;
    for (const op of opsOf(branch)) {
      const r = op.request;
      if (r?.case === 'requestDeleteRange' && r.value.rangeEnd.length === 1 && r.value.rangeEnd[0] === 0) fromKeyDelete = true;
      if (r?.case === 'requestPut' && fromKeyDelete) {
        if (r.value.ignoreValue && r.value.value.length === 0) r.value.ignoreValue = false;
        if (r.value.ignoreLease && r.value.lease === 0n) r.value.ignoreLease = false;
      }
    }
  }
}

/** Random requests over the key space; revisions are chosen near what the servers have (rev, compacted). */
class Requests extends Choices {
  /** The store's revision and compacted revision, from etcd's answers. */
  rev = 1;
  compacted = 0;

  key(): Uint8Array {
    return this.pick(keys);
  }

  /** Empty (one key), "\0" (every key from key), a prefix's end, any key of the space (maybe before key), key + "\0". */
  rangeEnd(key: Uint8Array): Uint8Array {
    switch (this.rand.intn(6)) {
      case 0:
      case 1:
        return new Uint8Array();
      case 2:
        return bytes('\x00');
      case 3:
        return prefixRangeEnd(key);
      case 4:
        return this.key();
      default:
        return Buffer.concat([key, bytes('\x00')]);
    }
  }

  /** 0 (the current one) most often; past, current, future, compacted, negative. */
  revision(): number {
    if (this.chance(0.6)) return 0;
    return this.pick([this.rev, this.rev + 1, this.rev + 50, this.compacted, this.compacted - 1, this.compacted + 1, 1 + this.rand.intn(this.rev), -1]);
  }

  lease(): bigint {
    return this.chance(0.6) ? 0n : this.chance(0.9) ? this.pick(leaseIds) : leaseUnknown;
  }

  value(): Uint8Array {
    return this.chance(0.4) ? bytes(`v${this.rand.intn(1000)}`) : this.pick(values);
  }

  put(): etcdserverpb.PutRequest {
    const ignoreValue = this.chance(0.15);
    const ignoreLease = this.chance(0.15);
    return pb.PutRequest.create({
      key: this.chance(0.01) ? new Uint8Array() : this.key(),
      value: ignoreValue && this.chance(0.8) ? new Uint8Array() : this.value(),
      lease: ignoreLease && this.chance(0.8) ? 0n : this.lease(),
      prevKv: this.chance(0.5),
      ignoreValue,
      ignoreLease,
    });
  }

  /** A revision bound of a range filter: 0 (none) most often. */
  private bound(): number {
    return this.chance(0.8) ? 0 : this.rand.intn(this.rev + 2);
  }

  range(): etcdserverpb.RangeRequest {
    const wide = this.chance(0.15);
    const key = wide ? bytes('w') : this.chance(0.01) ? new Uint8Array() : this.key();
    return pb.RangeRequest.create({
      key,
      rangeEnd: wide ? bytes('x') : this.chance(0.3) ? new Uint8Array() : this.rangeEnd(key),
      limit: this.chance(0.6) ? 0 : this.pick([1, 2, 3, 5, -1, 20]),
      revision: this.revision(),
      // Unknown sort orders (3, -1) are 3.4's "unsorted"; an unknown sort target crashes etcd 3.4.
      sortOrder: this.chance(wide ? 0.2 : 0.5) ? 0 : (this.pick([1, 2, 1, 2, 3, -1]) as etcdserverpb.RangeRequest_SortOrder),
      sortTarget: this.chance(0.5) ? 0 : (this.rand.intn(5) as etcdserverpb.RangeRequest_SortTarget),
      serializable: this.chance(0.3),
      keysOnly: this.chance(0.2),
      countOnly: this.chance(0.15),
      minModRevision: this.bound(),
      maxModRevision: this.bound(),
      minCreateRevision: this.bound(),
      maxCreateRevision: this.bound(),
    });
  }

  deleteRange(): etcdserverpb.DeleteRangeRequest {
    const key = this.chance(0.01) ? new Uint8Array() : this.key();
    return pb.DeleteRangeRequest.create({ key, rangeEnd: this.chance(0.5) ? new Uint8Array() : this.rangeEnd(key), prevKv: this.chance(0.5) });
  }

  compare(): etcdserverpb.Compare {
    const key = this.chance(0.01) ? new Uint8Array() : this.key();
    // Mostly the union the target reads; sometimes another one, none, or an unknown target or result.
    const target = (this.chance(0.03) ? this.pick([7, -1]) : this.rand.intn(5)) as etcdserverpb.Compare_CompareTarget;
    const result = (this.chance(0.03) ? this.pick([9, -1]) : this.rand.intn(4)) as etcdserverpb.Compare_CompareResult;
    const unionOf = (t: number): etcdserverpb.Compare_TargetUnion | undefined => {
      const rev = (): number => this.pick([0, 1, this.rand.intn(this.rev + 2), this.rev, -1]);
      switch (t) {
        case 0:
          return { case: 'version', value: this.pick([0, 1, 2, 3, -1]) };
        case 1:
          return { case: 'createRevision', value: rev() };
        case 2:
          return { case: 'modRevision', value: rev() };
        case 3:
          return { case: 'value', value: this.value() };
        case 4:
          return { case: 'lease', value: this.chance(0.3) ? 0n : this.pick([...leaseIds, leaseUnknown]) };
        default:
          return undefined;
      }
    };
    const targetUnion = this.chance(0.85) ? unionOf(target) : unionOf(this.rand.intn(6));
    return pb.Compare.create({ key, rangeEnd: this.chance(0.7) ? new Uint8Array() : this.rangeEnd(key), target, result, targetUnion });
  }

  op(depth: number): etcdserverpb.RequestOp {
    const n = this.rand.intn(depth < 2 ? 10 : 9);
    if (n < 3) return rangeOp(this.range());
    if (n < 6) return putOp(this.put());
    if (n < 9) return deleteOp(this.deleteRange());
    if (this.chance(0.02)) return { request: undefined };
    return txnOp(this.txn(depth + 1));
  }

  txn(depth = 0): etcdserverpb.TxnRequest {
    // Now and then one past the limit of 128 ops, or one with 128.
    if (depth === 0 && this.chance(0.02)) {
      const n = this.pick([128, 129]);
      return pb.TxnRequest.create({ success: Array.from({ length: n }, () => rangeOp(pb.RangeRequest.create({ key: this.key() }))) });
    }
    const ops = (): etcdserverpb.RequestOp[] => Array.from({ length: this.rand.intn(depth === 0 ? 5 : 3) }, () => this.op(depth));
    const txn = pb.TxnRequest.create({ compare: Array.from({ length: this.rand.intn(3) }, () => this.compare()), success: ops(), failure: ops() });
    if (depth === 0) forgoIgnoresAfterFromKeyDeletes(txn);
    return txn;
  }

  /** Puts of many wide keys in one txn (values and leases from few, for ties), or a delete of some of them. */
  wideTxn(): etcdserverpb.TxnRequest {
    const from = this.rand.intn(wideKeys.length);
    const chosen = wideKeys.slice(from, from + 1 + this.rand.intn(wideKeys.length - from)).filter(() => this.chance(0.7));
    if (this.chance(0.2)) return pb.TxnRequest.create({ success: [deleteOp(pb.DeleteRangeRequest.create({ key: wideKeys[from], rangeEnd: chosen.at(-1) ?? new Uint8Array() }))] });
    const put = (key: Uint8Array): etcdserverpb.RequestOp =>
      putOp(pb.PutRequest.create({ key, value: bytes(this.pick(['', '1', '2', '10'])), lease: this.chance(0.7) ? 0n : this.pick(leaseIds) }));
    return pb.TxnRequest.create({ success: chosen.map(put) });
  }

  hashKv(): etcdserverpb.HashKVRequest {
    return pb.HashKVRequest.create({ revision: this.chance(0.5) ? 0 : this.revision() });
  }

  compact(): etcdserverpb.CompactionRequest {
    const revision = this.pick([this.rev, this.rev - 1, this.rev + 1, this.compacted, this.compacted + 1, this.compacted - 1, this.rand.intn(this.rev + 1), 0, -1]);
    return pb.CompactionRequest.create({ revision, physical: this.chance(0.5) });
  }
}

describe(`KV at random against the real etcd, seed ${seed}`, { skip: etcdMissing(), timeout: 80_000 + opsCount * 60 }, () => {
  const pair = useEtcdPair('kv-random-diff');
  const { clusters, raw } = pair;

  /** The same request to both servers; every answer must agree. Returns etcd's response, if any. */
  async function both<Req, Res>(m: MethodInfo<Req, Res>, req: Req, what: string, conns: readonly RawGrpc[] = raw): Promise<Res | undefined> {
    const body = m.requestType.encode(req);
    const [theirs, ours] = (await Promise.all(conns.map((r) => r.call(m.path, body)))) as [RawAnswer, RawAnswer];
    const [t, o] = [compared(theirs, m.responseType), compared(ours, m.responseType)];
    const asked = (): string => `${what}: ${m.name} ${JSON.stringify(plain(req))}`;
    assert.deepEqual({ ...o, bytes: [] }, { ...t, bytes: [] }, asked());
    assert.deepEqual(o.bytes, t.bytes, `${asked()}: the bytes`);
    return theirs.messages[0] === undefined ? undefined : m.responseType.decode(theirs.messages[0]);
  }

  /** A watch of every key from revision 1 with prev_kv, on each server. */
  let watches: RawStream[] = [];
  /** The answers of the watches closed for a restart, [etcd's, ours] each. */
  const closedWatches: RawAnswer[][] = [];
  /** The revision of the put before the random run. */
  let startRev = 0;
  /** The revision the open watches started from. */
  let watchedFrom = 1;
  function openWatches(startRevision: number): void {
    watchedFrom = startRevision;
    const create = pb.WatchCreateRequest.create({ key: bytes('\x00'), rangeEnd: bytes('\x00'), startRevision, prevKv: true });
    const body = pb.WatchRequest.encode(pb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: create } }));
    watches = raw.map((r) => r.open(methods.watch.Watch.path));
    for (const w of watches) w.send(body);
  }
  const allEvents = (s: RawStream): mvccpb.Event[] => s.messages.flatMap((m) => pb.WatchResponse.decode(m).events);
  /** Waits (bounded) until both watches have an event of revision rev. */
  async function watchedUpTo(rev: number): Promise<void> {
    if (rev < watchedFrom) return;
    const done = (s: RawStream): boolean => allEvents(s).some((e) => e.kv?.modRevision === rev);
    for (const deadline = Date.now() + 5_000; Date.now() < deadline && !watches.every(done); ) await delay(10);
  }

  test('compactions of a fresh store: at 0, -1, 1, 2 (future), then 0 again', { timeout: 10_000 }, async () => {
    for (const revision of [2, 0, -1, 0, 1, 1, -1]) await both(methods.kv.Compact, pb.CompactionRequest.create({ revision }), `compact ${revision}`);
    await both(methods.kv.Range, pb.RangeRequest.create({ key: bytes('a'), revision: 1 }), 'a range at 1');
    await both(methods.maintenance.HashKV, pb.HashKVRequest.create({ revision: 0 }), 'HashKV');
  });

  test('leases to use, a watch of every key', { timeout: 10_000 }, async () => {
    for (const ID of leaseIds) await both(methods.lease.LeaseGrant, pb.LeaseGrantRequest.create({ ID, TTL: leaseTtl }), 'grant');
    openWatches(1);
    // etcd syncs a watch from a past revision every 100 ms, and a compaction before that cancels
    // it: the run starts once both have caught up (seen the first event).
    const first = await both(methods.kv.Put, pb.PutRequest.create({ key: bytes('zz-start'), value: bytes('start') }), 'the first put');
    startRev = first?.header?.revision ?? assert.fail('the first put has a revision');
    await watchedUpTo(startRev);
  });

  /**
   * Both members stopped (SIGTERM) or killed (SIGKILL) and started again, once their watches
   * have every event; the watches are opened again from the next revision.
   */
  async function restart(how: 'kill' | 'stop', what: string): Promise<void> {
    const mark = await both(methods.kv.Put, pb.PutRequest.create({ key: bytes('zz-restart'), value: bytes(how) }), `${what}: before the restart`);
    const rev = mark?.header?.revision ?? assert.fail('the put has a revision');
    await watchedUpTo(rev);
    closedWatches.push(await Promise.all(watches.map((w) => w.cancel())));
    // A kill waits for etcd's backend commit (stopPair): a txn etcd refused for a range at a future
    // or compacted revision would otherwise be applied by its replay, and the history clients saw
    // rewritten. etcd-ts replays what it applied (a difference kept on purpose).
    const second = pb.PutRequest.create({ key: bytes('zz-restart'), value: bytes('committed') });
    await stopPair(pair, how, () => both(methods.kv.Put, second, `${what}: before the kill`));
    await Promise.all(clusters.map((c) => c.member(0).start()));
    openWatches(rev + 1);
  }

  test(`${opsCount} random requests (KV_RANDOM_SEED=${seed})`, { timeout: 40_000 + opsCount * 60 }, async () => {
    const rand = new SeededRand(seed);
    const reqs = new Requests(rand);
    reqs.rev = startRev;
    /** No compaction is under way: none was asked, or the last one answered when done (physical). */
    let compactionDone = true;
    for (let step = 0; step < opsCount; step++) {
      const what = `seed ${seed} step ${step}`;
      const n = rand.intn(100);
      let header: etcdserverpb.ResponseHeader | undefined;
      if (n < 30) header = (await both(methods.kv.Put, reqs.put(), what))?.header;
      else if (n < 55) header = (await both(methods.kv.Range, reqs.range(), what))?.header;
      else if (n < 65) header = (await both(methods.kv.DeleteRange, reqs.deleteRange(), what))?.header;
      else if (n < 88) header = (await both(methods.kv.Txn, reqs.txn(), what))?.header;
      else if (n < 92) header = (await both(methods.kv.Txn, reqs.wideTxn(), what))?.header;
      else if (n < 93) {
        // etcd hashes the entries a compaction not yet done would remove when none of the
        // compacted revisions is kept (every key deleted): a hash waits for a physical compaction.
        const req = reqs.hashKv();
        if (compactionDone) header = (await both(methods.maintenance.HashKV, req, what))?.header;
      } else if (n < 97) {
        const req = reqs.compact();
        // etcd reads an event's prev_kv when it sends the event: a compaction at its revision
        // before that leaves it out. Compactions wait until both watches have every event.
        await watchedUpTo(reqs.rev);
        const res = await both(methods.kv.Compact, req, what);
        if (res !== undefined) {
          reqs.compacted = req.revision;
          compactionDone = req.physical;
        }
        header = res?.header;
      } else {
        // A lease revoked (its keys deleted) and granted again.
        const ID = reqs.pick(leaseIds);
        header = (await both(methods.lease.LeaseRevoke, pb.LeaseRevokeRequest.create({ ID }), what))?.header;
        await both(methods.lease.LeaseGrant, pb.LeaseGrantRequest.create({ ID, TTL: leaseTtl }), what);
      }
      if (header !== undefined) reqs.rev = Math.max(reqs.rev, header.revision);
      if (step === restartAt) await restart(rand.intn(2) === 0 ? 'kill' : 'stop', what);
    }
    if (compactionDone) await both(methods.maintenance.HashKV, pb.HashKVRequest.create({ revision: 0 }), `seed ${seed}: HashKV`);
  });

  test('keys over --max-request-bytes: refused in writes, served in reads; over the gRPC limit: refused', { timeout: 10_000 }, async () => {
    const key = new Uint8Array(1.5 * 1024 * 1024 + 1).fill(0x6b);
    const compare = pb.Compare.create({ key, target: pb.Compare_CompareTarget.VERSION, targetUnion: { case: 'version', value: 0 } });
    await both(methods.kv.Put, pb.PutRequest.create({ key }), 'put of the key');
    await both(methods.kv.Range, pb.RangeRequest.create({ key }), 'range of the key');
    await both(methods.kv.Range, pb.RangeRequest.create({ key: bytes('a'), rangeEnd: key }), 'range to the key');
    await both(methods.kv.DeleteRange, pb.DeleteRangeRequest.create({ key }), 'delete of the key');
    await both(methods.kv.Txn, pb.TxnRequest.create({ compare: [compare], success: [rangeOp(pb.RangeRequest.create({ key }))] }), 'read-only txn on the key');
    await both(methods.kv.Txn, pb.TxnRequest.create({ compare: [compare], success: [putOp(pb.PutRequest.create({ key: bytes('a') }))] }), 'txn comparing the key');
    // Over the gRPC limit, on connections of their own: the client keeps what the server
    // refused to read in its session's memory (Node's default 10 MB), a few of them fill it.
    const conns = raw.map((_, i) => new RawGrpc(clusters[i]?.member(0).clientUrl ?? assert.fail('two servers')));
    try {
      await both(methods.kv.Range, pb.RangeRequest.create({ key: new Uint8Array(2.1 * 1024 * 1024).fill(0x6b) }), 'range of a key over the gRPC limit', conns);
    } finally {
      for (const c of conns) c.close();
    }
  });

  test('the txn op limit across nested txns, and empty ops', { timeout: 10_000 }, async () => {
    const ranges = (n: number): etcdserverpb.RequestOp[] => Array.from({ length: n }, () => rangeOp(pb.RangeRequest.create({ key: bytes('a') })));
    const compares = (n: number): etcdserverpb.Compare[] => Array.from({ length: n }, () => pb.Compare.create({ key: bytes('a') }));
    const cases: [string, Partial<etcdserverpb.TxnRequest>][] = [
      ['empty', {}],
      ['129 compares', { compare: compares(129) }],
      ['128 compares, 128 ops', { compare: compares(128), success: ranges(128), failure: ranges(128) }],
      ['a nested txn of 127 under 1', { success: [txnOp(pb.TxnRequest.create({ success: ranges(127) }))] }],
      ['a nested txn of 128 under 1', { success: [txnOp(pb.TxnRequest.create({ success: ranges(128) }))] }],
      ['a nested txn of 64 under 64', { success: [...ranges(63), txnOp(pb.TxnRequest.create({ failure: ranges(64) }))] }],
      ['a nested txn of 65 under 64', { success: [...ranges(63), txnOp(pb.TxnRequest.create({ failure: ranges(65) }))] }],
      ['two levels of nesting', { success: [txnOp(pb.TxnRequest.create({ success: [...ranges(60), txnOp(pb.TxnRequest.create({ compare: compares(66) }))] }))] }],
      ['an empty op', { success: [{ request: undefined }] }],
      ['an empty op in a nested txn', { failure: [txnOp(pb.TxnRequest.create({ success: [{ request: undefined }] }))] }],
    ];
    for (const [what, req] of cases) await both(methods.kv.Txn, pb.TxnRequest.create(req), what);
  });

  test('the watches saw the same events', { timeout: 10_000 }, async () => {
    // A last put: both streams are complete once they have its event.
    const last = await both(methods.kv.Put, pb.PutRequest.create({ key: bytes('zz-end'), value: bytes('end') }), 'the last put');
    await watchedUpTo(last?.header?.revision ?? assert.fail('the last put has a revision'));
    closedWatches.push(await Promise.all(watches.map((w) => w.cancel())));
    const answers = [0, 1].map((side) => closedWatches.map((a) => a[side] ?? assert.fail('two answers')));
    const [theirs, ours] = answers.map((streams) => {
      const responses = streams.flatMap((a) => a.messages.map((m) => pb.WatchResponse.decode(m)));
      return {
        created: responses.filter((r) => r.events.length === 0).map((r) => plain({ ...r, header: undefined })),
        events: responses.flatMap((r) => r.events).map(plain),
      };
    }) as [unknown, unknown];
    const streams = answers.map((side) => side.map((a) => `${a.messages.length} responses, status ${a.status} ${a.message}`).join('; '));
    assert.deepEqual(ours, theirs, `seed ${seed}: the watch events (etcd: ${streams[0]}; etcd-ts: ${streams[1]})`);
  });
});
