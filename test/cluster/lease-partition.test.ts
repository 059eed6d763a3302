// Leases on a leader cut off from the others. Until check-quorum makes it
// step down (up to two election timeouts), the old leader still believes it
// leads. etcd answers a keep-alive there from its lessor at once: the client
// is told its lease was renewed while the majority's new leader counts it
// down and revokes it, and a lock holder keeps acting on a lock it lost
// (etcd #13915, #15247). etcd-ts confirms its leadership with a ReadIndex
// round first, so that keep-alive fails, and the lease's end is no surprise
// to the client: its keys go no sooner than its TTL after the last
// keep-alive that did succeed.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.js';
import { liveChildren } from '../harness/index.js';
import { useWorkspace } from '../harness/index.js';
import { clusterKinds, readyTimeoutMs, waitFor } from './kit.js';

const ttlSeconds = 6;

describe('cluster: leases on an isolated leader', () => {
  const ws = useWorkspace('lease-partition');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  for (const [kind, skip] of clusterKinds()) {
    test(`${kind}: a keep-alive sent to a leader cut off from the others does not renew the lease`, { skip, timeout: 120_000 }, async (t) => {
      // Default timing (100 ms heartbeats, 1 s election): the old leader keeps leading for a while.
      const c = await ws.startCluster({ kind, readyTimeoutMs, size: 3, faultProxy: true });
      const leader = await c.leader();
      const others = c.members.filter((m) => m !== leader);
      const onLeader = await Client.connect({ endpoints: [leader.endpoint], dialTimeoutMs: 5000 });
      const onMajority = await Client.connect({ endpoints: others.map((m) => m.endpoint), dialTimeoutMs: 5000 });
      try {
        const grant = await onLeader.lease.grant(ttlSeconds);
        await onLeader.kv.put('lock/holder', 'me', { lease: grant.ID });
        const renewedAt = performance.now();
        await onLeader.lease.keepAliveOnce(grant.ID, { timeoutMs: 2000 });

        c.net.isolate(leader.name);
        const isolatedAt = performance.now();
        const stale = await onLeader.lease.keepAliveOnce(grant.ID, { timeoutMs: 3000 }).then(
          (r) => `renewed, TTL ${r.TTL}`,
          (e: unknown) => `failed: ${(e as Error).message}`,
        );
        t.diagnostic(`keep-alive on the isolated leader ${Math.round(performance.now() - isolatedAt)} ms after the cut: ${stale}`);
        if (kind === 'etcd-ts') assert.match(stale, /^failed: /, 'the isolated leader could not confirm it leads: no renewal');

        // The majority elects a leader of its own and expires the lease in its time, counted
        // from the last renewal that succeeded (plus the election timeout a new leader grants).
        await waitFor(async () => (await onMajority.kv.get('lock/holder', { timeoutMs: 2000 }).catch(() => undefined))?.kvs.length === 0, 30_000, 'the lease to expire on the majority', 100);
        const goneAfterMs = performance.now() - renewedAt;
        t.diagnostic(`the lease's key went ${Math.round(goneAfterMs)} ms after the last successful keep-alive`);
        assert.ok(goneAfterMs >= ttlSeconds * 1000 - 50, `the key went ${Math.round(goneAfterMs)} ms after the last renewal, before the TTL of ${ttlSeconds} s`);
      } finally {
        c.net.heal();
        onLeader.close();
        onMajority.close();
      }
    });
  }
});
