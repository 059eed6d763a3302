// /health and its neighbours against the real etcd 3.4.23, answer for answer
// (status, Content-Type, X-Content-Type-Options, Allow, body): healthy, with
// NOSPACE and CORRUPT alarms active (and `?exclude=` naming them), and on a
// member that has lost its leader. /livez and /readyz came with etcd 3.5:
// 3.4.23 answers them 404, and so must etcd-ts. /config/local/log, 3.4's
// run-time log level, answers as etcd's and changes the member's level.
// /debug/vars, 3.4's expvar endpoint, carries the same variables, and its
// raft.status is byte for byte etcd's once ids and numbers are masked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { delay, etcdMissing, memberStatus, useWorkspace, type Cluster } from '../harness/index.js';

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | null>>;
  readonly body: string;
}

async function get(url: string, method = 'GET', body?: string): Promise<Answer> {
  const res = await fetch(url, { method, signal: AbortSignal.timeout(10_000), ...(body !== undefined ? { body } : {}) });
  const headers = Object.fromEntries(['content-type', 'x-content-type-options', 'allow'].map((h) => [h, res.headers.get(h)]));
  return { status: res.status, headers, body: await res.text() };
}

/** The probe requests, labelled; the answers are compared pairwise. */
async function probe(clientUrl: string, paths: readonly string[]): Promise<[string, Answer][]> {
  const out: [string, Answer][] = [];
  for (const p of paths) {
    const [method, path] = p.includes(' ') ? (p.split(' ') as [string, string]) : ['GET', p];
    out.push([p, await get(`${clientUrl}${path}`, method)]);
  }
  return out;
}

/** A /debug/vars body's raft.status line, with hex ids and numbers masked. */
function raftStatusShape(body: string): string {
  const line = body.split('\n').find((l) => l.startsWith('"raft.status": ')) ?? '';
  return line.replace(/"[0-9a-f]+"/g, '"ID"').replace(/\d+/g, 'N');
}

async function raftStatus(url: string): Promise<{ raftState: string; progress: Record<string, { state: string }> }> {
  const vars = JSON.parse((await get(`${url}/debug/vars`)).body) as Record<string, unknown>;
  return vars['raft.status'] as { raftState: string; progress: Record<string, { state: string }> };
}

async function alarm(c: Cluster, action: 'ACTIVATE' | 'DEACTIVATE', name: 'NOSPACE' | 'CORRUPT'): Promise<void> {
  const m = c.member(0);
  const memberID = String((await memberStatus(m.endpoint)).header?.memberId ?? 0n);
  const res = await fetch(`${m.clientUrl}/v3/maintenance/alarm`, { method: 'POST', body: JSON.stringify({ action, memberID, alarm: name }) });
  assert.equal(res.status, 200, await res.text());
}

async function sameAnswers(pair: readonly Cluster[], paths: readonly string[]): Promise<void> {
  const [theirs, ours] = await Promise.all(pair.map((c) => probe(c.member(0).clientUrl, paths)));
  assert.deepEqual(ours, theirs);
}

const healthy = [
  '/health',
  '/health?exclude=NOSPACE',
  'POST /health',
  'PUT /health',
  '/livez',
  '/readyz',
  '/livez/serializable_read',
  '/readyz?verbose',
  'POST /readyz',
  '/healthz',
  '/',
];

describe('/health against the real etcd', { skip: etcdMissing() }, () => {
  const ws = useWorkspace('health');
  let single: Cluster[];
  before(async () => {
    single = await Promise.all([ws.startCluster({ kind: 'etcd' }), ws.startCluster({ kind: 'etcd-ts' })]);
  });
  after(async () => {
    for (const c of single) await c.close();
  });

  test('a healthy member; /livez and /readyz are 404 as in 3.4.23', async () => {
    await sameAnswers(single, healthy);
    const [, ours] = await Promise.all(single.map((c) => get(`${c.member(0).clientUrl}/livez`)));
    assert.equal(ours?.status, 404);
  });

  test('/config/local/log: the same answers; the member logs at the level it sets', async () => {
    const bodies = ['{"Level":"DEBUG"}', '{"level":"info"}', '{"LEVEL":"w"}', '{"Level":"trace"}', '{"Level":"bogus"}', '{"Level":""}', '{}', 'notjson', '{"Level":5}', 'null', '[]', '', '{"Level":null}', '{"Level":"INFO"} trailing', '{"Level":"INFO"', '{"Other":1,"Level":"E"}'];
    for (const body of bodies) {
      const [theirs, ours] = await Promise.all(single.map((c) => get(`${c.member(0).clientUrl}/config/local/log`, 'PUT', body)));
      assert.deepEqual(ours, theirs, `PUT ${body}`);
    }
    for (const method of ['GET', 'POST', 'DELETE']) {
      const [theirs, ours] = await Promise.all(single.map((c) => get(`${c.member(0).clientUrl}/config/local/log`, method)));
      assert.deepEqual(ours, theirs, method);
    }
    // At ERROR the member does not log the change itself (an info line); back at INFO it does.
    const ts = single[1] as Cluster;
    const url = `${ts.member(0).clientUrl}/config/local/log`;
    const lines = (): number => ts.member(0).logTail(10_000).split('\n').filter((l) => l.includes('globalLogLevel set')).length;
    assert.equal((await get(url, 'PUT', '{"Level":"ERROR"}')).status, 204);
    const before = lines();
    assert.equal((await get(url, 'PUT', '{"Level":"C"}')).status, 204);
    assert.equal((await get(url, 'PUT', '{"Level":"INFO"}')).status, 204);
    for (let i = 0; i < 50 && lines() === before; i++) await delay(100);
    assert.equal(lines(), before + 1, 'only the change back to INFO is logged');
  });

  test('/debug/vars: the same variables; raft.status as etcd writes it', async () => {
    await sameAnswers(single, ['POST /debug/vars', 'PUT /debug/vars', 'DELETE /debug/vars', '/debug/vars/', '/debug/vars/x', '/debug', '/debug/']);
    const [theirs, ours] = (await Promise.all(single.map((c) => get(`${c.member(0).clientUrl}/debug/vars`)))) as [Answer, Answer];
    assert.deepEqual([ours.status, ours.headers], [theirs.status, theirs.headers]);
    for (const a of [theirs, ours]) assert.match(a.body, /^\{\n"cmdline": \[.*\],\n"file_descriptor_limit": \d+,\n"memstats": \{.*\},\n"raft\.status": \{.*\}\n\}\n$/);
    const [t, o] = [theirs, ours].map((a) => JSON.parse(a.body) as Record<string, unknown>) as [Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(Object.keys(o), Object.keys(t));
    assert.equal(o.file_descriptor_limit, t.file_descriptor_limit, 'the same machine and limits');
    assert.ok((o.cmdline as string[]).includes(single[1]?.member(0).dataDir ?? '-'), 'the command line names the data dir');
    // Our memstats are the fields of Go's that V8 can measure, in Go's order.
    const theirKeys = Object.keys(t.memstats as object);
    const ourKeys = Object.keys(o.memstats as object);
    assert.deepEqual(ourKeys, theirKeys.filter((k) => ourKeys.includes(k)));
    const mem = o.memstats as Record<string, number | number[]>;
    assert.ok((mem.HeapInuse as number) > 0 && (mem.HeapSys as number) >= (mem.HeapInuse as number) && (mem.Sys as number) > 0);
    assert.equal((mem.PauseNs as number[]).length, 256);
    assert.equal(raftStatusShape(ours.body), raftStatusShape(theirs.body));
    assert.match(raftStatusShape(ours.body), /"raftState":"StateLeader".*"progress":\{"ID":\{"match":N,"next":N,"state":"StateReplicate"\}\}/);
  });

  test('alarm requests with any member id and type: the same answers, and the member keeps running', async () => {
    const requests = [
      '{"action":"ACTIVATE","alarm":"NOSPACE"}',
      '{"action":"ACTIVATE","memberID":"1","alarm":"NONE"}',
      '{"action":"ACTIVATE","memberID":"5","alarm":"CORRUPT"}',
      '{"action":"ACTIVATE","memberID":"5","alarm":"CORRUPT"}',
      '{"action":"GET"}',
      '{"action":"GET","alarm":"CORRUPT"}',
      '{"action":"DEACTIVATE","alarm":"NOSPACE"}',
      '{"action":"DEACTIVATE","memberID":"1","alarm":"NONE"}',
      '{"action":"DEACTIVATE","memberID":"5","alarm":"CORRUPT"}',
      '{"action":"DEACTIVATE","memberID":"5","alarm":"CORRUPT"}',
      '{"action":"GET"}',
    ];
    // The header names the member and the revision: only the alarms are compared, as a set
    // (etcd lists them in its maps' order, which Go draws at random).
    const alarmsOf = (body: string): string[] => ((JSON.parse(body) as { alarms?: unknown[] }).alarms ?? []).map((a) => JSON.stringify(a)).sort();
    for (const body of requests) {
      const [theirs, ours] = (await Promise.all(single.map((c) => get(`${c.member(0).clientUrl}/v3/maintenance/alarm`, 'POST', body)))) as [Answer, Answer];
      assert.deepEqual([ours.status, alarmsOf(ours.body)], [theirs.status, alarmsOf(theirs.body)], body);
    }
    const ts = single[1] as Cluster;
    assert.equal(ts.member(0).running, true, 'etcd-ts still runs');
    await sameAnswers(single, ['/health']);
  });

  test('alarms make it unhealthy unless excluded by name', async () => {
    const cases = ['/health', '/health?exclude=NOSPACE', '/health?exclude=CORRUPT', '/health?exclude=nospace', '/health?exclude=NOSPACE,CORRUPT', '/health?exclude='];
    for (const c of single) await alarm(c, 'ACTIVATE', 'NOSPACE');
    await sameAnswers(single, cases);
    const [, ours] = await Promise.all(single.map((c) => get(`${c.member(0).clientUrl}/health?exclude=NOSPACE`)));
    assert.deepEqual([ours?.status, ours?.body], [200, '{"health":"true"}']);
    for (const c of single) await alarm(c, 'ACTIVATE', 'CORRUPT');
    await sameAnswers(single, [...cases, '/health?exclude=NOSPACE&exclude=CORRUPT', '/health?exclude=CORRUPT&exclude=NOSPACE']);
    for (const c of single) {
      await alarm(c, 'DEACTIVATE', 'CORRUPT');
      await alarm(c, 'DEACTIVATE', 'NOSPACE');
    }
    await sameAnswers(single, ['/health']);
  });

  test('a member without a leader', async () => {
    const three = await Promise.all([ws.startCluster({ kind: 'etcd', size: 3 }), ws.startCluster({ kind: 'etcd-ts', size: 3 })]);
    try {
      // raft.status: the leader lists every member's progress, a follower none.
      for (const c of three) {
        const lead = await c.leader();
        const deadline = Date.now() + 10_000;
        while (Object.values((await raftStatus(lead.clientUrl)).progress).some((p) => p.state !== 'StateReplicate')) {
          assert.ok(Date.now() < deadline, `${c.kind}: a follower is not replicating`);
          await delay(100);
        }
      }
      const shapes = await Promise.all(
        three.map(async (c) => {
          const lead = await c.leader();
          const follower = [0, 1, 2].map((i) => c.member(i)).find((m) => m !== lead);
          return Promise.all([lead, follower].map(async (m) => raftStatusShape((await get(`${m?.clientUrl ?? ''}/debug/vars`)).body)));
        }),
      );
      assert.deepEqual(shapes[1], shapes[0]);
      assert.match(shapes[1]?.[1] ?? '', /"raftState":"StateFollower".*"progress":\{\}/);
      for (const c of three) {
        await Promise.all([c.member(1).stop(), c.member(2).stop()]);
      }
      // Check-quorum makes a lone leader step down within an election timeout; followers lose it likewise.
      for (const c of three) {
        const deadline = Date.now() + 20_000;
        while ((await memberStatus(c.member(0).endpoint)).leader !== 0n) {
          assert.ok(Date.now() < deadline, `${c.kind}: still sees a leader`);
          await delay(100);
        }
      }
      await sameAnswers(three, ['/health', '/health?exclude=NOSPACE']);
      const [, ours] = await Promise.all(three.map((c) => get(`${c.member(0).clientUrl}/health`)));
      assert.deepEqual([ours?.status, ours?.body], [503, '{"health":"false"}\n']);
    } finally {
      for (const c of three) await c.close();
    }
  });
});
