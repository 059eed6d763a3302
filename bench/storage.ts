/**
 * Storage benchmark: mvcc over the LMDB backend, as the server drives it.
 *
 *   node dist/bench/storage.js [--puts N] [--reads N] [--restore-keys N] [--dir D] [--json FILE]
 *
 * - put: one Put request per raft entry (8-byte key, 256-byte value), each
 *   in its own backend scope with the applied index, in chunks of 1,000
 *   entries per event-loop turn; batched backend commits (100 ms / 10,000
 *   ops), fsync on. Timed up to a durable forceCommit.
 * - get: single-key serializable Range requests on random keys, with the
 *   last batch still uncommitted (overlay) and after a full commit.
 * - restore: opening a store of N keys (rebuilding the index).
 * Aims: put >= 50,000/s, get >= 200,000/s.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { etcdserverpb } from '../src/pb/index.js';
import { Schema } from '../src/schema/index.js';
import { KvStore, putRequest, rangeRequest } from '../src/mvcc/index.js';

const { values } = parseArgs({
  options: {
    puts: { type: 'string', default: '200000' },
    reads: { type: 'string', default: '300000' },
    'restore-keys': { type: 'string', default: '1000000' },
    dir: { type: 'string' },
    json: { type: 'string' },
  },
});
const putsN = Number(values.puts);
const readsN = Number(values.reads);
const restoreKeys = Number(values['restore-keys']);
const applyChunk = 1000;

// A full GC before and after measuring the index's heap (the usual --expose-gc, set at run time).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;


/** 8 bytes, spread over the key space (an odd multiplier permutes 32-bit ints). */
function keyOf(i: number): Uint8Array {
  return Buffer.from(((i * 2654435761) >>> 0).toString(16).padStart(8, '0'));
}

const value = new Uint8Array(256).fill(0x76);

interface Row {
  readonly name: string;
  readonly ops: number;
  readonly ms: number;
  readonly note: string;
}

const rows: Row[] = [];

function record(name: string, ops: number, ms: number, note: string): void {
  rows.push({ name, ops, ms, note });
}

async function yieldTurn(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Applies puts [from, to) as raft entries would be applied; the applied index follows. */
async function applyPuts(schema: Schema, kv: KvStore, from: number, to: number, firstIndex: number): Promise<void> {
  const req = etcdserverpb.PutRequest.create({ value });
  for (let i = from; i < to; i++) {
    schema.backend.write(() => {
      req.key = keyOf(i);
      putRequest(kv, req);
      schema.setConsistentIndex({ index: firstIndex + i - from, term: 1 });
    });
    if ((i - from + 1) % applyChunk === 0) await yieldTurn();
  }
}

function reads(kv: KvStore, n: number, keysN: number): number {
  // Requests decoded beforehand, as the gRPC layer hands them over.
  const reqs = Array.from({ length: Math.min(n, 100_000) }, (_, i) => etcdserverpb.RangeRequest.create({ key: keyOf((i * 7919) % keysN), serializable: true }));
  let found = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) found += rangeRequest(kv, reqs[i % reqs.length] as etcdserverpb.RangeRequest).kvs.length;
  const ms = performance.now() - t0;
  if (found !== n) throw new Error(`reads found ${found} of ${n}`);
  return ms;
}

async function benchPutsAndReads(dir: string): Promise<void> {
  const schema = Schema.open({ path: join(dir, 'puts.db') });
  const kv = KvStore.open({ schema });
  const t0 = performance.now();
  await applyPuts(schema, kv, 0, putsN, 1);
  const appliedMs = performance.now() - t0;
  await schema.backend.forceCommit();
  const durableMs = performance.now() - t0;
  record('put (applied)', putsN, appliedMs, 'Put request + applied index per entry, reads see it');
  record('put (durable)', putsN, durableMs, 'through the final fsync\'ed commit');
  // Some writes still in the overlay, as on a busy server.
  await applyPuts(schema, kv, 0, 5000, putsN + 1);
  record('get (overlay)', readsN, reads(kv, readsN, putsN), 'single-key Range, 5,000 writes uncommitted');
  await schema.backend.forceCommit();
  record('get (committed)', readsN, reads(kv, readsN, putsN), 'single-key Range from LMDB');
  kv.close();
  await schema.backend.close();
}

async function benchRestore(dir: string): Promise<void> {
  if (restoreKeys <= 0) return;
  const path = join(dir, 'restore.db');
  const schema = Schema.open({ path, batchOpsMax: 50_000 });
  const kv = KvStore.open({ schema });
  for (let i = 0; i < restoreKeys; i += applyChunk) {
    kv.write((txn) => {
      for (let j = i; j < Math.min(i + applyChunk, restoreKeys); j++) txn.put(keyOf(j), value, 0n);
    });
    await yieldTurn();
  }
  await schema.backend.close();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const reopened = Schema.open({ path });
  const kv2 = KvStore.open({ schema: reopened });
  const ms = performance.now() - t0;
  gc();
  const heapBytes = process.memoryUsage().heapUsed - heapBefore;
  record('restore index', kv2.indexedKeys, ms, `open a store of ${restoreKeys} keys; index heap ${(heapBytes / 1e6).toFixed(0)} MB (${Math.round(heapBytes / restoreKeys)} B/key)`);
  kv2.close();
  await reopened.backend.close();
}

function print(): void {
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(18) : c.padStart(12))).join(' ');
  console.log(line(['storage', 'ops', 'ms', 'ops/s']) + '   note');
  for (const r of rows) {
    console.log(line([r.name, String(r.ops), r.ms.toFixed(0), Math.round((r.ops / r.ms) * 1000).toLocaleString('en-US')]) + `   ${r.note}`);
  }
}

async function main(): Promise<void> {
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'bench-storage-'));
  try {
    await benchPutsAndReads(dir);
    await benchRestore(dir);
  } finally {
    if (values.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
  print();
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(rows, null, 2) + '\n');
}

await main();
