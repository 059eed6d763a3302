// etcd's access controller on the client port's HTTP side, against etcd
// 3.4.23 answer for answer: --host-whitelist refuses a plain-HTTP request
// whose Host is not listed with 421 and etcd's DNS-rebinding text; --cors
// lists the origins whose requests get CORS headers (the request's origin
// echoed), where the default "*" gives every answer "*".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { etcdMissing, useWorkspace, type Cluster } from '../harness/index.js';

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: string;
}

const shown = ['content-type', 'x-content-type-options', 'access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers'];

/** A raw request (fetch cannot set Host), answered within 10 s. */
function ask(clientUrl: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const u = new URL(clientUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h = Object.fromEntries(shown.map((k) => [k, res.headers[k] as string | undefined]));
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks).toString() });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Requests as [label, method, path, headers, body]: the host is filled in per server unless given. */
type Probe = readonly [string, string, string, Record<string, string>, string?];

const range = '{"key":"YQ=="}';
const probes: Probe[] = [
  ['listed host', 'POST', '/v3/kv/range', {}, range],
  ['unlisted host', 'POST', '/v3/kv/range', { host: 'evil.com' }, range],
  ['unlisted host with a port', 'GET', '/health', { host: 'evil.com:2379' }],
  ['unlisted host, OPTIONS', 'OPTIONS', '/v3/kv/range', { host: 'evil.com', origin: 'http://foo.com:80' }],
  ['listed host name, another port', 'GET', '/version', { host: '127.0.0.1:1' }],
  ['allowed origin', 'POST', '/v3/kv/range', { origin: 'http://foo.com:80' }, range],
  ['allowed origin, OPTIONS', 'OPTIONS', '/v3/kv/range', { origin: 'http://foo.com:80' }],
  ['other origin', 'POST', '/v3/kv/range', { origin: 'http://bar.com' }, range],
  ['other origin, OPTIONS', 'OPTIONS', '/v3/kv/range', { origin: 'http://bar.com' }],
  ['origin without its port', 'GET', '/health', { origin: 'http://foo.com' }],
  ['unknown path', 'GET', '/nope', { host: 'evil.com' }],
];

async function answers(c: Cluster, list: readonly Probe[]): Promise<[string, Answer][]> {
  const url = c.member(0).clientUrl;
  const out: [string, Answer][] = [];
  for (const [label, method, path, headers, body] of list) {
    const a = await ask(url, method, path, { host: new URL(url).host, ...headers }, body);
    // The gateway's answer names the member and the revision: only its status and headers are compared.
    out.push([label, path.startsWith('/v3/') && a.status === 200 ? { ...a, body: '(range)' } : a]);
  }
  return out;
}

describe('--host-whitelist and --cors against the real etcd', { skip: etcdMissing() }, () => {
  const ws = useWorkspace('access-control');
  let pair: Cluster[] = [];
  before(async () => {
    const extraFlags = ['--host-whitelist=127.0.0.1,localhost', '--cors=http://foo.com:80,https://baz.com:8443'];
    pair = await Promise.all([ws.startCluster({ kind: 'etcd', extraFlags }), ws.startCluster({ kind: 'etcd-ts', extraFlags })]);
  });
  after(async () => {
    for (const c of pair) await c.close();
  });

  test('the same answers to listed and unlisted hosts and origins', async () => {
    const [theirs, ours] = await Promise.all(pair.map((c) => answers(c, probes)));
    assert.deepEqual(ours, theirs);
    const refused = new Map(ours).get('unlisted host');
    assert.equal(refused?.status, 421);
    assert.match(refused?.body ?? '', /etcd --host-whitelist "evil.com"/);
    assert.equal(new Map(ours).get('other origin')?.headers['access-control-allow-origin'], undefined);
    assert.equal(new Map(ours).get('allowed origin')?.headers['access-control-allow-origin'], 'http://foo.com:80');
  });

  test('by default every host is served and every answer allows origin "*"', async () => {
    const defaults = await Promise.all([ws.startCluster({ kind: 'etcd' }), ws.startCluster({ kind: 'etcd-ts' })]);
    try {
      const list: Probe[] = [probes[1] as Probe, probes[7] as Probe, probes[8] as Probe];
      const [theirs, ours] = (await Promise.all(defaults.map((c) => answers(c, list)))) as [[string, Answer][], [string, Answer][]];
      assert.deepEqual(ours, theirs);
      assert.equal(ours[0]?.[1].status, 200);
      assert.equal(ours[1]?.[1].headers['access-control-allow-origin'], '*');
    } finally {
      for (const c of defaults) await c.close();
    }
  });
});
