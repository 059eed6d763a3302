import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nopLogger } from '../base/index.js';
import { ManualTimers } from '../backend/index.js';
import { PeriodicCompactor, RevisionCompactor, newCompactor, revisionCompactionIntervalMs, type CompactorDeps } from './compactor.js';
import { ConfigError, parseCompactionRetention } from './config.js';

/** A store whose revision grows by one per second of fake time, and a log of compactions. */
function fakeStore(): { timers: ManualTimers; deps: CompactorDeps; compactions: { atMs: number; rev: number }[]; failNext: { n: number }; setRev: (fn: (ms: number) => number) => void } {
  const timers = new ManualTimers();
  const compactions: { atMs: number; rev: number }[] = [];
  const failNext = { n: 0 };
  let revAt = (ms: number): number => 1 + Math.floor(ms / 1000);
  const deps: CompactorDeps = {
    rev: () => revAt(timers.nowMs),
    compact: (rev) => {
      if (failNext.n > 0) {
        failNext.n--;
        return Promise.reject(new Error('etcdserver: request timed out'));
      }
      compactions.push({ atMs: timers.nowMs, rev });
      return Promise.resolve();
    },
    timers,
    clock: { nowMs: () => timers.nowMs, wallMs: () => timers.nowMs },
    logger: nopLogger,
  };
  return { timers, deps, compactions, failNext, setRev: (fn) => (revAt = fn) };
}

/** Advances fake time in small steps, letting the compactor's promises settle between them. */
async function advance(timers: ManualTimers, ms: number, stepMs = 100): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    timers.advance(Math.min(stepMs, ms - done));
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

describe('auto compaction retention flag', () => {
  test("parses as etcd: bare numbers are hours or revisions, otherwise Go durations", () => {
    assert.deepEqual(parseCompactionRetention('periodic', '1'), { mode: 'periodic', retention: 3_600_000 });
    assert.deepEqual(parseCompactionRetention('periodic', '30m'), { mode: 'periodic', retention: 1_800_000 });
    assert.deepEqual(parseCompactionRetention('periodic', '1h30m'), { mode: 'periodic', retention: 5_400_000 });
    assert.deepEqual(parseCompactionRetention('periodic', '0'), { mode: 'periodic', retention: 0 });
    assert.deepEqual(parseCompactionRetention('periodic', ''), { mode: 'periodic', retention: 0 });
    assert.deepEqual(parseCompactionRetention('revision', '1000'), { mode: 'revision', retention: 1000 });
    // etcd's quirk: a duration in revision mode is its count of nanoseconds.
    assert.deepEqual(parseCompactionRetention('revision', '1us'), { mode: 'revision', retention: 1000 });
    assert.throws(() => parseCompactionRetention('periodic', 'abc'), new ConfigError('error parsing CompactionRetention: time: invalid duration "abc"'));
    assert.throws(() => parseCompactionRetention('periodic', '-1'), new ConfigError('error parsing CompactionRetention: time: missing unit in duration "-1"'));
    assert.throws(() => parseCompactionRetention('revision', '1.5'), new ConfigError('error parsing CompactionRetention: time: missing unit in duration "1.5"'));
    assert.throws(() => parseCompactionRetention('periodic', '5x'), new ConfigError('error parsing CompactionRetention: time: unknown unit "x" in duration "5x"'));
  });

  test('retention 0 means no compactor', () => {
    assert.equal(newCompactor({ mode: 'periodic', retention: 0 }, fakeStore().deps), undefined);
    assert.ok(newCompactor({ mode: 'revision', retention: 5 }, fakeStore().deps) instanceof RevisionCompactor);
  });
});

describe('periodic compactor', () => {
  test('retention 10 s: samples every 1 s, first compaction after 10 s at the revision of 10 s ago, then every 10 s', async () => {
    const { timers, deps, compactions } = fakeStore();
    const c = new PeriodicCompactor(deps, 10_000);
    assert.deepEqual([c.compactIntervalMs, c.retryIntervalMs, c.retentions], [10_000, 1000, 11]);
    c.run();
    c.resume();
    await advance(timers, 9_900);
    assert.deepEqual(compactions, []);
    await advance(timers, 100);
    assert.deepEqual(compactions, [{ atMs: 10_000, rev: 1 }]);
    await advance(timers, 10_000);
    // Eleven samples kept (t = 9..19 s): the oldest is the revision at 9 s.
    assert.deepEqual(compactions[1], { atMs: 20_000, rev: 10 });
    await advance(timers, 10_000);
    assert.deepEqual(compactions[2], { atMs: 30_000, rev: 20 });
    c.stop();
    await advance(timers, 30_000);
    assert.equal(compactions.length, 3);
  });

  test('retention 2 h: samples every 6 min, compacts at the revision of 2 h ago, then hourly', async () => {
    const { timers, deps, compactions } = fakeStore();
    const c = new PeriodicCompactor(deps, 2 * 3_600_000);
    assert.deepEqual([c.compactIntervalMs, c.retryIntervalMs, c.retentions], [3_600_000, 360_000, 21]);
    c.run();
    c.resume();
    await advance(timers, 2 * 3_600_000, 60_000);
    assert.deepEqual(compactions, [{ atMs: 7_200_000, rev: 1 }]);
    await advance(timers, 3_600_000, 60_000);
    assert.equal(compactions.length, 2);
    assert.equal(compactions[1]?.atMs, 3 * 3_600_000);
    // The 21 samples before 3 h were taken at 54, 60, ..., 174 min: the oldest is about 2 h old.
    assert.equal(compactions[1]?.rev, 1 + 54 * 60);
    c.stop();
  });

  test('paused (not the leader): no compaction; a failed one is retried at the next sample', async () => {
    const { timers, deps, compactions, failNext } = fakeStore();
    const c = new PeriodicCompactor(deps, 10_000);
    c.run();
    await advance(timers, 30_000);
    assert.equal(compactions.length, 0);
    c.resume();
    failNext.n = 1;
    await advance(timers, 1_000);
    assert.equal(compactions.length, 0);
    await advance(timers, 1_000);
    assert.equal(compactions.length, 1);
    assert.equal(compactions[0]?.atMs, 32_000);
    c.stop();
  });
});

describe('revision compactor', () => {
  test('every 5 minutes compacts at current - retention, skipping <= 0 and repeats', async () => {
    const { timers, deps, compactions, setRev } = fakeStore();
    let rev = 5;
    setRev(() => rev);
    const c = new RevisionCompactor(deps, 10);
    c.run();
    c.resume();
    await advance(timers, revisionCompactionIntervalMs, 10_000);
    assert.deepEqual(compactions, []); // 5 - 10 <= 0
    rev = 100;
    await advance(timers, revisionCompactionIntervalMs - 10_000, 10_000);
    assert.deepEqual(compactions, []); // not yet five minutes since the last check
    await advance(timers, 10_000, 10_000);
    assert.deepEqual(compactions, [{ atMs: 2 * revisionCompactionIntervalMs, rev: 90 }]);
    await advance(timers, revisionCompactionIntervalMs, 10_000);
    assert.equal(compactions.length, 1); // the revision has not moved
    rev = 150;
    c.pause();
    await advance(timers, revisionCompactionIntervalMs, 10_000);
    assert.equal(compactions.length, 1);
    c.resume();
    await advance(timers, revisionCompactionIntervalMs, 10_000);
    assert.deepEqual(compactions[1], { atMs: 5 * revisionCompactionIntervalMs, rev: 140 });
    c.stop();
  });
});
