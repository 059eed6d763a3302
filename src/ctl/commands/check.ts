/**
 * check perf and check datascale: etcdctl 3.4's load checks. perf writes
 * 256-byte keys with 1 KiB values at a fixed rate for 60 s through many
 * clients and judges throughput and latency; datascale writes a fixed number
 * of 1 KiB key-values and reports the server's resident memory growth (from
 * its /metrics). Both show cheggaaa/pb's progress line, clean up their
 * prefix, and optionally compact and defragment afterwards.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Client } from '../../client/index.js';
import { errText, must, type CommandSpec, type Ctl } from '../command.js';
import type { FlagSpec } from '../flags.js';
import { goDuration, goQuote } from '../go-format.js';
import { ExitCode, fail, type Output } from '../output.js';

/** A load of `clients` writers; perf paces them at `rate` puts/s for `seconds`, datascale writes `total` puts. */
export interface PerfLoad {
  readonly rate: number;
  readonly clients: number;
  readonly seconds: number;
}

export interface DatascaleLoad {
  readonly total: number;
  readonly kvBytes: number;
  readonly clients: number;
}

const perfLoads: Readonly<Record<string, PerfLoad>> = {
  s: { rate: 150, clients: 50, seconds: 60 },
  m: { rate: 1000, clients: 200, seconds: 60 },
  l: { rate: 8000, clients: 500, seconds: 60 },
  xl: { rate: 15000, clients: 1000, seconds: 60 },
};

const datascaleLoads: Readonly<Record<string, DatascaleLoad>> = {
  s: { total: 10_000, kvBytes: 1024, clients: 50 },
  m: { total: 100_000, kvBytes: 1024, clients: 200 },
  l: { total: 1_000_000, kvBytes: 1024, clients: 500 },
  xl: { total: 3_000_000, kvBytes: 1024, clients: 1000 },
};

const loadAliases: Readonly<Record<string, string>> = { s: 's', small: 's', m: 'm', medium: 'm', l: 'l', large: 'l', xl: 'xl', xLarge: 'xl' };

function loadModel(ctl: Ctl): string {
  const load = ctl.flags.string('load');
  const model = loadAliases[load];
  return model ?? fail(ExitCode.badFeature, `unknown load option ${load}`);
}

/** time.Duration truncated to seconds as pb prints time left: "00m59s" (hours and days before it when there are any). */
function timeLeftText(ms: number): string {
  let s = Math.floor(ms / 1000);
  let out = '';
  if (s > 86_400) {
    out += `${Math.floor(s / 86_400)}d`;
    s %= 86_400;
  }
  if (s > 3600) {
    out += `${Math.floor(s / 3600)}h`;
    s %= 3600;
  }
  return `${out}${String(Math.floor(s / 60)).padStart(2, '0')}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * cheggaaa/pb v1's bar as etcdctl shows it on a pipe (no terminal width, so
 * no bar): "\r <n> / <total> <pct>% <time left>", redrawn every 200 ms, the
 * final line with the elapsed time and a newline.
 */
export class ProgressLine {
  private current = 0;
  private previous = 0;
  private readonly startMs = Date.now();
  private changeMs = this.startMs;
  private readonly timer: NodeJS.Timeout;
  private finished = false;

  constructor(
    private readonly total: number,
    private readonly out: Output,
  ) {
    this.update();
    this.timer = setInterval(() => this.update(), 200);
  }

  add(n = 1): void {
    this.current += n;
  }

  private update(): void {
    if (this.current !== this.previous) {
      this.changeMs = Date.now();
      this.previous = this.current;
    }
    this.write(false);
  }

  private write(final: boolean): void {
    const cur = this.current;
    const pct = ((cur / (this.total / 100)).toFixed(2)).padStart(6);
    let timeBox = '';
    if (final) {
      timeBox = ` ${goDuration(BigInt(Math.floor((Date.now() - this.startMs) / 1000)) * 1_000_000_000n)}`;
    } else if (cur > 0) {
      const perEntry = (this.changeMs - this.startMs) / cur;
      const left = (this.total - cur) * perEntry - (Date.now() - this.changeMs);
      if (left >= 1000) timeBox = ` ${timeLeftText(left)}`;
    }
    this.out.out(`\r ${cur} / ${this.total}  ${pct}%${timeBox}`);
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    this.write(true);
    this.out.out('\n');
  }
}

/** pkg/report's summary: successful latencies (seconds) and failures by message. */
export class LoadReport {
  private readonly latencies: number[] = [];
  readonly errors = new Map<string, number>();
  private readonly startMs = Date.now();
  private endMs = 0;

  record(latencySec: number, err: unknown): void {
    if (err === undefined) this.latencies.push(latencySec);
    else this.errors.set(errText(err), (this.errors.get(errText(err)) ?? 0) + 1);
  }

  end(): void {
    this.endMs = Date.now();
  }

  get rps(): number {
    return this.latencies.length / ((this.endMs - this.startMs) / 1000);
  }

  get slowest(): number {
    return this.latencies.reduce((m, l) => Math.max(m, l), 0);
  }

  /** The population standard deviation of the latencies. */
  get stddev(): number {
    const n = this.latencies.length;
    if (n === 0) return 0;
    const mean = this.latencies.reduce((a, b) => a + b, 0) / n;
    return Math.sqrt(this.latencies.reduce((a, l) => a + (l - mean) ** 2, 0) / n);
  }
}

/** A key of `keyBytes` bytes after the prefix: a random varint, then zeros (binary.PutVarint into a zeroed buffer). */
function randomKey(prefix: string, keyBytes: number): Buffer {
  const k = Buffer.alloc(keyBytes);
  // A random non-negative int63, zig-zag encoded as a Go varint.
  let v = (BigInt(`0x${randomBytes(8).toString('hex')}`) & 0x7fff_ffff_ffff_ffffn) << 1n;
  let i = 0;
  while (v >= 0x80n) {
    k[i++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  k[i] = Number(v);
  return Buffer.concat([Buffer.from(prefix, 'utf8'), k]);
}

/** The writers: each client takes puts from the queue until it is closed, timing each. */
class PutQueue {
  private readonly items: Buffer[] = [];
  private closed = false;
  private readonly takers: ((k: Buffer | undefined) => void)[] = [];
  private readonly givers: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  async push(k: Buffer): Promise<void> {
    while (this.items.length >= this.capacity) await new Promise<void>((r) => this.givers.push(r));
    const taker = this.takers.shift();
    if (taker !== undefined) taker(k);
    else this.items.push(k);
  }

  take(): Promise<Buffer | undefined> {
    const k = this.items.shift();
    this.givers.shift()?.();
    if (k !== undefined) return Promise.resolve(k);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((r) => this.takers.push(r));
  }

  close(): void {
    this.closed = true;
    for (const t of this.takers.splice(0)) t(undefined);
  }
}

async function writer(c: Client, q: PutQueue, value: Buffer, report: LoadReport, onDone: () => void): Promise<void> {
  for (let k = await q.take(); k !== undefined; k = await q.take()) {
    const start = process.hrtime.bigint();
    let failure: unknown;
    try {
      await c.kv.put(k, value);
    } catch (err) {
      failure = err;
    }
    report.record(Number(process.hrtime.bigint() - start) / 1e9, failure);
    onDone();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The writers' clients, made as mustClientFromCmd makes each. */
async function loadClients(ctl: Ctl, n: number): Promise<Client[]> {
  await ctl.clientConfig();
  return Array.from({ length: n }, () => ctl.client());
}

/** Fails as etcdctl does when the prefix already holds keys. */
async function requireEmptyPrefix(c: Client, prefix: string, timeoutMs: number | undefined): Promise<void> {
  const resp = await must(c.kv.get(prefix, { prefix: true, limit: 1, timeoutMs }));
  if (resp.kvs.length > 0) fail(ExitCode.invalidInput, `prefix ${goQuote(prefix)} has keys. Delete with etcdctl del --prefix ${prefix} first`);
}

/** Deletes the prefix, then --auto-compact and --auto-defrag as etcdctl's compact() and defrag() helpers print them. */
async function cleanUp(ctl: Ctl, c: Client, prefix: string, timeoutMs: number | undefined): Promise<void> {
  const resp = await must(c.kv.delete(prefix, { prefix: true, timeoutMs }));
  if (ctl.flags.bool('auto-compact')) {
    const rev = resp.header?.revision ?? 0;
    ctl.println(`Compacting with revision ${rev}`);
    await must(c.kv.compact(rev, { physical: true, timeoutMs: 30_000 }));
    ctl.println(`Compacted with revision ${rev}`);
  }
  if (ctl.flags.bool('auto-defrag')) {
    for (const ep of c.endpoints) {
      ctl.println(`Defragmenting ${goQuote(ep)}`);
      await must(c.maintenance.defragment(ep, { timeoutMs: 30_000 }));
      ctl.println(`Defragmented ${goQuote(ep)}`);
    }
  }
}

function printErrors(ctl: Ctl, report: LoadReport): void {
  ctl.println('FAIL: too many errors');
  for (const [msg, n] of report.errors) ctl.println(`FAIL: ERROR(${msg}) -> ${n}`);
}

/** check perf with an explicit load (the command picks it from --load). */
export async function checkPerf(ctl: Ctl, load: PerfLoad): Promise<void> {
  const prefix = ctl.flags.string('prefix');
  const clients = await loadClients(ctl, load.clients);
  const first = clients[0] as Client;
  await requireEmptyPrefix(first, prefix, load.seconds * 1000);
  const value = Buffer.alloc(1024);
  const bar = new ProgressLine(load.seconds, ctl.out);
  // The bar counts seconds, not puts, and finishes on its own after the last one.
  const ticking = (async (): Promise<void> => {
    for (let i = 0; i < load.seconds; i++) {
      await sleep(1000);
      bar.add(1);
    }
    bar.finish();
  })();
  const report = new LoadReport();
  const q = new PutQueue(load.clients);
  const writers = clients.map((c) => writer(c, q, value, report, () => undefined));
  // golang.org/x/time/rate with burst 1: one put every 1/rate seconds until the load's time is up.
  const startMs = Date.now();
  const endMs = startMs + load.seconds * 1000;
  for (let i = 1; ; i++) {
    const at = startMs + (i * 1000) / load.rate;
    if (at >= endMs) break;
    if (at > Date.now()) await sleep(at - Date.now());
    await q.push(randomKey(prefix, 256));
  }
  q.close();
  await Promise.all(writers);
  report.end();
  await ticking;
  await cleanUp(ctl, first, prefix, 30_000);
  let ok = true;
  if (report.errors.size > 0) {
    printErrors(ctl, report);
    ok = false;
  }
  if (report.rps / load.rate <= 0.9) {
    ctl.println(`FAIL: Throughput too low: ${Math.trunc(report.rps) + 1} writes/s`);
    ok = false;
  } else {
    ctl.println(`PASS: Throughput is ${Math.trunc(report.rps) + 1} writes/s`);
  }
  if (report.slowest > 0.5) {
    ctl.println(`Slowest request took too long: ${report.slowest.toFixed(6)}s`);
    ok = false;
  } else {
    ctl.println(`PASS: Slowest request took ${report.slowest.toFixed(6)}s`);
  }
  if (report.stddev > 0.1) {
    ctl.println(`Stddev too high: ${report.stddev.toFixed(6)}s`);
    ok = false;
  } else {
    ctl.println(`PASS: Stddev is ${report.stddev.toFixed(6)}s`);
  }
  ctl.println(ok ? 'PASS' : 'FAIL');
  if (!ok) fail(ExitCode.error, '');
}

/** GET <endpoint>/metrics, as Go's http.Get reports a failure. */
function fetchMetrics(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https://') ? https.get : http.get;
    const req = get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', (e) => reject(new Error(`fetch error: reading ${url}: ${e.message}`)));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      const u = new URL(url);
      const why = e.code === 'ECONNREFUSED' ? `dial tcp ${u.host}: connect: connection refused` : e.message;
      reject(new Error(`fetch error: Get ${JSON.stringify(url)}: ${why}`));
    });
  });
}

/** endpointMemoryMetrics: the server's process_resident_memory_bytes, or 0 after printing why not. */
async function residentMemory(ctl: Ctl, host: string): Promise<number> {
  const key = 'process_resident_memory_bytes';
  const url = `${host.startsWith('http://') ? host : `http://${host}`}/metrics`;
  let body: string;
  try {
    body = await fetchMetrics(url);
  } catch (err) {
    ctl.println(errText(err));
    return 0;
  }
  const line = body.split('\n').find((l) => l.startsWith(key));
  const text = line?.slice(key.length).trim() ?? '';
  if (text === '') {
    ctl.println(`could not find: ${key}`);
    return 0;
  }
  const v = Number(text);
  if (!Number.isFinite(v)) {
    ctl.println(`parse error: strconv.ParseFloat: parsing ${goQuote(text)}: invalid syntax`);
    return 0;
  }
  return v;
}

/** check datascale with an explicit load (the command picks it from --load). */
export async function checkDatascale(ctl: Ctl, load: DatascaleLoad): Promise<void> {
  const prefix = ctl.flags.string('prefix');
  const clients = await loadClients(ctl, load.clients);
  const first = clients[0] as Client;
  const ep = ctl.endpoints[0] ?? '';
  await requireEmptyPrefix(first, prefix, undefined);
  const before = await residentMemory(ctl, ep);
  if (before === 0) {
    ctl.println('FAIL: Could not read process_resident_memory_bytes before the put operations.');
    fail(ExitCode.error, '');
  }
  ctl.println(`Start data scale check for work load [${load.total} key-value pairs, ${load.kvBytes} bytes per key-value, ${load.clients} concurrent clients].`);
  const bar = new ProgressLine(load.total, ctl.out);
  const report = new LoadReport();
  const q = new PutQueue(load.clients);
  const value = Buffer.alloc(load.kvBytes / 2);
  const writers = clients.map((c) => writer(c, q, value, report, () => bar.add(1)));
  for (let i = 0; i < load.total; i++) await q.push(randomKey(prefix, load.kvBytes / 2));
  q.close();
  await Promise.all(writers);
  report.end();
  bar.finish();
  const after = await residentMemory(ctl, ep);
  if (after === 0) {
    ctl.println('FAIL: Could not read process_resident_memory_bytes after the put operations.');
    fail(ExitCode.error, '');
  }
  await cleanUp(ctl, first, prefix, undefined);
  if (report.errors.size > 0) {
    printErrors(ctl, report);
    fail(ExitCode.error, '');
  }
  ctl.println(`PASS: Approximate system memory used : ${((after - before) / (1024 * 1024)).toFixed(2)} MB.`);
}

function loadFlags(check: 'performance' | 'datascale', prefix: string): FlagSpec[] {
  return [
    { name: 'load', kind: 'string', def: 's', usage: `The ${check} check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)` },
    { name: 'prefix', kind: 'string', def: prefix, usage: `The prefix for writing the ${check} check's keys.` },
    { name: 'auto-compact', kind: 'bool', def: 'false', usage: 'Compact storage with last revision after test is finished.' },
    { name: 'auto-defrag', kind: 'bool', def: 'false', usage: 'Defragment storage after test is finished.' },
  ];
}

const checkPerfCommand: CommandSpec = {
  name: 'perf',
  params: '[options]',
  short: 'Check the performance of the etcd cluster',
  flags: loadFlags('performance', '/etcdctl-check-perf/'),
  run: (ctl) => checkPerf(ctl, perfLoads[loadModel(ctl)] as PerfLoad),
};

const checkDatascaleCommand: CommandSpec = {
  name: 'datascale',
  params: '[options]',
  short: 'Check the memory usage of holding data for different workloads on a given server endpoint.',
  long: 'If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.',
  flags: loadFlags('datascale', '/etcdctl-check-datascale/'),
  run: (ctl) => checkDatascale(ctl, datascaleLoads[loadModel(ctl)] as DatascaleLoad),
};

export const checkCommand: CommandSpec = {
  name: 'check',
  params: '<subcommand>',
  short: 'commands for checking properties of the etcd cluster',
  subcommands: [checkPerfCommand, checkDatascaleCommand],
};
