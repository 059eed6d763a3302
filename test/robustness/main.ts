/**
 * npm run robustness -- [--seed N] [--duration S] [--size 1|3|5] [--peer-tls] [--auth jwt|simple] [--faults kill,pause,...] [--overlap] [--dir D]
 * npm run robustness -- --check history.json
 *
 * Runs the fault mix against a cluster of etcd-ts members and checks the
 * history; prints a summary and exits 1 with the seed and the saved
 * history's path on any violation. --check re-runs the checkers on a saved
 * history.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { faultKinds, type FaultKind } from './faults.js';
import type { History } from './history.js';
import { checkHistory, runRobustness } from './run.js';

function fail(message: string): never {
  process.stderr.write(`robustness: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      duration: { type: 'string', default: '60' },
      size: { type: 'string', default: '3' },
      faults: { type: 'string', default: faultKinds.join(',') },
      dir: { type: 'string' },
      check: { type: 'string' },
      'peer-tls': { type: 'boolean', default: false },
      overlap: { type: 'boolean', default: false },
      auth: { type: 'string' },
    },
  });
  if (values.check !== undefined) {
    const h = JSON.parse(readFileSync(values.check, 'utf8')) as History;
    const { replay, violations: v } = checkHistory(h);
    for (const x of v) process.stdout.write(`VIOLATION [${x.check}] ${x.message}\n`);
    process.stdout.write(`${h.ops.length} ops, ${replay.maxRev} revisions: ${v.length} violation(s)\n`);
    process.exit(v.length > 0 ? 1 : 0);
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  const durationS = Number(values.duration);
  const size = Number(values.size);
  if (!Number.isSafeInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer`);
  if (!(durationS > 0)) fail(`--duration must be a positive number of seconds`);
  if (size !== 1 && size !== 3 && size !== 5) fail(`--size must be 1, 3 or 5`);
  if (values.overlap && size === 1) fail(`--overlap needs 3 or 5 members`);
  if (values.auth !== undefined && values.auth !== 'jwt' && values.auth !== 'simple') fail(`--auth must be jwt or simple`);
  const faults = values.faults === '' ? [] : values.faults.split(',');
  for (const f of faults) if (!(faultKinds as readonly string[]).includes(f)) fail(`unknown fault ${f} (known: ${faultKinds.join(', ')})`);

  const started = Date.now();
  const report = await runRobustness({
    seed,
    durationMs: durationS * 1000,
    size,
    faults: faults as FaultKind[],
    peerTls: values['peer-tls'],
    overlap: values.overlap,
    ...(values.auth !== undefined ? { auth: values.auth } : {}),
    ...(values.dir !== undefined ? { dir: values.dir } : {}),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const s = report.stats;
  process.stdout.write(
    `robustness: seed ${seed}: ${s['ops']} ops (${s['ok']} ok, ${s['indeterminate']} indeterminate, ${s['failedReads']} failed reads, ${s['refusedWrites']} refused writes, ${s['authRefused']} refused by auth), ` +
      `${s['watchEvents']} watch events on ${s['watchStreams']} streams (${s['watchProgress']} progress responses, ${s['compactCancels']} compaction cancels), ${s['shortLeases']} short leases (${s['abandonedLeases']} left to expire), ${s['locksHeld']} locks held (${s['setAdds']} set adds, ${s['fencedOff']} fenced off), ${s['snapshots']} snapshots, ${s['faults']} fault notes (NOSPACE ${s['nospace']} times), ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  for (const x of report.violations.slice(0, 50)) process.stdout.write(`VIOLATION [${x.check}] ${x.message}\n`);
  if (report.violations.length > 0) {
    process.stdout.write(`robustness: FAILED with ${report.violations.length} violation(s); seed ${seed}; history saved to ${report.historyPath ?? '?'}; logs in ${report.dir}\n`);
    process.exit(1);
  }
  process.stdout.write('robustness: ok\n');
  process.exit(0);
}

await main();
