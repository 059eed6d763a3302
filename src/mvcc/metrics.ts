/**
 * The mvcc store's metrics, with etcd 3.4's names, help texts and buckets
 * (mvcc/metrics.go): the per-operation counters (kept under both the
 * etcd_mvcc_ and the older etcd_debugging_mvcc_ names, as 3.4 exports both),
 * keys, put sizes, compaction and hash timings. One MvccMetrics outlives the
 * KvStore instances a member goes through (a snapshot install opens a new
 * one), as etcd's are process-wide.
 */
import { Registry, exponentialBuckets, type CounterChild, type GaugeChild, type HistogramChild } from '../base/index.js';

export class MvccMetrics {
  /** Range calls on a read or write transaction (requests, txn ops and compares, prev_kv reads). */
  readonly ranges: CounterChild;
  readonly puts: CounterChild;
  /** DeleteRange calls (one per request or txn op, however many keys). */
  readonly deletes: CounterChild;
  /** Requests that made more than one of the calls above. */
  readonly txns: CounterChild;
  readonly putBytes: GaugeChild;
  readonly keys: GaugeChild;
  readonly indexCompactionPauseMs: HistogramChild;
  readonly dbCompactionPauseMs: HistogramChild;
  readonly dbCompactionTotalMs: HistogramChild;
  readonly dbCompactionKeys: CounterChild;
  readonly hashSeconds: HistogramChild;
  readonly hashRevSeconds: HistogramChild;

  /** Without a registry the figures are kept but not exported (tests, tools). */
  constructor(r: Registry = new Registry()) {
    const both = (op: string, help: string): CounterChild => {
      const c = r.counter(`etcd_mvcc_${op}_total`, help).labels({});
      r.counter(`etcd_debugging_mvcc_${op}_total`, help).collectWith(() => c.value);
      return c;
    };
    this.ranges = both('range', 'Total number of ranges seen by this member.');
    this.puts = both('put', 'Total number of puts seen by this member.');
    this.deletes = both('delete', 'Total number of deletes seen by this member.');
    this.txns = both('txn', 'Total number of txns seen by this member.');
    this.putBytes = r.gauge('etcd_debugging_mvcc_total_put_size_in_bytes', 'The total size of put kv pairs seen by this member.').labels({});
    this.keys = r.gauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.').labels({});
    this.indexCompactionPauseMs = r
      .histogram('etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds', 'Bucketed histogram of index compaction pause duration.', exponentialBuckets(0.5, 2, 14))
      .labels({});
    this.dbCompactionPauseMs = r
      .histogram('etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds', 'Bucketed histogram of db compaction pause duration.', exponentialBuckets(1, 2, 13))
      .labels({});
    this.dbCompactionTotalMs = r
      .histogram('etcd_debugging_mvcc_db_compaction_total_duration_milliseconds', 'Bucketed histogram of db compaction total duration.', exponentialBuckets(100, 2, 14))
      .labels({});
    this.dbCompactionKeys = r.counter('etcd_debugging_mvcc_db_compaction_keys_total', 'Total number of db keys compacted.').labels({});
    this.hashSeconds = r
      .histogram('etcd_mvcc_hash_duration_seconds', 'The latency distribution of storage hash operation.', exponentialBuckets(0.01, 2, 15))
      .labels({});
    this.hashRevSeconds = r
      .histogram('etcd_mvcc_hash_rev_duration_seconds', 'The latency distribution of storage hash by revision operation.', exponentialBuckets(0.01, 2, 15))
      .labels({});
  }

  /** The calls counted so far, to tell afterwards whether a request made more than one. */
  get calls(): number {
    return this.ranges.value + this.puts.value + this.deletes.value;
  }

  /** Ends a request that began when `calls` was `before`. */
  endRequest(before: number): void {
    if (this.calls - before > 1) this.txns.inc();
  }
}
