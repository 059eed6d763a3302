/**
 * `npm run bench`: every benchmark of etcd-ts, by section.
 *
 *   npm run bench [-- [section ...] [workload ...] [--quick] [--rounds N] [--workers N] [--json FILE]]
 *
 * Sections (bench/sections.ts) run in their listed order; naming some runs
 * only those. Naming workload families (put, range, txn, watch) limits the
 * server sections to them: `npm run bench -- single put`.
 * Each section prints its own table and returns rows for --json.
 * --quick shortens every section (about 1-2 minutes in all) at the cost of
 * noisier figures; full runs take about 10 minutes. --rounds N measures each
 * server workload in N windows per server of the full run's length (2 s,
 * alternated A B B A; default 2): a p99 over 2 x 2 s of single-client puts
 * rests on its 20 slowest, and one burst of the machine's noise moves it.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { families } from './compare.js';
import { sections, type SectionOptions } from './sections.js';

function usage(): string {
  const names = sections.map((s) => `  ${s.name.padEnd(9)} ${s.defaultOn ? '' : '(only when named) '}${s.about}`);
  return [
    'usage: npm run bench -- [section ...] [workload ...] [--quick] [--rounds N] [--workers N] [--json FILE]',
    'sections:',
    ...names,
    `workloads (of single and cluster; all when none is named): ${families.join(', ')}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      workers: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '2' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(usage());
    return;
  }
  const unknown = positionals.filter((p) => !sections.some((s) => s.name === p) && !families.includes(p));
  const workers = Number(values.workers);
  const rounds = Number(values.rounds);
  const bad = !Number.isInteger(workers) || workers < 1 ? `bad --workers ${values.workers}` : !Number.isInteger(rounds) || rounds < 1 ? `bad --rounds ${values.rounds}` : undefined;
  if (unknown.length > 0 || bad !== undefined) {
    console.error(`${unknown.length > 0 ? `unknown section or workload ${unknown.join(', ')}` : bad}\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const named = sections.filter((s) => positionals.includes(s.name));
  const chosen = named.length > 0 ? named : sections.filter((s) => s.defaultOn);
  const opts: SectionOptions = { quick: values.quick, families: positionals.filter((p) => families.includes(p)), workers, rounds };
  const results: Record<string, unknown> = {};
  const t0 = performance.now();
  for (const s of chosen) {
    console.log(`\n== ${s.name}${opts.quick ? ' (quick)' : ''}: ${s.about}`);
    results[s.name] = await s.run(opts);
  }
  console.log(`\nbench: ${chosen.map((s) => s.name).join(', ')} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(results, null, 2) + '\n');
}

await main();
