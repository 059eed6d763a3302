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
    const bytes = w.finish();
    assert.equal(new Reader(bytes).int64Big(bytes.length), v);
    if (v >= -(2n ** 53n) && v < 2n ** 53n) {
      const w2 = new Writer(16);
      w2.int64Number(Number(v));
      assert.deepEqual(w2.finish(), w.finish());
      assert.equal(new Reader(bytes).int64Number(bytes.length), Number(v));
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

// The decode errors a client gets are etcd's (gogo/protobuf's), word for word:
// each expected text below is what etcd 3.4.23 answered to the same bytes
// (test/services/malformed-requests.test.ts checks them against it live).
test('malformed input: the error texts of etcd 3.4', () => {
  const cases: [string, string][] = [
    ['0a', 'unexpected EOF'],
    ['ff', 'unexpected EOF'],
    ['0a0161a006', 'unexpected EOF'],
    ['00', 'proto: RangeRequest: illegal tag 0 (wire type 0)'],
    ['02', 'proto: RangeRequest: illegal tag 0 (wire type 2)'],
    ['8180808040699f3607', 'proto: RangeRequest: illegal tag -2147483648 (wire type 17179869185)'],
    ['0c', 'proto: RangeRequest: wiretype end group for non-group'],
    ['0801', 'proto: wrong wireType = 0 for field Key'],
    ['0f', 'proto: wrong wireType = 7 for field Key'],
    ['1a80808080808080808001', 'proto: wrong wireType = 2 for field Limit'],
    ['8080808080808080800100', 'proto: RangeRequest: illegal tag 0 (wire type 9223372036854775808)'],
    ['808080808080808080800100', 'proto: integer overflow'],
    ['0aff808080808080808001', 'proto: negative length found during unmarshaling'],
    ['a2068080808080808080800100', 'proto: negative length found during unmarshaling'],
    ['a706', 'proto: illegal wireType 7'],
    ['a10601', 'unexpected EOF'],
    ['a306', 'unexpected EOF'],
  ];
  for (const [hex, want] of cases) {
    assert.throws(() => etcdserverpb.RangeRequest.decode(Buffer.from(hex, 'hex')), (e) => e instanceof DecodeError && e.message === want, hex);
  }
  // A nested message reports its own name; its reads stop at its own end.
  assert.throws(() => etcdserverpb.TxnRequest.decode(Buffer.from('12020a01', 'hex')), /^DecodeError: unexpected EOF$/);
  assert.throws(() => etcdserverpb.TxnRequest.decode(Buffer.from('0a0100', 'hex')), /proto: Compare: illegal tag 0/);
});

test('odd but valid input decodes as Go decodes it', () => {
  const dec = (hex: string) => etcdserverpb.RangeRequest.decode(Buffer.from(hex, 'hex'));
  // Unknown fields of every wire type are skipped, groups (nested too) included.
  assert.deepEqual(dec('a306a306a4060a0161a4060a0162').key, new TextEncoder().encode('b'));
  assert.equal(dec('a0060199060000000000000000' + '1803' + 'ad0600000000' + '0a0161').limit, 3);
  // A tag written with more bytes than needed.
  assert.deepEqual(dec('8a8080000161').key, new TextEncoder().encode('a'));
  // A bool is true when any of its 64 bits is set; an int32 keeps the low 32 bits.
  assert.equal(dec('3880808080808080808001').serializable, true);
  assert.equal(dec('2880808080f0ffffffff01').sortOrder, 0);
  // The last value of a scalar wins; repeated fields append; a message field sent twice is merged.
  assert.equal(dec('18011802').limit, 2);
  const add = etcdserverpb.AuthUserAddRequest.decode(Buffer.from('0a01751a0208011a000a0176', 'hex'));
  assert.deepEqual([add.name, add.options?.noPassword], ['v', true]);
  // A oneof member starts afresh.
  const op = etcdserverpb.RequestOp.decode(Buffer.from('12030a01610a00', 'hex'));
  assert.equal(op.request?.case, 'requestRange');
  const again = etcdserverpb.RequestOp.decode(Buffer.from('0a030a01610a021801', 'hex'));
  assert.deepEqual(again.request?.value, etcdserverpb.RangeRequest.create({ limit: 1 }));
  // A 3.5 field with the wrong wire type is skipped, as etcd 3.4 skips a field it does not know.
  assert.equal(etcdserverpb.MemberListRequest.decode(Buffer.from('0a00', 'hex')).linearizable, false);
  assert.throws(() => etcdserverpb.MemberListRequest.decode(Buffer.from('0a05', 'hex')), /^DecodeError: unexpected EOF$/);
  // An int64 near 2^63 stays below it as a number, so that encoding it again does not wrap to -2^63.
  const near = dec('20ffffffffffffffff7f').revision;
  assert.ok(near > 2 ** 62 && near < 2 ** 63);
  assert.equal(dec(Buffer.from(etcdserverpb.RangeRequest.encode(etcdserverpb.RangeRequest.create({ revision: near }))).toString('hex')).revision, near);
  // Packed and unpacked repeated enums both append.
  const w = etcdserverpb.WatchCreateRequest.decode(Buffer.from('28012a020001', 'hex'));
  assert.deepEqual(w.filters, [1, 0, 1]);
});
