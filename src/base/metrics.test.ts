// The registry renders Prometheus' text format: HELP/TYPE lines, labels,
// cumulative histogram buckets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, exponentialBuckets } from './metrics.js';

test('counters, gauges and histograms render in the text format', () => {
  const r = new Registry();
  const c = r.counter('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.');
  const g = r.gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.');
  const h = r.histogram('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', exponentialBuckets(0.001, 2, 3));
  const l = r.counter('grpc_server_handled_total', 'Total number of RPCs completed.', ['grpc_method', 'grpc_code']);
  c.inc();
  c.inc(undefined, 2);
  g.set(1);
  h.observe(0.0005);
  h.observe(0.003);
  h.observe(10);
  l.inc({ grpc_method: 'Range', grpc_code: 'OK' });
  const text = r.render();
  assert.match(text, /# TYPE etcd_server_proposals_committed_total counter\netcd_server_proposals_committed_total 3\n/);
  assert.match(text, /etcd_server_has_leader 1\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.001"\} 1\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.002"\} 1\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="0.004"\} 2\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_bucket\{le="\+Inf"\} 3\n/);
  assert.match(text, /etcd_disk_wal_fsync_duration_seconds_count 3\n/);
  assert.match(text, /grpc_server_handled_total\{grpc_method="Range",grpc_code="OK"\} 1\n/);
  assert.throws(() => r.counter('etcd_server_has_leader', 'again'));
});
