/**
 * Runs every compiled test file (dist/**\/*.test.js) with node:test.
 *
 *   node dist/scripts/run-tests.js [substring ...]
 *
 * With arguments, only files whose path contains one of them run. Test files
 * run in parallel processes (two at a time: this machine has two cores and
 * several suites start servers), soak files first. Every file has a hard
 * timeout. The exit code is 1 when any test failed.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { run } from 'node:test';
import { tap } from 'node:test/reporters';

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

// node:test's run() takes the files in the order given (the command line's
// --test sorts them, which would start the soak last and leave one core idle
// for its minutes); its events are written as TAP, as `node --test` writes them.
const concurrency = Number(process.env['TEST_CONCURRENCY'] ?? '2');
let failed = false;
// A file's hard timeout: the soak's own, 15 minutes. It takes 6-7 minutes beside the other
// files on a quiet machine, and crossed 10 on a loaded one.
const stream = run({ files: selected, concurrency, timeout: 900_000 });
stream.on('test:fail', () => {
  failed = true;
});
stream.compose(tap).pipe(process.stdout);
stream.on('end', () => {
  process.exitCode = failed ? 1 : 0;
});
