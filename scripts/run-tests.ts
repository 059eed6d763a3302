/**
 * Runs every compiled test file (dist/**\/*.test.js) with node:test.
 *
 *   node dist/scripts/run-tests.js [substring ...]
 *
 * With arguments, only files whose path contains one of them run. Test files
 * run in parallel processes (two at a time: this machine has two cores and
 * several suites start servers), soak files first. Every file has a hard
 * timeout.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const dist = resolve(import.meta.dirname, '..');

function walk(dir: string, out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.test.js')) out.push(p);
  }
}

const files: string[] = [];
for (const top of ['src', 'test']) walk(join(dist, top), files);
const filters = process.argv.slice(2);
// Soak files (*soak.test.js, minutes each) first, so that they run beside the others, not after them.
const soakFirst = (f: string): number => (f.endsWith('soak.test.js') ? 0 : 1);
const selected = files
  .filter((f) => filters.length === 0 || filters.some((s) => relative(dist, f).includes(s)))
  .sort((a, b) => soakFirst(a) - soakFirst(b) || (a < b ? -1 : a > b ? 1 : 0));

if (selected.length === 0) {
  console.error('run-tests: no test files selected');
  process.exit(1);
}

const concurrency = process.env['TEST_CONCURRENCY'] ?? '2';
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...selected],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
