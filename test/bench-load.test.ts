/**
 * Smoke test of the benchmark's load generator (bench/load): its
 * pre-encoded requests decode to what the workload says, its histogram
 * reports quantiles within a bucket's error, its frame splitter handles
 * split chunks, and a very short run against one etcd-ts member completes
 * requests without errors. Performance is not asserted.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { merged, schedule, type Window } from '../bench/compare.js';
import { runLoad } from '../bench/load/driver.js';
import { Histogram } from '../bench/load/histogram.js';
import { FrameSplitter, framePool, keyOf, type UnaryWorkload } from '../bench/load/requests.js';
import { frameMessage } from '../src/grpc/index.js';
import { etcdserverpb } from '../src/pb/index.js';
import { methods, openChannel, useWorkspace, type Cluster } from './harness/index.js';

const put: UnaryWorkload = { kind: 'put', keyBytes: 8, valueBytes: 256, keySpace: 1000, rangeKey: 'foo', serializable: false };

function payloadOf(frame: Buffer): Buffer {
  assert.equal(frame[0], 0, 'uncompressed');
  assert.equal(frame.readUInt32BE(1), frame.length - 5, 'length prefix');
  return frame.subarray(5);
}

describe('bench load generator', () => {
  test('put, range and txn-put frames decode to the workload', () => {
    for (const frame of framePool(put, 50, 7)) {
      const r = etcdserverpb.PutRequest.decode(payloadOf(frame));
      assert.equal(r.key.length, 8);
      assert.ok(Number(Buffer.from(r.key).toString('latin1')) < 1000, 'key within the key space');
      assert.equal(r.value.length, 256);
    }
    const [range] = framePool({ ...put, kind: 'range', serializable: true }, 50, 7);
    const rr = etcdserverpb.RangeRequest.decode(payloadOf(range as Buffer));
    assert.equal(Buffer.from(rr.key).toString(), 'foo');
    assert.equal(rr.serializable, true);
    const [txn] = framePool({ ...put, kind: 'txn-put' }, 1, 7);
    const tr = etcdserverpb.TxnRequest.decode(payloadOf(txn as Buffer));
    assert.equal(tr.compare.length, 0);
    assert.equal(tr.success.length, 1);
    assert.equal(tr.success[0]?.request?.case, 'requestPut');
  });

  test('keys are zero-padded decimals of the requested width', () => {
    assert.equal(Buffer.from(keyOf(42, 8)).toString(), '00000042');
    assert.equal(Buffer.from(keyOf(123456789, 8)).toString(), '23456789');
  });

  test('histogram quantiles stay within a bucket of the true value, and merge', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let i = 1; i <= 10_000; i++) (i % 2 === 0 ? a : b).recordMs(i / 100);
    a.merge(Histogram.fromJSON(JSON.parse(JSON.stringify(b.toJSON()))));
    assert.equal(a.count, 10_000);
    for (const [q, want] of [[0.5, 50], [0.99, 99], [0.999, 99.9]] as const) {
      const got = a.quantileMs(q);
      assert.ok(Math.abs(got - want) / want < 0.02, `q${q}: ${got} vs ${want}`);
    }
    assert.equal(a.maxMs, 100);
    assert.ok(Math.abs(a.meanMs - 50.005) < 0.01);
  });

  test('frame splitter joins messages split across chunks', () => {
    const msgs = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(300, 7)];
    const stream = Buffer.concat(msgs.map((m) => frameMessage(m)));
    for (const cut of [1, 3, 5, 6, 7, 100, stream.length - 1]) {
      const got: Buffer[] = [];
      const s = new FrameSplitter();
      s.push(stream.subarray(0, cut), (p) => got.push(Buffer.from(p)));
      s.push(stream.subarray(cut), (p) => got.push(Buffer.from(p)));
      assert.deepEqual(got, msgs, `cut at ${cut}`);
    }
  });

  test('two rounds run A B B A, and a row merges its windows by time', () => {
    assert.deepEqual(schedule(0, 2), ['etcd', 'etcd-ts', 'etcd-ts', 'etcd']);
    assert.deepEqual(schedule(1, 2), ['etcd-ts', 'etcd', 'etcd', 'etcd-ts']);
    assert.deepEqual(schedule(1, 1), ['etcd-ts', 'etcd']);
    const window = (count: number, wallMs: number, ms: number, cores: number): Window => {
      const hist = new Histogram();
      for (let i = 0; i < count; i++) hist.recordMs(ms);
      const load = { count, errors: 0, firstError: undefined, wallMs, rate: (count * 1000) / wallMs, hist, clientCores: 0.5, workers: 1 };
      return { load, cores, machineCores: cores + 0.5 };
    };
    const workload = { name: 'w', family: 'put', job: () => assert.fail('not run') };
    // 1000 requests in 1 s, then 3000 in 2 s: 4000 in 3 s, not the mean of 1000/s and 1500/s.
    const m = merged(workload, 'etcd-ts', [window(1000, 1000, 1, 0.3), window(3000, 2000, 9, 0.6)]);
    assert.ok(Math.abs(m.rate - 4000 / 3) < 1e-9, `rate ${m.rate}`);
    assert.ok(Math.abs(m.serverCores - 0.5) < 1e-9, `cores ${m.serverCores}`);
    assert.ok(Math.abs(m.p50Ms - 9) < 0.1 && Math.abs(m.p99Ms - 9) < 0.1, `p50 ${m.p50Ms} p99 ${m.p99Ms}`);
    assert.ok(Math.abs(m.othersCores) < 1e-9);
  });

  describe('against one etcd-ts member', () => {
    const ws = useWorkspace('bench-load');
    let c: Cluster;
    before(async () => {
      c = await ws.startCluster({ kind: 'etcd-ts' });
    });

    test('puts and ranges complete without errors, over two workers', async () => {
      // A long window with no warm-up: on a loaded machine the first answers can take seconds.
      for (const w of [put, { ...put, kind: 'range' as const, serializable: true }]) {
        const r = await runLoad({ type: 'unary', endpoints: c.endpoints, conns: 2, clients: 4, workload: w, warmupMs: 0, measureMs: 5000, seed: 1, poolSize: 16 }, 2);
        assert.equal(r.errors, 0, r.firstError);
        assert.ok(r.count > 0, `${w.kind}: no request completed`);
        assert.equal(r.workers, 2);
        assert.ok(r.hist.quantileMs(0.5) > 0);
      }
    });

    test('a fill puts every key of its range exactly once', async () => {
      const r = await runLoad({ type: 'fill', endpoints: c.endpoints, conns: 2, clients: 5, from: 1000, to: 1050, keyBytes: 8, valueBytes: 16 }, 2);
      assert.equal(r.errors, 0, r.firstError);
      assert.equal(r.count, 50);
      const ch = openChannel(c.member(0).endpoint, 10_000);
      try {
        const range = etcdserverpb.RangeRequest.create({ key: keyOf(1000, 8), rangeEnd: keyOf(1050, 8), countOnly: true, serializable: true });
        const res = await ch.unary(methods.kv.Range, range, { timeoutMs: 10_000 });
        assert.equal(res.count, 50);
      } finally {
        ch.close();
      }
    });

    test('every watcher sees every put', async () => {
      const r = await runLoad({ type: 'watch', endpoints: c.endpoints, putEndpoint: c.member(0).endpoint, conns: 2, watchers: 3, puts: 5, putRate: 50, keyBytes: 8, valueBytes: 16, seed: 1 }, 1);
      assert.equal(r.errors, 0, r.firstError);
      assert.equal(r.count, 15);
    });
  });
});
