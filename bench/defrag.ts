/**
 * Latency while a member is defragmented. One member of each kind is loaded
 * with N keys (8-byte keys, 1 KiB values); then one client puts and another
 * reads (linearizable) in closed loops for a few seconds, and one second in
 * the member is defragmented (Debian's `etcdctl defrag`, timed). etcd's
 * defrag holds every read and write until the copy is done (etcd #9222,
 * #15477); etcd-ts copies while writes go on into memory. The table shows
 * each loop's p50, p99 and longest call over the whole window, beside the
 * same loops' figures in a window without a defrag.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { etcdctlBin } from '../test/harness/index.js';
import type { Cluster, MemberKind } from '../test/harness/index.js';
import { runLoad, type LoadResult } from './load/driver.js';
import type { UnaryWorkload } from './load/requests.js';
import { diskBytesOf, eachKindAlone } from './servers.js';

export interface DefragOptions {
  readonly quick: boolean;
  readonly workers: number;
}

interface Loops {
  readonly put: LoadResult;
  readonly get: LoadResult;
}

export interface DefragRow {
  readonly kind: MemberKind;
  readonly keys: number;
  readonly dbBytes: number;
  readonly defragMs: number;
  readonly quiet: Loops;
  readonly defrag: Loops;
}

const windowMs = 6000;
const defragAtMs = 1000;
const keyBytes = 8;

function loops(c: Cluster, keys: number): Promise<Loops> {
  const job = (w: UnaryWorkload, seed: number): Parameters<typeof runLoad>[0] => ({
    type: 'unary',
    endpoints: c.endpoints,
    conns: 1,
    clients: 1,
    workload: w,
    warmupMs: 0,
    measureMs: windowMs,
    seed,
    poolSize: 4096,
  });
  const put: UnaryWorkload = { kind: 'put', keyBytes, valueBytes: 256, keySpace: keys, rangeKey: '', serializable: false };
  const get: UnaryWorkload = { kind: 'range', keyBytes, valueBytes: 0, keySpace: keys, rangeKey: 'defrag-probe', serializable: false };
  return Promise.all([runLoad(job(put, 7), 1), runLoad(job(get, 8), 1)]).then(([p, g]) => ({ put: p, get: g }));
}

/** Runs `etcdctl defrag` against the endpoint; resolves with its wall time in ms. */
function defrag(endpoint: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(etcdctlBin, ['--endpoints', endpoint, '--command-timeout', '120s', 'defrag'], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`etcdctl defrag: ${err.trim()}`))));
  });
}

async function measureOne(kind: MemberKind, c: Cluster, keys: number, workers: number): Promise<DefragRow> {
  const m = c.member(0);
  const filled = await runLoad({ type: 'fill', endpoints: c.endpoints, conns: 100, clients: 1000, from: 0, to: keys, keyBytes, valueBytes: 1024 }, workers);
  if (filled.errors > 0) throw new Error(`${kind}: ${filled.errors} puts failed while filling (${filled.firstError ?? ''})`);
  const quiet = await loops(c, keys);
  const during = loops(c, keys);
  await new Promise((r) => setTimeout(r, defragAtMs));
  const defragMs = await defrag(m.endpoint);
  return { kind, keys, dbBytes: diskBytesOf(join(m.dataDir, 'member', 'snap')), defragMs, quiet, defrag: await during };
}

const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
const cell = (r: LoadResult): string => `${Math.round(r.rate)}/s ${ms(r.hist.quantileMs(0.5))}/${ms(r.hist.quantileMs(0.99))}/${ms(r.hist.maxMs)}`;

function print(rows: readonly DefragRow[]): void {
  console.log(`\ndefrag of one member holding ${rows[0]?.keys ?? 0} keys (8 B keys, 1 KiB values) while one client puts and one reads (linearizable), ${windowMs / 1000} s windows`);
  console.log('rate and p50/p99/max ms of each loop, in a window without a defrag and in one with a defrag 1 s in');
  const header = ['kind', 'db MB', 'defrag ms', 'put, quiet', 'put, defrag', 'get, quiet', 'get, defrag'];
  const widths = [8, 8, 10, 26, 26, 26, 26];
  console.log(header.map((h, i) => h.padStart(widths[i] ?? 10)).join(' '));
  for (const r of rows) {
    const cells = [r.kind, (r.dbBytes / 1e6).toFixed(0), r.defragMs.toFixed(0), cell(r.quiet.put), cell(r.defrag.put), cell(r.quiet.get), cell(r.defrag.get)];
    console.log(cells.map((c, i) => c.padStart(widths[i] ?? 10)).join(' '));
    for (const [what, l] of [['put', r.defrag.put], ['get', r.defrag.get]] as const) {
      if (l.errors > 0) console.log(`  ! ${r.kind} ${what}: ${l.errors} failed calls during the defrag (${l.firstError ?? ''})`);
    }
  }
}

/** Loads and defragments each kind in turn (the other idles meanwhile) and prints the table. */
export async function defragLatency(opts: DefragOptions): Promise<DefragRow[]> {
  const keys = opts.quick ? 20_000 : 200_000;
  const rows = await eachKindAlone('defrag', async (kind, c) => {
    const row = await measureOne(kind, c, keys, opts.workers);
    console.log(`  ${kind.padEnd(7)} ${keys} keys, db ${(row.dbBytes / 1e6).toFixed(0)} MB, defrag ${row.defragMs.toFixed(0)} ms`);
    return row;
  });
  print(rows);
  return rows;
}
