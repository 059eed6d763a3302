/**
 * etcd against etcd-ts: the workloads of issue 8 driven by the same load
 * generator against both servers in the same run. The machine is shared, and
 * its background load drifts over seconds: a full run splits each workload's
 * window in two and runs them A B B A (which server is A alternates from one
 * workload to the next), so a drift that is steady over the four windows
 * falls on both servers alike; each row merges a server's two windows.
 * Prints one table per topology.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, MemberKind } from '../test/harness/index.js';
import { runLoad, type LoadResult } from './load/driver.js';
import { Histogram } from './load/histogram.js';
import { valueOf, type UnaryWorkload } from './load/requests.js';
import type { Job } from './load/worker.js';
import { CpuMeter, closeAll, kinds, putOnce, startPair } from './servers.js';

export interface CompareOptions {
  readonly quick: boolean;
  /** Workload families to run (put, range, txn, watch); all when empty. */
  readonly families: readonly string[];
  /** Load-generator processes for the many-client cases. */
  readonly workers: number;
  /** Windows per server per workload in a full run, each of the default length (default 2). */
  readonly rounds?: number;
}

interface Target {
  /** Where writes go (the leader). */
  readonly writeEndpoint: string;
  /**
   * Where reads and watchers go: every member, followers first, so that a
   * workload with one connection (1x1 reads, one watcher) always meets a
   * follower, for both servers alike, whichever member won the election.
   */
  readonly readEndpoints: readonly string[];
}

interface Timing {
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly watchPuts: number;
  /** Unmeasured load per workload before the first one (see prime). */
  readonly primeMs: number;
  /** Windows per server per workload, run A B B A; measureMs and watchPuts are split between them. */
  readonly rounds: number;
}

interface Workload {
  readonly name: string;
  readonly family: string;
  job(t: Target, timing: Timing): Job;
}

const keyBytes = 8;
const valueBytes = 256;
const keySpace = 100_000;
const rangeKey = 'foo';
const poolSize = 8192;
/** Puts per second in the watch workloads (etcd's watch-latency pacing). */
const watchPutRate = 100;

function unary(kind: UnaryWorkload['kind'], serializable: boolean): UnaryWorkload {
  return { kind, keyBytes, valueBytes, keySpace, rangeKey, serializable };
}

function unaryWorkload(name: string, family: string, w: UnaryWorkload, conns: number, clients: number): Workload {
  return {
    name,
    family,
    job: (t, timing) => ({
      type: 'unary',
      endpoints: w.kind === 'range' ? t.readEndpoints : [t.writeEndpoint],
      conns,
      clients,
      workload: w,
      // A thousand clients take a while to reach their steady state.
      warmupMs: clients >= 100 ? timing.warmupMs * 2 : timing.warmupMs,
      measureMs: timing.measureMs,
      seed: 1 + name.length,
      poolSize,
    }),
  };
}

function watchWorkload(name: string, conns: number, watchers: number): Workload {
  return {
    name,
    family: 'watch',
    job: (t, timing) => ({
      type: 'watch',
      endpoints: t.readEndpoints,
      putEndpoint: t.writeEndpoint,
      conns,
      watchers,
      puts: timing.watchPuts,
      putRate: watchPutRate,
      keyBytes,
      valueBytes,
      seed: 42 + watchers,
    }),
  };
}

const workloads: readonly Workload[] = [
  unaryWorkload('put 1x1', 'put', unary('put', false), 1, 1),
  unaryWorkload('put 100x1000', 'put', unary('put', false), 100, 1000),
  unaryWorkload('range-l 1x1', 'range', unary('range', false), 1, 1),
  unaryWorkload('range-l 100x1000', 'range', unary('range', false), 100, 1000),
  unaryWorkload('range-s 1x1', 'range', unary('range', true), 1, 1),
  unaryWorkload('range-s 100x1000', 'range', unary('range', true), 100, 1000),
  unaryWorkload('txn-put 1x1', 'txn', unary('txn-put', false), 1, 1),
  unaryWorkload('txn-put 100x1000', 'txn', unary('txn-put', false), 100, 1000),
  watchWorkload('watch 1 watcher', 1, 1),
  watchWorkload('watch 100 watchers', 10, 100),
];

export const families = [...new Set(workloads.map((w) => w.family))];

export interface Measurement {
  readonly workload: string;
  readonly kind: MemberKind;
  readonly rate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly clientCores: number;
  readonly serverCores: number;
  /** CPU used by neither the servers under test nor the client, in cores. */
  readonly othersCores: number;
  /** Server CPU per request (per event for watch), in µs: serverCores / rate. */
  readonly serverUsPerReq: number;
}

async function targetOf(c: Cluster): Promise<Target> {
  const leader = c.members.length === 1 ? c.member(0) : await c.leader(30_000);
  const followers = c.endpoints.filter((e) => e !== leader.endpoint);
  return { writeEndpoint: leader.endpoint, readEndpoints: [...followers, leader.endpoint] };
}

/** One measured window of one workload on one server. */
export interface Window {
  readonly load: LoadResult;
  /** Cores used by the servers under test, and by the whole machine. */
  readonly cores: number;
  readonly machineCores: number;
}

async function measureWindow(w: Workload, c: Cluster, timing: Timing, workers: number): Promise<Window> {
  const t = await targetOf(c);
  const meter = new CpuMeter(() => c.members.map((m) => m.pid));
  const load = await runLoad(w.job(t, timing), workers, meter);
  return { load, ...meter.reading };
}

/** A server's windows of one workload as one measurement: counts and histograms added, cores weighted by time. */
export function merged(w: Workload, kind: MemberKind, windows: readonly Window[]): Measurement {
  const hist = new Histogram();
  let count = 0;
  let wallMs = 0;
  let errors = 0;
  let firstError: string | undefined;
  let client = 0;
  let cores = 0;
  let machine = 0;
  for (const x of windows) {
    const r = x.load;
    hist.merge(r.hist);
    count += r.count;
    wallMs += r.wallMs;
    errors += r.errors;
    firstError ??= r.firstError;
    client += r.clientCores * r.wallMs;
    cores += x.cores * r.wallMs;
    machine += x.machineCores * r.wallMs;
  }
  const per = (sum: number): number => (wallMs > 0 ? sum / wallMs : 0);
  const rate = wallMs > 0 ? (count * 1000) / wallMs : 0;
  return {
    workload: w.name,
    kind,
    rate,
    p50Ms: hist.quantileMs(0.5),
    p99Ms: hist.quantileMs(0.99),
    errors,
    firstError,
    clientCores: per(client),
    serverCores: per(cores),
    othersCores: Math.max(0, per(machine) - per(cores) - per(client)),
    serverUsPerReq: rate > 0 ? (per(cores) / rate) * 1e6 : 0,
  };
}

/** The order of a workload's windows: A B, or A B B A with two rounds; A alternates between workloads. */
export function schedule(i: number, rounds: number): MemberKind[] {
  const first = i % 2 === 0 ? [...kinds] : [...kinds].reverse();
  const out: MemberKind[] = [];
  for (let r = 0; r < rounds; r++) out.push(...(r % 2 === 0 ? first : [...first].reverse()));
  return out;
}

/**
 * Unmeasured load before the first workload, the same for both servers: puts,
 * txn-puts and ranges from 100 clients and from one, primeMs each, then each
 * watch workload for primeMs of puts. It fills the key space the workloads
 * write into (so the first put workload does not alone pay for creating
 * keys) and leaves both servers as a running cluster finds them: etcd-ts's
 * hot paths compiled by V8, the watch path's too, etcd's heap and pools
 * grown. (In a probe, the first 1000 watch events on a follower after a
 * burst of puts had a p99 2-3x the next 1000's, four times out of four.)
 */
async function prime(c: Cluster, primeMs: number, workers: number): Promise<void> {
  const t = await targetOf(c);
  const timing: Timing = { warmupMs: 0, measureMs: primeMs, watchPuts: Math.round((primeMs * watchPutRate) / 1000), primeMs: 0, rounds: 1 };
  for (const w of workloads) await runLoad(w.job(t, timing), workers);
}

function fmtRate(x: number): string {
  return x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : Math.round(x).toString();
}

function fmtMs(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** The comparison table: one row per workload. */
export function printTable(title: string, rows: readonly Measurement[]): void {
  const header = ['workload', 'etcd /s', 'etcd-ts /s', 'ratio', 'etcd p50/p99 ms', 'ts p50/p99 ms', 'client cores e/ts', 'server cores e/ts', 'srv µs/req e/ts', 'others e/ts'];
  const widths = [20, 9, 10, 6, 16, 16, 17, 17, 15, 11];
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 8) : c.padStart(widths[i] ?? 8))).join(' ');
  console.log(`\n${title}`);
  console.log(line(header));
  for (const name of [...new Set(rows.map((r) => r.workload))]) {
    const e = rows.find((r) => r.workload === name && r.kind === 'etcd');
    const t = rows.find((r) => r.workload === name && r.kind === 'etcd-ts');
    const pair = (f: (m: Measurement) => string): string => `${e ? f(e) : '-'}/${t ? f(t) : '-'}`;
    console.log(
      line([
        name,
        e ? fmtRate(e.rate) : '-',
        t ? fmtRate(t.rate) : '-',
        e && t && e.rate > 0 ? (t.rate / e.rate).toFixed(2) : '-',
        e ? `${fmtMs(e.p50Ms)}/${fmtMs(e.p99Ms)}` : '-',
        t ? `${fmtMs(t.p50Ms)}/${fmtMs(t.p99Ms)}` : '-',
        pair((m) => m.clientCores.toFixed(2)),
        pair((m) => m.serverCores.toFixed(2)),
        pair((m) => Math.round(m.serverUsPerReq).toString()),
        pair((m) => m.othersCores.toFixed(2)),
      ]),
    );
  }
  for (const r of rows) {
    if (r.errors > 0) console.log(`  ! ${r.kind} ${r.workload}: ${r.errors} errors, first: ${r.firstError ?? '?'}`);
  }
}

/** Runs the chosen workloads against an etcd and an etcd-ts cluster of `size` members. */
export async function compare(size: number, opts: CompareOptions): Promise<Measurement[]> {
  // Full runs: 1000 watch puts per server, as the reference figures' 2000
  // (../shared/reference/perf-etcd.md) would take too long; a p99 over 400
  // events rests on its 4 slowest.
  const rounds = opts.rounds ?? 2;
  const timing: Timing = opts.quick
    ? { warmupMs: 500, measureMs: 1500, watchPuts: 100, primeMs: 1000, rounds: 1 }
    : { warmupMs: 1000, measureMs: 2000 * rounds, watchPuts: 500 * rounds, primeMs: 1500, rounds };
  const window: Timing = { ...timing, measureMs: timing.measureMs / timing.rounds, watchPuts: Math.round(timing.watchPuts / timing.rounds) };
  const chosen = workloads.filter((w) => opts.families.length === 0 || opts.families.includes(w.family));
  const dir = mkdtempSync(join(tmpdir(), `bench-compare-${size}-`));
  const rows: Measurement[] = [];
  const clusters = await startPair(size, dir);
  try {
    // The key every range reads exists, with a value of the usual size.
    for (const c of clusters.values()) await putOnce((await targetOf(c)).writeEndpoint, Buffer.from(rangeKey), valueOf(valueBytes));
    for (const c of clusters.values()) await prime(c, timing.primeMs, opts.workers);
    for (const [i, w] of chosen.entries()) {
      const windows = new Map<MemberKind, Window[]>();
      for (const kind of schedule(i, timing.rounds)) {
        const c = clusters.get(kind);
        if (c === undefined) continue;
        const x = await measureWindow(w, c, window, opts.workers);
        windows.set(kind, [...(windows.get(kind) ?? []), x]);
        const m = merged(w, kind, [x]);
        console.log(`  ${kind.padEnd(7)} ${w.name.padEnd(20)} ${fmtRate(m.rate).padStart(7)}/s  p50 ${fmtMs(m.p50Ms)} p99 ${fmtMs(m.p99Ms)} ms  client ${m.clientCores.toFixed(2)} server ${m.serverCores.toFixed(2)} others ${m.othersCores.toFixed(2)} cores${m.errors > 0 ? `  ${m.errors} errors` : ''}`);
      }
      for (const kind of kinds) {
        const xs = windows.get(kind);
        if (xs !== undefined) rows.push(merged(w, kind, xs));
      }
    }
  } finally {
    await closeAll(clusters);
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(`${size === 1 ? 'single member' : `${size}-member cluster`}, fsync on, ${opts.quick ? 'quick' : 'full'} run (${timing.rounds > 1 ? `${timing.rounds} x ${window.measureMs} ms windows per server, A B B A` : `${timing.measureMs} ms windows`})`, rows);
  return rows;
}

