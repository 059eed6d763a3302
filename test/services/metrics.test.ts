// /metrics against the real etcd 3.4.23, on a single member and on a member
// of a three-member cluster: the same metric families (name, type, HELP text),
// the same label sets, and the same movements of the counters when both are
// sent the same requests. Only what has no meaning outside etcd's Go binary
// is allowed to differ (see `notComparable`).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdctl, etcdctlMissing, etcdMissing, getHealth, methods, openChannel, useWorkspace, type Cluster } from '../harness/index.js';
import { etcdserverpb } from '../../src/pb/index.js';

interface Family {
  readonly type: string;
  readonly help: string;
  /** Each series' labels (with values), as written, to its value. */
  readonly series: Map<string, number>;
}

/** A /metrics page by family name. */
async function scrape(clientUrl: string): Promise<Map<string, Family>> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  const families = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    if (help !== null) {
      current = { type: '', help: help[2] ?? '', series: new Map() };
      families.set(help[1] ?? '', current);
      continue;
    }
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null && current !== undefined) {
      (current as { type: string }).type = type[2] ?? '';
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (sample !== null && current !== undefined) current.series.set(`${sample[1] ?? ''}${sample[2] ?? ''}`, Number(sample[3]));
  }
  return families;
}

/**
 * Families one side has and the other cannot have, each for its reason:
 * - go_* and etcd_server_go_version: Go's runtime (no Node meaning);
 * - etcd_grpc_proxy_*: registered in every etcd 3.4 binary by its gRPC proxy
 *   package, which a member does not run (they stay 0 on a member);
 * - etcd_debugging_store_*: etcd 3.4's v2 store, which keeps its membership;
 *   etcd-ts has no v2 store (membership lives in the backend).
 */
function notComparable(name: string): boolean {
  return name.startsWith('go_') || name === 'etcd_server_go_version' || name.startsWith('etcd_grpc_proxy_') || name.startsWith('etcd_debugging_store_');
}

/**
 * Labelled families that appear with their first event (a send failure to
 * a peer that was not up yet, the first round-trip probe), which depends on
 * start-up timing.
 */
const eventBorn = new Set([
  'etcd_network_peer_round_trip_time_seconds',
  'etcd_network_peer_sent_failures_total',
  'etcd_network_peer_received_failures_total',
  'etcd_network_disconnected_peers_total',
  'etcd_server_learner_promote_failures',
]);

/** Series names with the values of per-member labels masked. */
function seriesShape(f: Family): string[] {
  return [...f.series.keys()]
    .map((s) => s.replace(/(server_id|To|From|Local|Remote)="[0-9a-f]+"/g, '$1="ID"').replace(/cluster_version="[^"]*"/, 'cluster_version="V"'))
    .filter((s, i, all) => all.indexOf(s) === i)
    .sort();
}

function compareFamilies(want: Map<string, Family>, got: Map<string, Family>): string[] {
  const problems: string[] = [];
  for (const name of new Set([...want.keys(), ...got.keys()])) {
    if (notComparable(name)) continue;
    const w = want.get(name);
    const g = got.get(name);
    if (w === undefined || g === undefined) {
      if (!eventBorn.has(name)) problems.push(`${name}: ${w === undefined ? 'only etcd-ts has it' : 'etcd-ts lacks it'}`);
      continue;
    }
    if (w.type !== g.type) problems.push(`${name}: type ${g.type}, etcd: ${w.type}`);
    if (w.help !== g.help) problems.push(`${name}: help "${g.help}", etcd: "${w.help}"`);
    const ws = seriesShape(w);
    const gs = seriesShape(g);
    const missing = ws.filter((s) => !gs.includes(s));
    const extra = gs.filter((s) => !ws.includes(s));
    // Peer-labelled series come and go with the peers' links; the family and its label names are what must agree.
    if (/ID"/.test([...missing, ...extra].join('')) && eventBorn.has(name)) continue;
    if (missing.length > 0) problems.push(`${name}: etcd-ts lacks series ${missing.slice(0, 3).join(' ')}${missing.length > 3 ? ' …' : ''}`);
    if (extra.length > 0) problems.push(`${name}: etcd-ts has extra series ${extra.slice(0, 3).join(' ')}${extra.length > 3 ? ' …' : ''}`);
  }
  return problems;
}

const b = (s: string): Uint8Array => Buffer.from(s);

/** The same requests to either server, on a raw channel (no client-api-version header: etcd's "unknown"). */
async function workload(endpoint: string): Promise<void> {
  const ch = openChannel(endpoint);
  try {
    const kv = methods.kv;
    await ch.unary(kv.Put, etcdserverpb.PutRequest.create({ key: b('m/a'), value: b('12345') }));
    await ch.unary(kv.Put, etcdserverpb.PutRequest.create({ key: b('m/b'), value: b('x'), prevKv: true }));
    await ch.unary(kv.Put, etcdserverpb.PutRequest.create({ key: b('m/a'), value: b('again') }));
    await ch.unary(kv.Range, etcdserverpb.RangeRequest.create({ key: b('m/'), rangeEnd: b('m0') }));
    await ch.unary(kv.Range, etcdserverpb.RangeRequest.create({ key: b('m/a'), serializable: true }));
    await ch.unary(kv.DeleteRange, etcdserverpb.DeleteRangeRequest.create({ key: b('m/b'), prevKv: true }));
    await ch.unary(
      kv.Txn,
      etcdserverpb.TxnRequest.create({
        compare: [etcdserverpb.Compare.create({ key: b('m/a'), target: etcdserverpb.Compare_CompareTarget.VERSION, result: etcdserverpb.Compare_CompareResult.GREATER, targetUnion: { case: 'version', value: 0 } })],
        success: [
          etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key: b('m/c'), value: b('yy') }) } }),
          etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: etcdserverpb.RangeRequest.create({ key: b('m/a') }) } }),
        ],
      }),
    );
    await ch.unary(
      kv.Txn,
      etcdserverpb.TxnRequest.create({
        success: [etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: etcdserverpb.RangeRequest.create({ key: b('m/c') }) } })],
      }),
    );
    await ch.unary(kv.Range, etcdserverpb.RangeRequest.create({ key: b('m/a'), revision: 1_000_000 })).catch(() => undefined);
    // A compaction reads the revision for its answer's header: one range more (etcd's v3_server.go).
    const rev = (await ch.unary(kv.Range, etcdserverpb.RangeRequest.create({ key: b('m/a'), serializable: true }))).header?.revision ?? 0;
    await ch.unary(kv.Compact, etcdserverpb.CompactionRequest.create({ revision: rev - 1 }));
  } finally {
    ch.close();
  }
}

/** What the workload must move by the same amount on both servers. */
const moved = [
  'etcd_mvcc_put_total',
  'etcd_mvcc_range_total',
  'etcd_mvcc_delete_total',
  'etcd_mvcc_txn_total',
  'etcd_debugging_mvcc_put_total',
  'etcd_debugging_mvcc_range_total',
  'etcd_debugging_mvcc_delete_total',
  'etcd_debugging_mvcc_txn_total',
  'etcd_debugging_mvcc_total_put_size_in_bytes',
  'etcd_debugging_mvcc_keys_total',
  'etcd_debugging_mvcc_current_revision',
  'etcd_server_client_requests_total{client_api_version="unknown",type="unary"}',
  'grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}',
  'grpc_server_handled_total{grpc_code="OK",grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"}',
  'grpc_server_handled_total{grpc_code="OutOfRange",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}',
  'grpc_server_msg_received_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}',
  'grpc_server_msg_sent_total{grpc_method="DeleteRange",grpc_service="etcdserverpb.KV",grpc_type="unary"}',
  // A small compaction is one batch: no pause between batches to observe.
  'etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds_count',
];

const watchSeries = '{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}';
const streamCounters = [`grpc_server_msg_received_total${watchSeries}`, `grpc_server_msg_sent_total${watchSeries}`];

/** How a watch stream moves the message counters while it is open: after its create request, and after one event. */
async function streamDeltas(c: Cluster): Promise<number[][]> {
  const url = c.member(0).clientUrl;
  const now = async (): Promise<number[]> => {
    const f = await scrape(url);
    return streamCounters.map((series) => valueOf(f, series) || 0);
  };
  const ch = openChannel(c.member(0).endpoint);
  const call = ch.bidi(methods.watch.Watch);
  try {
    const start = await now();
    call.write(etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: etcdserverpb.WatchCreateRequest.create({ key: b('stream/k') }) } }));
    await call.read();
    const created = await now();
    await ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: b('stream/k'), value: b('v') }));
    await call.read();
    const evented = await now();
    return [created, evented].map((v) => v.map((x, i) => x - (start[i] ?? 0)));
  } finally {
    call.cancel();
    ch.close();
  }
}

function valueOf(families: Map<string, Family>, series: string): number {
  const name = series.replace(/\{.*$/, '');
  return families.get(name)?.series.get(series) ?? Number.NaN;
}

async function deltas(c: Cluster): Promise<Record<string, number>> {
  const url = c.member(0).clientUrl;
  const before = await scrape(url);
  await workload(c.member(0).endpoint);
  const after = await scrape(url);
  return Object.fromEntries(moved.map((s) => [s, valueOf(after, s) - valueOf(before, s)]));
}

describe('metrics against the real etcd', { skip: etcdMissing() || etcdctlMissing() }, () => {
  const ws = useWorkspace('metrics');
  let single: [Cluster, Cluster];
  let three: [Cluster, Cluster] | undefined;
  before(async () => {
    single = await Promise.all([ws.startCluster({ kind: 'etcd' }), ws.startCluster({ kind: 'etcd-ts' })]);
    for (const c of single) {
      await etcdctl(['put', 'k', 'v'], { endpoints: c.endpoints });
      await getHealth(c.member(0).clientUrl);
    }
  });
  after(async () => {
    for (const c of [...single, ...(three ?? [])]) await c.close();
  });

  test('a single member: the same families, types, help texts and label sets', async () => {
    const [want, got] = await Promise.all(single.map((c) => scrape(c.member(0).clientUrl)));
    assert.deepEqual(compareFamilies(want as Map<string, Family>, got as Map<string, Family>), []);
  });

  test('the same requests move the same counters by the same amounts', async () => {
    const [want, got] = [await deltas(single[0]), await deltas(single[1])];
    assert.deepEqual(got, want);
    assert.equal(want['etcd_mvcc_put_total'], 4, 'the workload puts four times');
  });

  test('a watch stream\'s messages count while it is open, as they pass', async () => {
    const [want, got] = [await streamDeltas(single[0]), await streamDeltas(single[1])];
    assert.deepEqual(got, want);
    assert.deepEqual(want, [[1, 1], [1, 2]], 'one create request in, the created answer out, then the event out');
  });

  test('a failed promotion is counted by etcd\'s reason', async () => {
    const series = 'etcd_server_learner_promote_failures{Reason="membership: ID not found"}';
    const counts: number[] = [];
    for (const c of single) {
      const r = await etcdctl(['member', 'promote', '1234'], { endpoints: c.endpoints });
      assert.notEqual(r.code, 0);
      counts.push(valueOf(await scrape(c.member(0).clientUrl), series));
    }
    assert.deepEqual(counts, [1, 1]);
  });

  test('a member of a three-member cluster: the same families, types, help texts and label sets', async () => {
    three = await Promise.all([ws.startCluster({ kind: 'etcd', size: 3 }), ws.startCluster({ kind: 'etcd-ts', size: 3 })]);
    for (const c of three) {
      // To the member scraped: the series a request creates must be on it.
      await etcdctl(['put', 'k', 'v'], { endpoints: [c.member(0).endpoint] });
      await c.leader();
    }
    const [want, got] = await Promise.all(three.map((c) => scrape(c.member(0).clientUrl)));
    assert.deepEqual(compareFamilies(want as Map<string, Family>, got as Map<string, Family>), []);
    for (const name of ['etcd_network_peer_sent_bytes_total', 'etcd_network_peer_received_bytes_total', 'etcd_network_active_peers']) {
      assert.equal(got?.has(name), true, `${name} on a cluster member`);
    }
  });
});
