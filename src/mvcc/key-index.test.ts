import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from './key-index.js';
import { revKey, RevisionSet, type Revision } from './revision.js';

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
  return ki.generations().map((g) => `{${g.revs.map((x) => `${x.main}.${x.sub}`).join(',')}}`).join(' ');
}

test('get answers with the version and creation of the generation holding the revision', () => {
  const ki = example();
  assert.equal(ki.get(0), undefined);
  assert.deepEqual(ki.get(1), { modified: r(1), created: 1, version: 1 });
  assert.deepEqual(ki.get(2), { modified: r(2), created: 1, version: 2 });
  assert.equal(ki.get(3), undefined, 'deleted at 3');
  assert.deepEqual(ki.get(4), { modified: r(4), created: 4, version: 1 });
  assert.equal(ki.get(5), undefined);
  assert.deepEqual(ki.get(7), { modified: r(7, 1), created: 6, version: 2 });
  assert.deepEqual(ki.get(100), { modified: r(7, 1), created: 6, version: 2 });
  assert.equal(ki.tombstone(r(8)), true);
  assert.equal(ki.tombstone(r(9)), false, 'already deleted');
});

test('compaction keeps the newest revision at or below the compact revision; HashKV leaves out a tombstone there', () => {
  // [at, generations after compact(at), what compact keeps, what keep (HashKV) keeps]
  const cases: Array<[number, string, string[], string[]]> = [
    [1, '{1.0,2.0,3.0} {4.0,5.0} {6.0,7.1}', ['1_0'], ['1_0']],
    [2, '{2.0,3.0} {4.0,5.0} {6.0,7.1}', ['2_0'], ['2_0']],
    // The delete at 3 stays for a watch from 3 (etcd #18089), but is not hashed.
    [3, '{3.0} {4.0,5.0} {6.0,7.1}', ['3_0'], []],
    [4, '{4.0,5.0} {6.0,7.1}', ['4_0'], ['4_0']],
    [5, '{5.0} {6.0,7.1}', ['5_0'], []],
    [6, '{6.0,7.1}', ['6_0'], ['6_0']],
    [7, '{7.1}', ['7_1'], ['7_1']],
  ];
  for (const [at, want, kept, hashed] of cases) {
    const ki = example();
    const keep = new RevisionSet();
    ki.keep(at, keep);
    const available = new RevisionSet();
    ki.compact(at, available);
    assert.equal(shape(ki), want, `compact(${at})`);
    assert.deepEqual([...available], kept, `available after compact(${at})`);
    assert.deepEqual([...keep], hashed, `keep(${at})`);
  }
  const gone = new KeyIndex('k');
  gone.put(r(1));
  gone.tombstone(r(2));
  gone.compact(2, new RevisionSet());
  assert.equal(shape(gone), '{2.0} {}', 'a key deleted at the compact revision keeps its tombstone');
  assert.equal(gone.get(2), undefined);
  gone.compact(3, new RevisionSet());
  assert.equal(gone.isEmpty(), true, 'a key deleted below the compact revision goes');
  assert.equal(revKey(3, 1), '3_1');
});

test('compaction at a transaction that deleted a key and put it again keeps the put, and the delete for watches', () => {
  // A delete whose range end is "\0" and a put of a key in it pass etcd's overlap check, so one revision can hold both.
  const ki = new KeyIndex('k');
  ki.put(r(2));
  assert.equal(ki.tombstone(r(3, 0)), true);
  ki.put(r(3, 1));
  const keep = new RevisionSet();
  ki.keep(3, keep);
  assert.deepEqual([...keep], ['3_1']);
  const available = new RevisionSet();
  ki.compact(3, available);
  assert.equal(shape(ki), '{3.0} {3.1}');
  assert.deepEqual([...available].sort(), ['3_0', '3_1']);
  assert.deepEqual(ki.get(3), { modified: r(3, 1), created: 3, version: 1 });
  ki.compact(4, new RevisionSet());
  assert.equal(shape(ki), '{3.1}');
  assert.deepEqual(ki.get(4), { modified: r(3, 1), created: 3, version: 1 });
});

test('a key whose only surviving revision is its tombstone is restored, and goes at the next compaction', () => {
  const ki = new KeyIndex('k');
  ki.restoreTombstone(r(5, 1));
  assert.equal(shape(ki), '{5.1} {}');
  assert.equal(ki.get(5), undefined);
  assert.equal(ki.get(4), undefined);
  assert.equal(ki.isEmpty(), false);
  const hashed = new RevisionSet();
  ki.keep(5, hashed);
  assert.deepEqual([...hashed], []);
  const kept = new RevisionSet();
  ki.compact(5, kept);
  assert.deepEqual([...kept], ['5_1'], 'compaction at its revision again keeps it');
  ki.put(r(7));
  assert.deepEqual(ki.get(7), { modified: r(7), created: 7, version: 1 });
  ki.compact(7, new RevisionSet());
  assert.equal(shape(ki), '{7.0}');
  const gone = new KeyIndex('k');
  gone.restoreTombstone(r(5));
  gone.compact(6, new RevisionSet());
  assert.equal(gone.isEmpty(), true);
});

test('a key with a single revision keeps no generations until it needs them, and returns to that after compaction', () => {
  const ki = new KeyIndex('k');
  ki.restore(3, r(5), 2);
  assert.equal(shape(ki), '{5.0}');
  assert.deepEqual(ki.get(5), { modified: r(5), created: 3, version: 2 });
  assert.equal(ki.get(4), undefined, 'older history was compacted away');
  const kept = new RevisionSet();
  ki.keep(9, kept);
  ki.compact(9, kept);
  assert.deepEqual([...kept], ['5_0']);
  ki.put(r(6));
  ki.put(r(7));
  assert.equal(shape(ki), '{5.0,6.0,7.0}');
  assert.deepEqual(ki.get(6), { modified: r(6), created: 3, version: 3 });
  ki.compact(7, new RevisionSet());
  assert.equal(shape(ki), '{7.0}');
  assert.deepEqual(ki.get(7), { modified: r(7), created: 3, version: 4 });
  assert.equal(ki.get(6), undefined);
  assert.equal(ki.tombstone(r(8)), true);
  assert.equal(shape(ki), '{7.0,8.0} {}');
  assert.equal(ki.get(9), undefined);
});
