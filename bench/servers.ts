/**
 * The servers under test: real etcd and etcd-ts started side by side with
 * the same flags (test/harness does the spawning, ports and cleanup), data
 * dirs under one temp dir on the same filesystem. Also what is read from
 * /proc about them: CPU time, RSS, and the machine's total busy time, so a
 * table can say how loaded the machine was by others.
 */
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdMissing, startCluster, type Cluster, type MemberKind } from '../test/harness/index.js';
import { openChannel, methods } from '../test/harness/index.js';
import { etcdserverpb } from '../src/pb/index.js';

export const kinds: readonly MemberKind[] = ['etcd', 'etcd-ts'];

const ticksPerSecond = 100;

/** user+system CPU seconds of a process, from /proc/<pid>/stat; 0 if it is gone. */
export function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / ticksPerSecond;
}

/** Resident set size in bytes, from /proc/<pid>/status. */
export function rssBytesOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Bytes allocated on disk under dir (blocks, as du counts them: preallocated WAL space included). */
export function diskBytesOf(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    total += st.blocks * 512;
    if (st.isDirectory()) total += diskBytesOf(p);
  }
  return total;
}

/** A CPU meter over a set of processes and the machine: start(), then stop() gives cores used. */
export class CpuMeter {
  private pidsCpu0 = 0;
  private machine0 = 0;
  private t0 = 0;
  private result: { cores: number; machineCores: number } | undefined;

  constructor(private readonly pids: () => readonly (number | undefined)[]) {}

  start(): void {
    this.pidsCpu0 = this.pidsCpu();
    this.machine0 = machineBusySeconds();
    this.t0 = performance.now();
    this.result = undefined;
  }

  stop(): void {
    const s = (performance.now() - this.t0) / 1000;
    if (s <= 0) return;
    this.result = { cores: (this.pidsCpu() - this.pidsCpu0) / s, machineCores: (machineBusySeconds() - this.machine0) / s };
  }

  /** Cores used by the processes, and by the whole machine, between start and stop. */
  get reading(): { cores: number; machineCores: number } {
    return this.result ?? { cores: 0, machineCores: 0 };
  }

  private pidsCpu(): number {
    return this.pids().reduce<number>((sum, pid) => sum + cpuSecondsOf(pid), 0);
  }
}

/** Starts one cluster of each kind (etcd first, then etcd-ts) with the same flags. */
export async function startPair(size: number, dir: string, extraFlags: readonly string[] = []): Promise<Map<MemberKind, Cluster>> {
  const missing = etcdMissing();
  if (missing !== false) throw new Error(`bench needs the real etcd: ${missing}`);
  const out = new Map<MemberKind, Cluster>();
  try {
    for (const kind of kinds) out.set(kind, await startCluster({ kind, size, dir, extraFlags, readyTimeoutMs: 60_000 }));
  } catch (e) {
    await closeAll(out);
    throw e;
  }
  return out;
}

/**
 * Starts one single-member cluster of each kind and measures each in turn
 * (the other idles meanwhile); every process and file is gone when it settles.
 */
export async function eachKindAlone<T>(label: string, measure: (kind: MemberKind, c: Cluster) => Promise<T>): Promise<T[]> {
  const dir = mkdtempSync(join(tmpdir(), `bench-${label}-`));
  const rows: T[] = [];
  const clusters = await startPair(1, dir);
  try {
    for (const kind of kinds) {
      const c = clusters.get(kind);
      if (c !== undefined) rows.push(await measure(kind, c));
    }
  } finally {
    await closeAll(clusters);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export async function closeAll(clusters: Map<MemberKind, Cluster>): Promise<void> {
  await Promise.all([...clusters.values()].map((c) => c.close()));
}

/** One Put through a fresh channel (setup of workloads, not measured). */
export async function putOnce(endpoint: string, key: Uint8Array, value: Uint8Array): Promise<void> {
  const ch = openChannel(endpoint, 10_000);
  try {
    await ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key, value }), { timeoutMs: 10_000 });
  } finally {
    ch.close();
  }
}
