// The generated codecs against protobufjs, an independent implementation
// loading the same .proto files: what one encodes the other decodes to the same
// values, for random messages of every shape etcd's API uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { etcdserverpb, mvccpb, raftpb, DecodeError, Reader, Writer } from './index.js';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(import.meta.dirname, '..', '..', '..', 'proto', target.replace(/^.*\//, ''));
root.loadSync(['etcdserverpb.proto', 'raftpb.proto'], { keepCase: true });
const PbRange = root.lookupType('etcdserverpb.RangeRequest');
const PbTxn = root.lookupType('etcdserverpb.TxnRequest');
const PbKv = root.lookupType('mvccpb.KeyValue');
const PbMsg = root.lookupType('raftpb.Message');

const bytes = fc.uint8Array({ maxLength: 300 });
const int64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const uint64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const safeNonNeg = fc.maxSafeNat();

function toLong(v: bigint, unsigned: boolean): protobuf.Long {
  const u = BigInt.asUintN(64, v);
  const Long = protobuf.util.Long as unknown as { fromBits(lo: number, hi: number, unsigned: boolean): protobuf.Long };
  return Long.fromBits(Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, unsigned);
}

function longToBig(v: unknown, unsigned: boolean): bigint {
  if (typeof v === 'number') return BigInt(v);
  const l = v as protobuf.Long;
  const big = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
  return unsigned ? big : BigInt.asIntN(64, big);
}

function longToNum(v: unknown): number {
  return typeof v === 'number' ? v : Number(longToBig(v, false));
}

const keyValue = fc.record({
  key: bytes,
  createRevision: safeNonNeg,
  modRevision: safeNonNeg,
  version: safeNonNeg,
  value: bytes,
  lease: int64,
});

test('KeyValue: ours encodes, protobufjs decodes, and back', () => {
  fc.assert(
    fc.property(keyValue, (kv) => {
      const m = mvccpb.KeyValue.create(kv);
      const wire = mvccpb.KeyValue.encode(m);
      const theirs = PbKv.toObject(PbKv.decode(wire), { defaults: true });
      assert.deepEqual(new Uint8Array(theirs['key']), kv.key);
      assert.deepEqual(new Uint8Array(theirs['value']), kv.value);
      assert.equal(longToNum(theirs['create_revision']), kv.createRevision);
      assert.equal(longToNum(theirs['mod_revision']), kv.modRevision);
      assert.equal(longToNum(theirs['version']), kv.version);
      assert.equal(longToBig(theirs['lease'], false), kv.lease);
      // Back: protobufjs encodes, we decode.
      const theirWire = PbKv.encode(
        PbKv.fromObject({
          key: kv.key,
          value: kv.value,
          create_revision: kv.createRevision,
          mod_revision: kv.modRevision,
          version: kv.version,
          lease: toLong(kv.lease, false),
        }),
      ).finish();
      assert.deepEqual(mvccpb.KeyValue.decode(theirWire), m);
    }),
    { numRuns: 500 },
  );
});

test('RangeRequest: enums, bools and negative revisions survive both ways', () => {
  fc.assert(
    fc.property(
      fc.record({
        key: bytes,
        rangeEnd: bytes,
        limit: fc.integer({ min: -1000, max: 1_000_000 }),
        revision: fc.integer({ min: -5, max: 2 ** 40 }),
        sortOrder: fc.constantFrom(0, 1, 2),
        sortTarget: fc.constantFrom(0, 1, 2, 3, 4),
        serializable: fc.boolean(),
        keysOnly: fc.boolean(),
        countOnly: fc.boolean(),
        minModRevision: safeNonNeg,
      }),
      (r) => {
        const m = etcdserverpb.RangeRequest.create(r);
        const wire = etcdserverpb.RangeRequest.encode(m);
        const theirs = PbRange.toObject(PbRange.decode(wire), { defaults: true, enums: Number });
        assert.equal(longToNum(theirs['limit']), r.limit);
        assert.equal(longToNum(theirs['revision']), r.revision);
        assert.equal(theirs['sort_order'], r.sortOrder);
        assert.equal(theirs['sort_target'], r.sortTarget);
        assert.equal(theirs['keys_only'], r.keysOnly);
        assert.deepEqual(etcdserverpb.RangeRequest.decode(PbRange.encode(PbRange.fromObject(theirs)).finish()), m);
      },
    ),
    { numRuns: 300 },
  );
});

test('TxnRequest: nested txns, oneofs (a compare on version 0 is encoded), large bodies', () => {
  const compare = fc.record({
    result: fc.constantFrom(0, 1, 2, 3),
    target: fc.constantFrom(0, 1, 2, 3, 4),
    key: bytes,
    rangeEnd: bytes,
    targetUnion: fc.oneof(
      fc.record({ case: fc.constant('version' as const), value: fc.nat(10) }),
      fc.record({ case: fc.constant('modRevision' as const), value: safeNonNeg }),
      fc.record({ case: fc.constant('value' as const), value: bytes }),
      fc.record({ case: fc.constant('lease' as const), value: int64 }),
    ).map((u) => ({ ...u })),
  });
  const put = fc.record({ key: bytes, value: fc.uint8Array({ maxLength: 5000 }), lease: int64, prevKv: fc.boolean() });
  const { txn } = fc.letrec<{ txn: etcdserverpb.TxnRequest; op: etcdserverpb.RequestOp }>((tie) => ({
    op: fc.oneof(
      { depthSize: 'small' },
      put.map((p) => etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create(p) } })),
      tie('txn').map((t) => etcdserverpb.RequestOp.create({ request: { case: 'requestTxn', value: t } })),
    ),
    txn: fc
      .record({
        compare: fc.array(compare, { maxLength: 3 }),
        success: fc.array(tie('op'), { maxLength: 3 }),
        failure: fc.array(tie('op'), { maxLength: 2 }),
      })
      .map((t) =>
        etcdserverpb.TxnRequest.create({
          compare: t.compare.map((c) => etcdserverpb.Compare.create(c as Partial<etcdserverpb.Compare>)),
          success: t.success,
          failure: t.failure,
        }),
      ),
  }));
  fc.assert(
    fc.property(txn, (t) => {
      const wire = etcdserverpb.TxnRequest.encode(t);
      // protobufjs re-encodes what it decoded; the bytes must decode back to the same txn.
      const again = PbTxn.encode(PbTxn.decode(wire)).finish();
      assert.deepEqual(etcdserverpb.TxnRequest.decode(again), t);
      assert.deepEqual(etcdserverpb.TxnRequest.decode(wire), t);
    }),
    { numRuns: 300 },
  );
});

test('raftpb.Message: packed repeated ids, entries and snapshots', () => {
  fc.assert(
    fc.property(
      fc.record({
        type: fc.integer({ min: 0, max: 19 }),
        to: uint64,
        from: uint64,
        term: safeNonNeg,
        index: safeNonNeg,
        commit: safeNonNeg,
        entries: fc.array(fc.record({ term: safeNonNeg, index: safeNonNeg, type: fc.constantFrom(0, 1, 2), data: bytes }), { maxLength: 5 }),
        voters: fc.array(uint64, { maxLength: 5 }),
        reject: fc.boolean(),
      }),
      (r) => {
        const m = raftpb.Message.create({
          type: r.type as raftpb.MessageType,
          to: r.to,
          from: r.from,
          term: r.term,
          index: r.index,
          commit: r.commit,
          reject: r.reject,
          entries: r.entries.map((e) => raftpb.Entry.create(e as Partial<raftpb.Entry>)),
          snapshot: raftpb.Snapshot.create({
            data: new Uint8Array([1, 2, 3]),
            metadata: raftpb.SnapshotMetadata.create({ index: r.index, term: r.term, confState: raftpb.ConfState.create({ voters: r.voters }) }),
          }),
        });
        const wire = raftpb.Message.encode(m);
        const theirs = PbMsg.decode(wire) as unknown as { to: unknown; snapshot: { metadata: { conf_state: { voters: unknown[] } } } };
        assert.equal(longToBig(theirs.to, true), r.to);
        assert.deepEqual(theirs.snapshot.metadata.conf_state.voters.map((v) => longToBig(v, true)), r.voters);
        assert.deepEqual(raftpb.Message.decode(PbMsg.encode(PbMsg.decode(wire)).finish()), m);
      },
    ),
    { numRuns: 300 },
  );
});

test('varints at every width and sign', () => {
  const samples = [0n, 1n, 127n, 128n, 16383n, 16384n, (1n << 32n) - 1n, 1n << 32n, (1n << 53n) - 1n, (1n << 63n) - 1n, -1n, -(1n << 63n)];
  for (const v of samples) {
    const w = new Writer(16);
    w.int64Big(v);
    const r = new Reader(w.finish());
    assert.equal(r.int64Big(), v);
    if (v >= -(2n ** 53n) && v < 2n ** 53n) {
      const w2 = new Writer(16);
      w2.int64Number(Number(v));
      assert.deepEqual(w2.finish(), w.finish());
      assert.equal(new Reader(w.finish()).int64Number(), Number(v));
    }
  }
});

test('malformed input is a DecodeError, never a crash or a hang', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      try {
        etcdserverpb.TxnRequest.decode(junk);
      } catch (e) {
        assert.ok(e instanceof DecodeError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
  // A length prefix pointing past the end.
  assert.throws(() => mvccpb.KeyValue.decode(new Uint8Array([10, 50, 1, 2])), DecodeError);
  // A truncated varint.
  assert.throws(() => mvccpb.KeyValue.decode(new Uint8Array([16, 0x80])), DecodeError);
});
