// A follower that was down while the others wrote past several snapshots
// (and compacted their raft logs beyond its position) catches up through a
// snapshot: the leader streams its database, the follower installs it and
// follows the log from there; afterwards every member has the same HashKV
// at the same revision, and the follower restarts on the installed state.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { liveChildren, useWorkspace } from '../harness/index.js';
import { Kv, Writer, assertAllPresent, fastElection, readyTimeoutMs, hashesAtSameRevision, logOf, metricSum, waitFor } from './kit.js';
import { describeExit, type Cluster, type Member } from '../harness/index.js';

describe('cluster: snapshot catch-up', () => {
  const ws = useWorkspace('snapshot');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  /** Three members that snapshot every 100 entries and keep 20 after: a follower down for a while needs a snapshot. */
  async function snapshottingCluster(): Promise<{ c: Cluster; leader: Member; follower: Member }> {
    const c = await ws.startCluster({
      kind: 'etcd-ts',
      readyTimeoutMs,
      size: 3,
      extraFlags: [...fastElection, '--snapshot-count', '100', '--experimental-snapshot-catchup-entries', '20'],
    });
    const leader = await c.leader();
    const follower = c.members.find((m) => m !== leader);
    assert.ok(follower !== undefined);
    return { c, leader, follower };
  }

  test('a follower behind the compacted log catches up through a snapshot; HashKV equal on all members', async (t) => {
    const { c, leader, follower } = await snapshottingCluster();
    const kvL = new Kv(leader.endpoint);
    try {
      for (let i = 0; i < 10; i++) await kvL.put(`early/${i}`, `e${i}`);
      await follower.stop();

      // Well past several snapshots: puts, overwrites, deletes and an mvcc compaction.
      const w = new Writer(() => c.members, 'snap/', 8);
      let snapsSaved = 0;
      try {
        await w.waitAcked(500, 60_000);
        for (let i = 0; i < 10; i++) await kvL.put(`early/${i}`, `e${i}-2`);
        await kvL.put('gone', 'x');
        assert.equal((await kvL.delete('gone')).deleted, 1);
        await kvL.compact((await kvL.put('compact-here', 'c')).header?.revision ?? 0);
        snapsSaved = (logOf(leader).match(/saved snapshot/g) ?? []).length;
        assert.ok(snapsSaved >= 3, `the leader saved ${snapsSaved} snapshots`);

        // Back while the writes go on.
        await follower.start({ timeoutMs: readyTimeoutMs });
        await waitFor(async () => (await metricSum(follower, 'etcd_network_snapshot_receive_success')) >= 1, 30_000, 'the follower received a snapshot', 200);
        await w.waitAcked(100);
      } finally {
        await w.stop();
      }
      // Whoever leads by then sent it: leadership may have moved under load.
      const sent = await Promise.all(c.members.filter((m) => m !== follower).map((m) => metricSum(m, 'etcd_network_snapshot_send_success')));
      assert.ok(sent.reduce((a, b) => a + b, 0) >= 1, 'a member counts a snapshot sent');
      assert.match(logOf(follower), /installing snapshot database/);
      t.diagnostic(`${w.acked.size} writes acknowledged (${w.failures} failed); the leader saved ${snapsSaved} snapshots while the follower was down`);

      const first = await hashesAtSameRevision(c);
      assert.equal(new Set(first.hashes.values()).size, 1, `HashKV at ${first.revision}: ${JSON.stringify([...first.hashes])}`);
      await assertAllPresent(follower, 'snap/', w.acked);

      // Replication goes on from the snapshot, and the installed state survives a restart.
      for (let i = 0; i < 20; i++) await kvL.put(`after/${i}`, `a${i}`);
      await follower.restart({ timeoutMs: readyTimeoutMs });
      const kvF = new Kv(follower.endpoint);
      try {
        assert.equal((await kvF.getPrefix('after/')).size, 20);
        assert.equal(await kvF.get('early/3'), 'e3-2');
        assert.equal(await kvF.get('gone'), undefined);
      } finally {
        kvF.close();
      }
      await assertAllPresent(follower, 'snap/', w.acked);
      const second = await hashesAtSameRevision(c);
      assert.equal(new Set(second.hashes.values()).size, 1, `HashKV at ${second.revision}: ${JSON.stringify([...second.hashes])}`);
    } finally {
      kvL.close();
    }
  });

  test('a follower that crashes right after saving a received snapshot restarts on it', async () => {
    const { c, leader, follower } = await snapshottingCluster();
    const kvL = new Kv(leader.endpoint);
    try {
      await follower.stop();
      for (let i = 0; i < 400; i++) await kvL.put(`k/${i % 50}`, `v${i}`);
      // It acknowledges the snapshot once saved, then dies before applying it (raftBeforeApplySnap).
      await follower.start({ wait: false, env: { ETCD_TS_FAILPOINTS: 'raftBeforeApplySnap=crash@1' } });
      const exit = await follower.waitExit();
      assert.match(logOf(follower), /failpoint raftBeforeApplySnap: crash/, describeExit(exit));
      // Restarted, it must hold what it acknowledged: the snapshot, its commit index with it.
      await follower.start({ timeoutMs: readyTimeoutMs });
      for (let i = 400; i < 420; i++) await kvL.put(`k/${i % 50}`, `v${i}`);
      const kvF = new Kv(follower.endpoint);
      try {
        await waitFor(async () => (await kvF.get('k/19', { serializable: true })) === 'v419', 30_000, 'the follower caught up');
      } finally {
        kvF.close();
      }
      assert.ok(follower.running, 'the follower is still up');
      const hashes = await hashesAtSameRevision(c);
      assert.equal(new Set(hashes.hashes.values()).size, 1, `HashKV at ${hashes.revision}: ${JSON.stringify([...hashes.hashes])}`);
    } finally {
      kvL.close();
    }
  });
});
