// The registry renders Prometheus' text format: HELP/TYPE lines, labels,
// cumulative histogram buckets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, exponentialBuckets, formatGoFloat } from './metrics.js';

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
  assert.match(text, /grpc_server_handled_total\{grpc_code="OK",grpc_method="Range"\} 1\n/);
  assert.throws(() => r.counter('etcd_server_has_leader', 'again'));
});

test('numbers are written as Go writes them; a labelled family with no series is left out', () => {
  const cases: [number, string][] = [
    [0, '0'], [1, '1'], [1664, '1664'], [20480, '20480'], [999999, '999999'], [1e6, '1e+06'], [2147483648, '2.147483648e+09'],
    [0.026942387999999998, '0.026942387999999998'], [0.0001, '0.0001'], [0.00001, '1e-05'], [1.8446744073709552e19, '1.8446744073709552e+19'],
    [-3, '-3'], [Infinity, '+Inf'],
  ];
  for (const [v, want] of cases) assert.equal(formatGoFloat(v), want, String(v));
  const r = new Registry();
  const l = r.counter('grpc_server_started_total', 'Total number of RPCs started on the server.', ['grpc_type', 'grpc_method']);
  assert.equal(r.render(), '\n');
  const put = l.labels({ grpc_type: 'unary', grpc_method: 'Put' });
  l.labels({ grpc_type: 'unary', grpc_method: 'Range' });
  l.labels({ grpc_type: 'bidi_stream', grpc_method: 'Watch' });
  put.inc();
  put.inc();
  assert.equal(
    r.render(),
    [
      '# HELP grpc_server_started_total Total number of RPCs started on the server.',
      '# TYPE grpc_server_started_total counter',
      'grpc_server_started_total{grpc_method="Put",grpc_type="unary"} 2',
      'grpc_server_started_total{grpc_method="Range",grpc_type="unary"} 0',
      'grpc_server_started_total{grpc_method="Watch",grpc_type="bidi_stream"} 0',
      '',
    ].join('\n'),
  );
});
