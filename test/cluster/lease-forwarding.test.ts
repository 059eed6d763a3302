// Keep-alives and TimeToLive on a three-member cluster, where a renewal
// waits on the network: a ReadIndex round on the leader, forwarding on a
// follower.
//
// A stream whose sender half-closes right after its keep-alives (the JSON
// gateway's /v3/lease/keepalive does, at the end of the body) is answered
// before it ends, as etcd answers each keep-alive before reading the next.
// etcd-ts used to end the stream at the half-close, dropping the answers
// still in flight: the gateway answered nothing at all.
//
// When the leader dies, a follower must ask the new one as soon as there is
// one: etcd answers about an election later (its forwarding request to the
// dead leader fails at once and is retried). etcd-ts used to keep its call
// waiting for the old leader's link for the whole request timeout, so the
// keep-alive stream ended with "request timed out" after 7 s although a new
// leader had been serving for 5 — longer than a short lease's TTL, so a
// client session (a lock, an election) gave its lease up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { RawGrpc, liveChildren, methods, type Cluster } from '../harness/index.js';
import { useWorkspace } from '../harness/index.js';
import { clusterKinds, readyTimeoutMs } from './kit.js';

/** etcd-ts's request timeout with the default 1 s election timeout: 5 s + 2 election timeouts. */
const requestTimeoutMs = 7_000;
const ttlSeconds = 30;

describe('cluster: lease requests that wait on the network', () => {
  const ws = useWorkspace('lease-forwarding');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  for (const [kind, skip] of clusterKinds()) {
    describe(kind, { skip }, () => {
      let c: Cluster;
      let id: bigint;
      before(async () => {
        c = await ws.startCluster({ kind, readyTimeoutMs, size: 3 });
        const cl = await Client.connect({ endpoints: [c.member(0).endpoint], dialTimeoutMs: 5000 });
        try {
          id = (await cl.lease.grant(ttlSeconds)).ID;
        } finally {
          cl.close();
        }
      });

      test('a keep-alive stream half-closed after its request is answered, on the leader and on a follower', async () => {
        const leader = await c.leader();
        const follower = c.members.find((m) => m !== leader);
        assert.ok(follower !== undefined);
        for (const [role, m] of [['leader', leader], ['follower', follower]] as const) {
          const raw = new RawGrpc(m.clientUrl);
          try {
            const stream = raw.open(methods.lease.LeaseKeepAlive.path);
            stream.send(etcdserverpb.LeaseKeepAliveRequest.encode(etcdserverpb.LeaseKeepAliveRequest.create({ ID: id })));
            const answer = await stream.end();
            assert.equal(answer.status, '0', `${role}: the stream ends OK`);
            assert.deepEqual(answer.messages.map((b) => etcdserverpb.LeaseKeepAliveResponse.decode(b).TTL), [ttlSeconds], `${role}: the keep-alive is answered`);
          } finally {
            raw.close();
          }
          const res = await fetch(`${m.clientUrl}/v3/lease/keepalive`, { method: 'POST', body: JSON.stringify({ ID: id.toString() }) });
          const body = await res.text();
          assert.equal(res.status, 200);
          assert.equal((JSON.parse(body || '{}') as { result?: { TTL?: string } }).result?.TTL, String(ttlSeconds), `${role}: the gateway's keep-alive answers: ${body}`);
        }
      });

      test('after the leader is killed, a keep-alive and a TimeToLive on a follower are answered by the next leader', async (t) => {
        const leader = await c.leader();
        const follower = c.members.find((m) => m !== leader);
        assert.ok(follower !== undefined);
        const cl = await Client.connect({ endpoints: [follower.endpoint], dialTimeoutMs: 5000 });
        try {
          await cl.lease.keepAliveOnce(id, { timeoutMs: 5000 });
          await leader.kill();
          const killedAt = performance.now();
          const took = async <T>(p: Promise<T>): Promise<[T, number]> => [await p, performance.now() - killedAt];
          const [[renewed, renewMs], [ttl, ttlMs]] = await Promise.all([
            took(cl.lease.keepAliveOnce(id, { timeoutMs: 20_000 })),
            took(cl.lease.timeToLive(id, { timeoutMs: 20_000 })),
          ]);
          t.diagnostic(`after the leader was killed: keep-alive answered in ${Math.round(renewMs)} ms, TimeToLive in ${Math.round(ttlMs)} ms`);
          assert.equal(renewed.TTL, ttlSeconds);
          assert.equal(ttl.grantedTTL, ttlSeconds);
          assert.ok(renewMs < requestTimeoutMs && ttlMs < requestTimeoutMs, 'answered by the new leader, not after the request timeout');
        } finally {
          cl.close();
        }
      });
    });
  }
});
