/**
 * Debian's etcdctl 3.4 with endpoints written as URLs, against a 3-member
 * etcd-ts cluster. The commands that dial one endpoint at a time (endpoint
 * status / hashkv / health, and every `--cluster` form, whose endpoints are
 * the members' advertised URLs) make grpc-go send "http://127.0.0.1:P" as
 * :authority, which node:http2 refuses unless the client port rewrites it.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { etcdctl, etcdctlMissing, useWorkspace, type Cluster } from '../harness/index.js';

const skip = etcdctlMissing();

interface EndpointStatus {
  readonly Endpoint: string;
  readonly Status: { readonly header: { readonly member_id: number }; readonly leader: number; readonly version: string };
}

describe('etcdctl with http:// endpoint URLs against etcd-ts', { skip }, () => {
  const ws = useWorkspace('grpc-urls');
  let c: Cluster;

  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts', size: 3 });
  });

  test('put and get through URL endpoints', async () => {
    const put = await etcdctl(['put', 'url-key', 'url-value'], { endpoints: c.clientUrls });
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout, 'OK\n');
    const get = await etcdctl(['get', 'url-key', '--print-value-only'], { endpoints: c.clientUrls });
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'url-value\n');
  });

  test('endpoint status -w json dials each URL', async () => {
    const r = await etcdctl(['endpoint', 'status', '-w', 'json'], { endpoints: c.clientUrls });
    assert.equal(r.code, 0, r.stderr);
    checkStatuses(JSON.parse(r.stdout) as EndpointStatus[], c.clientUrls);
  });

  test('--cluster: status, health and hashkv reach every member at its advertised URL', async () => {
    // One host:port to start from; the rest comes from the member list, as URLs.
    const from = { endpoints: c.member(1).endpoint };
    const status = await etcdctl(['endpoint', 'status', '--cluster', '-w', 'json'], from);
    assert.equal(status.code, 0, status.stderr);
    checkStatuses(JSON.parse(status.stdout) as EndpointStatus[], c.clientUrls);

    const health = await etcdctl(['endpoint', 'health', '--cluster'], from);
    assert.equal(health.code, 0, health.stderr);
    // etcdctl 3.4 prints health lines on stderr.
    const healthy = health.stderr.split('\n').filter((l) => l.includes(' is healthy'));
    assert.deepEqual(healthy.map((l) => l.split(' ')[0]).sort(), [...c.clientUrls].sort());
    for (const l of healthy) assert.match(l, /^http:\/\/127\.0\.0\.1:\d+ is healthy: successfully committed proposal: took = /);

    // A follower may not have applied the last write yet: ask again, a few times.
    let distinctHashes = 0;
    let last = '';
    for (let attempt = 0; attempt < 10 && distinctHashes !== 1; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 200));
      const hashes = await etcdctl(['endpoint', 'hashkv', '--cluster', '-w', 'json'], from);
      assert.equal(hashes.code, 0, hashes.stderr);
      const parsed = JSON.parse(hashes.stdout) as { Endpoint: string; HashKV: { hash: number } }[];
      assert.deepEqual(parsed.map((h) => h.Endpoint).sort(), [...c.clientUrls].sort());
      distinctHashes = new Set(parsed.map((h) => h.HashKV.hash)).size;
      last = hashes.stdout;
    }
    assert.equal(distinctHashes, 1, `one hash across members: ${last}`);
  });
});

function checkStatuses(statuses: EndpointStatus[], urls: readonly string[]): void {
  assert.deepEqual(statuses.map((s) => s.Endpoint).sort(), [...urls].sort());
  assert.equal(new Set(statuses.map((s) => s.Status.header.member_id)).size, urls.length, 'each URL is a different member');
  assert.equal(new Set(statuses.map((s) => s.Status.leader)).size, 1, 'one leader');
  for (const s of statuses) assert.equal(s.Status.version, '3.4.23');
}
