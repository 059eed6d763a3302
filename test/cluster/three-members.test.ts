// A 3-member etcd-ts cluster: a write through any member (a follower forwards
// it to the leader) is read back from every member, linearizably at once and
// serializably once applied there; every response header names the cluster,
// the answering member, the revision and the raft term.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { liveChildren, memberStatus, useWorkspace, type Cluster } from '../harness/index.js';
import { Kv, fastElection, readyTimeoutMs, memberIdOf, waitFor } from './kit.js';

describe('cluster: three members', () => {
  const ws = useWorkspace('three');
  let c: Cluster;
  const kvs: Kv[] = [];
  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts', readyTimeoutMs, size: 3, extraFlags: fastElection });
    for (const m of c.members) kvs.push(new Kv(m.endpoint));
  });
  after(() => {
    for (const kv of kvs) kv.close();
  });
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  test('writes through each member, reads from each, headers carry ids, revision and term', async () => {
    const leader = await c.leader();
    const ids = await Promise.all(c.members.map((m) => memberIdOf(m)));
    assert.equal(new Set(ids).size, 3);
    const clusterId = (await memberStatus(leader.endpoint)).header?.clusterId ?? 0n;
    assert.notEqual(clusterId, 0n);

    let lastRev = 0;
    for (const [i, kv] of kvs.entries()) {
      const r = await kv.put(`via/${i}`, `value-${i}`);
      assert.equal(r.header?.clusterId, clusterId);
      assert.equal(r.header?.memberId, ids[i], `the answering member ${i} names itself`);
      assert.ok((r.header?.revision ?? 0) > lastRev, 'each write gets a new revision');
      assert.ok((r.header?.raftTerm ?? 0) >= 2, 'the term of a cluster with an elected leader');
      lastRev = r.header?.revision ?? 0;
    }

    const expected = new Map(kvs.map((_, i) => [`via/${i}`, `value-${i}`]));
    for (const [i, kv] of kvs.entries()) {
      // Linearizable: everything acknowledged before, at once, from any member.
      const lin = await kv.range('via/', { prefix: true });
      assert.deepEqual(new Map(lin.kvs.map((x) => [Buffer.from(x.key).toString(), Buffer.from(x.value).toString()])), expected, `linearizable read on member ${i}`);
      assert.equal(lin.header?.clusterId, clusterId);
      assert.equal(lin.header?.memberId, ids[i]);
      assert.ok((lin.header?.revision ?? 0) >= lastRev);
      assert.ok((lin.header?.raftTerm ?? 0) >= 2);
      // Serializable: local state, which a follower may apply a moment later.
      await waitFor(async () => (await kv.getPrefix('via/', { serializable: true })).size === 3, 5_000, `serializable read on member ${i} sees all writes`);
      const ser = await kv.range('via/1', { serializable: true });
      assert.equal(Buffer.from(ser.kvs[0]?.value ?? []).toString(), 'value-1');
      assert.equal(ser.header?.memberId, ids[i]);
      assert.equal(ser.header?.clusterId, clusterId);
    }

    // The same term everywhere, and the same leader.
    const st = await Promise.all(c.members.map((m) => memberStatus(m.endpoint)));
    assert.equal(new Set(st.map((s) => s.raftTerm)).size, 1);
    assert.equal(new Set(st.map((s) => s.leader)).size, 1);
  });

  test('concurrent writes through all members interleave into one history', async () => {
    const n = 30;
    const puts: Promise<{ header?: { revision: number } | undefined }>[] = [];
    for (let i = 0; i < n; i++) {
      const kv = kvs[i % 3];
      assert.ok(kv !== undefined);
      puts.push(kv.put(`many/${String(i).padStart(2, '0')}`, `v${i}`));
    }
    const resps = await Promise.all(puts);
    const revs = resps.map((r) => r.header?.revision ?? 0);
    assert.equal(new Set(revs).size, n, 'every write has its own revision');
    for (const kv of kvs) {
      const got = await kv.getPrefix('many/');
      assert.equal(got.size, n);
      for (let i = 0; i < n; i++) assert.equal(got.get(`many/${String(i).padStart(2, '0')}`), `v${i}`);
    }
  });
});
