// Waiters, the applied-index wait and batched ReadIndex rounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppliedIndexWait, WaitRegistry } from './wait.js';
import { LinearizableReads } from './linearizable-read.js';
import { IdGenerator } from './id-gen.js';
import { ServerError } from './errors.js';

/** Request ids for ReadIndex rounds: 1, 2, 3... */
function counter(): () => bigint {
  let n = 0n;
  return () => ++n;
}

test('applied-index waits resolve in any order of registration, exactly when reached', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 40 }), fc.integer({ min: 0, max: 60 }), async (indexes, upTo) => {
      const w = new AppliedIndexWait(0);
      const done = new Set<number>();
      const ps = indexes.map((i, k) => w.wait(i).then(() => done.add(k)));
      w.advance(upTo);
      await new Promise((r) => setImmediate(r));
      indexes.forEach((i, k) => assert.equal(done.has(k), i <= upTo));
      assert.equal(w.pending, indexes.filter((i) => i > upTo).length);
      w.advance(60);
      await Promise.all(ps);
    }),
    { numRuns: 200 },
  );
});

test('wait registry: trigger, fail, bound', async () => {
  const r = new WaitRegistry<string>(2);
  const a = r.register(1n);
  const b = r.register(2n);
  assert.equal(r.register(3n), undefined);
  r.trigger(1n, 'one');
  assert.equal(await a, 'one');
  r.failAll(new Error('stopped'));
  await assert.rejects(b as Promise<string>, /stopped/);
});

test('ids from different members never collide and keep increasing', () => {
  const a = new IdGenerator(0x1234n, 1_700_000_000_000);
  const b = new IdGenerator(0x5678n, 1_700_000_000_000);
  const x = a.next();
  const y = a.next();
  assert.ok(y > x);
  assert.notEqual(x >> 48n, b.next() >> 48n);
});

test('ReadIndex rounds: batching, late arrivals wait for the next round, retry and timeout', async () => {
  let now = 0;
  const issued: string[] = [];
  const applied = new AppliedIndexWait(5);
  const reads = new LinearizableReads({
    issue: (ctx) => issued.push(Buffer.from(ctx).toString('hex')),
    localIndex: () => undefined,
    nextId: counter(),
    appliedWait: applied,
    nowMs: () => now,
    retryMs: 5,
    timeoutMs: 30,
    pendingMax: 100,
  });
  const order: string[] = [];
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const r1 = reads.read().then(() => order.push('r1'));
  const r2 = reads.read().then(() => order.push('r2'));
  await tick();
  assert.equal(issued.length, 1, 'two reads in one turn of the event loop share one round');
  const r3 = reads.read().then(() => order.push('r3'));
  await tick();
  assert.equal(issued.length, 1, 'a read arriving after the round was issued waits for the next one');
  reads.onReadState(Buffer.from(issued[0] as string, 'hex'), 7);
  await tick();
  assert.equal(issued.length, 2, 'the next round starts when the first returns');
  applied.advance(6);
  await tick();
  assert.deepEqual(order, [], 'not before applied reaches the read index');
  applied.advance(7);
  await Promise.all([r1, r2]);
  reads.onReadState(Buffer.from(issued[1] as string, 'hex'), 7);
  await r3;
  assert.deepEqual(order.sort(), ['r1', 'r2', 'r3']);
  // No leader: the round is retried, then fails with Timeout.
  const r4 = reads.read();
  const state = { settled: false };
  const checked = assert.rejects(r4, (e: unknown) => e instanceof ServerError && e.code === 'Timeout').finally(() => {
    state.settled = true;
  });
  const before: number = issued.length;
  // The retry timers are unref'd (they must not keep a server alive), so the test ticks the loop itself.
  // The clock moves only after a retry was issued: on a loaded machine the real retry timer may
  // otherwise fire late enough that the first retry already finds the round past its timeout.
  for (let i = 0, seen = issued.length; i < 200 && !state.settled; i++) {
    await new Promise((r) => setTimeout(r, 6));
    if (issued.length > seen) {
      seen = issued.length;
      now += 6;
    }
  }
  await checked;
  assert.ok(issued.length > before + 1, 'retried before timing out');
  reads.stop(new ServerError('Stopped'));
  await assert.rejects(reads.read(), (e: unknown) => e instanceof ServerError && e.code === 'Stopped');
});

test('ReadIndex on the sole voter: no round, the read waits only for the applied index', async () => {
  const issued: Uint8Array[] = [];
  const applied = new AppliedIndexWait(5);
  let local: number | undefined = 7;
  const reads = new LinearizableReads({
    issue: (ctx) => issued.push(ctx),
    localIndex: () => local,
    nextId: counter(),
    appliedWait: applied,
    nowMs: () => 0,
    retryMs: 5,
    timeoutMs: 30,
    pendingMax: 100,
  });
  const done: string[] = [];
  const r1 = reads.read().then(() => done.push('r1'));
  await new Promise((r) => setImmediate(r));
  assert.equal(issued.length, 0, 'no ReadIndex round');
  assert.deepEqual(done, [], 'not before applied reaches the commit index');
  applied.advance(7);
  await r1;
  // Leadership lost (or an entry of the term not yet committed): back to rounds.
  local = undefined;
  const r2 = reads.read();
  await new Promise((r) => setImmediate(r));
  assert.equal(issued.length, 1);
  reads.onReadState(issued[0] as Uint8Array, 7);
  await r2;
  reads.stop(new ServerError('Stopped'));
});
