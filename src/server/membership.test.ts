// Member and cluster ids are etcd's, so a cluster bootstrapped with the same
// flags has the same ids as a real etcd one (values read off etcd 3.4.23).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from './config.js';
import { RaftCluster, computeClusterId, computeMemberId, parseUrlsMap } from './membership.js';
import { ServerError } from './errors.js';

test('ids match etcd 3.4.23 for a one-member cluster', () => {
  // etcd --initial-cluster default=http://127.0.0.1:23800 (token etcd-cluster)
  // reported member 2e1259d415f2a040 in cluster 48276a8f75b6a87.
  const id = computeMemberId(['http://127.0.0.1:23800'], 'etcd-cluster');
  assert.equal(id, 0x2e1259d415f2a040n);
  assert.equal(computeClusterId([id]), 0x48276a8f75b6a87n);
  const c = RaftCluster.fromInitialCluster('etcd-cluster', parseUrlsMap('default=http://127.0.0.1:23800'));
  assert.equal(c.clusterId, 0x48276a8f75b6a87n);
  assert.equal(c.memberList()[0]?.name, 'default');
});

test('peer URLs are sorted before hashing, and a time makes added members unique', () => {
  const a = computeMemberId(['http://b:2', 'http://a:1'], 't');
  assert.equal(a, computeMemberId(['http://a:1', 'http://b:2'], 't'));
  assert.notEqual(computeMemberId(['http://a:1'], 't', 1700000000), computeMemberId(['http://a:1'], 't', 1700000001));
});

test('--initial-cluster parsing: repeated names, bad URLs rejected with etcd text', () => {
  const m = parseUrlsMap('a=http://127.0.0.1:2380,a=http://10.0.0.1:2380,b=http://127.0.0.1:2381');
  assert.deepEqual(m.get('a'), ['http://10.0.0.1:2380', 'http://127.0.0.1:2380']);
  assert.throws(() => parseUrlsMap('a=foo'), (e: unknown) => e instanceof ConfigError && /URL scheme must be/.test(e.message));
  assert.throws(() => parseUrlsMap('a=http://127.0.0.1'), ConfigError);
});

test('configuration change checks', () => {
  const c = RaftCluster.fromInitialCluster('t', parseUrlsMap('a=http://127.0.0.1:1,b=http://127.0.0.1:2'));
  const [first] = c.memberList();
  assert.ok(first !== undefined);
  assert.throws(() => c.checkAdd({ ...first }), (e: unknown) => e instanceof ServerError && e.code === 'MemberExist');
  assert.throws(
    () => c.checkAdd({ id: 5n, name: '', peerUrls: ['http://127.0.0.1:2'], clientUrls: [], isLearner: false }),
    (e: unknown) => e instanceof ServerError && e.code === 'PeerURLExist',
  );
  c.add({ id: 7n, name: '', peerUrls: ['http://127.0.0.1:7'], clientUrls: [], isLearner: true });
  assert.throws(
    () => c.checkAdd({ id: 8n, name: '', peerUrls: ['http://127.0.0.1:8'], clientUrls: [], isLearner: true }),
    (e: unknown) => e instanceof ServerError && e.code === 'TooManyLearners',
  );
  assert.throws(() => c.checkPromote(first.id), (e: unknown) => e instanceof ServerError && e.code === 'MemberNotLearner');
  c.promote(7n);
  c.remove(7n);
  assert.throws(() => c.checkRemove(7n), (e: unknown) => e instanceof ServerError && e.code === 'IDRemoved');
  assert.throws(() => c.checkRemove(99n), (e: unknown) => e instanceof ServerError && e.code === 'MemberNotFound');
  const restored = new RaftCluster('t', c.clusterId);
  restored.restoreFrom(c.toSnapshotData());
  assert.deepEqual(restored.memberList(), c.memberList());
  assert.deepEqual([...restored.removed], [7n]);
});

test("strict reconfiguration counts a voter started once it has a name, as etcd's", () => {
  // Members of the initial cluster have their names from the start; added ones once they publish.
  const c = RaftCluster.fromInitialCluster('t', parseUrlsMap('a=http://127.0.0.1:1'));
  const added = (id: bigint, isLearner = false): void => c.add({ id, name: '', peerUrls: [`http://127.0.0.1:${id}`], clientUrls: [], isLearner });
  // One member grows to two even though the second cannot have started yet.
  assert.equal(c.isReadyToAddVoter(), true);
  added(2n);
  // 1 of 2 started: a third voter would need 2 of 3.
  assert.equal(c.isReadyToAddVoter(), false);
  assert.equal(c.isReadyToRemoveVoter(2n), true);
  const [a] = c.memberList().filter((m) => m.name === 'a');
  assert.ok(a !== undefined);
  assert.equal(c.isReadyToRemoveVoter(a.id), false);
  // A promoted learner counts itself started: 2 of 3.
  added(3n, true);
  assert.equal(c.isReadyToPromote(), true);
  c.setAttributes(2n, 'b', []);
  assert.equal(c.isReadyToAddVoter(), true);
  added(4n);
  added(5n);
  // 2 of 4 voters started: a promotion makes 3 of 5, enough; another voter 2 of 5 is not.
  assert.equal(c.isReadyToPromote(), true);
  assert.equal(c.isReadyToAddVoter(), false);
  assert.equal(c.isReadyToRemoveVoter(2n), false);
});
