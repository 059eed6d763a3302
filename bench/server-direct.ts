/**
 * The member without its gRPC layer: one EtcdServer in this process (one
 * member, fsync on, a temp data dir), driven by direct calls to put, range
 * and txn with 1 or many requests in flight. Next to the `single` section
 * this splits a request's cost between the server (raft, WAL, apply,
 * backend) and the gRPC layer, and it is the easy target for a profile:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/server-direct.js [--seconds S] [--only put]
 *
 * With --grpc the same member also serves its client port (src/api, the
 * whole gRPC stack) and the requests come from the load generator's forked
 * workers (bench/load) over HTTP/2: this process's CPU per request is then
 * the server's whole cost per call, gRPC included, and a profile of this
 * process shows where it goes. --conns sets the connections of the
 * 1000-client cases (default 100); --workers N the load processes
 * (default 2; 0 runs the load in this process, see runInProcess; with
 * --requests N it then issues N requests instead of running for a time,
 * for an instruction counter: `valgrind --tool=callgrind node ...` at two
 * counts gives instructions per request). --profile DIR writes a .cpuprofile of
 * each case's measured window only (no start-up, no warm-up).
 *
 * --bare replaces the client port with a bare node:http2 server in this
 * process that answers every call, whatever it asks, with the member's
 * RangeResponse for the ranged key, encoded once: node:http2's own cost per
 * call, the floor the client port had before it framed HTTP/2 itself
 * (src/grpc/h2-connection.ts; --grpc range-s now costs less than --bare).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { ClientApi } from '../src/api/index.js';
import { frameMessage } from '../src/grpc/index.js';
import { nopLogger, Registry } from '../src/base/index.js';
import { etcdserverpb } from '../src/pb/index.js';
import { defaultConfig, EtcdServer } from '../src/server/index.js';
import { freePorts } from '../test/harness/index.js';
import { runLoad } from './load/driver.js';
import { Histogram } from './load/histogram.js';
import { framePool, keyOf, pathOf, prng, valueOf, type UnaryWorkload } from './load/requests.js';

interface Case {
  readonly name: string;
  readonly inflight: number;
  call(s: EtcdServer, i: number): Promise<unknown>;
  /** The same request as the load generator sends it over gRPC. */
  readonly workload: UnaryWorkload;
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
  const w = (kind: UnaryWorkload['kind'], serializable = false): UnaryWorkload => ({ kind, keyBytes: 8, valueBytes: 256, keySpace, rangeKey: 'foo', serializable });
  return [
    { name: 'put 1', inflight: 1, call: put, workload: w('put') },
    { name: 'put 1000', inflight: 1000, call: put, workload: w('put') },
    { name: 'range-l 1', inflight: 1, call: range(false), workload: w('range') },
    { name: 'range-l 1000', inflight: 1000, call: range(false), workload: w('range') },
    { name: 'range-s 1', inflight: 1, call: range(true), workload: w('range', true) },
    { name: 'range-s 1000', inflight: 1000, call: range(true), workload: w('range', true) },
    { name: 'txn-put 1', inflight: 1, call: txn, workload: w('txn-put') },
    { name: 'txn-put 1000', inflight: 1000, call: txn, workload: w('txn-put') },
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

/** CPU profiles of measured windows only, one file per case. */
class WindowProfiler {
  private readonly session = new Session();
  private pending: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.session.connect();
  }

  start(): void {
    this.pending = this.session.post('Profiler.enable').then(() => this.session.post('Profiler.start'));
  }

  stop(name: string): void {
    const file = join(this.dir, `${name.replace(/\W+/g, '-')}.cpuprofile`);
    this.pending = this.pending
      .then(() => this.session.post('Profiler.stop'))
      .then(({ profile }) => writeFileSync(file, JSON.stringify(profile)));
  }

  /** Waits for the last profile to be written. */
  flushed(): Promise<unknown> {
    return this.pending;
  }
}

/** The case through the client port: forked load workers, this process's CPU over their measured window. */
async function runGrpc(endpoint: string, c: Case, ms: number, conns: number, workers: number, profiler?: WindowProfiler): Promise<Row> {
  let cpu0 = process.cpuUsage();
  let threads0 = threadCpu();
  let cpuUs = 0;
  let mainSecs = 0;
  const probe = {
    start: (): void => {
      profiler?.start();
      cpu0 = process.cpuUsage();
      threads0 = threadCpu();
    },
    stop: (): void => {
      const cpu = process.cpuUsage(cpu0);
      cpuUs = cpu.user + cpu.system;
      mainSecs = threadCpu().main - threads0.main;
      profiler?.stop(c.name);
    },
  };
  const job = {
    type: 'unary' as const,
    endpoints: [endpoint],
    conns: c.inflight === 1 ? 1 : conns,
    clients: c.inflight,
    workload: c.workload,
    warmupMs: c.inflight === 1 ? 500 : 1000,
    measureMs: ms,
    seed: 1,
    poolSize: 8192,
  };
  const r = await runLoad(job, c.inflight === 1 ? 1 : workers, probe);
  await profiler?.flushed();
  if (r.errors > 0) console.error(`${c.name}: ${r.errors} errors, first: ${r.firstError ?? ''}`);
  const n = Math.max(1, r.count);
  return { name: c.name, rate: r.rate, p50Ms: r.hist.quantileMs(0.5), p99Ms: r.hist.quantileMs(0.99), cpuUsPerReq: cpuUs / n, mainUsPerReq: (mainSecs * 1e6) / n };
}

/**
 * The case through the client port with the load in this process (--workers 0):
 * raw HTTP/2 closed loops as the workers run them. CPU per request is then
 * client plus server, but the two share one event loop, so how requests batch
 * per wake-up does not depend on how the machine schedules processes; on a
 * loaded machine --grpc against --bare this way is the steadier comparison.
 */
async function runInProcess(endpoint: string, c: Case, ms: number, conns: number, profiler?: WindowProfiler, requests = 0): Promise<Row> {
  const sessions = await Promise.all(
    Array.from({ length: c.inflight === 1 ? 1 : conns }, () => {
      const session = http2.connect(`http://${endpoint}`);
      session.on('error', () => undefined);
      return new Promise<http2.ClientHttp2Session>((resolve) => session.once('connect', () => resolve(session)));
    }),
  );
  const pool = framePool(c.workload, 8192, 1);
  const headers = { ':method': 'POST', ':path': pathOf(c.workload.kind), 'content-type': 'application/grpc', te: 'trailers' };
  const hist = new Histogram();
  let errors = 0;
  let next = 0;
  let measuring = false;
  const one = (session: http2.ClientHttp2Session): Promise<void> =>
    new Promise((resolve) => {
      const start = performance.now();
      let status: unknown;
      const stream = session.request(headers);
      stream.on('response', (h) => (status = h['grpc-status'] ?? status));
      stream.on('trailers', (h) => (status = h['grpc-status'] ?? status));
      stream.on('data', () => undefined);
      stream.on('error', () => undefined);
      stream.on('close', () => {
        if (status !== '0') errors++;
        else if (measuring) hist.recordMs(performance.now() - start);
        resolve();
      });
      stream.end(pool[next++ % pool.length]);
    });
  // With a request count (for an instruction counter such as valgrind) there is no warm-up and no clock.
  const warmupMs = requests > 0 ? 0 : c.inflight === 1 ? 500 : 1000;
  const t0 = performance.now();
  const end = t0 + warmupMs + ms;
  let cpu0 = process.cpuUsage();
  let threads0 = threadCpu();
  let windowStart = t0;
  const opener = setTimeout(() => {
    measuring = true;
    windowStart = performance.now();
    profiler?.start();
    cpu0 = process.cpuUsage();
    threads0 = threadCpu();
  }, warmupMs);
  const loop = async (i: number): Promise<void> => {
    const session = sessions[i % sessions.length] as http2.ClientHttp2Session;
    if (requests > 0) while (next < requests) await one(session);
    else while (performance.now() < end) await one(session);
  };
  await Promise.all(Array.from({ length: c.inflight }, (_, i) => loop(i)));
  clearTimeout(opener);
  const cpu = process.cpuUsage(cpu0);
  const mainSecs = threadCpu().main - threads0.main;
  const wallMs = performance.now() - windowStart;
  profiler?.stop(c.name);
  await profiler?.flushed();
  for (const session of sessions) session.destroy();
  if (errors > 0) console.error(`${c.name}: ${errors} errors`);
  const n = Math.max(1, hist.count);
  return { name: c.name, rate: (hist.count * 1000) / wallMs, p50Ms: hist.quantileMs(0.5), p99Ms: hist.quantileMs(0.99), cpuUsPerReq: (cpu.user + cpu.system) / n, mainUsPerReq: (mainSecs * 1e6) / n };
}

/** node:http2 answering every stream with `frame` and grpc-status 0, as a gRPC unary call is answered. */
async function startBare(frame: Buffer): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 0xffff_ffff } });
  server.on('stream', (stream: ServerHttp2Stream) => {
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
    stream.once('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions);
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': 0 }));
      stream.end(frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Sessions the load workers left open would hold close() back.
        setTimeout(resolve, 1000).unref();
      }),
  };
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
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      only: { type: 'string' },
      grpc: { type: 'boolean', default: false },
      bare: { type: 'boolean', default: false },
      conns: { type: 'string', default: '100' },
      workers: { type: 'string', default: '2' },
      profile: { type: 'string' },
      requests: { type: 'string' },
    },
  });
  const ms = Number(values.seconds) * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'bench-direct-'));
  const s = await startServer(dir);
  const api = values.grpc && !values.bare ? await ClientApi.start(s) : undefined;
  const bare = values.bare ? await startBare(frameMessage(etcdserverpb.RangeResponse.encode(await s.range(etcdserverpb.RangeRequest.create({ key: Buffer.from('foo'), serializable: true }))))) : undefined;
  const endpoint = bare?.endpoint ?? api?.urls[0]?.replace(/^http:\/\//, '');
  const profiler = values.profile === undefined || endpoint === undefined ? undefined : new WindowProfiler(values.profile);
  try {
    console.log(`${(endpoint === undefined ? 'server-direct' : bare !== undefined ? 'bare http2' : 'via gRPC').padEnd(14)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'cpu µs/req'.padStart(11)} ${'main thread'.padStart(11)}`);
    for (const c of cases()) {
      if (values.only !== undefined && c.name !== values.only && c.name.split(' ')[0] !== values.only) continue;
      const workers = Number(values.workers);
      const r =
        endpoint === undefined
          ? await run(s, c, ms)
          : workers === 0
            ? await runInProcess(endpoint, c, ms, Number(values.conns), profiler, Number(values.requests ?? 0))
            : await runGrpc(endpoint, c, ms, Number(values.conns), workers, profiler);
      console.log(`${r.name.padEnd(14)} ${Math.round(r.rate).toString().padStart(8)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${Math.round(r.cpuUsPerReq).toString().padStart(11)} ${Math.round(r.mainUsPerReq).toString().padStart(11)}`);
    }
  } finally {
    await api?.close(0);
    await bare?.close();
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
