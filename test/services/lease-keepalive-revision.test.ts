// The revision in a keep-alive's answer, against the real etcd 3.4.23. etcd
// takes the header before it renews: a keep-alive that arrives after the
// lease expired waits for the leader's revoke and is answered TTL 0 at the
// revision from before the revoke (its comment: a client must not see a
// keep-alive succeed at a revision after the lease's revoke). etcd-ts took
// the header after the renewal, so that answer carried the revoke's revision.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { delay, etcdMissing, methods, openChannel, useWorkspace, type Cluster } from '../harness/index.js';
import { etcdserverpb } from '../../src/pb/index.js';

/** An answer slower than this waited for the revoke: one for a lease already revoked takes a few ms. */
const waitedMs = 100;
const roundsMax = 6;

async function expiredKeepAlive(c: Cluster, round: number): Promise<{ putRevision: number; answer: etcdserverpb.LeaseKeepAliveResponse; tookMs: number }> {
  const ch = openChannel(c.member(0).endpoint);
  try {
    const ID = BigInt(0x5e00 + round);
    await ch.unary(methods.lease.LeaseGrant, etcdserverpb.LeaseGrantRequest.create({ ID, TTL: 2 }), { timeoutMs: 5000 });
    const granted = performance.now();
    const put = await ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: Buffer.from(`held${round}`), value: Buffer.from('v'), lease: ID }), { timeoutMs: 5000 });
    // Just past the expiry: the leader revokes expired leases every 500 ms, so this keep-alive most often waits for that.
    await delay(granted + 2030 - performance.now());
    const stream = ch.bidi(methods.lease.LeaseKeepAlive, { timeoutMs: 5000 });
    const sent = performance.now();
    stream.write(etcdserverpb.LeaseKeepAliveRequest.create({ ID }));
    const answer = await stream.read();
    const tookMs = performance.now() - sent;
    stream.cancel();
    assert.ok(answer !== undefined);
    return { putRevision: put.header?.revision ?? 0, answer, tookMs };
  } finally {
    ch.close();
  }
}

describe('keep-alive answer revision', () => {
  const ws = useWorkspace('lease-keepalive-revision');
  for (const kind of ['etcd-ts', 'etcd'] as const) {
    test(`${kind}: a keep-alive that waited for its expired lease's revoke answers TTL 0 at the revision before it`, { skip: kind === 'etcd' && etcdMissing() }, async (t) => {
      const c = await ws.startCluster({ kind });
      for (let round = 0; round < roundsMax; round++) {
        const { putRevision, answer, tookMs } = await expiredKeepAlive(c, round);
        t.diagnostic(`round ${round}: TTL ${answer.TTL} at revision ${answer.header?.revision} (the put's: ${putRevision}) in ${Math.round(tookMs)} ms`);
        assert.equal(answer.TTL, 0);
        if (tookMs < waitedMs) continue;
        assert.equal(answer.header?.revision, putRevision, 'the revision from when the keep-alive arrived');
        return;
      }
      assert.fail(`no keep-alive of ${roundsMax} waited for a revoke`);
    });
  }
});
