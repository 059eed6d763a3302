// A 5-member cluster serves writes with two members down and stops serving
// them with three down; one member back restores the quorum.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { liveChildren, useWorkspace } from '../harness/index.js';
import { Kv, fastElection, readyTimeoutMs, waitFor } from './kit.js';

describe('cluster: five members', () => {
  const ws = useWorkspace('five');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  test('serves with two members killed, not with three; a restarted one restores the quorum', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', readyTimeoutMs, size: 5, extraFlags: fastElection });
    const leader = await c.leader();
    const kvs = c.members.map((m) => new Kv(m.endpoint));
    try {
      for (const [i, kv] of kvs.entries()) await kv.put(`five/${i}`, `v${i}`);

      // The leader and one follower.
      const followers = c.members.filter((m) => m !== leader);
      const [f1, f2, f3, f4] = followers;
      assert.ok(f1 !== undefined && f2 !== undefined && f3 !== undefined && f4 !== undefined);
      await leader.kill();
      await f1.kill();
      const kv3 = new Kv(f3.endpoint);
      try {
        await waitFor(async () => (await kv3.try(kv3.put('five/two-down', 'ok', 2_000))).ok, 15_000, 'writes with two of five down');
        const kv4 = new Kv(f4.endpoint);
        try {
          assert.equal(await kv4.get('five/two-down'), 'ok');
          assert.equal((await kv4.getPrefix('five/')).size, 6);
        } finally {
          kv4.close();
        }

        await f2.kill();
        const put = await kv3.try(kv3.put('five/three-down', 'no', 3_000));
        assert.equal(put.ok, false, 'a write with three of five down fails');
        const read = await kv3.try(kv3.range('five/0', { timeoutMs: 3_000 }));
        assert.equal(read.ok, false, 'a linearizable read with three of five down fails');

        await f2.start({ until: 'serving', timeoutMs: readyTimeoutMs });
        await waitFor(async () => (await kv3.try(kv3.put('five/back', 'ok', 2_000))).ok, 20_000, 'writes once a third member is back');
        assert.equal(await kv3.get('five/back'), 'ok');
      } finally {
        kv3.close();
      }
    } finally {
      for (const kv of kvs) kv.close();
    }
  });
});
