// Streams on a member left without a leader, against etcd 3.4.23. etcd
// watches every stream whose caller sent `hasleader: true` (clientv3 sends
// it on its keep-alive and watch streams): once three checks an election
// timeout apart found no leader, it ends the stream with Unavailable
// "etcdserver: no leader", a keep-alive pending or not, so that the client
// goes on through another member before its lease runs out.
//
// etcd-ts checked the metadata of a keep-alive stream only when it opened:
// an idle one stayed open on the leaderless member, and one with a renewal
// pending ended only at the request timeout. A watch it ended at the first
// check without a leader, two election timeouts sooner than etcd. A stream
// without the metadata stays open on both.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { liveChildren, methods, openChannel, outcome } from '../harness/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { useWorkspace } from '../harness/index.js';
import { Kv, clusterKinds, readyTimeoutMs, waitFor } from './kit.js';

const unavailable = 14;
const noLeader = { ok: false, code: unavailable, message: 'etcdserver: no leader' };
/** The default election timeout: the interval of the member's leader checks. */
const electionMs = 1_000;
/** Three checks after the leader is gone, and slack for a loaded machine. */
const endedWithinMs = 4 * electionMs + 3_000;
/** The third check without a leader comes two intervals after the first; half an interval is left for the poll that saw the loss. */
const endedNotBeforeMs = 1.5 * electionMs;

describe('cluster: leader-requiring streams on a member without a leader', () => {
  const ws = useWorkspace('lease-leader-loss');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  for (const [kind, skip] of clusterKinds()) {
    test(`${kind}: leader-requiring keep-alive and watch streams end with "no leader" after three checks, a plain keep-alive stays open`, { skip }, async () => {
      const c = await ws.startCluster({ kind, readyTimeoutMs, size: 3 });
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
        const watch = ch.bidi(methods.watch.Watch, { metadata: { hasleader: 'true' }, timeoutMs: 60_000 });
        watch.write(etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: etcdserverpb.WatchCreateRequest.create({ key: Buffer.from('k') }) } }));
        assert.equal((await watch.read())?.created, true);
        for (const m of others) await m.kill();
        await waitFor(async () => (await kv.status()).leader === 0n, 10_000, 'the lone member to have no leader', 100);
        const leaderlessAt = Date.now();
        // No keep-alive is pending and nothing is written: only the member's leader checks can end these streams.
        const ended = async (read: Promise<unknown>): Promise<{ answer: unknown; afterMs: number }> => ({ answer: await outcome(read), afterMs: Date.now() - leaderlessAt });
        const [keepAliveEnd, watchEnd] = await Promise.all([ended(requiring.read()), ended(watch.read())]);
        for (const [name, { answer, afterMs }] of [['keep-alive', keepAliveEnd], ['watch', watchEnd]] as const) {
          assert.deepEqual(answer, noLeader, name);
          assert.ok(afterMs >= endedNotBeforeMs && afterMs < endedWithinMs, `${name}: ended ${afterMs} ms after the leader was lost`);
        }
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
