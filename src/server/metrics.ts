/**
 * The member's own metrics, with etcd 3.4's names, help texts and buckets
 * (features.md §3.3): leadership, proposals, apply and read-index health,
 * backend commits, defragmentation and snapshots, and the mvcc store's
 * (mvcc/metrics.ts). Other modules (wal, transport, lessor, auth, the client
 * API) register theirs on the same registry. Each figure is counted where
 * its event happens; the gauges that describe state are read at scrape time.
 */
import {
  exponentialBuckets, type Counter, type CounterChild, type Gauge, type GaugeChild, type Histogram, type HistogramChild, type Registry,
} from '../base/index.js';
import { MvccMetrics } from '../mvcc/index.js';
import { raftpb } from '../pb/index.js';

/** What the metrics read at scrape time (the member; its parts may not exist yet at registration). */
export interface MetricsSource {
  readonly memberId: bigint;
  readonly appliedIndex: number;
  readonly committedIndex: number;
  readonly kv: { readonly rev: number; readonly compactRev: number };
  readonly watchable: { counts(): { synced: number; unsynced: number; victims: number }; readonly streamCount: number; readonly eventsQueued: number; pendingEvents(): number };
  readonly cluster: { readonly version: string };
  readonly schema: { readonly backend: { openReadTransactions(): number } };
  isLearner(): boolean;
}

/** etcd's warnApplyDuration: an apply slower than this counts as slow. */
export const slowApplyMs = 100;

const diskBuckets = exponentialBuckets(0.001, 2, 14);

export class ServerMetrics {
  readonly hasLeader: Gauge;
  readonly isLeader: Gauge;
  readonly leaderChanges: Counter;
  readonly proposalsCommitted: Gauge;
  readonly proposalsApplied: Gauge;
  readonly proposalsPending: Gauge;
  readonly proposalsFailed: Counter;
  readonly backendCommit: Histogram;
  readonly dbTotalSize: Gauge;
  readonly dbInUse: Gauge;
  readonly quotaBytes: Gauge;
  readonly heartbeatSendFailures: CounterChild;
  readonly slowApplies: CounterChild;
  readonly slowReadIndexes: CounterChild;
  readonly readIndexesFailed: CounterChild;
  readonly learnerPromoteSucceed: CounterChild;
  /** Labelled Reason: etcd's own text of the error (membership's or etcdserver's, not the gRPC message). */
  readonly learnerPromoteFailed: Counter;
  readonly snapshotApplyInProgress: GaugeChild;
  readonly leaseExpired: CounterChild;
  readonly defragSeconds: HistogramChild;
  readonly defragInflight: GaugeChild;
  readonly backendSnapshotSeconds: HistogramChild;
  /** Receiving a database from the leader: its fsync, and the whole save. */
  readonly snapDbFsyncSeconds: HistogramChild;
  readonly snapDbSaveSeconds: HistogramChild;
  /** Saving a raft snapshot file: encoding, fsync, the whole save. */
  readonly snapMarshalSeconds: HistogramChild;
  readonly snapFsyncSeconds: HistogramChild;
  readonly snapSaveSeconds: HistogramChild;
  readonly mvcc: MvccMetrics;
  observeSnapSave(t: { readonly marshalSeconds: number; readonly fsyncSeconds: number; readonly totalSeconds: number }): void {
    this.snapMarshalSeconds.observe(t.marshalSeconds);
    this.snapFsyncSeconds.observe(t.fsyncSeconds);
    this.snapSaveSeconds.observe(t.totalSeconds);
  }

  /** Observes one backend commit (the whole LMDB transaction). */
  readonly observeCommit: (seconds: number) => void;

  constructor(r: Registry, src: MetricsSource) {
    this.hasLeader = r.gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.');
    this.isLeader = r.gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.');
    this.leaderChanges = r.counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.');
    this.proposalsCommitted = r
      .gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.')
      .collectWith(() => src.committedIndex);
    // A gauge in etcd, despite the name.
    this.proposalsApplied = r.gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.');
    this.proposalsPending = r.gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.');
    this.proposalsFailed = r.counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.');
    r.gauge('etcd_server_id', 'Server or member ID in hexadecimal format. 1 for \'server_id\' label with current ID.', ['server_id']).set(1, {
      server_id: src.memberId.toString(16),
    });
    r.gauge('etcd_server_version', 'Which version is running. 1 for \'server_version\' label with current version.', ['server_version']).set(1, {
      server_version: '3.4.23',
    });
    this.heartbeatSendFailures = r
      .counter('etcd_server_heartbeat_send_failures_total', 'The total number of leader heartbeat send failures (likely overloaded from slow disk).')
      .labels({});
    this.slowApplies = r.counter('etcd_server_slow_apply_total', 'The total number of slow apply requests (likely overloaded from slow disk).').labels({});
    this.slowReadIndexes = r
      .counter('etcd_server_slow_read_indexes_total', "The total number of pending read indexes not in sync with leader's or timed out read index requests.")
      .labels({});
    this.readIndexesFailed = r.counter('etcd_server_read_indexes_failed_total', 'The total number of failed read indexes seen.').labels({});
    this.learnerPromoteSucceed = r
      .counter('etcd_server_learner_promote_successes', 'The total number of successful learner promotions while this member is leader.')
      .labels({});
    this.learnerPromoteFailed = r.counter(
      'etcd_server_learner_promote_failures',
      'The total number of failed learner promotions (likely learner not ready) while this member is leader.',
      ['Reason'],
    );
    this.snapshotApplyInProgress = r
      .gauge('etcd_server_snapshot_apply_in_progress_total', '1 if the server is applying the incoming snapshot. 0 if none.')
      .labels({});
    this.leaseExpired = r.counter('etcd_debugging_server_lease_expired_total', 'The total number of expired leases.').labels({});
    this.backendCommit = r.histogram('etcd_disk_backend_commit_duration_seconds', 'The latency distributions of commit called by backend.', diskBuckets);
    this.observeCommit = commitObserver(r, this.backendCommit);
    this.defragSeconds = r
      .histogram('etcd_disk_backend_defrag_duration_seconds', 'The latency distribution of backend defragmentation.', exponentialBuckets(0.1, 2, 13))
      .labels({});
    this.defragInflight = r.gauge('etcd_disk_defrag_inflight', 'Whether or not defrag is active on the member. 1 means active, 0 means not.').labels({});
    this.backendSnapshotSeconds = r
      .histogram('etcd_disk_backend_snapshot_duration_seconds', 'The latency distribution of backend snapshots.', exponentialBuckets(0.01, 2, 17))
      .labels({});
    this.snapDbFsyncSeconds = r.histogram('etcd_snap_db_fsync_duration_seconds', 'The latency distributions of fsyncing .snap.db file', diskBuckets).labels({});
    this.snapDbSaveSeconds = r
      .histogram('etcd_snap_db_save_total_duration_seconds', 'The total latency distributions of v3 snapshot save', exponentialBuckets(0.1, 2, 10))
      .labels({});
    this.snapMarshalSeconds = r
      .histogram('etcd_debugging_snap_save_marshalling_duration_seconds', 'The marshalling cost distributions of save called by snapshot.', diskBuckets)
      .labels({});
    this.snapFsyncSeconds = r.histogram('etcd_snap_fsync_duration_seconds', 'The latency distributions of fsync called by snap.', diskBuckets).labels({});
    this.snapSaveSeconds = r
      .histogram('etcd_debugging_snap_save_total_duration_seconds', 'The total latency distributions of save called by snapshot.', diskBuckets)
      .labels({});
    this.dbTotalSize = r.gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.');
    this.dbInUse = r.gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.');
    this.quotaBytes = r.gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.');
    this.mvcc = new MvccMetrics(r);
    registerStateMetrics(r, src, this.dbTotalSize);
  }
}

/**
 * etcd splits a bbolt commit into its rebalance, spill and write phases. An
 * LMDB commit has no rebalance or spill phase (pages are copied on write as
 * the batch is applied): each commit is observed as its write phase, and as
 * zero-length rebalance and spill phases, so the three counts stay equal as
 * in etcd.
 */
function commitObserver(r: Registry, total: Histogram): (seconds: number) => void {
  const phase = (name: string): HistogramChild =>
    r.histogram(`etcd_debugging_disk_backend_commit_${name}_duration_seconds`, `The latency distributions of commit.${name} called by bboltdb backend.`, diskBuckets).labels({});
  const rebalance = phase('rebalance');
  const spill = phase('spill');
  const write = phase('write');
  const all = total.labels({});
  return (seconds) => {
    all.observe(seconds);
    rebalance.observe(0);
    spill.observe(0);
    write.observe(seconds);
  };
}

/** Gauges etcd 3.4 exports that read the member's state when scraped. */
function registerStateMetrics(r: Registry, src: MetricsSource, dbTotalSize: Gauge): void {
  let shownVersion = '';
  const clusterVersion = r.gauge('etcd_cluster_version', "Which version is running. 1 for 'cluster_version' label with current cluster version", ['cluster_version']);
  r.beforeRender(() => {
    const v = src.cluster.version.split('.').slice(0, 2).join('.');
    if (v !== '' && v !== shownVersion) {
      if (shownVersion !== '') clusterVersion.set(0, { cluster_version: shownVersion });
      clusterVersion.set(1, { cluster_version: v });
      shownVersion = v;
    }
  });
  r.gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.').collectWith(() => (src.isLearner() ? 1 : 0));
  r.gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.').collectWith(() => src.kv.rev);
  r.gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.').collectWith(() => src.kv.compactRev);
  r.gauge('etcd_debugging_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.').collectWith(() => dbTotalSize.get());
  r.gauge('etcd_mvcc_db_open_read_transactions', 'The number of currently open read transactions').collectWith(() => src.schema.backend.openReadTransactions());
  r.gauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.').collectWith(() => {
    const c = src.watchable.counts();
    return c.synced + c.unsynced + c.victims;
  });
  r.gauge('etcd_debugging_mvcc_slow_watcher_total', 'Total number of unsynced slow watchers.').collectWith(() => {
    const c = src.watchable.counts();
    return c.unsynced + c.victims;
  });
  r.gauge('etcd_debugging_mvcc_watch_stream_total', 'Total number of watch streams.').collectWith(() => src.watchable.streamCount);
  r.counter('etcd_debugging_mvcc_events_total', 'Total number of events sent by this member.').collectWith(() => src.watchable.eventsQueued);
  r.gauge('etcd_debugging_mvcc_pending_events_total', 'Total number of pending events to be sent.').collectWith(() => src.watchable.pendingEvents());
}

/**
 * etcd's heartbeat timeout detector: a leader's heartbeat to a peer that
 * leaves more than two heartbeat intervals after the previous one is a
 * failure to send on time (the loop was held up, most often by a slow disk).
 */
export class HeartbeatDetector {
  private readonly lastMs = new Map<bigint, number>();

  constructor(
    private readonly maxGapMs: number,
    private readonly late: CounterChild,
  ) {}

  observe(msgs: readonly raftpb.Message[]): void {
    for (const m of msgs) {
      if (m.type !== raftpb.MessageType.MsgHeartbeat) continue;
      const now = performance.now();
      const last = this.lastMs.get(m.to);
      if (last !== undefined && now - last > this.maxGapMs) this.late.inc();
      this.lastMs.set(m.to, now);
    }
  }

  /** Leadership changed: the next heartbeats start a fresh interval. */
  reset(): void {
    this.lastMs.clear();
  }
}
