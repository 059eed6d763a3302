/**
 * Snapshots, in their three roles:
 *
 * - Log compaction: every --snapshot-count applied entries, once the backend
 *   has made everything applied durable, a raft snapshot (membership in its
 *   data) is saved (snap file, then WAL marker), raft's in-memory log is
 *   compacted down to the last --snapshot-catch-up entries, and WAL segments
 *   below the snapshot are released.
 * - Catching a follower up (leader): raft asks to send its stored snapshot;
 *   the message is refreshed to the applied state (index, term, conf state)
 *   and the backend database, at least that new, streams after it (etcd's
 *   "merged snapshot") from a read view, with no copy on disk
 *   (snapshot-peer.ts). A follower's applied entries are skipped by index, so
 *   a database newer than its snapshot index is fine; an older one would not be.
 * - Being caught up (follower): the stream is written into a new database
 *   file next to the snap files as it comes, checked, synced and renamed to
 *   <index>.snap.db; the raft message goes to raft, and the server installs
 *   the file when raft hands out the snapshot.
 */
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { failpoint, type Logger } from '../base/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import { isRaftError, ProgressState, type MemoryStorage, type ProgressStatus } from '../raft/index.js';
import type { Schema } from '../schema/index.js';
import type { Snapshotter, Wal } from '../wal/index.js';
import { exportDb, exportPieces, type DbExport, type SizedDbExport } from './snapshot-export.js';
import { receivePeerDb } from './snapshot-peer.js';
import { receivedDbPath } from './layout.js';
import type { RaftCluster } from './membership.js';
import type { EtcdServer } from './server.js';

/** The state a raft snapshot describes: the applied position and configuration. */
interface AppliedPoint {
  readonly index: number;
  readonly term: number;
  readonly confState: raftpb.ConfState;
  readonly data: Uint8Array;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function snapshotOf(point: AppliedPoint): raftpb.Snapshot {
  return raftpb.Snapshot.create({
    data: point.data,
    metadata: raftpb.SnapshotMetadata.create({ index: point.index, term: point.term, confState: point.confState }),
  });
}

/**
 * A leader's MsgSnap carries the state it has applied (with a database at
 * least that new), not the older one raft stored: its applied point as a
 * raft snapshot.
 */
export function appliedSnapshot(s: SnapshotHost): raftpb.Snapshot {
  return snapshotOf(appliedPoint(s));
}

/**
 * What log compaction needs of a member: EtcdServer, or the deterministic
 * simulation's member (test/sim-members), which takes its snapshots here too.
 */
export interface SnapshotHost {
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly confState: raftpb.ConfState;
  readonly cluster: Pick<RaftCluster, 'toSnapshotData'>;
  readonly schema: Schema;
  readonly raft: {
    readonly storage: MemoryStorage;
    readonly snapshotter: Snapshotter;
    readonly wal: Wal;
    /** The followers' progress (a leader's; empty on the others). */
    readonly rawNode: { status(): { readonly id: bigint; readonly progress: ReadonlyMap<bigint, ProgressStatus> } };
  };
  readonly cfg: { readonly snapshotCount: number; readonly snapshotCatchUpEntries: number; readonly maxSnapshots: number };
  readonly logger: Logger;
  lastSnapshotIndex(): number;
  setLastSnapshotIndex(index: number): void;
}

function appliedPoint(s: SnapshotHost): AppliedPoint {
  return {
    index: s.appliedIndex,
    term: s.appliedTerm,
    confState: raftpb.ConfState.create(s.confState),
    data: serverpb.SnapshotData.encode(s.cluster.toSnapshotData()),
  };
}

/** How many entries behind the snapshot a follower catching up may keep in the log, at least (see catchUpFloor). */
export const catchUpHoldMin = 10_000;

/**
 * The lowest index a leader keeps in its log for followers catching up
 * (Infinity: none). A follower that is being sent a snapshot needs the
 * entries after it once installed; one replicating behind the catch-up
 * window needs those after its match. Compacting past them would send
 * each a snapshot again, and under a steady write load that outruns a
 * snapshot's transfer and install it would never stop getting snapshots
 * (etcd 3.4 compacts regardless). A follower counts while it is active
 * and no more than holdMax entries behind index, and only while the log
 * still reaches it (first: the log's first index).
 */
export function catchUpFloor(
  status: { readonly id: bigint; readonly progress: ReadonlyMap<bigint, ProgressStatus> },
  first: number,
  index: number,
  holdMax: number,
): number {
  let floor = Number.POSITIVE_INFINITY;
  for (const [id, pr] of status.progress) {
    if (id === status.id || !pr.recentActive) continue;
    const needs = pr.state === ProgressState.StateSnapshot ? pr.pendingSnapshot : pr.match;
    if (needs >= first - 1 && index - needs <= holdMax && needs < floor) floor = needs;
  }
  return floor;
}

/** Log compaction (the first role above), once more than snapshotCount entries applied since the last snapshot. */
export class LogCompaction {
  private snapshotting = false;

  constructor(private readonly s: SnapshotHost) {}

  /** Runs after each Ready's advance, serialized with the WAL writes. */
  async maybeSnapshot(): Promise<void> {
    const s = this.s;
    if (this.snapshotting || s.appliedIndex - s.lastSnapshotIndex() <= s.cfg.snapshotCount) return;
    // A member restarts with the backend's applied index, which can be past
    // the commit index of the last hard state its WAL kept (a commit-only hard
    // state is not synced). A marker past that commit is not a valid snapshot
    // on the next start (etcd's ValidSnapshotEntries), and the segments it
    // released would be gone: wait until raft's saved commit reaches it (the
    // marker's sync then makes that hard state durable too).
    if (s.appliedIndex > s.raft.storage.hardStateNow().commit) return;
    this.snapshotting = true;
    try {
      // Capture the point first: forceCommit makes durable what was written before it was called.
      const point = appliedPoint(s);
      await s.schema.backend.forceCommit();
      const storage = s.raft.storage;
      const snap = storage.createSnapshot(point.index, point.confState, point.data);
      failpoint('raftBeforeSaveSnap');
      await s.raft.snapshotter.save(snap);
      await s.raft.wal.saveSnapshot({ index: point.index, term: point.term, confState: point.confState });
      failpoint('raftAfterSaveSnap');
      const window = point.index > s.cfg.snapshotCatchUpEntries ? point.index - s.cfg.snapshotCatchUpEntries : 1;
      const compactIndex = Math.min(window, catchUpFloor(s.raft.rawNode.status(), storage.firstIndex(), point.index, Math.max(s.cfg.snapshotCount, catchUpHoldMin)));
      if (compactIndex > storage.firstIndex()) storage.compact(compactIndex);
      await s.raft.wal.releaseTo(point.index);
      failpoint('raftAfterWalRelease');
      if (s.cfg.maxSnapshots > 0) await s.raft.snapshotter.purge(s.cfg.maxSnapshots);
      s.setLastSnapshotIndex(point.index);
      s.logger.info('saved snapshot', { 'snapshot-index': point.index, 'compact-index': compactIndex });
    } catch (e) {
      if (!isRaftError(e)) throw e;
      s.logger.warn('snapshot skipped', { error: e.message });
    } finally {
      this.snapshotting = false;
    }
  }
}

export class SnapshotFlow {
  private readonly compaction: LogCompaction;

  constructor(private readonly s: EtcdServer) {
    this.compaction = new LogCompaction(s);
  }

  /** Runs after each Ready's advance, serialized with the WAL writes. */
  maybeSnapshot(): Promise<void> {
    return this.compaction.maybeSnapshot();
  }

  /** Leader: the database to send with a MsgSnap; refreshes the message's snapshot to match it. */
  async openForPeer(m: raftpb.Message): Promise<AsyncIterable<Uint8Array>> {
    const point = appliedPoint(this.s);
    const startedMs = performance.now();
    // The view is taken after everything applied so far has been committed: it holds at least point.index.
    const x = await this.view((viewed) => exportDb(this.s.schema.backend.path, 'peer', viewed));
    m.snapshot = snapshotOf(point);
    return exportPieces(x, () => this.s.metrics.backendSnapshotSeconds.observe((performance.now() - startedMs) / 1000));
  }

  /** A member repairing its backend: this member's database, as the leader streams one with a MsgSnap. */
  async openForRepair(): Promise<AsyncIterable<Uint8Array>> {
    return exportPieces(await this.view((viewed) => exportDb(this.s.schema.backend.path, 'peer', viewed)));
  }

  /**
   * Follower: writes the database that came with a MsgSnap into a new
   * backend file as it comes (before raft sees the message); it becomes
   * <index>.snap.db once whole, checked and synced.
   */
  async receiveFromLeader(m: raftpb.Message, body: AsyncIterable<Uint8Array>): Promise<void> {
    const index = m.snapshot?.metadata?.index ?? 0;
    const path = receivedDbPath(this.s.layout, index);
    const startedMs = performance.now();
    const got = await receivePeerDb(`${path}.tmp`, path, body, this.s.logger, (syncMs) => this.s.metrics.snapDbFsyncSeconds.observe(syncMs / 1000));
    await fsyncDir(this.s.layout.snapDir);
    this.s.metrics.snapDbSaveSeconds.observe((performance.now() - startedMs) / 1000);
    this.s.logger.info('received database snapshot', { index, from: m.from.toString(16), bytes: got.bytes });
  }

  /** The backend for Maintenance.Snapshot, as the bbolt file etcd's tools read (snapshot-bbolt.ts). */
  exportClientDb(): Promise<SizedDbExport> {
    return this.view((viewed) => exportDb(this.s.schema.backend.path, 'bbolt', viewed));
  }

  /**
   * A stream of the backend with no file: a worker thread reads the
   * backend's file as one read transaction sees it (everything applied
   * before the call), while the member goes on committing. No defrag runs
   * until the export has ended (streamed, failed or stopped).
   */
  private view<X extends DbExport>(start: (viewed: () => void) => Promise<X>): Promise<X> {
    return new Promise<X>((resolve, reject) => {
      this.s.schema.backend
        .whileViewed(async (viewed) => {
          const x = await start(viewed);
          resolve(x);
          await x.ended;
        })
        .catch(reject);
    });
  }

  /**
   * Removes databases left by interrupted transfers (received but never
   * installed), and the copies older builds wrote here for a peer (send-*)
   * or a client (client-*) and left when they crashed: databases are
   * streamed from views now, with no file.
   */
  async purgeStale(keepIndex: number): Promise<void> {
    const dir = this.s.layout.snapDir;
    const left = /^(send|client)-.*\.db(-lock)?$/;
    for (const name of await readdir(dir)) {
      const received = /^([0-9a-f]{16})\.snap\.db(\.tmp)?$/.exec(name);
      if (received !== null && (received[2] !== undefined || parseInt(received[1] ?? '0', 16) <= keepIndex)) {
        await rm(join(dir, name), { force: true });
      } else if (left.test(name)) {
        await rm(join(dir, name), { force: true });
      }
    }
  }
}
