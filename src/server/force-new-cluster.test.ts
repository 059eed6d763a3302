// The log --force-new-cluster makes (etcd 3.4's restartAsStandaloneNode, with
// the backend's applied index counted as committed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { raftpb, serverpb } from '../pb/index.js';
import { ConfigError } from './config.js';
import { standaloneLog, type RestartedLog } from './force-new-cluster.js';

const T = raftpb.ConfChangeType;

function cc(index: number, term: number, type: raftpb.ConfChangeType, nodeId: bigint): raftpb.Entry {
  return raftpb.Entry.create({ index, term, type: raftpb.EntryType.EntryConfChange, data: raftpb.ConfChange.encode(raftpb.ConfChange.create({ type, nodeId })) });
}
function normal(index: number, term: number): raftpb.Entry {
  return raftpb.Entry.create({ index, term, type: raftpb.EntryType.EntryNormal, data: new Uint8Array([index]) });
}
function changes(entries: readonly raftpb.Entry[]): [raftpb.ConfChangeType, bigint, number, number][] {
  return entries.map((e) => {
    const c = raftpb.ConfChange.decode(e.data);
    return [c.type, c.nodeId, e.index, e.term];
  });
}
function log(o: Partial<RestartedLog>): RestartedLog {
  return { hardState: raftpb.HardState.create(), entries: [], snapshotIndex: 0, snapshotConfState: undefined, appliedIndex: 0, ...o };
}

// A 3-member cluster's log: its bootstrap conf changes, then writes.
const boot = [cc(1, 1, T.ConfChangeAddNode, 0x30n), cc(2, 1, T.ConfChangeAddNode, 0x10n), cc(3, 1, T.ConfChangeAddNode, 0x20n)];
const log3 = [...boot, normal(4, 2), normal(5, 2), normal(6, 2), normal(7, 3)];

test('uncommitted entries are dropped; removals of the others follow the commit index, in id order, at its term', () => {
  const hs = raftpb.HardState.create({ term: 3, vote: 0x10n, commit: 5 });
  const r = standaloneLog(0x10n, log({ hardState: hs, entries: log3, appliedIndex: 5 }));
  assert.equal(r.discarded, 2);
  assert.equal(r.discardedFrom, 6);
  assert.deepEqual(r.removed, [0x20n, 0x30n]);
  assert.deepEqual(changes(r.appended), [
    [T.ConfChangeRemoveNode, 0x20n, 6, 3],
    [T.ConfChangeRemoveNode, 0x30n, 7, 3],
  ]);
  assert.deepEqual(
    r.entries.map((e) => e.index),
    [1, 2, 3, 4, 5, 6, 7],
  );
  assert.deepEqual(r.hardState, raftpb.HardState.create({ term: 3, vote: 0x10n, commit: 7 }));
});

test('entries the backend applied are committed, even past the saved commit index', () => {
  // The hard state covering a commit is saved with the next Ready: a crash can leave the backend ahead.
  const hs = raftpb.HardState.create({ term: 3, vote: 0x10n, commit: 5 });
  const r = standaloneLog(0x10n, log({ hardState: hs, entries: log3, appliedIndex: 6 }));
  assert.equal(r.discarded, 1);
  assert.deepEqual(
    changes(r.appended).map(([, id, index]) => [id, index]),
    [
      [0x20n, 7],
      [0x30n, 8],
    ],
  );
  assert.equal(r.hardState.commit, 8);
  assert.throws(() => standaloneLog(0x10n, log({ hardState: hs, entries: log3, appliedIndex: 9 })), ConfigError);
});

test('members come from the snapshot voters and the kept conf changes; a member alone appends nothing', () => {
  const conf = raftpb.ConfState.create({ voters: [0x10n, 0x20n, 0x30n], learners: [0x40n] });
  const entries = [cc(11, 4, T.ConfChangeRemoveNode, 0x30n), cc(12, 4, T.ConfChangeAddLearnerNode, 0x50n), normal(13, 4)];
  const hs = raftpb.HardState.create({ term: 4, commit: 13 });
  const r = standaloneLog(0x10n, log({ hardState: hs, entries, snapshotIndex: 10, snapshotConfState: conf, appliedIndex: 13 }));
  // As etcd: the snapshot's learners are not counted, those the entries add are.
  assert.deepEqual(r.removed, [0x20n, 0x50n]);
  assert.deepEqual(
    r.appended.map((e) => e.index),
    [14, 15],
  );

  const alone = standaloneLog(0x10n, log({ hardState: hs, entries, snapshotIndex: 10, snapshotConfState: raftpb.ConfState.create({ voters: [0x10n] }), appliedIndex: 13 }));
  assert.deepEqual(changes(alone.appended), [[T.ConfChangeRemoveNode, 0x50n, 14, 4]]);
  const none = standaloneLog(0x10n, log({ hardState: raftpb.HardState.create({ term: 4, commit: 11 }), entries: [normal(11, 4)], snapshotIndex: 10, snapshotConfState: raftpb.ConfState.create({ voters: [0x10n] }), appliedIndex: 11 }));
  assert.deepEqual(none.appended, []);
  assert.equal(none.hardState.commit, 11);
});

test('a member its log does not hold adds itself first, with etcd default peer URL', () => {
  const hs = raftpb.HardState.create({ term: 2, commit: 3 });
  const r = standaloneLog(0x99n, log({ hardState: hs, entries: boot, appliedIndex: 3 }));
  assert.deepEqual(
    changes(r.appended).map(([type, id]) => [type, id]),
    [
      [T.ConfChangeAddNode, 0x99n],
      [T.ConfChangeRemoveNode, 0x10n],
      [T.ConfChangeRemoveNode, 0x20n],
      [T.ConfChangeRemoveNode, 0x30n],
    ],
  );
  const first = r.appended[0];
  assert.ok(first !== undefined);
  const record = serverpb.MemberRecord.decode(raftpb.ConfChange.decode(first.data).context);
  assert.equal(record.ID, 0x99n);
  assert.deepEqual(record.peerUrls, ['http://localhost:2380']);
});
