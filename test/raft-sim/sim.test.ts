import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSeedRange, runSeed } from './sim.js';

// A fixed range for CI; `npm run sim -- --seeds 1..2000` runs the long one.
const [from, to] = parseSeedRange(process.env['RAFT_SIM_SEEDS'] ?? '1..300');

test(`raft simulation seeds ${from}..${to}`, () => {
  const failures: string[] = [];
  for (let seed = from; seed <= to; seed++) {
    const r = runSeed({ seed });
    if (!r.ok) failures.push(`seed=${seed} ${r.failure ?? ''}`);
  }
  assert.deepEqual(failures, []);
});

test('a seed replays exactly', () => {
  const a = runSeed({ seed: 7, faultTicks: 200 });
  const b = runSeed({ seed: 7, faultTicks: 200 });
  assert.deepEqual(a, b);
});
