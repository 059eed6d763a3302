/**
 * The member's own metrics, with etcd's names and help texts (features.md
 * §3.3): leadership, proposals, WAL fsync and backend sizes. Other modules
 * (transport, lessor, auth) register theirs on the same registry.
 */
import { exponentialBuckets, type Counter, type Gauge, type Histogram, type Registry } from '../base/index.js';

/** What the metrics read at scrape time (the member; its parts may not exist yet at registration). */
export interface MetricsSource {
  readonly memberId: bigint;
  readonly appliedIndex: number;
  readonly committedIndex: number;
  readonly term: number;
  readonly kv: { readonly rev: number; readonly compactRev: number };
  readonly watchable: { counts(): { synced: number; unsynced: number; victims: number } };
  readonly cluster: { readonly version: string };
  isLearner(): boolean;
}

export class ServerMetrics {
  readonly hasLeader: Gauge;
  readonly isLeader: Gauge;
  readonly leaderChanges: Counter;
  readonly proposalsCommitted: Gauge;
  readonly proposalsApplied: Gauge;
  readonly proposalsPending: Gauge;
  readonly proposalsFailed: Counter;
  readonly walFsync: Histogram;
  readonly backendCommit: Histogram;
  readonly dbTotalSize: Gauge;
  readonly dbInUse: Gauge;
  readonly quotaBytes: Gauge;

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
    r.gauge('etcd_server_term', 'The current term of raft.').collectWith(() => src.term);
    this.walFsync = r.histogram(
      'etcd_disk_wal_fsync_duration_seconds',
      'The latency distributions of fsync called by WAL.',
      exponentialBuckets(0.001, 2, 14),
    );
    this.backendCommit = r.histogram(
      'etcd_disk_backend_commit_duration_seconds',
      'The latency distributions of commit called by backend.',
      exponentialBuckets(0.001, 2, 14),
    );
    this.dbTotalSize = r.gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.');
    this.dbInUse = r.gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.');
    this.quotaBytes = r.gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.');
    registerStateMetrics(r, src, this.dbTotalSize);
  }
}

/** Gauges etcd 3.4 exports that read the member's state when scraped. */
function registerStateMetrics(r: Registry, src: MetricsSource, dbTotalSize: Gauge): void {
  let shownVersion = '';
  // Scraped before etcd_cluster_version (registration order): brings the label up to date first.
  r.gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.').collectWith(() => {
    const v = src.cluster.version.split('.').slice(0, 2).join('.');
    if (v !== '' && v !== shownVersion) {
      if (shownVersion !== '') clusterVersion.set(0, { cluster_version: shownVersion });
      clusterVersion.set(1, { cluster_version: v });
      shownVersion = v;
    }
    return src.isLearner() ? 1 : 0;
  });
  const clusterVersion = r.gauge('etcd_cluster_version', "Which version is running. 1 for 'cluster_version' label with current cluster version", ['cluster_version']);
  r.gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.').collectWith(() => src.kv.rev);
  r.gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.').collectWith(() => src.kv.compactRev);
  r.gauge('etcd_debugging_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.').collectWith(() => dbTotalSize.get());
  r.gauge('etcd_debugging_mvcc_watcher_total', 'Total number of watchers.').collectWith(() => {
    const c = src.watchable.counts();
    return c.synced + c.unsynced + c.victims;
  });
  r.gauge('etcd_debugging_mvcc_slow_watcher_total', 'Total number of unsynced slow watchers.').collectWith(() => {
    const c = src.watchable.counts();
    return c.unsynced + c.victims;
  });
}
