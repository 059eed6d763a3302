// Keep-alive streams on a member left without a leader, against etcd 3.4.23.
// etcd watches every stream whose caller sent `hasleader: true` (clientv3
// sends it on its keep-alive streams): once three checks an election timeout
// apart found no leader, it ends the stream with Unavailable "etcdserver: no
// leader", a keep-alive pending or not, so that the client renews through
// another member before its lease runs out. etcd-ts checked the metadata only
// when the stream opened: an idle keep-alive stream stayed open on the
// leaderless member, and one with a renewal pending ended only at the request
// timeout. A stream without the metadata stays open on both.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { liveChildren, methods, openChannel, outcome } from '../harness/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { useWorkspace } from '../harness/index.js';
import { Kv, clusterKinds, fastElection, readyTimeoutMs, waitFor } from './kit.js';

const unavailable = 14;
/** Three checks of 500 ms after the leader is gone, and slack for a loaded machine. */
const endedWithinMs = 6_000;

describe('cluster: keep-alive streams on a member without a leader', () => {
  const ws = useWorkspace('lease-leader-loss');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  for (const [kind, skip] of clusterKinds()) {
    test(`${kind}: a leader-requiring keep-alive stream ends with "no leader", a plain one stays open`, { skip }, async () => {
      const c = await ws.startCluster({ kind, readyTimeoutMs, size: 3, extraFlags: fastElection });
      const [alone, ...others] = c.members;
      assert.ok(alone !== undefined);
      const ch = openChannel(alone.endpoint);
      const kv = new Kv(alone.endpoint);
      try {
        const ID = 0x1eadn;
        await ch.unary(methods.lease.LeaseGrant, etcdserverpb.LeaseGrantRequest.create({ ID, TTL: 60 }), { timeoutMs: 5_000 });
        const requiring = ch.bidi(methods.lease.LeaseKeepAlive, { metadata: { hasleader: 'true' }, timeoutMs: 60_000 });
        const plain = ch.bidi(methods.lease.LeaseKeepAlive, { timeoutMs: 60_000 });
        for (const stream of [requiring, plain]) {
          stream.write(etcdserverpb.LeaseKeepAliveRequest.create({ ID }));
          assert.equal((await stream.read())?.TTL, 60);
        }
        for (const m of others) await m.kill();
        await waitFor(async () => (await kv.status()).leader === 0n, 10_000, 'the lone member to have no leader', 100);
        const leaderlessAt = Date.now();
        // No keep-alive is pending on either stream: only the member's leader checks can end one.
        const ended = await outcome(requiring.read());
        assert.deepEqual(ended, { ok: false, code: unavailable, message: 'etcdserver: no leader' });
        assert.ok(Date.now() - leaderlessAt < endedWithinMs, `ended ${Date.now() - leaderlessAt} ms after the leader was lost`);
        const stillOpen = await Promise.race([outcome(plain.read()), new Promise<'open'>((resolve) => setTimeout(() => resolve('open'), 1_000))]);
        assert.equal(stillOpen, 'open', 'a stream that does not require a leader is not ended');
        plain.cancel();
      } finally {
        kv.close();
        ch.close();
      }
    });
  }
});
