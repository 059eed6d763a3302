/**
 * Growing a cluster at run time with Debian's etcdctl while a writer keeps
 * writing: a voting member added with `member add` and started from the
 * ETCD_* settings etcdctl printed catches up through a snapshot (the others'
 * raft logs were compacted past where it starts); then a learner is added,
 * refused promotion while it lags (and promotions of a voter or of an unknown
 * id are refused as etcd refuses them, when the change applies), catches up
 * and is promoted. Every member ends with the same HashKV and every
 * acknowledged write.
 *
 * OPS_KIND=etcd runs the same steps against real etcd 3.4.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { etcdctl, etcdctlMissing, freePorts, useWorkspace, type Cluster, type Member } from '../harness/index.js';
import { Writer, assertAllPresent, fastElection, metricSum, readyTimeoutMs } from '../cluster/kit.js';
import { errorLines, eventually, hashKvOfAll, memberChange, memberFromAdd, memberIds, opsKind, parseMemberAdd } from './kit.js';

const skip = etcdctlMissing();

// Snapshots every 100 entries; a leader keeps this many entries after one for followers that lag
// (etcd 3.4 has no flag for it and keeps 5000), so the joining member needs a snapshot.
const catchUp =
  opsKind === 'etcd'
    ? { flags: [] as string[], writesBeforeJoin: 5_500 }
    : { flags: ['--experimental-snapshot-catchup-entries', '50'], writesBeforeJoin: 400 };

describe(`member add (${opsKind}): a voter, then a learner promoted, while writes go on`, { skip }, () => {
  const ws = useWorkspace('ops-member-add');
  let c: Cluster;
  const joined: Member[] = [];
  const all = (): Member[] => [...c.members, ...joined];
  let writer: Writer;

  before(async () => {
    c = await ws.startCluster({ kind: opsKind, size: 3, readyTimeoutMs, extraFlags: [...fastElection, '--snapshot-count', '100', ...catchUp.flags] });
    writer = new Writer(all, 'grow/', 8);
  });

  after(async () => {
    await writer.stop();
    await Promise.all(joined.map((m) => m.kill()));
  });

  async function addMember(args: readonly string[]): Promise<Member> {
    // etcd refuses any add until it has been connected to every voter for 5 s (a member that just joined).
    const r = await memberChange(['member', 'add', ...args], c.endpoints);
    assert.equal(r.code, 0, r.stderr);
    const printed = parseMemberAdd(r.stdout);
    const m = await memberFromAdd(printed, { kind: opsKind, dir: ws.dir, token: c.member(0).spec.clusterToken, extraFlags: [...fastElection, '--snapshot-count', '100', ...catchUp.flags] });
    // The initial cluster etcdctl prints: every member so far and the new one.
    const expected = [...all().map((x) => `${x.name}=${x.peerUrl}`), `${m.name}=${m.peerUrl}`].sort();
    assert.deepEqual(printed.env.get('ETCD_INITIAL_CLUSTER')?.split(',').sort(), expected);
    assert.equal(printed.env.get('ETCD_INITIAL_ADVERTISE_PEER_URLS'), m.peerUrl);
    return m;
  }

  test('a voter added with member add catches up through a snapshot; HashKV equal; no acknowledged write lost', async (t) => {
    await writer.waitAcked(catchUp.writesBeforeJoin, 60_000);
    const [peerPort] = await freePorts(1);
    const m4 = await addMember(['m4', `--peer-urls=http://127.0.0.1:${peerPort ?? 0}`]);
    joined.push(m4);
    await m4.start({ timeoutMs: readyTimeoutMs });
    await eventually('m4 received a snapshot', async () => ((await metricSum(m4, 'etcd_network_snapshot_receive_success')) >= 1 ? true : undefined), 30_000, 200);
    await writer.waitAcked(100, 60_000);

    const list = await etcdctl(['member', 'list'], { endpoints: [m4.endpoint] });
    assert.equal(list.code, 0, list.stderr);
    const ids = await memberIds(all());
    assert.match(list.stdout, new RegExp(`^${ids.get(m4) ?? '?'}, started, m4, ${m4.peerUrl}, ${m4.clientUrl}, false$`, 'm'));
    assert.equal(list.stdout.trim().split('\n').length, 4);
    t.diagnostic(`${writer.acked.size} writes acknowledged, ${writer.failures} failed`);
  });

  test('a learner is refused promotion until it is in sync, then promoted; promoting a voter or an unknown id is refused', async () => {
    const [peerPort] = await freePorts(1);
    const m5 = await addMember(['m5', '--learner', `--peer-urls=http://127.0.0.1:${peerPort ?? 0}`]);
    joined.push(m5);
    const ids = await memberIds(c.members);
    const leader = await c.leader();
    const follower = c.members.find((m) => m !== leader) ?? c.member(0);
    const learnerId = (await etcdctl(['member', 'list'], { endpoints: c.endpoints })).stdout.split('\n').find((l) => l.includes(', m5,') || l.includes(`, ${m5.peerUrl},`))?.split(', ')[0] ?? '';
    assert.match(learnerId, /^[0-9a-f]+$/);

    // Not started: far behind the leader (through a follower, which asks the leader).
    const early = await etcdctl(['member', 'promote', learnerId], { endpoints: [follower.endpoint] });
    assert.deepEqual([early.code, errorLines(early.stderr)], [1, 'Error: etcdserver: can only promote a learner member which is in sync with leader']);
    const voter = await etcdctl(['member', 'promote', ids.get(follower) ?? ''], { endpoints: [leader.endpoint] });
    assert.deepEqual([voter.code, errorLines(voter.stderr)], [1, 'Error: etcdserver: can only promote a learner member']);
    const unknown = await etcdctl(['member', 'promote', 'abcdef'], { endpoints: [follower.endpoint] });
    assert.deepEqual([unknown.code, errorLines(unknown.stderr)], [1, 'Error: etcdserver: member not found']);

    await m5.start({ timeoutMs: readyTimeoutMs });
    const put = await etcdctl(['put', 'on-learner', 'x'], { endpoints: [m5.endpoint] });
    assert.deepEqual([put.code, errorLines(put.stderr)], [1, 'Error: etcdserver: rpc not supported for learner']);
    // As etcd 3.4.23's: a learner answers only Status and serializable reads; MemberList is refused too.
    const learnerList = await etcdctl(['member', 'list'], { endpoints: [m5.endpoint] });
    assert.deepEqual([learnerList.code, errorLines(learnerList.stderr)], [1, 'Error: etcdserver: rpc not supported for learner']);
    const promoted = await eventually(
      'the learner promoted',
      async () => {
        const r = await etcdctl(['member', 'promote', learnerId], { endpoints: c.endpoints });
        if (r.code === 0) return r.stdout;
        assert.equal(errorLines(r.stderr), 'Error: etcdserver: can only promote a learner member which is in sync with leader');
        return undefined;
      },
      30_000,
      500,
    );
    assert.match(promoted, new RegExp(`^Member +${learnerId} promoted in cluster +[0-9a-f]+\n$`));
    const again = await etcdctl(['member', 'promote', learnerId], { endpoints: c.endpoints });
    assert.deepEqual([again.code, errorLines(again.stderr)], [1, 'Error: etcdserver: can only promote a learner member']);
    await writer.waitAcked(100, 60_000);
    await writer.stop();

    const list = await etcdctl(['member', 'list'], { endpoints: [m5.endpoint] });
    assert.match(list.stdout, new RegExp(`^${learnerId}, started, m5, ${m5.peerUrl}, ${m5.clientUrl}, false$`, 'm'));
    const { revision, hashes } = await hashKvOfAll(all(), 60_000);
    assert.equal(hashes.size, 5);
    assert.equal(new Set(hashes.values()).size, 1, `HashKV at ${revision}: ${JSON.stringify([...hashes])}`);
    for (const m of all()) await assertAllPresent(m, 'grow/', writer.acked);
  });
});
