import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../base/index.js';
import { Lessor, MemoryLeaseStore } from '../lease/index.js';
import type { serverpb } from '../pb/index.js';
import { LeaseLeader, type LeaseLeaderHost } from './lease-leader.js';

/** A leader whose proposals all fail (a timeout, a leader change under way), recording what it was asked to propose. */
function failingLeader(): { host: LeaseLeaderHost; proposed: serverpb.InternalRaftRequest['request'][] } {
  const lessor = new Lessor({ clock: new ManualClock(), minTtlSeconds: 2, store: new MemoryLeaseStore() });
  const proposed: serverpb.InternalRaftRequest['request'][] = [];
  const host: LeaseLeaderHost = {
    lessor,
    electionMs: 1000,
    isLeader: () => true,
    term: () => 2,
    linearizableRead: () => Promise.resolve(),
    propose: (request) => {
      proposed.push(request);
      return Promise.reject(new Error('etcdserver: request timed out'));
    },
    proposeInternal: () => Promise.resolve(undefined),
  };
  return { host, proposed };
}

test('a keep-alive whose checkpoint clear fails still renews, as etcd ignores that failure', async () => {
  const { host, proposed } = failingLeader();
  host.lessor.grant(7n, 60);
  host.lessor.checkpoint(7n, 20);
  const leader = new LeaseLeader(host);
  assert.equal(leader.onEmptyEntry(2), true);
  assert.equal(await leader.renew(7n), 60);
  assert.deepEqual(
    proposed.map((r) => r?.case),
    ['leaseCheckpoint'],
  );
  // The remainder is still recorded, so the next keep-alive tries the clear again.
  assert.equal(await leader.renew(7n), 60);
  assert.equal(proposed.length, 2);
  // A lease without a checkpointed remainder proposes nothing.
  host.lessor.grant(8n, 30);
  assert.equal(await leader.renew(8n), 30);
  assert.equal(proposed.length, 2);
});
