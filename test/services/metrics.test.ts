// /metrics against the real etcd: every metric both export has the same
// type, and the ones etcd's dashboards and alerts use (features.md §3.3) are
// all there. /livez and /readyz: etcd 3.4.23 has none (404); etcd-ts serves
// them as etcd 3.5.11+ defines them.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdctl, etcdctlMissing, etcdMissing, getHealth, useWorkspace, type Cluster } from '../harness/index.js';

/** The metric types of a /metrics page, by name. */
async function metricTypes(c: Cluster): Promise<Map<string, string>> {
  const text = await (await fetch(`${c.member(0).clientUrl}/metrics`)).text();
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1] ?? '', m[2] ?? '');
  return types;
}

/** Used by etcd's Grafana dashboard and alerts (contrib/mixin); the peer ones need peers, so a single member lacks them. */
const dashboard = [
  'etcd_server_has_leader',
  'etcd_server_leader_changes_seen_total',
  'etcd_server_proposals_failed_total',
  'etcd_server_proposals_pending',
  'etcd_server_proposals_committed_total',
  'etcd_server_proposals_applied_total',
  'etcd_mvcc_db_total_size_in_bytes',
  'etcd_mvcc_db_total_size_in_use_in_bytes',
  'etcd_server_quota_backend_bytes',
  'etcd_disk_wal_fsync_duration_seconds',
  'etcd_disk_backend_commit_duration_seconds',
  'etcd_network_client_grpc_sent_bytes_total',
  'etcd_network_client_grpc_received_bytes_total',
  'grpc_server_started_total',
  'grpc_server_handled_total',
  'process_resident_memory_bytes',
];

describe('metrics and probes against the real etcd', { skip: etcdMissing() || etcdctlMissing() }, () => {
  const ws = useWorkspace('metrics');
  let theirs: Cluster;
  let ours: Cluster;
  before(async () => {
    [theirs, ours] = await Promise.all([ws.startCluster({ kind: 'etcd' }), ws.startCluster({ kind: 'etcd-ts' })]);
    for (const c of [theirs, ours]) {
      await etcdctl(['put', 'k', 'v'], { endpoints: c.endpoints });
      await getHealth(c.member(0).clientUrl);
    }
  });

  test('same types for the same names; the dashboard metrics are all there', async () => {
    const [want, got] = await Promise.all([metricTypes(theirs), metricTypes(ours)]);
    const differing = [...got].filter(([name, type]) => want.has(name) && want.get(name) !== type).map(([n, t]) => `${n}: ${t}, etcd: ${want.get(n) ?? ''}`);
    assert.deepEqual(differing, []);
    for (const name of dashboard) {
      assert.equal(want.has(name), true, `etcd itself lacks ${name}`);
      assert.equal(got.get(name), want.get(name), name);
    }
    for (const name of ['etcd_server_is_learner', 'etcd_cluster_version', 'etcd_debugging_mvcc_current_revision', 'etcd_server_health_success', 'os_fd_used', 'process_open_fds']) {
      assert.equal(got.get(name), want.get(name), name);
    }
  });

  test('/livez and /readyz: absent from etcd 3.4.23, served as etcd 3.5 defines them by etcd-ts', async () => {
    for (const path of ['/livez', '/readyz']) {
      const real = await fetch(`${theirs.member(0).clientUrl}${path}`);
      assert.equal(real.status, 404);
      const mine = await fetch(`${ours.member(0).clientUrl}${path}`);
      assert.deepEqual([mine.status, await mine.text()], [200, 'ok']);
      const post = await fetch(`${ours.member(0).clientUrl}${path}`, { method: 'POST' });
      assert.equal(post.status, 405);
    }
  });
});
