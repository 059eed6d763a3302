import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from './key-index.js';
import { revKey, type Revision } from './revision.js';

const r = (main: number, sub = 0): Revision => ({ main, sub });

/** puts at 1, 2, delete at 3, put at 4, delete at 5 (the doc comment's example) plus a put at 6, 7. */
function example(): KeyIndex {
  const ki = new KeyIndex('k');
  ki.put(r(1));
  ki.put(r(2));
  assert.equal(ki.tombstone(r(3)), true);
  ki.put(r(4));
  assert.equal(ki.tombstone(r(5)), true);
  ki.put(r(6));
  ki.put(r(7, 1));
  return ki;
}

function shape(ki: KeyIndex): string {
  return ki.generations.map((g) => `{${g.revs.map((x) => `${x.main}.${x.sub}`).join(',')}}`).join(' ');
}

test('get answers with the version and creation of the generation holding the revision', () => {
  const ki = example();
  assert.equal(ki.get(0), undefined);
  assert.deepEqual(ki.get(1), { modified: r(1), created: r(1), version: 1 });
  assert.deepEqual(ki.get(2), { modified: r(2), created: r(1), version: 2 });
  assert.equal(ki.get(3), undefined, 'deleted at 3');
  assert.deepEqual(ki.get(4), { modified: r(4), created: r(4), version: 1 });
  assert.equal(ki.get(5), undefined);
  assert.deepEqual(ki.get(7), { modified: r(7, 1), created: r(6), version: 2 });
  assert.deepEqual(ki.get(100), { modified: r(7, 1), created: r(6), version: 2 });
  assert.equal(ki.tombstone(r(8)), true);
  assert.equal(ki.tombstone(r(9)), false, 'already deleted');
});

test('since returns one revision per transaction from the given main revision on', () => {
  const ki = new KeyIndex('k');
  ki.put(r(1));
  ki.put(r(2, 0));
  ki.put(r(2, 1));
  ki.tombstone(r(3));
  ki.put(r(4));
  assert.deepEqual(ki.since(1), [r(1), r(2, 1), r(3), r(4)]);
  assert.deepEqual(ki.since(3), [r(3), r(4)]);
  assert.deepEqual(ki.since(5), []);
});

test('compaction keeps the newest revision at or below the compact revision unless it is a tombstone', () => {
  const cases: Array<[number, string, string[]]> = [
    [1, '{1.0,2.0,3.0} {4.0,5.0} {6.0,7.1}', ['1_0']],
    [2, '{2.0,3.0} {4.0,5.0} {6.0,7.1}', ['2_0']],
    [3, '{4.0,5.0} {6.0,7.1}', []],
    [4, '{4.0,5.0} {6.0,7.1}', ['4_0']],
    [5, '{6.0,7.1}', []],
    [6, '{6.0,7.1}', ['6_0']],
    [7, '{7.1}', ['7_1']],
  ];
  for (const [at, want, kept] of cases) {
    const ki = example();
    const keep = new Set<string>();
    ki.keep(at, keep);
    const available = new Set<string>();
    ki.compact(at, available);
    assert.equal(shape(ki), want, `compact(${at})`);
    assert.deepEqual([...available], kept, `available after compact(${at})`);
    assert.deepEqual([...keep], kept, `keep(${at}) agrees with compact(${at})`);
  }
  const gone = new KeyIndex('k');
  gone.put(r(1));
  gone.tombstone(r(2));
  gone.compact(2, new Set());
  assert.equal(gone.isEmpty(), true, 'a key deleted at or below the compact revision goes');
  assert.equal(revKey(3, 1), '3_1');
});
