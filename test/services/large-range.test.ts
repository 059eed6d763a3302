// Ranges over more keys than one slice of the member's reads (500 values)
// give etcd's answers: the same writes go to the real etcd and to etcd-ts,
// and every answer must be equal but for the header's ids and term.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb } from '../../src/pb/index.js';
import { etcdMissing, methods, openChannel, useWorkspace, type Cluster } from '../harness/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const keyOf = (i: number): string => `big/${String(i).padStart(5, '0')}`;
const keys = 1300;

const { SortOrder, SortTarget } = { SortOrder: etcdserverpb.RangeRequest_SortOrder, SortTarget: etcdserverpb.RangeRequest_SortTarget };
const span = { key: enc('big/'), rangeEnd: enc('big0') };

/** Writes 1300 keys (values of 1-300 bytes), overwrites every third, deletes every seventh; returns the revision before the overwrites. */
async function load(c: Cluster): Promise<number> {
  const ch = openChannel(c.member(0).endpoint);
  try {
    const txn = (ops: etcdserverpb.RequestOp[]): Promise<etcdserverpb.TxnResponse> =>
      ch.unary(methods.kv.Txn, etcdserverpb.TxnRequest.create({ success: ops }), { timeoutMs: 30_000 });
    const put = (k: string, v: string): etcdserverpb.RequestOp =>
      etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key: enc(k), value: enc(v) }) } });
    let rev = 0;
    for (let i = 0; i < keys; i += 100) {
      const ops = [];
      for (let j = i; j < Math.min(keys, i + 100); j++) ops.push(put(keyOf(j), 'v'.repeat(1 + (j * 37) % 300)));
      rev = (await txn(ops)).header?.revision ?? 0;
    }
    for (let i = 0; i < keys; i += 3) await txn([put(keyOf(i), `again ${i}`)]);
    for (let i = 0; i < keys; i += 7) {
      await ch.unary(methods.kv.DeleteRange, etcdserverpb.DeleteRangeRequest.create({ key: enc(keyOf(i)) }), { timeoutMs: 10_000 });
    }
    return rev;
  } finally {
    ch.close();
  }
}

const requests = (oldRev: number): Array<[string, etcdserverpb.RangeRequest]> => [
  ['every key', etcdserverpb.RangeRequest.create({ ...span })],
  ['every key, serializable', etcdserverpb.RangeRequest.create({ ...span, serializable: true })],
  ['limit 600', etcdserverpb.RangeRequest.create({ ...span, limit: 600 })],
  ['keys only, limit 1100', etcdserverpb.RangeRequest.create({ ...span, keysOnly: true, limit: 1100 })],
  ['descending, limit 700', etcdserverpb.RangeRequest.create({ ...span, sortOrder: SortOrder.DESCEND, limit: 700 })],
  ['descending by key, keys only', etcdserverpb.RangeRequest.create({ ...span, sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.KEY, keysOnly: true })],
  ['count only', etcdserverpb.RangeRequest.create({ ...span, countOnly: true })],
  ['at the revision before the overwrites', etcdserverpb.RangeRequest.create({ ...span, revision: oldRev })],
  ['from a key on', etcdserverpb.RangeRequest.create({ key: enc(keyOf(200)), rangeEnd: new Uint8Array([0]), limit: 900 })],
];

/** Every answer, its header reduced to the revision (ids and term differ between clusters). */
async function answers(c: Cluster, oldRev: number): Promise<Map<string, etcdserverpb.RangeResponse>> {
  const ch = openChannel(c.member(0).endpoint);
  try {
    const out = new Map<string, etcdserverpb.RangeResponse>();
    for (const [name, r] of requests(oldRev)) {
      const resp = await ch.unary(methods.kv.Range, r, { timeoutMs: 30_000 });
      resp.header = etcdserverpb.ResponseHeader.create({ revision: resp.header?.revision ?? 0 });
      out.set(name, resp);
    }
    return out;
  } finally {
    ch.close();
  }
}

describe('ranges over many keys', () => {
  const ws = useWorkspace('large-range');
  let ours: Cluster;
  let ourAnswers: Map<string, etcdserverpb.RangeResponse>;
  let oldRev = 0;
  before(async () => {
    ours = await ws.startCluster({ kind: 'etcd-ts' });
    oldRev = await load(ours);
    ourAnswers = await answers(ours, oldRev);
  });
  after(async () => {
    await ours.stop();
  });

  test('etcd-ts answers with every key, in order, at the revision asked', () => {
    const all = ourAnswers.get('every key');
    const live = Array.from({ length: keys }, (_, i) => i).filter((i) => i % 7 !== 0);
    assert.equal(all?.count, live.length);
    assert.deepEqual(all?.kvs.map((kv) => new TextDecoder().decode(kv.key)), live.map(keyOf));
    const v = (i: number): string => new TextDecoder().decode(all?.kvs[live.indexOf(i)]?.value);
    assert.equal(v(3), 'again 3');
    assert.equal(v(4), 'v'.repeat(1 + (4 * 37) % 300));
    const old = ourAnswers.get('at the revision before the overwrites');
    assert.equal(old?.kvs.length, keys, 'before the deletes');
    assert.equal(new TextDecoder().decode(old?.kvs[3]?.value), 'v'.repeat(1 + (3 * 37) % 300));
    const desc = ourAnswers.get('descending, limit 700');
    assert.equal(desc?.kvs.length, 700);
    assert.equal(desc?.more, true);
    assert.equal(new TextDecoder().decode(desc?.kvs[0]?.key), keyOf(keys - 1));
    assert.ok(ourAnswers.get('keys only, limit 1100')?.kvs.every((kv) => kv.value.length === 0 && kv.modRevision > 0));
  });

  test('the real etcd gives the same answers', { skip: etcdMissing() }, async () => {
    const real = await ws.startCluster({ kind: 'etcd' });
    try {
      assert.equal(await load(real), oldRev);
      const theirs = await answers(real, oldRev);
      for (const [name] of requests(oldRev)) assert.deepEqual(ourAnswers.get(name), theirs.get(name), name);
    } finally {
      await real.stop();
    }
  });
});
