import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { crc32c, crc32cUpdate, nopLogger } from '../base/index.js';
import { Backend, LmdbEngine, ManualTimers, installSnapshotFile, type BackendOptions } from './index.js';

const names = ['key', 'meta'];

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backend-test-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function b(...bytes: number[]): Uint8Array {
  return new Uint8Array(bytes);
}

function openAt(dir: string, extra: Partial<BackendOptions> = {}): Backend {
  return Backend.open({ path: join(dir, 'db'), bucketNames: names, timers: new ManualTimers(), ...extra });
}

function dump(be: Backend, bucket = 'key'): string[] {
  return be.range(be.bucket(bucket), new Uint8Array(0), undefined).map((e) => `${Buffer.from(e.key).toString('hex')}=${Buffer.from(e.value).toString('hex')}`);
}

/** Closes be, opens the file again and checks it holds what be showed; returns that. */
async function closeAndReopenSame(be: Backend, dir: string): Promise<string[]> {
  const content = dump(be);
  await be.close();
  const again = openAt(dir);
  assert.deepEqual(dump(again), content);
  await again.close();
  return content;
}

test('reads see uncommitted writes, and commits keep them', withDir(async (dir) => {
  const be = openAt(dir);
  const key = be.bucket('key');
  be.write((tx) => {
    tx.put(key, b(1), b(10));
    tx.put(key, b(2), b(20));
    assert.deepEqual(tx.get(key, b(1)), b(10));
  });
  assert.deepEqual(be.get(key, b(2)), b(20));
  assert.equal(be.pendingOps, 2);
  await be.forceCommit();
  assert.equal(be.pendingOps, 0);
  assert.deepEqual(Buffer.from(be.get(key, b(2)) ?? []), Buffer.from([20]));
  be.write((tx) => tx.delete(key, b(1)));
  assert.equal(be.get(key, b(1)), undefined);
  assert.deepEqual(dump(be), ['02=14']);
  await be.close();
  const again = openAt(dir);
  assert.deepEqual(dump(again), ['02=14']);
  await again.close();
}));

test('values read from disk stay intact after later reads, whatever their size', withDir(async (dir) => {
  // The engine reads into LMDB's reusable buffer: each value must be copied out.
  const be = openAt(dir);
  const key = be.bucket('key');
  const sizes = [0, 1, 300, 4095, 4096, 9000, 70_000, 300, 5];
  const value = (i: number): Uint8Array => Uint8Array.from({ length: sizes[i] ?? 0 }, (_, j) => (i * 31 + j) & 0xff);
  be.write((tx) => sizes.forEach((_, i) => tx.put(key, b(i + 1), value(i))));
  await be.forceCommit();
  const read = sizes.map((_, i) => be.get(key, b(i + 1)));
  read.forEach((v, i) => assert.deepEqual(Buffer.from(v ?? [1, 2, 3]), Buffer.from(value(i)), `value ${i} (${sizes[i]} bytes)`));
  assert.equal(be.get(key, b(99)), undefined);
  // Ranges too: every key and value kept from one iteration survives the rest of it.
  const ranged = be.range(key, b(0), undefined);
  assert.deepEqual(ranged.map((e) => e.key[0]), sizes.map((_, i) => i + 1));
  ranged.forEach((e, i) => assert.deepEqual(Buffer.from(e.value), Buffer.from(value(i)), `ranged value ${i} (${sizes[i]} bytes)`));
  await be.close();
}));

test('ranges merge committed entries with pending puts and deletes', withDir(async (dir) => {
  const be = openAt(dir);
  const key = be.bucket('key');
  be.write((tx) => {
    for (const k of [1, 3, 5, 7, 9]) tx.put(key, b(k), b(k));
  });
  await be.forceCommit();
  be.write((tx) => {
    tx.put(key, b(4), b(40));
    tx.delete(key, b(5));
    tx.put(key, b(7), b(70));
    tx.put(key, b(0), b(0));
    tx.put(key, b(10), b(100));
  });
  assert.deepEqual(dump(be), ['00=00', '01=01', '03=03', '04=28', '07=46', '09=09', '0a=64']);
  assert.deepEqual(be.range(key, b(3), b(9)).map((e) => e.key[0]), [3, 4, 7]);
  assert.deepEqual(be.range(key, b(2), undefined, 2).map((e) => e.key[0]), [3, 4]);
  assert.deepEqual(be.keys(key, b(3), b(9)).map((k) => k[0]), [3, 4, 7]);
  assert.deepEqual(be.keys(key, b(2), undefined, 2).map((k) => k[0]), [3, 4]);
  // A commit in flight and newer pending writes on the same keys: the newest wins.
  const first = be.forceCommit();
  be.write((tx) => {
    tx.delete(key, b(4));
    tx.put(key, b(5), b(55));
  });
  assert.deepEqual(be.range(key, b(3), b(8)).map((e) => e.key[0]), [3, 5, 7]);
  await first;
  await be.forceCommit();
  assert.deepEqual(be.range(key, b(3), b(8)).map((e) => e.key[0]), [3, 5, 7]);
  await be.close();
}));

test('a batch commits on its timer or at the end of the scope that fills it', withDir(async (dir) => {
  const timers = new ManualTimers();
  const be = openAt(dir, { timers, batchIntervalMs: 100, batchOpsMax: 5 });
  const key = be.bucket('key');
  be.write((tx) => tx.put(key, b(1), b(1)));
  assert.equal(timers.pending, 1);
  timers.advance(99);
  assert.equal(be.pendingOps, 1);
  timers.advance(1);
  assert.equal(be.pendingOps, 0, 'the timer handed the batch to LMDB');
  be.write((tx) => {
    for (let i = 0; i < 4; i++) tx.put(key, b(2, i), b(i));
    be.write((inner) => {
      for (let i = 0; i < 4; i++) inner.put(key, b(3, i), b(i));
    });
    assert.equal(be.pendingOps, 8, 'never committed inside a scope');
  });
  assert.equal(be.pendingOps, 0, 'the full batch was committed at the end of the outer scope');
  await be.forceCommit();
  assert.equal(dump(be).length, 9);
  await be.close();
}));

test('forceCommit and commits are refused inside a scope; a scope that throws after writing poisons the backend', withDir(async (dir) => {
  const be = openAt(dir);
  const key = be.bucket('key');
  let inner: Promise<void> | undefined;
  be.write(() => {
    inner = be.forceCommit();
  });
  await assert.rejects(inner!, /inside a write scope/);
  assert.throws(() => be.write(async () => {}), /synchronous/);
  assert.throws(() => be.write(() => { throw new Error('validation failed'); }), /validation failed/);
  be.write((tx) => tx.put(key, b(1), b(1)));
  await be.forceCommit();
  assert.throws(() => be.write((tx) => {
    tx.put(key, b(2), b(2));
    throw new Error('bug mid-apply');
  }), /bug mid-apply/);
  await assert.rejects(be.forceCommit(), /bug mid-apply/);
  await assert.rejects(be.close(), /bug mid-apply/);
  const again = openAt(dir);
  assert.deepEqual(dump(again), ['01=01'], 'the half-applied scope never reached disk');
  await again.close();
}));

test('hash covers every bucket and key, committed or not, minus ignores', withDir(async (dir) => {
  const one = openAt(dir, { path: join(dir, 'one') });
  const two = openAt(dir, { path: join(dir, 'two') });
  for (const be of [one, two]) {
    be.write((tx) => {
      tx.put(be.bucket('key'), b(1), b(1));
      tx.put(be.bucket('meta'), b(9), b(9));
    });
  }
  await one.forceCommit();
  assert.equal(one.hash(), two.hash());
  two.write((tx) => tx.put(two.bucket('meta'), b(8), b(8)));
  assert.notEqual(one.hash(), two.hash());
  assert.equal(one.hash(), two.hash([{ bucket: 'meta', key: b(8) }]));
  await one.close();
  await two.close();
}));

test('defrag shrinks the file, keeps the data and the writes made during it', withDir(async (dir) => {
  const be = openAt(dir, { batchOpsMax: 100_000 });
  const key = be.bucket('key');
  const value = new Uint8Array(1000).fill(7);
  be.write((tx) => {
    for (let i = 0; i < 4000; i++) tx.put(key, b(i >> 8, i & 255), value);
  });
  await be.forceCommit();
  be.write((tx) => {
    for (let i = 0; i < 4000; i += 2) tx.delete(key, b(i >> 8, i & 255));
  });
  await be.forceCommit();
  const before = be.size();
  assert.ok(be.sizeInUse() < before, `in use ${be.sizeInUse()} < size ${before}`);
  const running = be.defrag();
  be.write((tx) => tx.put(key, b(200, 0), b(1, 2, 3)));
  await running;
  be.write((tx) => tx.put(key, b(200, 1), b(4)));
  await be.forceCommit();
  assert.ok(be.size() < before, `defrag shrank ${before} -> ${be.size()}`);
  // Neither the copy nor the old file's second name is left behind.
  assert.deepEqual(readdirSync(dir).sort(), ['db', 'db-lock']);
  assert.equal((await closeAndReopenSame(be, dir)).length, 2002);
}));

test("a crash in a defrag's swap leaves the old file's second name, which the next open removes", withDir(async (dir) => {
  const be = openAt(dir);
  be.write((tx) => tx.put(be.bucket('key'), b(1), b(2)));
  await be.forceCommit();
  await be.close();
  // As a crash after the link and before the rename leaves it (the copy is removed at open too).
  linkSync(join(dir, 'db'), join(dir, 'db.retired'));
  const again = openAt(dir);
  assert.deepEqual(dump(again), ['01=02']);
  assert.ok(!readdirSync(dir).includes('db.retired'), 'the second name is gone');
  await again.close();
}));

test('after a defrag, one commit may free many large values (a free list of several pages)', withDir(async (dir) => {
  // LMDB's compacting copy left a file on which such a commit crashed the process (SIGSEGV in mdb_page_alloc).
  const be = openAt(dir, { batchOpsMax: 100_000 });
  const key = be.bucket('key');
  const big = new Uint8Array(65536).fill(9);
  be.write((tx) => {
    for (let i = 0; i < 200; i++) tx.put(key, b(1, i), b(i));
    for (let i = 0; i < 64; i++) tx.put(key, b(2, i), big);
  });
  await be.forceCommit();
  await be.defrag();
  be.write((tx) => {
    for (let i = 0; i < 64; i++) tx.delete(key, b(2, i));
  });
  await be.forceCommit();
  be.write((tx) => {
    for (let i = 0; i < 50; i++) tx.put(key, b(3, i), big);
  });
  await be.forceCommit();
  assert.equal((await closeAndReopenSame(be, dir)).length, 250);
}));

test('defrags and views asked for at once run one after another and lose nothing', withDir(async (dir) => {
  const be = openAt(dir);
  const key = be.bucket('key');
  be.write((tx) => {
    for (let i = 0; i < 500; i++) tx.put(key, b(i >> 8, i & 255), new Uint8Array(100).fill(1));
  });
  await be.forceCommit();
  // Two Maintenance.Defragment calls a few ms apart, and a snapshot's view in between, with writes going on.
  const first = be.defrag();
  be.write((tx) => tx.put(key, b(9, 0), b(1)));
  const second = be.defrag();
  be.write((tx) => tx.put(key, b(9, 1), b(2)));
  let inView: string[] = [];
  const viewed = be.whileViewed(async (opened) => {
    const view = openAt(dir, { engine: (path, bucketNames) => LmdbEngine.openReadView(path, bucketNames, nopLogger) });
    opened();
    inView = dump(view);
    await view.close();
  });
  be.write((tx) => tx.put(key, b(9, 2), b(3)));
  await Promise.all([first, second, viewed]);
  await be.forceCommit();
  const content = await closeAndReopenSame(be, dir);
  assert.equal(content.length, 503);
  // It waited for both defrags, so it holds what was applied before it was asked for, and maybe what came meanwhile.
  assert.deepEqual(inView.slice(0, 502), content.slice(0, 502));
  assert.ok(inView.length <= 503);
}));

test('a read view taken in whileViewed holds what was applied before the call, whatever is committed after; defrags wait for it', withDir(async (dir) => {
  const be = openAt(dir);
  const key = be.bucket('key');
  be.write((tx) => tx.put(key, b(1), b(1)));
  await be.forceCommit();
  be.write((tx) => tx.put(key, b(2), b(2))); // applied, not committed yet
  let defragged = false;
  const seen = be.whileViewed(async (opened) => {
    // Held until the view is taken: the next commit must not reach the file before it.
    be.write((tx) => tx.put(key, b(3), b(3)));
    const forced = be.forceCommit();
    await new Promise((resolve) => setImmediate(resolve));
    const view = openAt(dir, { engine: (path, bucketNames) => LmdbEngine.openReadView(path, bucketNames, nopLogger) });
    opened();
    await forced;
    be.write((tx) => tx.put(key, b(4), b(4)));
    be.write((tx) => tx.delete(key, b(1)));
    await be.forceCommit();
    const inView = dump(view);
    const deletedSince = view.get(view.bucket('key'), b(1));
    await view.close();
    assert.equal(defragged, false, 'a defrag waits for the view');
    return { inView, deletedSince };
  });
  const defrag = be.defrag().then(() => (defragged = true));
  const { inView, deletedSince } = await seen;
  await defrag;
  assert.deepEqual(inView, ['01=01', '02=02']);
  assert.deepEqual(Buffer.from(deletedSince ?? []), Buffer.from([1]));
  assert.deepEqual(dump(be), ['02=02', '03=03', '04=04']);
  assert.throws(() => LmdbEngine.openReadView(join(dir, 'none'), names, nopLogger), /no backend file/);
  await closeAndReopenSame(be, dir);
}));

test('a defrag waits for every open view, one taken while it waited too', { timeout: 20_000 }, withDir(async (dir) => {
  const be = openAt(dir);
  const key = be.bucket('key');
  be.write((tx) => tx.put(key, b(1), b(1)));
  await be.forceCommit();
  const turns = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));
  const view = (): { ended: Promise<void>; end: () => void } => {
    let end: () => void = () => undefined;
    const ending = new Promise<void>((resolve) => (end = resolve));
    const ended = be.whileViewed(async (opened) => {
      opened();
      await ending;
    });
    return { ended, end };
  };
  const first = view();
  await turns();
  let defragged = false;
  const defrag = be.defrag().then(() => (defragged = true));
  await turns();
  const second = view();
  await turns();
  first.end();
  await first.ended;
  await turns();
  assert.equal(defragged, false, 'the second view is still open');
  be.write((tx) => tx.put(key, b(2), b(2)));
  await be.forceCommit();
  second.end();
  await second.ended;
  await defrag;
  assert.deepEqual(dump(be), ['01=01', '02=02']);
  await closeAndReopenSame(be, dir);
}));

test("a read view outlives its backend: closed, its file replaced by a snapshot's, it still reads the old state; the new file is unharmed", withDir(async (dir) => {
  const be = openAt(dir);
  const key = be.bucket('key');
  be.write((tx) => tx.put(key, b(1), b(1)));
  const other = openAt(dir, { path: join(dir, 'other') });
  other.write((tx) => tx.put(other.bucket('key'), b(7), b(7)));
  await other.close();
  const viewOf = (): Backend => openAt(dir, { engine: (path, bucketNames) => LmdbEngine.openReadView(path, bucketNames, nopLogger) });
  let view: Backend | undefined;
  await be.whileViewed(async (opened) => {
    view = viewOf();
    opened();
    await Promise.resolve();
  });
  await be.close();
  // A follower installing the leader's database: the file under the view is renamed over.
  installSnapshotFile(join(dir, 'other'), join(dir, 'db'));
  const next = openAt(dir);
  next.write((tx) => tx.put(next.bucket('key'), b(8), b(8)));
  await next.forceCommit();
  assert.deepEqual(dump(view as Backend), ['01=01']);
  await (view as Backend).close();
  next.write((tx) => tx.put(next.bucket('key'), b(9), b(9)));
  await next.forceCommit();
  assert.deepEqual(await closeAndReopenSame(next, dir), ['07=07', '08=08', '09=09']);
}));

test('property: the backend matches a map under random writes, commits and reopens', withDir(async (dir) => {
  type Op =
    | { kind: 'put'; k: number; v: number }
    | { kind: 'del'; k: number }
    | { kind: 'commit' }
    | { kind: 'flush' }
    | { kind: 'reopen' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), k: fc.integer({ min: 0, max: 40 }), v: fc.integer({ min: 0, max: 255 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('del' as const), k: fc.integer({ min: 0, max: 40 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'commit' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  );
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 41 }), async (ops, lo, hi) => {
      const timers = new ManualTimers();
      const path = join(dir, `p${run++}`);
      let be = Backend.open({ path, bucketNames: names, timers, batchOpsMax: 7 });
      const model = new Map<number, number>();
      let inflight: Promise<void>[] = [];
      for (const op of ops) {
        switch (op.kind) {
          case 'put':
            be.write((tx) => tx.put(be.bucket('key'), b(op.k), b(op.v)));
            model.set(op.k, op.v);
            break;
          case 'del':
            be.write((tx) => tx.delete(be.bucket('key'), b(op.k)));
            model.delete(op.k);
            break;
          case 'commit':
            timers.advance(100);
            break;
          case 'flush':
            inflight.push(be.forceCommit());
            break;
          case 'reopen':
            await Promise.all(inflight);
            inflight = [];
            await be.close();
            be = Backend.open({ path, bucketNames: names, timers, batchOpsMax: 7 });
            break;
        }
        const want = [...model.keys()].filter((k) => k >= lo && k < hi).sort((x, y) => x - y);
        const got = be.range(be.bucket('key'), b(lo), b(hi)).map((e) => e.key[0]);
        assert.deepEqual(got, want);
        assert.deepEqual(be.keys(be.bucket('key'), b(lo), b(hi)).map((k) => k[0]), want, 'keys alone');
        const viewed: string[] = [];
        be.forEachView(be.bucket('key'), b(lo), b(hi), (k, v, sum) => {
          viewed.push(`${k[0]}=${v[0]}`);
          // A committed record's checksum is that of its key and value; an uncommitted one has none.
          if (sum !== undefined) assert.equal(sum, crc32cUpdate(crc32c(k), v), 'the sum of a view');
        });
        assert.deepEqual(viewed, want.map((k) => `${k}=${model.get(k)}`), 'views');
      }
      await Promise.all(inflight);
      await be.close();
    }),
    { numRuns: 40 },
  );
}));
