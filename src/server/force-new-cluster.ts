/**
 * --force-new-cluster: a member restarted from its WAL turns its log into
 * that of a one-member cluster, before raft starts (etcd 3.4's
 * restartAsStandaloneNode).
 *
 * What it does to the log loaded from the WAL:
 * - The entries past the commit index are dropped: nobody may have them, and
 *   the entries appended next take their indices. The commit index is the
 *   hard state's, or the backend's applied index when that is higher: a
 *   hard state that only moves the commit index is written without a sync
 *   (raft's mustSync), so a kill can leave the backend ahead of the WAL's
 *   commit index, and an applied entry was committed. (etcd drops those
 *   entries too, while their effects stay in its backend, under indices the
 *   appended entries then take: a log that no longer matches the state it
 *   produced, which a member added later would replay.)
 * - Conf changes are appended right after the commit index, at the hard
 *   state's term: one that adds this member if the log does not hold it
 *   (first, so that raft never has an empty voter set), then one removal per
 *   other member, in id order.
 * - The commit index moves to the last of them: they are committed by fiat.
 *   The caller saves them and that hard state to the WAL, synced, before raft
 *   starts; the apply loop then applies them as any committed conf change,
 *   which leaves the membership (and the members bucket) with this member
 *   alone and the others recorded as removed.
 *
 * The members to remove are, as etcd computes them: the voters of the
 * snapshot raft starts from, plus those that the kept entries add (voters or
 * learners), minus those they remove. (A learner known only from the
 * snapshot is not in that set, as in etcd.) The cluster id stays; nothing
 * here looks at --initial-cluster.
 *
 * Indices: the appended entries start at commit + 1, above every index the
 * backend has applied, so no index of a committed entry is reused (only those
 * of discarded uncommitted ones), and the apply loop, which takes entries at
 * or below the applied index as applied already, applies them.
 */
import { existsSync, rmSync } from 'node:fs';
import { raftpb, serverpb } from '../pb/index.js';
import { Schema } from '../schema/index.js';
import { ConfigError } from './config.js';
import type { DataLayout } from './layout.js';
import { receivedDbPath } from './layout.js';
import { memberToRecord } from './membership.js';

/** The peer URL etcd gives this member when it has to add itself (its log held no add of it). */
const defaultPeerUrl = 'http://localhost:2380';

export interface StandaloneLog {
  /** The entries raft's storage starts with: the committed ones, then the appended ones. */
  readonly entries: raftpb.Entry[];
  /** The appended conf-change entries (what must be saved to the WAL). */
  readonly appended: raftpb.Entry[];
  /** The hard state, committed up to the last appended entry. */
  readonly hardState: raftpb.HardState;
  /** How many uncommitted entries were dropped, and the index of the first. */
  readonly discarded: number;
  readonly discardedFrom: number;
  /** The members the appended entries remove. */
  readonly removed: bigint[];
}

export interface RestartedLog {
  readonly hardState: raftpb.HardState;
  /** The entries after the snapshot raft starts from. */
  readonly entries: readonly raftpb.Entry[];
  /** That snapshot's index (0 without one) and configuration. */
  readonly snapshotIndex: number;
  readonly snapshotConfState: raftpb.ConfState | undefined;
  /** The backend's applied index (what the member will start with). */
  readonly appliedIndex: number;
}

/** The log of a one-member cluster made from a restarted member's log. */
export function standaloneLog(self: bigint, log: RestartedLog): StandaloneLog {
  const { hardState, entries } = log;
  const lastIndex = entries[entries.length - 1]?.index ?? log.snapshotIndex;
  if (log.appliedIndex > lastIndex) {
    // Only a database received with a snapshot can be ahead of the log (the leader's is newer than its
    // snapshot). The appended entries would take indices the apply loop takes as applied.
    throw new ConfigError(
      `cannot force a new cluster: the backend has applied index ${log.appliedIndex}, past the last entry of the WAL (${lastIndex}); ` +
        'restore the member from a snapshot instead (etcdctl snapshot restore)',
    );
  }
  const commit = Math.max(hardState.commit, log.appliedIndex);
  const cut = entries.findIndex((e) => e.index > commit);
  const kept = cut < 0 ? [...entries] : entries.slice(0, cut);
  const ids = memberIdsOf(log.snapshotConfState, kept);
  const appended: raftpb.Entry[] = [];
  let next = commit + 1;
  const confEntry = (cc: raftpb.ConfChange): raftpb.Entry =>
    raftpb.Entry.create({ type: raftpb.EntryType.EntryConfChange, term: hardState.term, index: next++, data: raftpb.ConfChange.encode(cc) });
  if (!ids.has(self)) {
    const context = serverpb.MemberRecord.encode(memberToRecord({ id: self, name: '', peerUrls: [defaultPeerUrl], clientUrls: [], isLearner: false }));
    appended.push(confEntry(raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeAddNode, nodeId: self, context })));
  }
  const removed = [...ids].filter((id) => id !== self).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const id of removed) appended.push(confEntry(raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeRemoveNode, nodeId: id })));
  const last = appended[appended.length - 1] ?? kept[kept.length - 1];
  return {
    entries: [...kept, ...appended],
    appended,
    hardState: raftpb.HardState.create({ ...hardState, commit: Math.max(commit, last?.index ?? 0) }),
    discarded: entries.length - kept.length,
    discardedFrom: commit + 1,
    removed,
  };
}

/** etcd's getIDs: the snapshot's voters, then the adds and removals of the entries. */
function memberIdsOf(confState: raftpb.ConfState | undefined, entries: readonly raftpb.Entry[]): Set<bigint> {
  const ids = new Set<bigint>(confState?.voters ?? []);
  for (const e of entries) {
    if (e.type !== raftpb.EntryType.EntryConfChange) continue;
    const cc = raftpb.ConfChange.decode(e.data);
    switch (cc.type) {
      case raftpb.ConfChangeType.ConfChangeAddNode:
      case raftpb.ConfChangeType.ConfChangeAddLearnerNode:
        ids.add(cc.nodeId);
        break;
      case raftpb.ConfChangeType.ConfChangeRemoveNode:
        ids.delete(cc.nodeId);
        break;
      case raftpb.ConfChangeType.ConfChangeUpdateNode:
        break;
    }
  }
  return ids;
}

/**
 * The applied index of the backend the member is about to open: its database,
 * or the one received with the snapshot when a crash stopped its install (the
 * server installs it right after bootstrap; see installReceivedDb).
 */
export async function appliedIndexAtStart(layout: DataLayout, snapshotIndex: number): Promise<number> {
  const current = existsSync(layout.dbPath) ? await appliedIndexOf(layout.dbPath) : 0;
  if (snapshotIndex === 0 || current >= snapshotIndex) return current;
  const received = receivedDbPath(layout, snapshotIndex);
  if (!existsSync(received)) return current;
  const index = await appliedIndexOf(received);
  // The lock table LMDB left beside the file: the file is renamed into place, the table is not.
  rmSync(`${received}-lock`, { force: true });
  return Math.max(current, index);
}

async function appliedIndexOf(path: string): Promise<number> {
  const schema = Schema.open({ path });
  try {
    return schema.consistentIndex().index;
  } finally {
    await schema.backend.close();
  }
}
