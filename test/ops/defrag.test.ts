/**
 * Online defragmentation on a 3-member cluster while writers keep writing:
 * `etcdctl defrag` on each member in turn (etcd-ts), and `etcdctl defrag
 * --cluster`, which defragments every member the cluster lists (etcd-ts, or
 * real etcd with OPS_KIND=etcd). Every acknowledged write is there afterwards,
 * on every member, and each file shrinks once deleted and compacted data is
 * gone; Status reports dbSize and dbSizeInUse that say so.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { etcdserverpb } from '../../src/pb/index.js';
import { etcdctl, etcdctlMissing, memberStatus, methods, openChannel, useWorkspace, type Cluster } from '../harness/index.js';
import { opsKind } from './kit.js';

const skip = etcdctlMissing();
const filler = Buffer.alloc(2048, 0x61);

/** Fills the cluster with data, deletes and compacts it away; the members' Status after. */
async function fillAndEmpty(c: Cluster): Promise<etcdserverpb.StatusResponse[]> {
  const ch = openChannel(c.member(0).endpoint);
  try {
    for (let batch = 0; batch < 20; batch++) {
      const success = Array.from({ length: 100 }, (_, i) =>
        etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key: Buffer.from(`junk/${batch}/${i}`), value: filler }) } }),
      );
      await ch.unary(methods.kv.Txn, etcdserverpb.TxnRequest.create({ success }), { timeoutMs: 10_000 });
    }
    await ch.unary(methods.kv.DeleteRange, etcdserverpb.DeleteRangeRequest.create({ key: Buffer.from('junk/'), rangeEnd: Buffer.from('junk0') }), { timeoutMs: 10_000 });
    const rev = (await memberStatus(c.member(0).endpoint)).header?.revision ?? 0;
    await ch.unary(methods.kv.Compact, etcdserverpb.CompactionRequest.create({ revision: rev, physical: true }), { timeoutMs: 30_000 });
  } finally {
    ch.close();
  }
  const st = await Promise.all(c.members.map((m) => memberStatus(m.endpoint)));
  for (const s of st) assert.ok(s.dbSizeInUse < s.dbSize, `in use ${s.dbSizeInUse} < size ${s.dbSize} after deleting and compacting`);
  return st;
}

/** Writers on every member while work() runs; the keys acknowledged meanwhile. */
async function writingDuring(c: Cluster, work: () => Promise<void>): Promise<Set<string>> {
  let writing = true;
  const acked = new Set<string>();
  const writers = c.members.map(async (m, w) => {
    const wch = openChannel(m.endpoint);
    try {
      for (let i = 0; writing; i++) {
        const key = `live/${w}/${i}`;
        await wch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: Buffer.from(key), value: Buffer.from(String(i)) }), { timeoutMs: 10_000 });
        acked.add(key);
      }
    } finally {
      wch.close();
    }
  });
  try {
    await work();
  } finally {
    writing = false;
    await Promise.all(writers);
  }
  assert.ok(acked.size > 0, 'writes were acknowledged during the defrags');
  return acked;
}

/** Every acknowledged key on every member, each file at most half what it was, and equal HashKV. */
async function checkAfter(c: Cluster, acked: ReadonlySet<string>, before: readonly etcdserverpb.StatusResponse[]): Promise<void> {
  for (const m of c.members) {
    const got = await etcdctl(['get', '--prefix', 'live/', '--keys-only'], { endpoints: [m.endpoint] });
    const keys = new Set(got.stdout.split('\n').filter((l) => l !== ''));
    for (const k of acked) assert.ok(keys.has(k), `${k} acknowledged but missing on ${m.name}`);
  }
  const after = await Promise.all(c.members.map((m) => memberStatus(m.endpoint)));
  after.forEach((st, i) => {
    const was = before[i]?.dbSize ?? 0;
    assert.ok(st.dbSize < was / 2, `member ${i}: ${st.dbSize} bytes after defrag, ${was} before`);
    assert.ok(st.dbSizeInUse <= st.dbSize && st.dbSizeInUse > 0);
  });
  // And the members still agree (at a revision every one of them has applied).
  const common = Math.min(...after.map((st) => st.header?.revision ?? 0));
  const hashes = await Promise.all(
    c.members.map(async (m) => {
      const mch = openChannel(m.endpoint);
      try {
        return (await mch.unary(methods.maintenance.HashKV, etcdserverpb.HashKVRequest.create({ revision: common }), { timeoutMs: 10_000 })).hash;
      } finally {
        mch.close();
      }
    }),
  );
  assert.equal(new Set(hashes).size, 1, `HashKV ${hashes.join(', ')}`);
}

describe('defrag while writes continue', { skip }, () => {
  const ws = useWorkspace('ops-defrag');

  test('member by member: no acknowledged write is lost, and the file shrinks', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, readyTimeoutMs: 60_000 });
    const before = await fillAndEmpty(c);
    const acked = await writingDuring(c, async () => {
      for (const m of c.members) {
        const r = await etcdctl(['defrag'], { endpoints: [m.endpoint], timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), `Finished defragmenting etcd member[${m.endpoint}]`);
      }
    });
    await checkAfter(c, acked, before);
    await c.close();
  });

  test(`defrag --cluster (${opsKind}): every member listed is defragmented, and no acknowledged write is lost`, async () => {
    const c = await ws.startCluster({ kind: opsKind, size: 3, readyTimeoutMs: 60_000 });
    const before = await fillAndEmpty(c);
    const acked = await writingDuring(c, async () => {
      // Given one endpoint, etcdctl asks it for the members and defragments each at its client URL.
      const r = await etcdctl(['defrag', '--cluster'], { endpoints: [c.member(0).endpoint], timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n').sort();
      assert.deepEqual(lines, c.members.map((m) => `Finished defragmenting etcd member[${m.clientUrl}]`).sort());
    });
    await checkAfter(c, acked, before);
  });
});
