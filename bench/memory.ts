/**
 * Memory per million keys: one member of each kind is loaded with N
 * distinct keys (8-byte keys, 256-byte values, each put once), then left
 * to settle; its resident memory and data dir are read from /proc and the
 * filesystem. RSS growth is scaled to one million keys; disk sizes are
 * absolute. The fill rate is printed too (many clients, sequential keys).
 */
import { join } from 'node:path';
import type { Cluster, MemberKind } from '../test/harness/index.js';
import { runLoad } from './load/driver.js';
import { diskBytesOf, eachKindAlone, rssBytesOf } from './servers.js';

export interface MemoryOptions {
  readonly quick: boolean;
  readonly workers: number;
}

export interface MemoryRow {
  readonly kind: MemberKind;
  readonly keys: number;
  readonly fillRate: number;
  readonly fillErrors: number;
  readonly rssIdleBytes: number;
  readonly rssBytes: number;
  readonly dataDirBytes: number;
  readonly walBytes: number;
  readonly dbBytes: number;
}

const settleMs = 3000;
const mb = (b: number): string => (b / 1e6).toFixed(0);

async function measureOne(kind: MemberKind, c: Cluster, keys: number, workers: number): Promise<MemoryRow> {
  const m = c.member(0);
  const rssIdleBytes = rssBytesOf(m.pid);
  const r = await runLoad({ type: 'fill', endpoints: c.endpoints, conns: 100, clients: 1000, from: 0, to: keys, keyBytes: 8, valueBytes: 256 }, workers);
  // The backend commits in batches: let the last one land before reading the disk.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const member = join(m.dataDir, 'member');
  return {
    kind,
    keys,
    fillRate: r.rate,
    fillErrors: r.errors,
    rssIdleBytes,
    rssBytes: rssBytesOf(m.pid),
    dataDirBytes: diskBytesOf(m.dataDir),
    walBytes: diskBytesOf(join(member, 'wal')),
    dbBytes: diskBytesOf(join(member, 'snap')),
  };
}

function print(rows: readonly MemoryRow[]): void {
  console.log(`\nmemory after loading ${rows[0]?.keys ?? 0} keys (8 B keys, 256 B values) into one member; RSS growth scaled to a million keys`);
  const header = ['kind', 'fill /s', 'RSS idle MB', 'RSS MB', 'growth MB/M keys', 'data dir MB', 'snap (db) MB', 'wal MB'];
  console.log(header.map((h, i) => (i === 0 ? h.padEnd(8) : h.padStart(16))).join(' '));
  for (const r of rows) {
    const cells = [
      r.kind,
      Math.round(r.fillRate).toString(),
      mb(r.rssIdleBytes),
      mb(r.rssBytes),
      mb(((r.rssBytes - r.rssIdleBytes) * 1e6) / r.keys),
      mb(r.dataDirBytes),
      mb(r.dbBytes),
      mb(r.walBytes),
    ];
    console.log(cells.map((c, i) => (i === 0 ? c.padEnd(8) : c.padStart(16))).join(' '));
    if (r.fillErrors > 0) console.log(`  ! ${r.kind}: ${r.fillErrors} failed puts while filling`);
  }
  console.log('  (WAL segments are preallocated 64 MB each, so the wal figure is not proportional to the keys.)');
}

/** Loads each kind in turn (the other idles meanwhile) and prints the table. */
export async function memory(opts: MemoryOptions): Promise<MemoryRow[]> {
  const keys = opts.quick ? 50_000 : 1_000_000;
  const rows = await eachKindAlone('memory', async (kind, c) => {
    const row = await measureOne(kind, c, keys, opts.workers);
    console.log(`  ${kind.padEnd(7)} filled ${keys} keys at ${Math.round(row.fillRate)}/s; RSS ${mb(row.rssBytes)} MB, data dir ${mb(row.dataDirBytes)} MB`);
    return row;
  });
  print(rows);
  return rows;
}
