// The due queue against a naive model (a map scanned for its minimum), under
// random schedule / reschedule / remove / pop, with the heap invariants
// checked after every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DueQueue, type DueSlot } from './due-queue.js';

interface Item {
  readonly id: number;
  dueMs: number;
  position: number;
}

const slot: DueSlot<Item> = {
  dueMs: (i) => i.dueMs,
  setDueMs: (i, ms) => {
    i.dueMs = ms;
  },
  position: (i) => i.position,
  setPosition: (i, p) => {
    i.position = p;
  },
};

function newQueue(): DueQueue<Item> {
  return new DueQueue<Item>(slot, (a, b) => a.id - b.id);
}

type Op =
  | { readonly kind: 'schedule'; readonly item: number; readonly dueMs: number }
  | { readonly kind: 'remove'; readonly item: number }
  | { readonly kind: 'pop' };

const itemsMax = 24;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('schedule' as const), item: fc.nat(itemsMax - 1), dueMs: fc.integer({ min: 0, max: 50 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), item: fc.nat(itemsMax - 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pop' as const) }) },
);

test('due queue behaves as a map scanned for its earliest (due, id)', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
      const q = newQueue();
      const items: Item[] = Array.from({ length: itemsMax }, (_, id) => ({ id, dueMs: 0, position: -1 }));
      const model = new Map<number, number>();
      for (const op of ops) {
        switch (op.kind) {
          case 'schedule':
            q.schedule(items[op.item] as Item, op.dueMs);
            model.set(op.item, op.dueMs);
            break;
          case 'remove':
            q.remove(items[op.item] as Item);
            model.delete(op.item);
            break;
          case 'pop': {
            let best: [number, number] | undefined;
            for (const [id, due] of model) {
              if (best === undefined || due < best[1] || (due === best[1] && id < best[0])) best = [id, due];
            }
            const popped = q.pop();
            assert.equal(popped?.id, best?.[0]);
            if (best !== undefined) model.delete(best[0]);
            break;
          }
        }
        q.checkInvariants();
        assert.equal(q.size, model.size);
        for (const item of items) assert.equal(q.has(item), model.has(item.id));
      }
    }),
    { numRuns: 300 },
  );
});

test('clear marks every item as not queued', () => {
  const q = newQueue();
  const a: Item = { id: 1, dueMs: 0, position: -1 };
  const b: Item = { id: 2, dueMs: 0, position: -1 };
  q.schedule(a, 5);
  q.schedule(b, 3);
  assert.equal(q.peek(), b);
  q.clear();
  assert.equal(q.size, 0);
  assert.equal(q.has(a), false);
  assert.equal(q.has(b), false);
  assert.equal(q.peek(), undefined);
  q.schedule(a, 1);
  assert.equal(q.pop(), a);
  assert.equal(q.pop(), undefined);
});
