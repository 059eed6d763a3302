import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseFile, rewrite } from './rafttest/datadriven.js';
import { InteractionEnv } from './rafttest/interaction-env.js';

// Compiled into <out>/src/raft/; the scripts stay in the source tree: find
// the repository root above the output directory.
function testdataDir(): string {
  let d = import.meta.dirname;
  for (let up = 0; up < 8; up++) {
    const p = join(d, 'src', 'raft', 'testdata');
    if (existsSync(join(d, 'package.json')) && existsSync(p)) return p;
    d = dirname(d);
  }
  throw new Error('src/raft/testdata not found');
}
const dir = testdataDir();
const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

for (const f of files) {
  test(`interaction ${f}`, () => {
    const path = join(dir, f);
    const text = readFileSync(path, 'utf8');
    const { cases } = parseFile(text);
    const env = new InteractionEnv();
    const outputs: string[] = [];
    for (const c of cases) {
      const got = env.handle(c);
      outputs.push(got);
      if (process.env['REWRITE'] === undefined) {
        assert.equal(got, c.expected, `${f}:${c.line}: ${c.cmd}`);
      }
    }
    if (process.env['REWRITE'] !== undefined) writeFileSync(path, rewrite(text, outputs));
  });
}

test('there are interaction scripts', () => {
  assert.ok(files.length >= 20, `only ${files.length} scripts`);
});
