import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SortedMap } from './btree.js';

function collect(m: SortedMap<number>, start: string, end: string | undefined, limit = Infinity): string[] {
  const out: string[] = [];
  m.forEachFrom(start, end, (k) => {
    out.push(k);
    return out.length < limit;
  });
  return out;
}

test('property: SortedMap matches a sorted Map under inserts, replaces and deletes', () => {
  const keyArb = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\u0000', '\u00ff'), maxLength: 4 });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), keyArb, fc.integer()), { maxLength: 600 }),
      keyArb,
      fc.option(keyArb, { nil: undefined }),
      fc.integer({ min: 1, max: 50 }),
      (ops, start, end, limit) => {
        const m = new SortedMap<number>();
        const model = new Map<string, number>();
        for (const [isPut, k, v] of ops) {
          if (isPut) {
            m.set(k, v);
            model.set(k, v);
          } else {
            assert.equal(m.delete(k), model.delete(k));
          }
          assert.equal(m.size, model.size);
        }
        for (const [k, v] of model) assert.equal(m.get(k), v);
        const sorted = [...model.keys()].sort();
        const want = sorted.filter((k) => k >= start && (end === undefined || k < end)).slice(0, limit);
        assert.deepEqual(collect(m, start, end, limit), want);
      },
    ),
    { numRuns: 300 },
  );
});

test('SortedMap survives bulk inserts and deletes of many keys', () => {
  const m = new SortedMap<number>();
  const n = 20_000;
  const key = (i: number): string => `k${String((i * 7919) % n).padStart(6, '0')}`;
  for (let i = 0; i < n; i++) m.set(key(i), i);
  assert.equal(m.size, n);
  for (let i = 0; i < n; i += 2) assert.equal(m.delete(key(i)), true);
  assert.equal(m.size, n / 2);
  const all = collect(m, '', undefined);
  assert.equal(all.length, n / 2);
  assert.deepEqual(all, [...all].sort());
  for (let i = 1; i < n; i += 2) m.delete(key(i));
  assert.equal(m.size, 0);
  assert.deepEqual(collect(m, '', undefined), []);
  m.set('again', 1);
  assert.deepEqual(collect(m, '', undefined), ['again']);
});

test('fromSorted builds the same map as inserting', () => {
  for (const n of [0, 1, 63, 64, 65, 4096, 4097, 300_000]) {
    const keys = Array.from({ length: n }, (_, i) => `k${String(i).padStart(7, '0')}`);
    const m = SortedMap.fromSorted(keys, keys.map((_, i) => i));
    assert.equal(m.size, n);
    assert.deepEqual(collect(m, '', undefined), keys);
    if (n > 0) {
      assert.equal(m.get(keys[n >> 1] as string), n >> 1);
      assert.deepEqual(collect(m, keys[n - 1] as string, undefined), [keys[n - 1]]);
      m.set('k', -1);
      m.delete(keys[0] as string);
      assert.equal(m.size, n);
      assert.equal(collect(m, '', undefined)[0], 'k');
    }
  }
  assert.throws(() => SortedMap.fromSorted(['b', 'a'], [1, 2]), /ascending/);
});
