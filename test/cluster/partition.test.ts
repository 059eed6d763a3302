// Partitions through the fault proxy in front of every member's peer port:
// an isolated member (a follower, then the leader) serves neither writes nor
// linearizable reads while the majority keeps serving both; healed, it
// catches up with everything the majority wrote.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { etcdctl, liveChildren, methods, openChannel, outcome, type Cluster, type Member } from '../harness/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { useWorkspace } from '../harness/index.js';
import { clusterKinds, Kv, assertAllPresent, fastElection, readyTimeoutMs, hashesAtSameRevision, memberIdOf, metricSum, waitFor } from './kit.js';

/** A client deadline past the member's own request timeout (5 s + two election timeouts), so the member's answer is seen. */
const minorityCallMs = 10_000;
const unavailable = 14;
/** What etcd answers a write proposed while its member has no leader, at its request timeout: Propose's own context error. */
const noLeaderDeadline = { ok: false, code: 2, message: 'context deadline exceeded' };

async function isolationCase(c: Cluster, isolated: Member, round: string): Promise<void> {
  const majority = c.members.filter((m) => m !== isolated);
  const kvI = new Kv(isolated.endpoint);
  const kvM = majority.map((m) => new Kv(m.endpoint));
  try {
    const isolatedId = await memberIdOf(isolated);
    await kvM[0]?.put(`${round}/before`, 'b');
    await waitFor(async () => (await kvI.get(`${round}/before`, { serializable: true })) === 'b', 5_000, 'the isolated member has the write before the partition');
    c.net.isolate(isolated.name);

    // A caller that gives up takes its proposal with it: the member's pending
    // count drops when the client's deadline cancels the call, not at the
    // member's own request timeout seconds later.
    const abandoned = await kvI.try(kvI.put(`${round}/abandoned`, 'x', 300));
    assert.equal(abandoned.ok, false, 'a write on the isolated member fails');
    await waitFor(async () => (await metricSum(isolated, 'etcd_server_proposals_pending')) === 0, 3_000, 'the abandoned proposal to leave the pending count');

    // As etcd: both wait for the request timeout, then fail as timed out (not as a leader failure:
    // no new leader was elected here, this member just lost its own).
    const [put, read] = await Promise.all([
      kvI.try(kvI.put(`${round}/minority`, 'x', minorityCallMs)),
      kvI.try(kvI.range(`${round}/before`, { timeoutMs: minorityCallMs })),
    ]);
    const timedOut = { ok: false, code: unavailable, message: 'etcdserver: request timed out' };
    // A write that reached raft times out; one that came after the member lost its leader
    // (an election timeout after the cut) never reached it, and fails as etcd's blocked Propose does.
    assert.ok(isDeepStrictEqual(put, timedOut) || isDeepStrictEqual(put, noLeaderDeadline), `a write on the isolated member fails: ${JSON.stringify(put)}`);
    assert.deepEqual(read, timedOut, 'a linearizable read on the isolated member fails');
    // A serializable read is local state, stale but served.
    assert.equal(await kvI.get(`${round}/before`, { serializable: true }), 'b');

    // The majority elects a leader among itself (if it was the isolated one) and keeps serving.
    const acked = new Map<string, string>();
    const deadline = Date.now() + 15_000;
    for (let i = 0; i < 20; i++) {
      const kv = kvM[i % kvM.length];
      assert.ok(kv !== undefined);
      const key = `${round}/majority/${String(i).padStart(2, '0')}`;
      for (;;) {
        const r = await kv.try(kv.put(key, `v${i}`, 2_000));
        if (r.ok) break;
        assert.ok(Date.now() < deadline, `the majority does not serve writes: ${r.code} ${r.message}`);
      }
      acked.set(key, `v${i}`);
    }
    for (const kv of kvM) assert.equal((await kv.getPrefix(`${round}/majority/`)).size, 20);
    const leaderNow = (await kvM[0]?.status())?.leader ?? 0n;
    assert.notEqual(leaderNow, isolatedId, 'the majority follows one of its own');

    c.net.heal();
    await waitFor(async () => (await kvI.try(kvI.get(`${round}/majority/19`, { timeoutMs: 2_000 }))).ok, 20_000, 'the healed member serves linearizable reads again', 200);
    await assertAllPresent(isolated, `${round}/majority/`, acked);
    // The write tried on the minority was never acknowledged; if it was proposed there, a new leader discarded it.
    const { revision, hashes } = await hashesAtSameRevision(c);
    assert.equal(new Set(hashes.values()).size, 1, `HashKV at ${revision}: ${JSON.stringify([...hashes])}`);
  } finally {
    c.net.heal();
    kvI.close();
    for (const kv of kvM) kv.close();
  }
}

describe('cluster: partition', () => {
  const ws = useWorkspace('partition');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  for (const [kind, skip] of clusterKinds()) {
    test(`${kind}: a member left without a leader ends its leader-requiring watches and fails writes at its request timeout as etcd does (gRPC Unknown, not retried by etcdctl)`, { skip }, async () => {
      const c = await ws.startCluster({ kind, readyTimeoutMs, size: 3, extraFlags: fastElection });
      const [alone, ...others] = c.members as [Member, ...Member[]];
      // A watch that requires a leader (etcdctl's watch does) is ended by the member once it has none.
      const ch = openChannel(alone.endpoint);
      const watch = ch.bidi(methods.watch.Watch, { metadata: { hasleader: 'true' }, timeoutMs: 60_000 });
      const kv = new Kv(alone.endpoint);
      try {
        const create = etcdserverpb.WatchCreateRequest.create({ key: Buffer.from('orphan') });
        watch.write(etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: create } }));
        assert.equal((await watch.read())?.created, true);
        for (const m of others) await m.kill();
        // Within an election timeout the member gives its leader up (or, leading, steps down).
        await waitFor(async () => (await kv.status()).leader === 0n, 10_000, 'the lone member to have no leader', 100);
        const leaderlessAt = Date.now();
        assert.deepEqual(await outcome(watch.read()), { ok: false, code: unavailable, message: 'etcdserver: no leader' });
        assert.ok(Date.now() - leaderlessAt < 10_000, `the watch ended ${Date.now() - leaderlessAt} ms after the leader was lost`);
        const started = Date.now();
        const put = await kv.try(kv.put('orphan', 'x', minorityCallMs));
        const tookMs = Date.now() - started;
        assert.deepEqual(put, noLeaderDeadline);
        // The request timeout: 5 s and two election timeouts.
        assert.ok(tookMs > 5_000 && tookMs < 9_000, `failed after ${tookMs} ms`);
        // A keep-alive stream (not leader-requiring) ends once a renewal found no leader within the request timeout.
        const keepAlive = ch.bidi(methods.lease.LeaseKeepAlive, { timeoutMs: 60_000 });
        const sentAt = Date.now();
        keepAlive.write(etcdserverpb.LeaseKeepAliveRequest.create({ ID: 5n }));
        assert.deepEqual(await outcome(keepAlive.read()), { ok: false, code: unavailable, message: 'etcdserver: no leader' });
        assert.ok(Date.now() - sentAt < 12_000, `the keep-alive stream ended ${Date.now() - sentAt} ms after its request`);
      } finally {
        kv.close();
        ch.close();
      }
      // etcdctl retries a lease grant on Unavailable until its own deadline; on this error it gives up at once.
      const started = Date.now();
      const grant = await etcdctl(['--command-timeout=20s', 'lease', 'grant', '5'], { endpoints: [alone.endpoint], timeoutMs: 30_000 });
      assert.equal(grant.code, 1);
      assert.equal(grant.stderr.trim().split('\n').at(-1), 'Error: failed to grant lease (rpc error: code = Unknown desc = context deadline exceeded)');
      assert.ok(Date.now() - started < 12_000, `etcdctl gave up after ${Date.now() - started} ms`);
    });

    test(`${kind}: an isolated follower, then an isolated leader, serve no writes or linearizable reads; healed, they catch up`, { skip }, async () => {
      const c = await ws.startCluster({ kind, readyTimeoutMs, size: 3, extraFlags: fastElection, faultProxy: true });
      const leader = await c.leader();
      const follower = c.members.find((m) => m !== leader);
      assert.ok(follower !== undefined);
      await isolationCase(c, follower, 'follower');
      await isolationCase(c, await c.leader(), 'leader');
    });
  }
});
