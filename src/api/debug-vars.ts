/**
 * GET /debug/vars: what etcd 3.4 serves there through Go's expvar package.
 * The body is expvar's: "{\n", one `"name": value` per variable in name
 * order, joined by ",\n", then "\n}\n".
 *
 * - cmdline: the process's command line (node, its flags, the script, ours).
 * - file_descriptor_limit: the soft limit on open files.
 * - memstats: the fields of Go's runtime.MemStats that have a measured
 *   counterpart in V8, under Go's names and in Go's order: heap sizes from
 *   V8's heap statistics, Sys as the resident set, and the garbage
 *   collections seen by a performance observer (count, pauses and their
 *   ends in a ring of 256, as Go keeps them) since the member was first
 *   asked for /debug/vars: observing every collection from the start cost
 *   a follower's watch events about half a millisecond at the 99th
 *   percentile in `npm run bench -- cluster watch`. Fields with no
 *   counterpart (allocation totals, span and cache sizes, size classes) are
 *   left out rather than filled with made-up numbers.
 * - raft.status: the member's raft status as etcd's raft writes it, with
 *   the progress of every member when this one leads and `{}` otherwise.
 */
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { idToHex } from '../base/index.js';
import type { EtcdServer } from '../server/index.js';

/** Go's runtime keeps the last 256 pauses in a ring indexed by NumGC. */
const pauseRing = 256;

/** The collections this process has made since it was first asked for /debug/vars. */
class GcRecord {
  count = 0;
  pauseTotalNs = 0;
  lastEndNs = 0;
  readonly pauseNs: number[] = new Array<number>(pauseRing).fill(0);
  readonly pauseEndNs: number[] = new Array<number>(pauseRing).fill(0);

  constructor() {
    const observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.add(e.duration, e.startTime + e.duration);
    });
    observer.observe({ entryTypes: ['gc'] });
  }

  /** One collection of `ms` milliseconds that ended `endMs` after the time origin. */
  private add(ms: number, endMs: number): void {
    const ns = Math.round(ms * 1e6);
    const end = Math.round((performance.timeOrigin + endMs) * 1e6);
    const slot = this.count % pauseRing;
    this.pauseNs[slot] = ns;
    this.pauseEndNs[slot] = end;
    this.count++;
    this.pauseTotalNs += ns;
    this.lastEndNs = end;
  }
}

/** Made on the first /debug/vars request, once per process. */
let gc: GcRecord | undefined;

function memstats(): Record<string, unknown> {
  const heap = getHeapStatistics();
  const g = (gc ??= new GcRecord());
  return {
    Alloc: heap.used_heap_size,
    Sys: process.memoryUsage.rss(),
    HeapAlloc: heap.used_heap_size,
    HeapSys: heap.total_heap_size,
    HeapIdle: heap.total_heap_size - heap.used_heap_size,
    HeapInuse: heap.used_heap_size,
    LastGC: g.lastEndNs,
    PauseTotalNs: g.pauseTotalNs,
    PauseNs: g.pauseNs,
    PauseEnd: g.pauseEndNs,
    NumGC: g.count,
    EnableGC: true,
    DebugGC: false,
  };
}

/** The soft limit on open files, as /proc/self/limits gives it; 0 where there is no /proc. */
export function openFilesLimit(): number {
  try {
    return Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The raft status in the JSON etcd's raft marshals it to (fixed key order, ids in hex). */
export function raftStatusJson(s: EtcdServer): string {
  const st = s.raft.rawNode.status();
  const progress = [...st.progress].map(([id, pr]) => `${JSON.stringify(idToHex(id))}:{"match":${pr.match},"next":${pr.next},"state":${JSON.stringify(pr.state)}}`);
  return (
    `{"id":"${idToHex(st.id)}","term":${st.term},"vote":"${idToHex(st.vote)}","commit":${st.commit},"lead":"${idToHex(st.lead)}",` +
    `"raftState":${JSON.stringify(st.raftState)},"applied":${st.applied},"progress":{${progress.join(',')}},"leadtransferee":"${idToHex(st.leadTransferee)}"}`
  );
}

/** The body of GET /debug/vars. */
export function debugVars(s: EtcdServer): string {
  const vars: [string, string][] = [
    ['cmdline', JSON.stringify([process.argv[0], ...process.execArgv, ...process.argv.slice(1)])],
    ['file_descriptor_limit', String(openFilesLimit())],
    ['memstats', JSON.stringify(memstats())],
    ['raft.status', raftStatusJson(s)],
  ];
  return `{\n${vars.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(',\n')}\n}\n`;
}
