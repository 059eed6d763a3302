// A lease kept alive by the client while the member its keep-alive stream is
// on gets cut off from the cluster. clientv3 opens that stream with
// `hasleader: true`; the cut-off member ends it ("etcdserver: no leader") a
// few election timeouts after it lost the leader, and the client goes on
// through another endpoint. etcd-ts's client opened it without the metadata:
// its next renewal waited out the cut-off member's request timeout (5 s and
// two election timeouts), longer than a short lease's TTL, so the lease
// expired on the leader although two members could have renewed it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, liveChildren, memberStatus, methods, openChannel, useWorkspace } from '../harness/index.js';
import { fastElection, readyTimeoutMs } from '../cluster/kit.js';

/** Its renewals are due every 2 s; the cut-off member's request timeout is 6 s (election timeout 500 ms). */
const ttlSeconds = 6;

describe('client: a kept lease outlives the member its keep-alive stream is on', () => {
  const ws = useWorkspace('client-lease-failover');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  test('the follower serving the keep-alive stream is cut off: renewals go on through the other follower', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, readyTimeoutMs, extraFlags: fastElection, faultProxy: true });
    const leader = await c.leader();
    const followers = c.members.filter((m) => m !== leader);
    const client = await Client.connect({ endpoints: followers.map((m) => m.endpoint), dialTimeoutMs: 5_000 });
    const ch = openChannel(leader.endpoint);
    try {
      const { ID } = await client.lease.grant(ttlSeconds);
      const ka = client.lease.keepAlive(ID, ttlSeconds);
      const first = await ka[Symbol.asyncIterator]().next();
      assert.equal(first.done, false);
      // The member that answered the first renewal holds the stream.
      const servingId = first.value?.header?.memberId;
      const ids = await Promise.all(followers.map(async (m) => (await memberStatus(m.endpoint)).header?.memberId));
      const serving = followers[ids.indexOf(servingId)];
      assert.ok(serving !== undefined, 'a follower answered');
      c.net.isolate(serving.name);
      await delay((ttlSeconds + 3) * 1000);
      const left = await ch.unary(methods.lease.LeaseTimeToLive, etcdserverpb.LeaseTimeToLiveRequest.create({ ID }), { timeoutMs: 5_000 });
      assert.ok(left.TTL > 0, `the lease was renewed through the other follower (TTL ${left.TTL})`);
      assert.equal(await Promise.race([ka.lost.then((e) => e.message), delay(0).then(() => 'kept')]), 'kept');
      ka.close();
    } finally {
      c.net.heal();
      ch.close();
      client.close();
    }
  });
});
