/**
 * The member without its gRPC layer: one EtcdServer in this process (one
 * member, fsync on, a temp data dir), driven by direct calls to put, range
 * and txn with 1 or many requests in flight. Next to the `single` section
 * this splits a request's cost between the server (raft, WAL, apply,
 * backend) and the gRPC layer, and it is the easy target for a profile:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/server-direct.js [--seconds S] [--only put]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nopLogger, Registry } from '../src/base/index.js';
import { etcdserverpb } from '../src/pb/index.js';
import { defaultConfig, EtcdServer } from '../src/server/index.js';
import { freePorts } from '../test/harness/index.js';
import { Histogram } from './load/histogram.js';
import { keyOf, prng, valueOf } from './load/requests.js';

interface Case {
  readonly name: string;
  readonly inflight: number;
  call(s: EtcdServer, i: number): Promise<unknown>;
}

const keySpace = 100_000;
const value = valueOf(256);

function putCall(rand: () => number): (s: EtcdServer) => Promise<unknown> {
  return (s) => s.put(etcdserverpb.PutRequest.create({ key: keyOf(Math.floor(rand() * keySpace), 8), value }));
}

function cases(): Case[] {
  const rand = prng(1);
  const put = putCall(rand);
  const foo = Buffer.from('foo');
  const txn = (s: EtcdServer): Promise<unknown> =>
    s.txn(
      etcdserverpb.TxnRequest.create({
        success: [{ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key: keyOf(Math.floor(rand() * keySpace), 8), value }) } }],
      }),
    );
  const range = (serializable: boolean) => (s: EtcdServer) => s.range(etcdserverpb.RangeRequest.create({ key: foo, serializable }));
  return [
    { name: 'put 1', inflight: 1, call: put },
    { name: 'put 1000', inflight: 1000, call: put },
    { name: 'range-l 1', inflight: 1, call: range(false) },
    { name: 'range-l 1000', inflight: 1000, call: range(false) },
    { name: 'range-s 1', inflight: 1, call: range(true) },
    { name: 'range-s 1000', inflight: 1000, call: range(true) },
    { name: 'txn-put 1', inflight: 1, call: txn },
    { name: 'txn-put 1000', inflight: 1000, call: txn },
  ];
}

/** CPU seconds of this process's threads: the main (JS) thread and all others (libuv pool, GC, LMDB). */
function threadCpu(): { main: number; others: number } {
  let main = 0;
  let others = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const secs = (Number(rest[11]) + Number(rest[12])) / 100;
      if (Number(tid) === process.pid) main += secs;
      else others += secs;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return { main, others };
}

interface Row {
  readonly name: string;
  readonly rate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of this process per request, in µs. */
  readonly cpuUsPerReq: number;
  /** Of which on the main thread. */
  readonly mainUsPerReq: number;
}

/** Closed loops of `inflight` callers for `ms` milliseconds. */
async function run(s: EtcdServer, c: Case, ms: number): Promise<Row> {
  const hist = new Histogram();
  const t0 = performance.now();
  const end = t0 + ms;
  const cpu0 = process.cpuUsage();
  const threads0 = threadCpu();
  let i = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const start = performance.now();
      await c.call(s, i++);
      hist.recordMs(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: c.inflight }, loop));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const n = Math.max(1, hist.count);
  const mainUsPerReq = ((threadCpu().main - threads0.main) * 1e6) / n;
  return { name: c.name, rate: (hist.count * 1000) / wallMs, p50Ms: hist.quantileMs(0.5), p99Ms: hist.quantileMs(0.99), cpuUsPerReq: (cpu.user + cpu.system) / n, mainUsPerReq };
}

async function startServer(dir: string): Promise<EtcdServer> {
  const [clientPort, peerPort] = await freePorts(2);
  const cfg = defaultConfig();
  const peer = `http://127.0.0.1:${peerPort ?? 0}`;
  const client = `http://127.0.0.1:${clientPort ?? 0}`;
  Object.assign(cfg, {
    dataDir: join(dir, 'default.etcd'),
    listenPeerUrls: [peer],
    initialAdvertisePeerUrls: [peer],
    listenClientUrls: [client],
    advertiseClientUrls: [client],
    initialCluster: new Map([['default', [peer]]]),
  });
  const s = await EtcdServer.start({ config: cfg, logger: nopLogger, registry: new Registry() });
  // A leader, and the key the ranges read.
  for (let attempt = 0; ; attempt++) {
    try {
      await s.put(etcdserverpb.PutRequest.create({ key: Buffer.from('foo'), value }));
      return s;
    } catch (e) {
      if (attempt > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, only: { type: 'string' } } });
  const ms = Number(values.seconds) * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'bench-direct-'));
  const s = await startServer(dir);
  try {
    console.log(`${'server-direct'.padEnd(14)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'cpu µs/req'.padStart(11)} ${'main thread'.padStart(11)}`);
    for (const c of cases()) {
      if (values.only !== undefined && c.name !== values.only && c.name.split(' ')[0] !== values.only) continue;
      const r = await run(s, c, ms);
      console.log(`${r.name.padEnd(14)} ${Math.round(r.rate).toString().padStart(8)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${Math.round(r.cpuUsPerReq).toString().padStart(11)} ${Math.round(r.mainUsPerReq).toString().padStart(11)}`);
    }
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
