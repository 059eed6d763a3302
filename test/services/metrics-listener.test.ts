// --listen-metrics-urls against the real etcd 3.4.23: a listener of its own
// that serves /metrics and /health and nothing else (404 as Go's mux words it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdMissing, freePorts, useWorkspace, type Cluster } from '../harness/index.js';

interface Answer {
  readonly status: number;
  readonly type: string | null;
  readonly body: string;
}

async function get(url: string): Promise<Answer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('--listen-metrics-urls against the real etcd', { skip: etcdMissing() }, () => {
  const ws = useWorkspace('metrics-listener');
  let pair: Cluster[] = [];
  let urls: string[] = [];
  before(async () => {
    const ports = await freePorts(2);
    urls = ports.map((p) => `http://127.0.0.1:${p}`);
    pair = await Promise.all(['etcd', 'etcd-ts'].map((kind, i) => ws.startCluster({ kind: kind as 'etcd' | 'etcd-ts', extraFlags: ['--listen-metrics-urls', urls[i] as string] })));
  });
  after(async () => {
    for (const c of pair) await c.close();
  });

  test('/metrics and /health are served there, other paths are 404', async () => {
    const answers = await Promise.all(urls.map(async (u) => ({ health: await get(`${u}/health`), version: await get(`${u}/version`), range: await get(`${u}/v3/kv/range`), metrics: await get(`${u}/metrics`) })));
    const [theirs, ours] = answers as [(typeof answers)[0], (typeof answers)[0]];
    assert.deepEqual(ours.health, theirs.health);
    assert.deepEqual(ours.version, theirs.version);
    assert.deepEqual(ours.range, theirs.range);
    assert.deepEqual([ours.health.status, ours.health.body], [200, '{"health":"true"}']);
    assert.equal(ours.version.status, 404);
    assert.deepEqual([ours.metrics.status, ours.metrics.type], [theirs.metrics.status, theirs.metrics.type]);
    assert.match(ours.metrics.body, /^etcd_server_has_leader 1$/m);
  });
});
