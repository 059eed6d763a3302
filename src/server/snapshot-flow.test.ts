import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nopLogger } from '../base/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import { MemoryStorage, ProgressState, type ProgressStatus } from '../raft/index.js';
import type { Schema } from '../schema/index.js';
import type { Snapshotter, Wal } from '../wal/index.js';
import type { EtcdServer } from './server.js';
import { catchUpFloor, LogCompaction, SnapshotFlow, type SnapshotHost } from './snapshot-flow.js';

/** A host whose raft log holds entries 1..last, with the given saved commit; records what the compaction did. */
function host(appliedIndex: number, last: number, commit: number): { h: SnapshotHost & { appliedIndex: number }; storage: MemoryStorage; did: string[]; progress: Map<bigint, ProgressStatus> } {
  const storage = new MemoryStorage();
  storage.append(Array.from({ length: last }, (_, i) => raftpb.Entry.create({ index: i + 1, term: 1 })));
  storage.setHardState(raftpb.HardState.create({ term: 1, commit }));
  const did: string[] = [];
  const progress = new Map<bigint, ProgressStatus>();
  let lastSnapshot = 0;
  const h = {
    appliedIndex,
    appliedTerm: 1,
    confState: raftpb.ConfState.create({ voters: [1n] }),
    cluster: { toSnapshotData: () => serverpb.SnapshotData.create() },
    schema: { backend: { forceCommit: () => Promise.resolve() } } as unknown as Schema,
    raft: {
      storage,
      snapshotter: { save: (s: raftpb.Snapshot) => void did.push(`snap file ${s.metadata?.index ?? 0}`), purge: () => Promise.resolve() } as unknown as Snapshotter,
      wal: {
        saveSnapshot: (m: { index: number }) => void did.push(`marker ${m.index}`),
        releaseTo: (i: number) => void did.push(`release to ${i}`),
      } as unknown as Wal,
      rawNode: { status: () => ({ id: 1n, progress }) },
    },
    cfg: { snapshotCount: 10, snapshotCatchUpEntries: 5, maxSnapshots: 0 },
    logger: nopLogger,
    lastSnapshotIndex: () => lastSnapshot,
    setLastSnapshotIndex: (i: number) => void (lastSnapshot = i),
  };
  return { h, storage, did, progress };
}

test('log compaction: no snapshot past the commit index the WAL kept (a restart with the backend ahead of it)', async () => {
  // The backend applied 406 before a crash; the last hard state the WAL kept says commit 390.
  const { h, storage, did } = host(406, 406, 390);
  const c = new LogCompaction(h);
  await c.maybeSnapshot();
  assert.deepEqual(did, [], 'a marker at 406 would not count on the next start, and the release would lose the older ones');
  // Raft learns the commit again and saves it: now the snapshot is taken, and the log compacted behind it.
  storage.setHardState(raftpb.HardState.create({ term: 1, commit: 406 }));
  await c.maybeSnapshot();
  assert.deepEqual(did, ['snap file 406', 'marker 406', 'release to 406']);
  assert.equal(storage.firstIndex(), 402);
  assert.equal(h.lastSnapshotIndex(), 406);
});

test('log compaction: a snapshot once more than snapshot-count entries applied since the last', async () => {
  const { h, did } = host(10, 20, 20);
  const c = new LogCompaction(h);
  await c.maybeSnapshot();
  assert.deepEqual(did, [], '10 applied: not more than the count');
  h.appliedIndex = 11;
  await c.maybeSnapshot();
  assert.deepEqual(did, ['snap file 11', 'marker 11', 'release to 11']);
});

/** A follower's progress as a leader sees it. */
function follower(state: ProgressState, match: number, pendingSnapshot = 0, recentActive = true): ProgressStatus {
  return { match, next: match + 1, state, isLearner: false, recentActive, paused: false, inflightCount: 0, pendingSnapshot };
}

test('log compaction keeps the entries a follower catching up needs, within a bound', async () => {
  // Entries 1..400 applied, snapshots every 10, 5 kept behind: 395 would be the first index kept.
  const { h, storage, progress } = host(400, 400, 400);
  // Being sent the snapshot at 300: the log keeps 300 (its term) and on, for the appends after it.
  progress.set(2n, follower(ProgressState.StateSnapshot, 120, 300));
  // Replicating 40 behind; and another far behind, but inactive: not waited for.
  progress.set(3n, follower(ProgressState.StateReplicate, 360));
  progress.set(4n, follower(ProgressState.StateProbe, 200, 0, false));
  const c = new LogCompaction(h);
  await c.maybeSnapshot();
  assert.equal(storage.firstIndex(), 301);
  // Installed: its match is 300, and it replicates. Both caught up later: the usual window again.
  progress.set(2n, follower(ProgressState.StateReplicate, 300));
  h.appliedIndex = 411;
  storage.append(Array.from({ length: 11 }, (_, i) => raftpb.Entry.create({ index: 401 + i, term: 1 })));
  storage.setHardState(raftpb.HardState.create({ term: 1, commit: 411 }));
  await c.maybeSnapshot();
  assert.equal(storage.firstIndex(), 301, 'still needed by the follower at 300');
  progress.set(2n, follower(ProgressState.StateReplicate, 422));
  progress.set(3n, follower(ProgressState.StateReplicate, 422));
  h.appliedIndex = 422;
  storage.append(Array.from({ length: 11 }, (_, i) => raftpb.Entry.create({ index: 412 + i, term: 1 })));
  storage.setHardState(raftpb.HardState.create({ term: 1, commit: 422 }));
  await c.maybeSnapshot();
  assert.equal(storage.firstIndex(), 418);
});

test('catchUpFloor: a follower too far behind, or behind the log, is not waited for', () => {
  const status = (...prs: ProgressStatus[]): { id: bigint; progress: Map<bigint, ProgressStatus> } => ({ id: 1n, progress: new Map(prs.map((p, i) => [BigInt(i + 2), p])) });
  assert.equal(catchUpFloor(status(follower(ProgressState.StateReplicate, 100)), 50, 1000, 900), 100);
  assert.equal(catchUpFloor(status(follower(ProgressState.StateReplicate, 99)), 50, 1000, 900), Number.POSITIVE_INFINITY, 'more than 900 behind');
  assert.equal(catchUpFloor(status(follower(ProgressState.StateProbe, 48)), 50, 1000, 900), Number.POSITIVE_INFINITY, 'needs a snapshot anyway');
  assert.equal(catchUpFloor(status(follower(ProgressState.StateProbe, 49), follower(ProgressState.StateSnapshot, 10, 700)), 50, 940, 900), 49);
  // The leader's own progress does not count.
  assert.equal(catchUpFloor({ id: 2n, progress: new Map([[2n, follower(ProgressState.StateReplicate, 60)]]) }, 50, 1000, 900), Number.POSITIVE_INFINITY);
});

test('purging the snap dir removes received databases up to the index kept, partial ones, and files of sends and older clients', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-flow-'));
  try {
    const flow = new SnapshotFlow({ layout: { snapDir: dir } } as unknown as EtcdServer);
    const names = ['0000000000000005.snap.db', '000000000000000a.snap.db', '000000000000000c.snap.db.tmp', 'send-1-ab.db', 'send-1-ab.db-lock', 'client-1-ab.db', '0000000000000001-0000000000000005.snap'];
    for (const n of names) writeFileSync(join(dir, n), '');
    await flow.purgeStale(5);
    assert.deepEqual(readdirSync(dir).sort(), ['0000000000000001-0000000000000005.snap', '000000000000000a.snap.db']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
