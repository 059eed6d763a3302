import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Inflights } from './index.js';

test('inflights behaves like a bounded FIFO of (index, bytes)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 0, max: 100 }),
      fc.array(fc.oneof(fc.record({ add: fc.integer({ min: 1, max: 30 }) }), fc.record({ free: fc.integer({ min: 0, max: 60 }) })), { maxLength: 60 }),
      (countMax, bytesMax, ops) => {
        const inf = new Inflights(countMax, bytesMax);
        const model: Array<[number, number]> = [];
        let next = 1;
        for (const op of ops) {
          if ('add' in op) {
            const full = model.length >= countMax || (bytesMax > 0 && model.reduce((s, x) => s + x[1], 0) >= bytesMax);
            assert.equal(inf.full(), full);
            if (full) continue;
            inf.add(next, op.add);
            model.push([next, op.add]);
            next += 1 + (op.add % 3);
          } else {
            inf.freeLE(op.free);
            while (model.length > 0 && model[0]![0] <= op.free) model.shift();
          }
          assert.equal(inf.count(), model.length);
          assert.equal(inf.bytes(), model.reduce((s, x) => s + x[1], 0));
        }
      },
    ),
    { numRuns: 500 },
  );
});
