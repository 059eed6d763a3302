import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nopLogger } from '../base/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import { MemoryStorage } from '../raft/index.js';
import type { Schema } from '../schema/index.js';
import type { Snapshotter, Wal } from '../wal/index.js';
import type { EtcdServer } from './server.js';
import { LogCompaction, SnapshotFlow, type SnapshotHost } from './snapshot-flow.js';

/** A host whose raft log holds entries 1..last, with the given saved commit; records what the compaction did. */
function host(appliedIndex: number, last: number, commit: number): { h: SnapshotHost & { appliedIndex: number }; storage: MemoryStorage; did: string[] } {
  const storage = new MemoryStorage();
  storage.append(Array.from({ length: last }, (_, i) => raftpb.Entry.create({ index: i + 1, term: 1 })));
  storage.setHardState(raftpb.HardState.create({ term: 1, commit }));
  const did: string[] = [];
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
    },
    cfg: { snapshotCount: 10, snapshotCatchUpEntries: 5, maxSnapshots: 0 },
    logger: nopLogger,
    lastSnapshotIndex: () => lastSnapshot,
    setLastSnapshotIndex: (i: number) => void (lastSnapshot = i),
  };
  return { h, storage, did };
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
