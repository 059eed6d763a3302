/**
 * npm run sim -- --seeds A..B [--faults TICKS] [--trace]
 *
 * Runs the raft simulation for every seed in the range; prints each failing
 * seed with the violated invariant and exits non-zero if any failed. A seed
 * replays exactly: rerun it alone with --trace to see every message.
 */
import { parseSeedRange, runSeed } from './sim.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

const [from, to] = parseSeedRange(arg('--seeds') ?? '1..100');
const faultTicks = arg('--faults') === undefined ? undefined : Number(arg('--faults'));
const trace = process.argv.includes('--trace') ? (l: string): void => console.log(l) : undefined;
const started = performance.now();
let failed = 0;
const totals = { seeds: 0, ticks: 0, proposals: 0, applied: 0, leaderTerms: 0, restarts: 0, confChanges: 0, snapshots: 0, reads: 0, delivered: 0, livenessTicksMax: 0 };
for (let seed = from; seed <= to; seed++) {
  const r = runSeed({ seed, faultTicks, trace });
  totals.seeds++;
  totals.ticks += r.ticks;
  totals.proposals += r.proposals;
  totals.applied += r.applied;
  totals.leaderTerms += r.leaderTerms;
  totals.restarts += r.restarts;
  totals.confChanges += r.confChanges;
  totals.snapshots += r.snapshots;
  totals.reads += r.reads;
  totals.delivered += r.delivered;
  totals.livenessTicksMax = Math.max(totals.livenessTicksMax, r.livenessTicks);
  if (!r.ok) {
    failed++;
    console.log(`seed=${seed} FAILED ${r.failure ?? ''}`);
  }
}
const secs = ((performance.now() - started) / 1000).toFixed(1);
console.log(`raft-sim: seeds ${from}..${to}: ${totals.seeds - failed} passed, ${failed} failed in ${secs}s`);
console.log(`raft-sim: ${JSON.stringify(totals)}`);
process.exit(failed === 0 ? 0 : 1);
