/**
 * The sections of `npm run bench`. Each runs in this process or spawns its
 * own children, prints its table, and returns its rows as plain data.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compare } from './compare.js';
import { defragLatency } from './defrag.js';
import { memory } from './memory.js';

export interface SectionOptions {
  readonly quick: boolean;
  /** Workload families named on the command line (put, range, txn, watch); empty for all. */
  readonly families: readonly string[];
  /** Load-generator processes for the many-client workloads. */
  readonly workers: number;
  /** Windows per server per workload in a full run of the server sections (--rounds). */
  readonly rounds: number;
}

export interface Section {
  readonly name: string;
  readonly about: string;
  /** Run when no section is named. */
  readonly defaultOn: boolean;
  run(opts: SectionOptions): Promise<unknown>;
}

/** Runs a compiled bench script beside this file with its output shown; rejects on failure. */
export function runScript(script: string, args: readonly string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [resolve(import.meta.dirname, script), ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${script} failed (${signal ?? `code ${String(code)}`})`));
    });
  });
}

/** mvcc over LMDB without a server (bench/storage.ts), in a process of its own for clean heap figures. */
async function storage(opts: SectionOptions): Promise<unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-main-'));
  try {
    const json = join(dir, 'storage.json');
    const sizes = opts.quick ? ['--puts', '50000', '--reads', '100000', '--restore-keys', '100000'] : [];
    await runScript('storage.js', [...sizes, '--json', json]);
    return JSON.parse(readFileSync(json, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const sections: readonly Section[] = [
  {
    name: 'storage',
    about: 'mvcc puts (8 B keys, 256 B values, batched commits) and single-key reads, no server',
    defaultOn: true,
    run: storage,
  },
  {
    name: 'single',
    about: 'etcd vs etcd-ts, one member each: put, range (l/s), txn-put, watch latency',
    defaultOn: true,
    run: (opts) => compare(1, opts),
  },
  {
    name: 'cluster',
    about: 'the same workloads on a 3-member cluster of each (writes to the leader; reads and watchers on every member, a single connection on a follower)',
    defaultOn: true,
    run: (opts) => compare(3, opts),
  },
  {
    name: 'memory',
    about: 'RSS and data dir per million keys after loading 1M keys into one member of each (slow; 50k keys with --quick)',
    defaultOn: false,
    run: (opts) => memory(opts),
  },
  {
    name: 'defrag',
    about: 'put and get latency while one member of each, holding 200k keys of 1 KiB, is defragmented (20k with --quick)',
    defaultOn: false,
    run: (opts) => defragLatency(opts),
  },
];
