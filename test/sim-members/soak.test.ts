/**
 * One simulated day of a 3-member cluster (reliability.md A1: each CI run
 * covers at least a simulated day). The day alternates 20 s of the usual
 * traffic and faults (crashes, torn writes, partitions, a lossy network,
 * member replacements, compactions, defrags, leases, snapshots) with quiet
 * half-hours in which nothing fails and one client writes now and then, so
 * heartbeats, elections' timers, lease and compaction bookkeeping and the
 * revision hash check run through a whole day of simulated time. The
 * history must pass the robustness checkers and HashKV must agree at the end.
 * run-tests.ts starts soak files first, so that it runs beside the other
 * files rather than after them (4-6 minutes on this machine).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSim } from './sim.js';

const dayMs = 86_400_000;

test('3 members, seed 1, one simulated day: 48 busy stretches of 20 s between quiet half-hours', { timeout: 900_000 }, async () => {
  const r = await runSim({ seed: 1, members: 3, durationMs: dayMs, busyMs: 20_000, quietMs: 1_780_000 });
  assert.deepEqual(
    r.violations.slice(0, 10).map((v) => `[${v.check}] ${v.message}`),
    [],
  );
  assert.ok(r.simulatedMs >= dayMs, `${r.simulatedMs} ms simulated`);
  // What a day of busy stretches should hold; the figures of seed 1 are several times these.
  assert.ok(r.crashes >= 100 && r.replaced >= 20 && r.compactions >= 100, `crashes ${r.crashes}, replaced ${r.replaced}, compactions ${r.compactions}`);
  assert.ok(r.okOps >= 20_000 && r.snapshots.installed >= 20, `${r.okOps} ok ops, ${r.snapshots.installed} snapshots installed`);
  assert.ok(r.revisionChecks.compared >= 1000, `${r.revisionChecks.compared} revision hash comparisons`);
});
