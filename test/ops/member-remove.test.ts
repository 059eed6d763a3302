/**
 * Changing a running 5-member cluster with Debian's etcdctl while a writer
 * keeps writing: a member's peer URL updated (it is then reached there after
 * a restart), a follower and then the leader removed (leadership moves, the
 * removed members stop, writes go on), the strict reconfiguration checks
 * refusing changes while a member is down, and `move-leader` with its errors.
 * Outputs, errors and exit codes are etcd's, as OPS_KIND=etcd shows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Member, etcdctl, etcdctlMissing, freePorts, memberStatus, useWorkspace, type Cluster } from '../harness/index.js';
import { Kv, Writer, fastElection, metricSum, readyTimeoutMs } from '../cluster/kit.js';
import { agreedLeader, errorLines, eventually, memberChange, memberIds, opsKind, parseMemberAdd } from './kit.js';

const skip = etcdctlMissing();

describe(`member update, remove and move-leader (${opsKind}) while writes go on`, { skip }, () => {
  const ws = useWorkspace('ops-member-remove');
  let c: Cluster;
  /** The members that are part of the cluster (the cluster's own list, with a restarted one swapped in). */
  let current: Member[] = [];
  let ids = new Map<Member, string>();
  let writer: Writer;
  const extra: Member[] = [];

  before(async () => {
    c = await ws.startCluster({ kind: opsKind, size: 5, readyTimeoutMs, extraFlags: [...fastElection] });
    current = [...c.members];
    ids = await memberIds(current);
    writer = new Writer(() => current, 'change/', 6);
    await writer.waitAcked(100, 30_000);
  });

  after(async () => {
    await writer.stop();
    await Promise.all(extra.map((m) => m.kill()));
  });

  const idOf = (m: Member): string => ids.get(m) ?? '?';
  const eps = (): string[] => current.filter((m) => m.running).map((m) => m.endpoint);
  /** The leader the running members agree on, once it is one of them (not one just removed). */
  function leaderMember(): Promise<Member> {
    return eventually('a leader among the members', async () => {
      const lead = (await agreedLeader(current)).toString(16);
      return current.find((x) => idOf(x) === lead);
    });
  }

  test('member update: the new peer URL is listed, and the member is reached on it after a restart', async () => {
    const leader = await leaderMember();
    const target = current.find((m) => m !== leader) ?? c.member(0);
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port ?? 0}`;
    // Asked of the leader: the target is cut off from the moment the others apply the change, so
    // it may never answer a request of its own.
    const r = await memberChange(['member', 'update', idOf(target), `--peer-urls=${url}`], [leader.endpoint]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Member +${idOf(target)} updated in cluster +[0-9a-f]+\n$`));
    const list = await etcdctl(['member', 'list'], { endpoints: [leader.endpoint] });
    assert.match(list.stdout, new RegExp(`^${idOf(target)}, started, ${target.name}, ${url}, ${target.clientUrl}, false$`, 'm'));

    // Restarted listening on the new URL only; it can have what was written since only from there.
    await target.stop();
    const moved = new Member({ ...target.spec, peerPort: port ?? 0 });
    extra.push(moved);
    await moved.start({ timeoutMs: readyTimeoutMs });
    current = current.map((m) => (m === target ? moved : m));
    ids.set(moved, idOf(target));
    const kv = new Kv(leader.endpoint);
    const mark = await kv.put('after-update', 'x');
    kv.close();
    const rev = mark.header?.revision ?? 0;
    await eventually('the moved member applied the write made after its restart', async () => ((await memberStatus(moved.endpoint)).header?.revision ?? 0) >= rev ? true : undefined, 20_000, 100);
    const got = await etcdctl(['get', 'after-update', '--consistency=s', '--print-value-only'], { endpoints: [moved.endpoint] });
    assert.equal(got.stdout, 'x\n');
  });

  test('member remove of a follower, then of the leader: a new leader, writes go on, the removed members stop', async (t) => {
    const leader = await leaderMember();
    const follower = current.find((m) => m !== leader && m.running) ?? c.member(0);
    // Asked of the leader, not of the member removed (which may not learn that its removal committed).
    const r1 = await memberChange(['member', 'remove', idOf(follower)], [leader.endpoint]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, new RegExp(`^Member +${idOf(follower)} removed from cluster +[0-9a-f]+\n$`));
    current = current.filter((m) => m !== follower);
    // As etcd: the removed member stops by itself and exits 0.
    assert.deepEqual(await follower.waitExit(), { code: 0, signal: null });
    await writer.waitAcked(50, 60_000);

    // The leader removes itself: it answers, keeps leading until the others have the log, then hands over.
    const r2 = await memberChange(['member', 'remove', idOf(leader)], [leader.endpoint]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, new RegExp(`^Member +${idOf(leader)} removed from cluster +[0-9a-f]+\n$`));
    current = current.filter((m) => m !== leader);
    assert.deepEqual(await leader.waitExit(), { code: 0, signal: null });
    const next = await leaderMember();
    assert.notEqual(next, leader);
    await writer.waitAcked(100, 60_000);
    const list = await etcdctl(['member', 'list'], { endpoints: eps() });
    assert.equal(list.stdout.trim().split('\n').length, 3, list.stdout);
    t.diagnostic(`${writer.acked.size} writes acknowledged, ${writer.failures} failed`);
  });

  test('with a member down, strict reconfiguration refuses an add and the removal of a running member', async () => {
    const leader = await leaderMember();
    const down = current.find((m) => m !== leader) ?? c.member(0);
    await down.stop();
    const running = current.filter((m) => m.running);
    const other = running.find((m) => m !== leader) ?? c.member(0);
    // Asked of the leader, once its link to the stopped member is down.
    await eventually('the leader sees the member down', async () => ((await metricSum(leader, 'etcd_network_active_peers')) === running.length - 1 ? true : undefined), 10_000, 100);
    const add = await etcdctl(['member', 'add', 'm9', '--peer-urls=http://127.0.0.1:9'], { endpoints: [leader.endpoint] });
    assert.deepEqual([add.code, errorLines(add.stderr)], [1, 'Error: etcdserver: unhealthy cluster']);
    const learner = await etcdctl(['member', 'add', 'm9', '--learner', '--peer-urls=http://127.0.0.1:9'], { endpoints: [leader.endpoint] });
    assert.deepEqual([learner.code, errorLines(learner.stderr)], [1, 'Error: etcdserver: unhealthy cluster']);
    const remove = await etcdctl(['member', 'remove', idOf(other)], { endpoints: [leader.endpoint] });
    assert.deepEqual([remove.code, errorLines(remove.stderr)], [1, 'Error: etcdserver: unhealthy cluster']);
    await down.start({ timeoutMs: readyTimeoutMs });
  });

  test('move-leader to a chosen member; to a learner, an unknown id or through a follower it is refused', async () => {
    // A learner (never started) to move leadership to.
    const learner = await memberChange(['member', 'add', 'm6', '--learner', '--peer-urls=http://127.0.0.1:6'], eps());
    assert.equal(learner.code, 0, learner.stderr);
    const added = parseMemberAdd(learner.stdout);
    const leader = await leaderMember();
    const target = current.find((m) => m !== leader) ?? c.member(0);
    const follower = current.find((m) => m !== leader && m !== target) ?? c.member(0);
    const toLearner = await etcdctl(['move-leader', added.id], { endpoints: eps() });
    assert.deepEqual([toLearner.code, errorLines(toLearner.stderr)], [1, 'Error: etcdserver: bad leader transferee']);
    const toUnknown = await etcdctl(['move-leader', 'abcdef'], { endpoints: eps() });
    assert.deepEqual([toUnknown.code, errorLines(toUnknown.stderr)], [1, 'Error: etcdserver: bad leader transferee']);
    const noLeader = await etcdctl(['move-leader', idOf(target)], { endpoints: [follower.endpoint] });
    assert.deepEqual([noLeader.code, errorLines(noLeader.stderr)], [128, `Error: no leader endpoint given at [${follower.endpoint}]`]);
    const badId = await etcdctl(['move-leader', 'xyz'], { endpoints: eps() });
    assert.deepEqual([badId.code, errorLines(badId.stderr)], [128, 'Error: strconv.ParseUint: parsing "xyz": invalid syntax']);

    const moved = await etcdctl(['move-leader', idOf(target)], { endpoints: eps() });
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.stdout, `Leadership transferred from ${idOf(leader)} to ${idOf(target)}\n`);
    assert.equal((await agreedLeader(current)).toString(16), idOf(target));
    const self = await etcdctl(['move-leader', idOf(target), '-w', 'json'], { endpoints: eps() });
    // To the leader itself: nothing to do; etcd's response has no header.
    assert.deepEqual([self.code, self.stdout], [0, '{}\n'], self.stderr);
    await writer.waitAcked(100, 60_000);
  });
});
