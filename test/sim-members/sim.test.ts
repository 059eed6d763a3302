/**
 * The whole-member simulation (sim.ts) on a few seeds: 3 and 5 members under
 * crashes with torn unsynced writes, isolation, splits, a lossy network and
 * member replacements, with compactions, raft snapshots (sent to and
 * installed by followers) and short leases (kept alive, revoked, abandoned
 * to expire), and on seeds divisible by 3 auth on with its store churned
 * under the traffic;
 * the history must pass the robustness checkers and HashKV must agree. One
 * seed runs twice: the same seed must give the same event trace.
 * SIM_SEED=N runs that seed instead of the fixed ones.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSim, type SimReport } from './sim.js';

const pinned = process.env['SIM_SEED'];
// Seeds whose first 6 s get well past the minimum of traffic below (some schedules keep a
// quorum down most of that time), and whose leaders send snapshots to followers far behind.
const seeds = pinned !== undefined ? [Number(pinned)] : [2, 5, 7];

function explain(r: SimReport): string {
  return `seed ${r.seed}: ${r.violations
    .slice(0, 10)
    .map((v) => `[${v.check}] ${v.message}`)
    .join('\n')}`;
}

for (const seed of seeds) {
  test(`3 members, seed ${seed}: linearizable, watches reliable, equal HashKV`, async () => {
    const r = await runSim({ seed, members: 3, durationMs: 6000 });
    assert.deepEqual(r.violations, [], explain(r));
    assert.ok(r.okOps > 20 && r.lastRevision > 10, `too little happened: ${r.okOps} ok ops, revision ${r.lastRevision}`);
    if (pinned === undefined) assert.ok(r.snapshots.installed > 0, `no follower was caught up by a snapshot: ${JSON.stringify(r.snapshots)}`);
  });
}

test('3 members, seed 8, 9 s: members replaced under the faults (removed, added on an empty disk, learners promoted), leases revoked and expired', async () => {
  const r = await runSim({ seed: pinned !== undefined ? Number(pinned) : 8, members: 3, durationMs: 9000 });
  assert.deepEqual(r.violations, [], explain(r));
  if (pinned !== undefined) return;
  assert.ok(r.replaced >= 2, `${r.replaced} members replaced`);
  assert.ok(r.history.faults.some((f) => / promoted$/.test(f.what)), 'a learner was promoted');
  assert.ok(r.leases.abandoned > 0 && r.leases.revoked > 0 && r.leases.keepAlives > 0, `leases: ${JSON.stringify(r.leases)}`);
});

// The seed is one whose run changes the auth store twice (most change it once in 6 s); a change of
// the members' timing (a follower's read answered without a heartbeat round) moved seed 12 off it.
test('3 members, seed 36: auth on, the traffic as an ordinary user, the auth store changed under it', async () => {
  const r = await runSim({ seed: pinned !== undefined ? Number(pinned) : 36, members: 3, durationMs: 6000, auth: true });
  assert.deepEqual(r.violations, [], explain(r));
  if (pinned !== undefined) return;
  assert.ok(r.auth.changes >= 2 && r.auth.refused > 0, `auth: ${JSON.stringify(r.auth)}`);
});

test('5 members, seed 4', async () => {
  const r = await runSim({ seed: pinned !== undefined ? Number(pinned) : 4, members: 5, durationMs: 6000 });
  assert.deepEqual(r.violations, [], explain(r));
  assert.ok(r.okOps > 20, `too little happened: ${r.okOps} ok ops`);
});

test('a seed replays exactly: same trace digest, same history', async () => {
  const a = await runSim({ seed: 5, members: 3, durationMs: 4000 });
  const b = await runSim({ seed: 5, members: 3, durationMs: 4000 });
  assert.equal(a.digest, b.digest);
  assert.equal(JSON.stringify(a.history), JSON.stringify(b.history));
  const c = await runSim({ seed: 6, members: 3, durationMs: 4000 });
  assert.notEqual(c.digest, a.digest, 'another seed gives another run');
});
