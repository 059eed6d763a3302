// Keep-alives and TimeToLive sent to a follower are forwarded to the leader.
// When the leader dies, the follower must ask the new one as soon as there
// is one: etcd answers about an election later (its forwarding request to
// the dead leader fails at once and is retried). etcd-ts used to keep its
// call waiting for the old leader's link for the whole request timeout, so
// the keep-alive stream ended with "request timed out" after 7 s although a
// new leader had been serving for 5 — longer than a short lease's TTL, so a
// client session (a lock, an election) gave its lease up.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.js';
import { etcdMissing, liveChildren, type MemberKind } from '../harness/index.js';
import { useWorkspace } from '../harness/index.js';
import { readyTimeoutMs } from './kit.js';

/** etcd-ts's request timeout with the default 1 s election timeout: 5 s + 2 election timeouts. */
const requestTimeoutMs = 7_000;

describe('cluster: lease requests forwarded by a follower when the leader dies', () => {
  const ws = useWorkspace('lease-forwarding');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  const kinds: [MemberKind, string | false][] = [
    ['etcd-ts', false],
    ['etcd', process.env['CLUSTER_WITH_ETCD'] === '1' ? etcdMissing() : 'set CLUSTER_WITH_ETCD=1 to run against real etcd'],
  ];
  for (const [kind, skip] of kinds) {
    test(`${kind}: a keep-alive and a TimeToLive on a follower are answered by the next leader`, { skip, timeout: 120_000 }, async (t) => {
      const c = await ws.startCluster({ kind, readyTimeoutMs, size: 3 });
      const leader = await c.leader();
      const follower = c.members.find((m) => m !== leader);
      assert.ok(follower !== undefined);
      const cl = await Client.connect({ endpoints: [follower.endpoint], dialTimeoutMs: 5000 });
      try {
        const { ID } = await cl.lease.grant(30);
        await cl.lease.keepAliveOnce(ID, { timeoutMs: 5000 });

        await leader.kill();
        const killedAt = performance.now();
        const took = async <T>(p: Promise<T>): Promise<[T, number]> => [await p, performance.now() - killedAt];
        const [[renewed, renewMs], [ttl, ttlMs]] = await Promise.all([
          took(cl.lease.keepAliveOnce(ID, { timeoutMs: 20_000 })),
          took(cl.lease.timeToLive(ID, { timeoutMs: 20_000 })),
        ]);
        t.diagnostic(`after the leader was killed: keep-alive answered in ${Math.round(renewMs)} ms, TimeToLive in ${Math.round(ttlMs)} ms`);
        assert.equal(renewed.TTL, 30);
        assert.equal(ttl.grantedTTL, 30);
        assert.ok(renewMs < requestTimeoutMs && ttlMs < requestTimeoutMs, 'answered by the new leader, not after the request timeout');
      } finally {
        cl.close();
      }
    });
  }
});
