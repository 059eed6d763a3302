/**
 * WAL write-path benchmark (not a test): node .build/<x>/src/wal/bench.js [seconds-per-case] [dir]
 *
 * Part 1 measures the raw options for a segment file: how it is allocated
 * (growing, ftruncate'd sparse, zero-filled, fallocate(1)) and how a batch
 * is written (writeSync + fdatasync on the thread pool, async write +
 * fdatasync, writev of one buffer per record). Part 2 measures Wal.save with
 * 300-byte entries, 1 and 100 per call, with and without pre-allocation, and
 * how long each call holds the event loop (encode + pwrite).
 *
 * Each case first waits (up to 60 s) for other processes to use less than
 * 0.3 cores and prints how much they used meanwhile (`others`); figures with
 * others above ~0.1 are noise. The recorded figures are in index.ts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { raftpb } from '../pb/index.js';
import { nodeWalFs } from './fs.js';
import { Wal, type Preallocate } from './index.js';

const writeAsync = promisify(fs.write);
const segmentBytes = 64 * 1024 * 1024;
const recordBytes = 320;

type Alloc = 'grow' | 'sparse' | 'zero' | 'fallocate';
type WriteMode = 'writeSync' | 'writeAsync' | 'writev';

interface Result {
  /** CPU cores used by other processes during the case (a quiet machine reads about 0). */
  othersCores?: number;
  syncsPerSec: number;
  entriesPerSec: number;
  p50Us: number;
  p99Us: number;
  /** Mean time per call spent before its first await (encode + write), in microseconds. */
  loopUs?: number;
}

/** Busy CPU seconds of the whole machine so far, from /proc/stat (clock ticks of 10 ms). */
function machineBusySeconds(): number {
  const first = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return (total - idle) / 100;
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Waits (up to 60 s) until other processes use less than 0.3 cores, as the perf-etcd scripts do. */
async function waitQuiet(): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const b0 = machineBusySeconds();
    const o0 = ownCpuSeconds();
    await new Promise((r) => setTimeout(r, 1000));
    if (machineBusySeconds() - b0 - (ownCpuSeconds() - o0) < 0.3) return;
  }
}

/** Runs a case after waiting for a quiet machine and records how busy the others were meanwhile. */
async function measured(run: () => Promise<Result>): Promise<Result> {
  await waitQuiet();
  const t0 = performance.now();
  const b0 = machineBusySeconds();
  const o0 = ownCpuSeconds();
  const r = await run();
  const elapsedSec = (performance.now() - t0) / 1000;
  r.othersCores = Math.max(0, (machineBusySeconds() - b0 - (ownCpuSeconds() - o0)) / elapsedSec);
  return r;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
}

function summarize(latMs: number[], elapsedMs: number, perSync: number, loopMs?: number): Result {
  latMs.sort((a, b) => a - b);
  const r: Result = {
    syncsPerSec: (latMs.length * 1000) / elapsedMs,
    entriesPerSec: (latMs.length * perSync * 1000) / elapsedMs,
    p50Us: quantile(latMs, 0.5) * 1000,
    p99Us: quantile(latMs, 0.99) * 1000,
  };
  if (loopMs !== undefined) r.loopUs = (loopMs / latMs.length) * 1000;
  return r;
}

function allocate(path: string, alloc: Alloc): number {
  const fd = fs.openSync(path, 'w+');
  if (alloc === 'sparse') fs.ftruncateSync(fd, segmentBytes);
  if (alloc === 'zero') {
    const zero = Buffer.alloc(1024 * 1024);
    for (let off = 0; off < segmentBytes; off += zero.length) fs.writeSync(fd, zero, 0, zero.length, off);
  }
  if (alloc === 'fallocate') execFileSync('fallocate', ['-l', String(segmentBytes), path]);
  fs.fsyncSync(fd);
  return fd;
}

async function rawCase(dir: string, alloc: Alloc, mode: WriteMode, perSync: number, seconds: number): Promise<Result> {
  const path = join(dir, `raw-${alloc}`);
  const fd = allocate(path, alloc);
  const batch = Buffer.alloc(recordBytes * perSync, 0x5a);
  const pieces = Array.from({ length: perSync }, (_, i) => batch.subarray(i * recordBytes, (i + 1) * recordBytes));
  const lat: number[] = [];
  let off = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 && off + batch.length <= segmentBytes) {
    const s = performance.now();
    if (mode === 'writeSync') fs.writeSync(fd, batch, 0, batch.length, off);
    else if (mode === 'writev') fs.writevSync(fd, pieces, off);
    else await writeAsync(fd, batch, 0, batch.length, off);
    await nodeWalFs.fdatasync(fd);
    lat.push(performance.now() - s);
    off += batch.length;
  }
  const elapsed = performance.now() - t0;
  fs.closeSync(fd);
  fs.rmSync(path);
  return summarize(lat, elapsed, perSync);
}

async function walCase(dir: string, perSync: number, preallocate: Preallocate, seconds: number): Promise<Result> {
  const walDir = join(dir, `wal-${perSync}-${preallocate}`);
  const wal = await Wal.create(walDir, new Uint8Array(8), { preallocate });
  const data = new Uint8Array(300).fill(0x42);
  let index = 0;
  const lat: number[] = [];
  let loopMs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const entries: raftpb.Entry[] = [];
    for (let i = 0; i < perSync; i++) entries.push(raftpb.Entry.create({ index: ++index, term: 3, data }));
    const s = performance.now();
    const p = wal.save(raftpb.HardState.create({ term: 3, commit: index, vote: 1n }), entries, true);
    loopMs += performance.now() - s;
    await p;
    lat.push(performance.now() - s);
  }
  const elapsed = performance.now() - t0;
  await wal.close();
  fs.rmSync(walDir, { recursive: true });
  return summarize(lat, elapsed, perSync, loopMs);
}

function line(name: string, r: Result): string {
  const loop = r.loopUs === undefined ? '' : ` | loop ${r.loopUs.toFixed(0)} µs`;
  const others = ` | others ${(r.othersCores ?? 0).toFixed(2)}`;
  return `${name.padEnd(34)}${others} | ${r.syncsPerSec.toFixed(0).padStart(6)} syncs/s | ${r.entriesPerSec.toFixed(0).padStart(8)} entries/s | p50 ${r.p50Us.toFixed(0)} µs p99 ${r.p99Us.toFixed(0)} µs${loop}`;
}

function hasFallocate(): boolean {
  try {
    execFileSync('fallocate', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 2);
  const dir = fs.mkdtempSync(join(process.argv[3] ?? os.tmpdir(), 'etcd-ts-wal-bench-'));
  try {
    console.log(`# raw segment file, ${recordBytes}-byte records`);
    const allocs: Alloc[] = hasFallocate() ? ['grow', 'sparse', 'zero', 'fallocate'] : ['grow', 'sparse', 'zero'];
    for (const perSync of [1, 100]) {
      for (const alloc of allocs) {
        console.log(line(`${alloc} writeSync ${perSync}/sync`, await measured(() => rawCase(dir, alloc, 'writeSync', perSync, seconds))));
      }
      for (const mode of ['writeAsync', 'writev'] as const) {
        console.log(line(`zero ${mode} ${perSync}/sync`, await measured(() => rawCase(dir, 'zero', mode, perSync, seconds))));
      }
    }
    console.log('# Wal.save, 300-byte entries + hard state, mustSync');
    for (const perSync of [1, 100]) {
      for (const preallocate of ['zero', 'sparse', 'none'] as const) {
        const r = await measured(() => walCase(dir, perSync, preallocate, perSync === 100 ? seconds * 4 : seconds));
        console.log(line(`wal ${perSync}/save preallocate=${preallocate}`, r));
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
