import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { etcdserverpb, mvccpb } from '../pb/index.js';
import { isKvError } from './errors.js';
import { compactionRequest, deleteRangeRequest, putRequest, txnRequest } from './kv-requests.js';
import { b, del, finishCompactions, opPut, put, withStore, type TestStore } from './testing.js';
import { WatchableStore, type WatchResponse, type WatchStream, type WatchableStoreOptions } from './watchable-store.js';
import { eventBatchRevsMax } from './watcher-group.js';

const { NOPUT, NODELETE } = etcdserverpb.WatchCreateRequest_FilterType;

function drain(ws: WatchStream): WatchResponse[] {
  const out: WatchResponse[] = [];
  for (let r = ws.next(); r !== undefined; r = ws.next()) out.push(r);
  return out;
}

/** "id@rev: PUT k=v@mod ..." per response. */
function render(rs: readonly WatchResponse[]): string[] {
  return rs.map((r) => {
    const evs = r.events.map((e) => {
      const kv = e.kv as mvccpb.KeyValue;
      const prev = e.prevKv === undefined ? '' : ` (prev ${Buffer.from(e.prevKv.value).toString()}@${e.prevKv.modRevision})`;
      return `${e.type === mvccpb.Event_EventType.PUT ? 'PUT' : 'DEL'} ${Buffer.from(kv.key).toString()}=${Buffer.from(kv.value).toString()}@${kv.modRevision}${prev}`;
    });
    const compact = r.compactRevision !== 0 ? ` compacted ${r.compactRevision}` : '';
    return `${r.watchId}@${r.revision}:${compact} ${evs.join(', ')}`.trimEnd();
  });
}

function withWatch(fn: (t: TestStore, ws: WatchableStore) => Promise<void> | void, options: WatchableStoreOptions = {}): Promise<void> {
  return withStore(async (t) => {
    const ws = new WatchableStore(t.store, { timers: t.timers, ...options });
    try {
      await fn(t, ws);
    } finally {
      ws.close();
    }
  });
}

test('synced watchers get each write as it ends: keys, ranges, deletes with their revision', () =>
  withWatch((t, w) => {
    const s = w.newWatchStream();
    assert.equal(s.watch({ key: b('a') }), 0, 'auto ids start at 0');
    assert.equal(s.watch({ key: b('a'), rangeEnd: b('c') }), 1);
    assert.equal(s.watch({ id: 7, key: b('b'), rangeEnd: b('\u0000') }), 7);
    putRequest(t.store, put('a', '1'));
    putRequest(t.store, put('b', '2'));
    txnRequest(t.store, etcdserverpb.TxnRequest.create({ success: [opPut(put('c', '3')), opPut(put('a', '4'))] }));
    deleteRangeRequest(t.store, del('a', { rangeEnd: b('z') }));
    assert.deepEqual(render(drain(s)), [
      '0@2: PUT a=1@2',
      '1@2: PUT a=1@2',
      '1@3: PUT b=2@3',
      '7@3: PUT b=2@3',
      // Within a revision, watchers are served in the order of the changes they match.
      '7@4: PUT c=3@4',
      '0@4: PUT a=4@4',
      '1@4: PUT a=4@4',
      '0@5: DEL a=@5',
      '1@5: DEL a=@5, DEL b=@5',
      '7@5: DEL b=@5, DEL c=@5',
    ]);
    assert.deepEqual(w.counts(), { synced: 3, unsynced: 0, victims: 0 });
  }));

test('a watcher from a past revision catches up from history, then follows live writes', () =>
  withWatch((t, w) => {
    for (let i = 1; i <= 5; i++) putRequest(t.store, put(`k${i % 2}`, `${i}`));
    deleteRangeRequest(t.store, del('k0'));
    const s = w.newWatchStream();
    const id = s.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 3 });
    assert.equal(s.pending, 0, 'nothing is queued from inside watch()');
    assert.deepEqual(w.counts(), { synced: 0, unsynced: 1, victims: 0 });
    t.timers.advance(0);
    putRequest(t.store, put('k9', 'live'));
    assert.deepEqual(render(drain(s)), [`${id}@7: PUT k0=2@3, PUT k1=3@4, PUT k0=4@5, PUT k1=5@6, DEL k0=@7`, `${id}@8: PUT k9=live@8`]);
    assert.deepEqual(w.counts(), { synced: 1, unsynced: 0, victims: 0 });
  }));

test('catch-up reads keys of every length out of history, and skips the other keys', () =>
  withWatch((t, w) => {
    // Key lengths whose encoded length takes 1, 2 and 3 varint bytes, at the edges.
    const lengths = [1, 126, 127, 128, 300, 16383, 16384, 20000];
    const keyOf = (n: number, c: string): string => c + 'x'.repeat(n - 1);
    for (const n of lengths) {
      putRequest(t.store, put(keyOf(n, 'k'), `v${n}`));
      putRequest(t.store, put(keyOf(n, 'o'), `other${n}`));
    }
    deleteRangeRequest(t.store, del(keyOf(300, 'k')));
    const s = w.newWatchStream();
    // One watcher on the range, one on each key exactly: a key read wrong would miss the latter.
    s.watch({ id: 0, key: b('k'), rangeEnd: b('l'), startRevision: 2 });
    for (const n of lengths) s.watch({ id: n, key: b(keyOf(n, 'k')), startRevision: 2 });
    t.timers.advance(0);
    const seen = drain(s).flatMap((r) => r.events.map((e) => `${r.watchId}: ${e.type === mvccpb.Event_EventType.PUT ? 'PUT' : 'DEL'} ${e.kv?.key.length ?? -1} ${Buffer.from(e.kv?.value ?? []).toString()}`));
    const want = [...lengths.map((n) => `0: PUT ${n} v${n}`), '0: DEL 300 '];
    for (const n of lengths) want.push(`${n}: PUT ${n} v${n}`, ...(n === 300 ? ['300: DEL 300 '] : []));
    assert.deepEqual(seen.sort(), want.sort());
  }));

test('a future start revision waits until it is reached', () =>
  withWatch((t, w) => {
    const s = w.newWatchStream();
    s.watch({ key: b('a'), startRevision: 4 });
    for (let i = 0; i < 4; i++) putRequest(t.store, put('a', `${i}`));
    assert.deepEqual(render(drain(s)), ['0@4: PUT a=2@4', '0@5: PUT a=3@5']);
  }));

/** Counts the store's backend range scans (forEach) from now on. */
function spyReads(t: TestStore): { calls: number } {
  const counter = { calls: 0 };
  const backend = t.store.backend;
  const forEach = backend.forEach.bind(backend);
  backend.forEach = (...args: Parameters<typeof forEach>) => {
    counter.calls++;
    return forEach(...args);
  };
  return counter;
}

test('catch-up reads a bounded slice per pass, yet sends one response for what etcd would send in one', () =>
  withWatch(
    (t, w) => {
      for (let i = 0; i < 30; i++) {
        txnRequest(t.store, etcdserverpb.TxnRequest.create({ success: [opPut(put(`a${i}`, 'x')), opPut(put(`b${i}`, 'y')), opPut(put(`c${i}`, 'z'))] }));
      }
      const s = w.newWatchStream();
      s.watch({ key: b('a'), rangeEnd: b('c'), startRevision: 2 });
      // 90 entries are read 7 at a time (never part of a revision), in passes run one after another.
      const read = spyReads(t);
      const got: WatchResponse[] = [];
      for (let pass = 0; pass < 100 && w.counts().unsynced > 0; pass++) {
        t.timers.advance(100);
        got.push(...drain(s));
      }
      assert.ok(read.calls >= 10, `several bounded reads (${read.calls})`);
      // 30 revisions are under etcd's 1000 per batch: one response, at the store revision.
      assert.equal(got.length, 1);
      assert.equal((got[0] as WatchResponse).revision, 31);
      const events = got.flatMap((r) => r.events.map((e) => `${Buffer.from((e.kv as mvccpb.KeyValue).key).toString()}@${(e.kv as mvccpb.KeyValue).modRevision}`));
      const want: string[] = [];
      for (let i = 0; i < 30; i++) want.push(`a${i}@${i + 2}`, `b${i}@${i + 2}`);
      assert.deepEqual(events, want);
    },
    { syncReadEntriesMax: 7 },
  ));

test('catch-up sends at most eventBatchRevsMax revisions per response, each at the store revision of its pass', () =>
  withWatch(
    (t, w) => {
      for (let i = 0; i < 2500; i++) putRequest(t.store, put(`k${i % 7}`, 'v'));
      putRequest(t.store, put('other', 'v'));
      const s = w.newWatchStream();
      s.watch({ key: b('k'), rangeEnd: b('l'), startRevision: 2 });
      const got: WatchResponse[] = [];
      for (let pass = 0; pass < 100 && w.counts().unsynced > 0; pass++) {
        t.timers.advance(100);
        got.push(...drain(s));
      }
      const revs = got.map((r) => r.events.map((e) => (e.kv as mvccpb.KeyValue).modRevision));
      assert.deepEqual(revs.map((r) => r.length), [eventBatchRevsMax, eventBatchRevsMax, 500]);
      assert.deepEqual(revs.flat(), Array.from({ length: 2500 }, (_, i) => i + 2), 'every revision once, in order');
      for (const r of got) assert.equal(r.revision, 2502, 'the store revision, as etcd, even with more to come');
      putRequest(t.store, put('k1', 'again'));
      assert.deepEqual(render(drain(s)), ['0@2503: PUT k1=again@2503'], 'then synced');
    },
    { syncReadEntriesMax: 700 },
  ));

test('a consumer that stops reading makes its watchers victims; nothing is lost when it resumes', () =>
  withWatch(
    (t, w) => {
      const s = w.newWatchStream();
      s.watch({ key: b('k'), rangeEnd: b('l') });
      const other = w.newWatchStream();
      other.watch({ key: b('k'), rangeEnd: b('l') });
      for (let i = 0; i < 50; i++) putRequest(t.store, put(`k${i % 3}`, `${i}`));
      assert.equal(s.pending, 2, 'the queue stays at its bound');
      assert.deepEqual(w.counts(), { synced: 0, unsynced: 0, victims: 2 });
      const fast = drain(other);
      t.timers.advance(100);
      fast.push(...drain(other));
      t.timers.advance(100);
      fast.push(...drain(other));
      const got: WatchResponse[] = [];
      for (let pass = 0; pass < 100 && (w.counts().victims > 0 || w.counts().unsynced > 0 || s.pending > 0); pass++) {
        got.push(...drain(s));
        t.timers.advance(0);
        t.timers.advance(100);
      }
      const revs = (rs: WatchResponse[]): number[] => rs.flatMap((r) => r.events.map((e) => (e.kv as mvccpb.KeyValue).modRevision));
      const want = Array.from({ length: 50 }, (_, i) => i + 2);
      assert.deepEqual(revs(got), want, 'every event once, in order');
      assert.deepEqual(w.counts().victims, 0);
      putRequest(t.store, put('k1', 'again'));
      assert.deepEqual(render(drain(s)), ['0@52: PUT k1=again@52'], 'back among the synced');
    },
    { streamResponsesMax: 2 },
  ));

test('a victim retried response carries the revision its watcher had seen, not the store revision of the retry (etcd: minRev - 1)', () =>
  withWatch(
    (t, w) => {
      // A synced watcher whose notification found the queue full.
      const s = w.newWatchStream();
      s.watch({ key: b('a') });
      putRequest(t.store, put('a', '1'));
      putRequest(t.store, put('a', '2'));
      putRequest(t.store, put('b', '1'));
      putRequest(t.store, put('b', '2'));
      assert.deepEqual(w.counts(), { synced: 0, unsynced: 0, victims: 1 });
      assert.deepEqual(render(drain(s)), ['0@2: PUT a=1@2']);
      t.timers.advance(0);
      assert.deepEqual(render(drain(s)), ['0@3: PUT a=2@3']);
      // A catching-up watcher whose response found the queue full: the revision of the pass that read it.
      const c = w.newWatchStream();
      c.watch({ id: 1, key: b('b'), rangeEnd: b('c') });
      putRequest(t.store, put('b', '3'));
      c.watch({ id: 2, key: b('a'), startRevision: 2 });
      t.timers.advance(0);
      assert.deepEqual(w.counts().victims, 1);
      putRequest(t.store, put('z', '1'));
      assert.deepEqual(render(drain(c)), ['1@6: PUT b=3@6']);
      t.timers.advance(0);
      assert.deepEqual(render(drain(c)), ['2@6: PUT a=1@2, PUT a=2@3']);
    },
    { streamResponsesMax: 1 },
  ));

test('a watcher whose start revision was compacted is canceled with the compact revision', () =>
  withWatch(async (t, w) => {
    for (let i = 0; i < 5; i++) putRequest(t.store, put('a', `${i}`));
    compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 4 }));
    await finishCompactions(t);
    const s = w.newWatchStream();
    s.watch({ key: b('a'), startRevision: 2 });
    s.watch({ key: b('a'), startRevision: 4 });
    t.timers.advance(0);
    assert.deepEqual(render(drain(s)), ['0@0: compacted 4', '1@6: PUT a=2@4, PUT a=3@5, PUT a=4@6']);
    assert.deepEqual(w.counts(), { synced: 1, unsynced: 0, victims: 0 });
    s.cancel(0);
  }));

test('a watcher from a negative revision of a store never compacted reads no history (etcd reads past every revision)', () =>
  withWatch((t, w) => {
    putRequest(t.store, put('a', '1'));
    const s = w.newWatchStream();
    s.watch({ key: b('a'), startRevision: -1 });
    s.watch({ key: b('a'), startRevision: -5 });
    t.timers.advance(0);
    putRequest(t.store, put('a', '2'));
    // Below the compact revision (-1 when never compacted), -5 is canceled as etcd cancels it.
    assert.deepEqual(render(drain(s)), ['1@0: compacted -1', '0@3: PUT a=2@3']);
    assert.deepEqual(w.counts(), { synced: 1, unsynced: 0, victims: 0 });
  }));

test('filters and prev_kv', () =>
  withWatch((t, w) => {
    const s = w.newWatchStream();
    s.watch({ key: b('a'), filters: [NOPUT] });
    s.watch({ key: b('a'), filters: [NODELETE], prevKv: true });
    s.watch({ key: b('a'), prevKv: true, startRevision: 1 });
    t.timers.advance(0);
    putRequest(t.store, put('a', '1'));
    putRequest(t.store, put('a', '2'));
    deleteRangeRequest(t.store, del('a'));
    assert.deepEqual(render(drain(s)), [
      '1@2: PUT a=1@2',
      '2@2: PUT a=1@2',
      '1@3: PUT a=2@3 (prev 1@2)',
      '2@3: PUT a=2@3 (prev 1@2)',
      '0@4: DEL a=@4',
      '2@4: DEL a=@4 (prev 2@3)',
    ]);
  }));

test('progress: only when synced, through the same queue, with the current revision', () =>
  withWatch((t, w) => {
    putRequest(t.store, put('a', '1'));
    const s = w.newWatchStream();
    assert.equal(s.requestProgressAll(), true, 'no watchers: nothing to wait for');
    assert.deepEqual(render(drain(s)), ['-1@2:'], 'answered at once, as etcd 3.4.23 does');
    s.watch({ key: b('a') });
    s.watch({ key: b('b'), startRevision: 1 });
    assert.equal(s.requestProgressAll(), false, 'an unsynced watcher holds progress back');
    s.requestProgress(1);
    s.requestProgress(0);
    t.timers.advance(0);
    putRequest(t.store, put('a', '2'));
    assert.equal(s.requestProgressAll(), true);
    assert.deepEqual(render(drain(s)), ['0@2:', '0@3: PUT a=2@3', '-1@3:']);
  }));

test('progress: a watcher canceled by a compaction holds nothing back (etcd 3.4.23 answers at once)', () =>
  withWatch(async (t, w) => {
    for (let i = 0; i < 3; i++) putRequest(t.store, put('a', `${i}`));
    compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 3 }));
    await finishCompactions(t);
    const s = w.newWatchStream();
    s.watch({ key: b('a'), startRevision: 1 });
    s.watch({ key: b('b') });
    t.timers.advance(0);
    assert.deepEqual(render(drain(s)), ['0@0: compacted 3']);
    // The compacted watcher keeps its id until canceled, but it will never be synced.
    assert.equal(s.requestProgressAll(), true);
    assert.deepEqual(render(drain(s)), ['-1@4:']);
  }));

test('stream errors and cancel', () =>
  withWatch((t, w) => {
    const s = w.newWatchStream();
    assert.throws(() => s.watch({ key: b('b'), rangeEnd: b('a') }), (e) => isKvError(e, 'empty-watcher-range'));
    s.watch({ id: 3, key: b('a') });
    assert.throws(() => s.watch({ id: 3, key: b('a') }), (e) => isKvError(e, 'watcher-duplicate-id') && e.message === 'mvcc: duplicate watch ID provided on the WatchStream');
    assert.equal(s.watch({ key: b('a') }), 0);
    putRequest(t.store, put('a', '1'));
    s.cancel(3);
    assert.throws(() => s.cancel(3), (e) => isKvError(e, 'watcher-not-exist'));
    assert.deepEqual(render(drain(s)), ['0@2: PUT a=1@2'], 'a canceled watcher\'s queued responses are dropped');
    s.close();
    assert.deepEqual(w.counts(), { synced: 0, unsynced: 0, victims: 0 });
  }));

test('onReady fires on a microtask when a response lands in an empty queue', () =>
  withWatch(async (t, w) => {
    const s = w.newWatchStream();
    let calls = 0;
    s.onReady = () => calls++;
    s.watch({ key: b('a') });
    putRequest(t.store, put('a', '1'));
    putRequest(t.store, put('a', '2'));
    assert.equal(calls, 0, 'not from inside the write');
    await Promise.resolve();
    assert.equal(calls, 1);
    drain(s);
    putRequest(t.store, put('a', '3'));
    await Promise.resolve();
    assert.equal(calls, 2);
  }));

test('restore onto a reopened store: watchers catch up from the new store', () =>
  withWatch(async (t, w) => {
    const s = w.newWatchStream();
    s.watch({ key: b('a') });
    putRequest(t.store, put('a', '1'));
    drain(s);
    w.close();
    const store = await t.reopen(t.leases);
    const w2 = new WatchableStore(store, { timers: t.timers });
    const s2 = w2.newWatchStream();
    s2.watch({ key: b('a'), startRevision: 2 });
    w2.restore(store);
    t.timers.advance(0);
    putRequest(store, put('a', '2'));
    assert.deepEqual(render(drain(s2)), ['0@2: PUT a=1@2', '0@3: PUT a=2@3']);
    w2.close();
  }));

test('restore: synced watchers go on after the last revision they saw, neither repeated nor canceled as compacted', () =>
  withWatch(async (t, w) => {
    const s = w.newWatchStream();
    s.watch({ key: b('a') });
    s.watch({ key: b('b') });
    for (let i = 1; i <= 5; i++) putRequest(t.store, put('a', `${i}`));
    assert.equal(drain(s).length, 5);
    compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 4 }));
    await finishCompactions(t);
    w.restore(t.store);
    t.timers.advance(0);
    assert.deepEqual(render(drain(s)), [], 'nothing is sent again and nobody is canceled');
    putRequest(t.store, put('a', '6'));
    putRequest(t.store, put('b', '7'));
    t.timers.advance(0);
    assert.deepEqual(render(drain(s)), ['0@7: PUT a=6@7', '1@8: PUT b=7@8']);
  }));

test('a catch-up pass cut short by its read bound does not move a later-starting watcher back', () =>
  withWatch(
    (t, w) => {
      for (let i = 0; i < 3; i++) putRequest(t.store, put('a', `${i}`));
      deleteRangeRequest(t.store, del('a'));
      putRequest(t.store, put('a', '3'));
      const s = w.newWatchStream();
      s.watch({ key: b('a'), startRevision: 2 });
      s.watch({ key: b('a'), startRevision: 6 });
      for (let i = 0; i < 5; i++) t.timers.advance(100);
      // The first pass reads revisions 2..4 only; watcher 1 must still start at 6, not at 5.
      // Watcher 0's events go out once its read reaches the store revision, in one response (etcd's one read).
      assert.deepEqual(render(drain(s)), ['0@6: PUT a=0@2, PUT a=1@3, PUT a=2@4, DEL a=@5, PUT a=3@6', '1@6: PUT a=3@6']);
    },
    { syncReadEntriesMax: 3 },
  ));

test('property: every watcher sees exactly the history from its start revision, in order, whatever the consumer does', async () => {
  type Step = { kind: 'put'; key: number } | { kind: 'del'; key: number } | { kind: 'watch'; back: number; key: number; range: boolean } | { kind: 'drain' } | { kind: 'tick' };
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.integer({ min: 0, max: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), key: fc.integer({ min: 0, max: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('watch' as const), back: fc.integer({ min: 0, max: 10 }), key: fc.integer({ min: 0, max: 4 }), range: fc.boolean() }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'drain' as const }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'tick' as const }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { maxLength: 80 }), fc.integer({ min: 1, max: 4 }), async (steps, queueMax) => {
      await withWatch(
        (t, w) => {
          const history: Array<{ rev: number; key: string; type: string }> = [];
          const streams: Array<{ s: WatchStream; watchers: Map<number, { start: number; match: (k: string) => boolean }>; got: Map<number, string[]> }> = [];
          const take = (x: (typeof streams)[number]): void => {
            for (const r of drain(x.s)) {
              const seen = x.got.get(r.watchId) as string[];
              for (const e of r.events) seen.push(`${(e.kv as mvccpb.KeyValue).modRevision}:${Buffer.from((e.kv as mvccpb.KeyValue).key).toString()}:${e.type}`);
            }
          };
          for (const step of steps) {
            if (step.kind === 'put' || step.kind === 'del') {
              const key = `k${step.key}`;
              if (step.kind === 'put') {
                history.push({ rev: putRequest(t.store, put(key, 'v')).header?.revision as number, key, type: '0' });
              } else {
                const d = deleteRangeRequest(t.store, del(key));
                if (d.deleted > 0) history.push({ rev: d.header?.revision as number, key, type: '1' });
              }
            } else if (step.kind === 'watch') {
              if (streams.length === 0 || streams.length < 3) streams.push({ s: w.newWatchStream(), watchers: new Map(), got: new Map() });
              const x = streams[step.key % streams.length] as (typeof streams)[number];
              const start = Math.max(1, t.store.rev - step.back);
              const key = `k${step.key}`;
              const id = x.s.watch(step.range ? { key: b(key), rangeEnd: b('l'), startRevision: start } : { key: b(key), startRevision: start });
              x.watchers.set(id, { start, match: step.range ? (k) => k >= key : (k) => k === key });
              x.got.set(id, []);
            } else if (step.kind === 'drain') {
              for (const x of streams) take(x);
            } else {
              t.timers.advance(0);
              t.timers.advance(100);
            }
          }
          for (let i = 0; i < 200; i++) {
            for (const x of streams) take(x);
            t.timers.advance(0);
            t.timers.advance(100);
            const c = w.counts();
            if (c.unsynced === 0 && c.victims === 0 && streams.every((x) => x.s.pending === 0)) break;
          }
          for (const x of streams) {
            for (const [id, { start, match }] of x.watchers) {
              const want = history.filter((h) => h.rev >= start && match(h.key)).map((h) => `${h.rev}:${h.key}:${h.type}`);
              assert.deepEqual(x.got.get(id), want, `watcher ${id} from ${start}`);
            }
          }
        },
        { streamResponsesMax: queueMax, syncReadEntriesMax: 3 },
      );
    }),
    { numRuns: Number(process.env['MVCC_WATCH_RUNS'] ?? 40) },
  );
});

/** The main revisions stored in the key bucket, oldest first. */
function storedRevisions(t: TestStore): number[] {
  const out: number[] = [];
  t.store.backend.forEach(t.store.schema.buckets.key, new Uint8Array(0), undefined, (k) => {
    out.push(Number(Buffer.from(k).readBigUInt64BE(0)));
  });
  return out;
}

test('a watch from the compact revision gets the delete at that revision, after a restart too (etcd #18089, #19179)', () =>
  withStore(async (t) => {
    putRequest(t.store, put('a', '1'));
    putRequest(t.store, put('b', '1'));
    deleteRangeRequest(t.store, del('a'));
    compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 4 }));
    await finishCompactions(t);
    assert.deepEqual(storedRevisions(t), [3, 4], "a's put went, its tombstone at the compact revision stays");
    const fromCompacted = (want: string[]): void => {
      const w = new WatchableStore(t.store, { timers: t.timers });
      const s = w.newWatchStream();
      s.watch({ key: b('a'), startRevision: 4 });
      t.timers.advance(0);
      assert.deepEqual(render(drain(s)), want);
      w.close();
    };
    fromCompacted(['0@4: DEL a=@4']);
    await t.reopen();
    fromCompacted(['0@4: DEL a=@4']);
    // The restored index knows the lone tombstone: the next compaction removes it.
    putRequest(t.store, put('b', '2'));
    compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 5 }));
    await finishCompactions(t);
    assert.deepEqual(storedRevisions(t), [5]);
    fromCompacted(['0@0: compacted 5']);
  }));

test('a compaction cut short after removing a put, resumed at the next open, keeps the tombstone at its revision', () =>
  withStore(
    async (t) => {
      putRequest(t.store, put('a', '1'));
      putRequest(t.store, put('b', '1'));
      deleteRangeRequest(t.store, del('a'));
      compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: 4 }));
      // Run the compaction until its first batch has removed a's put, then stop the store there (a crash).
      for (let i = 0; i < 1000 && storedRevisions(t).includes(2); i++) {
        t.timers.advance(1);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      assert.deepEqual(storedRevisions(t), [3, 4]);
      await t.reopen();
      await finishCompactions(t);
      assert.deepEqual(storedRevisions(t), [3, 4], 'the resumed compaction keeps the lone tombstone');
      const w = new WatchableStore(t.store, { timers: t.timers });
      const s = w.newWatchStream();
      s.watch({ key: b('a'), startRevision: 4 });
      t.timers.advance(0);
      assert.deepEqual(render(drain(s)), ['0@4: DEL a=@4']);
      w.close();
    },
    { compactionBatchLimit: 1 },
  ));
