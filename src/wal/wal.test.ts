import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Registry } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import {
  Wal,
  WalExistsError,
  entriesAfterSnapshot,
  WalLockedError,
  WalNotFoundError,
  WalSnapshotNotFoundError,
  walErrorCodes,
  walMetrics,
  nodeWalFs,
  type WalFs,
  type WalOptions,
} from './index.js';
import { describeEntries, makeEntries, makeTmpDir, removeDir } from './test-helpers.js';

const dirs: string[] = [];
function tmp(name: string): string {
  const d = makeTmpDir(name);
  dirs.push(d);
  return join(d, 'wal');
}
after(() => dirs.forEach(removeDir));

const meta = new Uint8Array([1, 2, 3, 4, 5]);
const small: WalOptions = { segmentBytes: 4096 };

function hs(term: number, commit: number, vote = 0n): raftpb.HardState {
  return raftpb.HardState.create({ term, commit, vote });
}

async function reopen(dir: string, opts?: Parameters<typeof Wal.open>[1]) {
  const r = await Wal.open(dir, { ...small, ...opts });
  await r.wal.close();
  return r;
}

describe('Wal round trips', () => {
  test('a new log opens empty, with its metadata and the index 0 marker', async () => {
    const dir = tmp('empty');
    const w = await Wal.create(dir, meta, small);
    assert.equal(fs.statSync(join(dir, '0000000000000000-0000000000000000.wal')).size, 4096);
    await w.close();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['0000000000000000-0000000000000000.wal']);
    const r = await reopen(dir);
    assert.deepEqual(r.metadata, meta);
    assert.deepEqual(r.entries, []);
    assert.deepEqual(r.hardState, hs(0, 0));
    assert.deepEqual(r.snapshots, [{ index: 0, term: 0 }]);
  });

  test('entries and hard states survive close and reopen, across segment cuts', async () => {
    const dir = tmp('cuts');
    const w = await Wal.create(dir, meta, small);
    let next = 1;
    for (let batch = 0; batch < 40; batch++) {
      const n = 1 + (batch % 7);
      await w.save(hs(1 + (batch >> 3), next + n - 1, 7n), makeEntries(next, next + n - 1, 1 + (batch >> 3)), true);
      next += n;
    }
    const names = w.segmentNames();
    assert.ok(names.length > 5, `expected several segments, got ${names.length}`);
    await w.close();
    for (let i = 1; i < names.length; i++) {
      const [seq, index] = (names[i] as string).replace('.wal', '').split('-');
      assert.equal(Number.parseInt(seq as string, 16), i);
      assert.ok(Number.parseInt(index as string, 16) > 1);
    }
    const r = await reopen(dir);
    const expected: raftpb.Entry[] = [];
    next = 1;
    for (let batch = 0; batch < 40; batch++) {
      const n = 1 + (batch % 7);
      expected.push(...makeEntries(next, next + n - 1, 1 + (batch >> 3)));
      next += n;
    }
    assert.deepEqual(describeEntries(r.entries), describeEntries(expected));
    assert.deepEqual(r.entries, expected);
    assert.deepEqual(r.hardState, hs(5, next - 1, 7n));
    // Reopened, it keeps appending where it stopped.
    const r2 = await Wal.open(dir, small);
    await r2.wal.save(hs(5, next), makeEntries(next, next, 5), true);
    await r2.wal.close();
    const r3 = await reopen(dir);
    assert.equal(r3.entries.length, next);
    assert.equal(r3.hardState.commit, next);
  });

  test('an entry at an existing index replaces it and everything after, within and across segments', async () => {
    const dir = tmp('overwrite');
    const w = await Wal.create(dir, meta, small);
    await w.save(hs(1, 2), makeEntries(1, 10, 1), true);
    await w.save(hs(2, 2), makeEntries(6, 8, 2), true);
    await w.close();
    let r = await reopen(dir);
    assert.deepEqual(describeEntries(r.entries), describeEntries([...makeEntries(1, 5, 1), ...makeEntries(6, 8, 2)]));
    const w2 = (await Wal.open(dir, small)).wal;
    await w2.save(hs(2, 3), makeEntries(9, 60, 2), true);
    assert.ok(w2.segmentNames().length > 1);
    await w2.save(hs(3, 3), makeEntries(4, 5, 3), true);
    await w2.close();
    r = await reopen(dir);
    assert.deepEqual(describeEntries(r.entries), describeEntries([...makeEntries(1, 3, 1), ...makeEntries(4, 5, 3)]));
  });

  test('saving nothing writes nothing; mustSync=false data is synced by close', async () => {
    const dir = tmp('nosync');
    const w = await Wal.create(dir, meta, small);
    const before = w.position();
    await w.save(undefined, [], true);
    assert.deepEqual(w.position(), before);
    await w.save(hs(1, 0), makeEntries(1, 3, 1), false);
    assert.ok(w.position().syncedBytes < w.position().offset);
    await w.close();
    assert.equal((await reopen(dir)).entries.length, 3);
  });

  test('a hard state that needs no sync waits in memory for the next write, in order; close writes it', async () => {
    const dir = tmp('held');
    const w = await Wal.create(dir, meta, small);
    await w.save(hs(1, 0), makeEntries(1, 3, 1), true);
    const synced = w.position();
    await w.save(hs(1, 2), [], false);
    await w.save(hs(1, 3), [], false);
    assert.deepEqual(synced.held, false);
    assert.deepEqual(w.position(), { ...synced, held: true }, 'nothing written yet, two records held');
    const held = await Wal.open(dir, small).catch((e: unknown) => e);
    assert.ok(held instanceof Error, 'the log is still locked by its writer');
    await w.save(hs(2, 3, 7n), makeEntries(4, 5, 2), true);
    assert.ok(w.position().offset > synced.offset && w.position().syncedBytes === w.position().offset && !w.position().held);
    await w.save(hs(2, 4, 7n), [], false);
    await w.close();
    const r = await reopen(dir);
    assert.equal(r.entries.length, 5);
    assert.deepEqual(r.hardState, hs(2, 4, 7n), 'the last hard state, written by close');
    // A save that needs no sync is not in the file until another write: after a crash, reopen sees the synced one.
    const dir2 = tmp('held-crash');
    const w2 = await Wal.create(dir2, meta, small);
    await w2.save(hs(1, 1), makeEntries(1, 2, 1), true);
    await w2.save(hs(1, 2), [], false);
    const copy = `${dir2}-copy`;
    dirs.push(copy);
    fs.cpSync(dir2, copy, { recursive: true });
    fs.rmSync(join(copy, 'LOCK'), { force: true });
    await w2.close();
    const r2 = await Wal.open(copy, small);
    await r2.wal.close();
    assert.deepEqual(r2.hardState, hs(1, 1));
    assert.equal(r2.entries.length, 2);
  });

  test('without pre-allocation segments grow and are cut the same way', async () => {
    const dir = tmp('noprealloc');
    const opts = { segmentBytes: 2048, preallocate: 'none' as const };
    const w = await Wal.create(dir, meta, opts);
    for (let i = 1; i <= 30; i++) await w.save(hs(1, i), makeEntries(i, i, 1), true);
    assert.ok(w.segmentNames().length > 2);
    await w.close();
    const r = await Wal.open(dir, opts);
    assert.equal(r.entries.length, 30);
    assert.equal(fs.statSync(r.wal.position().file).size, r.wal.position().offset);
    await r.wal.close();
    // A pre-allocating open of the same log works and reserves the tail, either way.
    for (const preallocate of ['sparse', 'zero'] as const) {
      const r2 = await Wal.open(dir, { segmentBytes: 4096, preallocate });
      assert.equal(fs.statSync(r2.wal.position().file).size, 4096);
      await r2.wal.save(hs(1, 31), makeEntries(31, 31, 1), true);
      await r2.wal.close();
    }
    assert.equal((await reopen(dir)).entries.length, 31);
  });
});

describe('Wal segment reservation', () => {
  /** Blocks allocated to the tail segment, in bytes, and its size. */
  function tailSpace(w: Wal): { allocated: number; size: number } {
    const st = fs.statSync(w.position().file);
    return { allocated: st.blocks * 512, size: st.size };
  }

  /** Saves one entry of dataBytes per sync until the log has cut to a new segment. */
  async function fillPastCut(w: Wal, dataBytes: number): Promise<void> {
    const segments = w.segmentNames().length;
    for (let i = 1; w.segmentNames().length === segments; i++) {
      assert.ok(i < 10_000, 'the log cut a segment');
      await w.save(hs(1, i), makeEntries(i, i, 1, undefined, dataBytes), true);
    }
  }

  test('after a segment of small syncs the next one is zero-filled; after large syncs it is reserved sparse', async () => {
    const segmentBytes = 2 * 1024 * 1024;
    const small = await Wal.create(tmp('reserve-small'), meta, { segmentBytes });
    await fillPastCut(small, 2000);
    const s = tailSpace(small);
    assert.equal(s.size, segmentBytes);
    assert.ok(s.allocated >= segmentBytes, `zero-filled: ${s.allocated} bytes allocated`);
    await small.close();

    const large = await Wal.create(tmp('reserve-large'), meta, { segmentBytes });
    await fillPastCut(large, 200 * 1024);
    const l = tailSpace(large);
    assert.equal(l.size, segmentBytes);
    assert.ok(l.allocated < segmentBytes / 2, `sparse: ${l.allocated} bytes allocated`);
    // A sparse segment reads back like a filled one.
    const more = large.position().offset;
    await large.close();
    const r = await Wal.open(large.dir, { segmentBytes });
    assert.equal(r.wal.position().offset, more);
    await r.wal.close();
  });
});

describe('Wal snapshots and release', () => {
  test('open after a snapshot returns the entries after it; markers above the commit are not offered', async () => {
    const dir = tmp('snap');
    const w = await Wal.create(dir, meta, small);
    await w.save(hs(1, 10), makeEntries(1, 10, 1), true);
    const confState = raftpb.ConfState.create({ voters: [1n, 2n, 3n] });
    await w.saveSnapshot({ index: 5, term: 1, confState });
    await w.saveSnapshot({ index: 12, term: 1 });
    await w.save(hs(1, 11), makeEntries(11, 12, 1), true);
    await w.close();
    const all = await reopen(dir);
    assert.equal(all.entries.length, 12);
    assert.deepEqual(all.snapshots, [{ index: 0, term: 0 }, { index: 5, term: 1, confState }]);
    const r = await reopen(dir, { snapshot: { index: 5, term: 1 } });
    assert.deepEqual(describeEntries(r.entries), describeEntries(makeEntries(6, 12, 1)));
    // The one-pass alternative picks the same entries from the full result.
    assert.deepEqual(entriesAfterSnapshot(all, { index: 5, term: 1 }), r.entries);
    assert.throws(() => entriesAfterSnapshot(all, { index: 12, term: 1 }), /no such marker/, 'a marker above the commit is not offered');
    await assert.rejects(reopen(dir, { snapshot: { index: 5, term: 2 } }), WalSnapshotNotFoundError);
    await assert.rejects(reopen(dir, { snapshot: { index: 7, term: 1 } }), (e: unknown) => {
      assert.ok(e instanceof WalSnapshotNotFoundError);
      assert.equal(e.code, walErrorCodes.snapshotNotFound);
      return true;
    });
  });

  test('a follower that installed a snapshot jumps the gap; an older snapshot cannot start that log', async () => {
    const dir = tmp('jump');
    const w = await Wal.create(dir, meta, small);
    await w.save(hs(1, 3), makeEntries(1, 3, 1), true);
    await w.saveSnapshot({ index: 100, term: 2 });
    await w.save(hs(2, 100), [], true);
    await w.save(hs(2, 102), makeEntries(101, 102, 2), true);
    await w.close();
    assert.deepEqual(describeEntries((await reopen(dir)).entries), describeEntries(makeEntries(101, 102, 2)));
    const r = await reopen(dir, { snapshot: { index: 100, term: 2 } });
    assert.equal(r.entries.length, 2);
    await assert.rejects(reopen(dir, { snapshot: { index: 0, term: 0 } }), /continues at index 101/);
    const all = await reopen(dir);
    assert.deepEqual(entriesAfterSnapshot(all, { index: 100, term: 2 }), r.entries);
    assert.throws(() => entriesAfterSnapshot(all, { index: 0, term: 0 }), WalSnapshotNotFoundError);
  });

  test('releaseTo deletes the segments below the one holding the index, never the tail', async () => {
    const dir = tmp('release');
    const w = await Wal.create(dir, meta, small);
    for (let i = 1; i <= 100; i += 5) await w.save(hs(1, i + 4), makeEntries(i, i + 4, 1), true);
    const names = w.segmentNames();
    assert.ok(names.length >= 4);
    await w.saveSnapshot({ index: 60, term: 1 });
    const firstIndexes = names.map((n) => Number.parseInt(n.slice(17, 33), 16));
    const holder = firstIndexes.findLastIndex((x) => x <= 60);
    await w.releaseTo(60);
    assert.deepEqual(w.segmentNames(), names.slice(holder));
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort(), names.slice(holder));
    await w.close();
    const r = await reopen(dir, { snapshot: { index: 60, term: 1 } });
    assert.deepEqual(describeEntries(r.entries), describeEntries(makeEntries(61, 100, 1)));
    // Releasing everything but the tail keeps the hard state and metadata: every segment's head has them.
    const w2 = (await Wal.open(dir, small)).wal;
    await w2.releaseTo(1_000_000);
    assert.equal(w2.segmentNames().length, 1);
    await w2.close();
    const r2 = await reopen(dir);
    assert.deepEqual(r2.hardState, hs(1, 100));
    assert.deepEqual(r2.metadata, meta);
  });

  test('after releasing to a snapshot, open with it returns every entry after it', async () => {
    const dir = tmp('release2');
    const w = await Wal.create(dir, meta, small);
    for (let i = 1; i <= 60; i += 3) await w.save(hs(1, i + 2), makeEntries(i, i + 2, 1), true);
    await w.saveSnapshot({ index: 45, term: 1 });
    await w.releaseTo(45);
    for (let i = 61; i <= 90; i += 3) await w.save(hs(1, i + 2), makeEntries(i, i + 2, 1), true);
    await w.close();
    const r = await reopen(dir, { snapshot: { index: 45, term: 1 } });
    assert.deepEqual(describeEntries(r.entries), describeEntries(makeEntries(46, 90, 1)));
    assert.ok(r.snapshots.some((m) => m.index === 45));
  });
});

describe('Wal directory handling', () => {
  test('create refuses an existing log; open refuses a missing one', async () => {
    const dir = tmp('exists');
    await assert.rejects(Wal.open(dir, small), WalNotFoundError);
    assert.equal(Wal.exists(dir), false);
    const w = await Wal.create(dir, meta, small);
    assert.equal(Wal.exists(dir), true);
    await w.close();
    await assert.rejects(Wal.create(dir, meta, small), (e: unknown) => e instanceof WalExistsError && e.code === 'wal-exists');
    // The failed create released its lock.
    await (await Wal.open(dir, small)).wal.close();
  });

  test('the directory is locked against a second opener; a dead owner\'s lock is taken over', async () => {
    const dir = tmp('lock');
    const w = await Wal.create(dir, meta, small);
    await assert.rejects(Wal.open(dir, small), WalLockedError);
    await w.close();
    assert.equal(fs.existsSync(join(dir, 'LOCK')), false);
    // A lock left by a process that no longer exists.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    assert.ok(dead !== undefined);
    fs.writeFileSync(join(dir, 'LOCK'), `${dead} 123\n`);
    const r = await Wal.open(dir, small);
    assert.match(fs.readFileSync(join(dir, 'LOCK'), 'utf8'), new RegExp(`^${process.pid} `));
    await r.wal.close();
    // A lock held by a live process other than this one (our parent) is respected.
    fs.writeFileSync(join(dir, 'LOCK'), `${process.ppid}\n`);
    await assert.rejects(Wal.open(dir, small), (e: unknown) => e instanceof WalLockedError && e.pid === process.ppid);
    fs.rmSync(join(dir, 'LOCK'));
  });

  test('overlapping calls are a programmer error', async () => {
    const dir = tmp('overlap');
    const w = await Wal.create(dir, meta, small);
    const p = w.save(hs(1, 1), makeEntries(1, 1, 1), true);
    await assert.rejects(w.save(hs(1, 2), makeEntries(2, 2, 1), true), /while save is in progress/);
    await p;
    await w.close();
    await assert.rejects(w.save(hs(1, 2), [], true), /after close/);
  });

  test('stale temporary files are removed on open; none is left after close', async () => {
    const dir = tmp('tmpfiles');
    const w = await Wal.create(dir, meta, small);
    await w.close();
    fs.writeFileSync(join(dir, 'segment.tmp'), 'junk');
    const r = await Wal.open(dir, small);
    await r.wal.save(hs(1, 1), makeEntries(1, 1, 1), true);
    await r.wal.close();
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  });

  test('metrics count fsyncs and bytes', async () => {
    const dir = tmp('metrics');
    const registry = new Registry();
    const metrics = walMetrics(registry);
    const w = await Wal.create(dir, meta, { ...small, metrics });
    await w.save(hs(1, 1), makeEntries(1, 2, 1), true);
    await w.save(hs(1, 2), [], false);
    await w.close();
    const text = registry.render();
    assert.match(text, /etcd_disk_wal_fsync_duration_seconds_count 1\b/);
    assert.ok(metrics.writeBytes.get() > 0);
  });
});

describe('Wal sync placement', () => {
  /** node:fs, counting which kind of fdatasync each save used. */
  function countingFs(): { fs: WalFs; inline: number; pooled: number } {
    const c = { inline: 0, pooled: 0, fs: nodeWalFs };
    c.fs = {
      ...nodeWalFs,
      fdatasync: (fd) => {
        c.pooled++;
        return nodeWalFs.fdatasync(fd);
      },
      fdatasyncSync: (fd) => {
        c.inline++;
        nodeWalFs.fdatasyncSync?.(fd);
      },
    };
    return c;
  }

  test('a small batch syncs on the calling thread, a large one on the pool', async () => {
    const dir = tmp('placement');
    const c = countingFs();
    const w = await Wal.create(dir, meta, { fs: c.fs, inlineSyncBytes: 2048 });
    const base = { inline: c.inline, pooled: c.pooled };
    await w.save(hs(1, 0), makeEntries(1, 1, 1, 1, 100), true);
    assert.deepEqual([c.inline - base.inline, c.pooled - base.pooled], [1, 0], 'one small entry: inline');
    await w.save(hs(1, 1), makeEntries(2, 41, 1, 1, 100), true);
    assert.deepEqual([c.inline - base.inline, c.pooled - base.pooled], [1, 1], '40 entries past 2 KiB: the pool');
    await w.save(hs(1, 3), [], false);
    assert.deepEqual([c.inline - base.inline, c.pooled - base.pooled], [1, 1], 'no sync asked: none');
    await w.close();
    const r = await reopen(dir);
    assert.equal(r.entries.length, 41);
    assert.deepEqual(r.hardState, hs(1, 3));
  });

  test('after a slow sync, small batches go to the pool until a sync is fast again', async () => {
    const dir = tmp('slow-disk');
    const c = countingFs();
    let slowNext = false;
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const fs: WalFs = {
      ...c.fs,
      fdatasyncSync: (fd) => {
        c.fs.fdatasyncSync?.(fd);
        // A disk that stalls once: this sync takes 30 ms.
        if (slowNext) Atomics.wait(sleeper, 0, 0, 30);
        slowNext = false;
      },
    };
    const w = await Wal.create(dir, meta, { fs });
    const base = { inline: c.inline, pooled: c.pooled };
    const counts = (): number[] => [c.inline - base.inline, c.pooled - base.pooled];
    slowNext = true;
    await w.save(hs(1, 0), makeEntries(1, 1, 1, 1, 100), true);
    assert.deepEqual(counts(), [1, 0], 'inline, and slow');
    await w.save(hs(1, 0), makeEntries(2, 2, 1, 1, 100), true);
    assert.deepEqual(counts(), [1, 1], 'the pool after the slow one');
    // Back inline once a pool sync was fast (under 10 ms: a loaded machine may take a few tries).
    let next = 3;
    while (c.inline - base.inline < 2 && next < 50) await w.save(hs(1, 0), makeEntries(next, next++, 1, 1, 100), true);
    assert.equal(c.inline - base.inline, 2, 'inline again once a sync was fast');
    await w.close();
  });

  test('a file system without a blocking sync always syncs on the pool', async () => {
    const dir = tmp('no-inline');
    const c = countingFs();
    const rest: WalFs = { ...c.fs };
    delete rest.fdatasyncSync;
    const w = await Wal.create(dir, meta, { fs: rest });
    await w.save(hs(1, 0), makeEntries(1, 1, 1), true);
    assert.equal(c.inline, 0);
    assert.ok(c.pooled >= 1);
    await w.close();
  });
});
