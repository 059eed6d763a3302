/**
 * The parent side of the load generator: forks worker processes, splits a
 * job's connections and clients between them, starts them together once all
 * are connected, and merges their histograms, counts and CPU.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Histogram } from './histogram.js';
import type { FillJob, FromWorker, Job, ToWorker, UnaryJob, WorkerResult } from './worker.js';

const workerScript = resolve(import.meta.dirname, 'worker.js');
/** Bound on connecting plus the run itself beyond its nominal length. */
const slackMs = 60_000;

export interface LoadResult {
  /** Completed requests (or watch events) inside the window. */
  readonly count: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly wallMs: number;
  /** Requests (events) per second. */
  readonly rate: number;
  readonly hist: Histogram;
  /** Client CPU over the window, in cores (1 = one core busy), summed over workers. */
  readonly clientCores: number;
  readonly workers: number;
}

class WorkerHandle {
  private readonly child: ChildProcess;
  private readonly messages: FromWorker[] = [];
  private waiter: (() => void) | undefined;
  private exited = false;

  constructor() {
    this.child = fork(workerScript, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: FromWorker) => {
      this.messages.push(m);
      this.waiter?.();
    });
    this.child.once('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  send(m: ToWorker): void {
    this.child.send(m);
  }

  async next(timeoutMs: number): Promise<FromWorker> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.shift();
      if (m !== undefined) return m;
      if (this.exited) throw new Error('load worker exited early');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('load worker timed out');
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(timer);
          r();
        };
      });
      this.waiter = undefined;
    }
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

function expect<T extends FromWorker['op']>(m: FromWorker, op: T): Extract<FromWorker, { op: T }> {
  if (m.op === 'failed') throw new Error(`load worker: ${m.message}`);
  if (m.op !== op) throw new Error(`load worker: expected ${op}, got ${m.op}`);
  return m as Extract<FromWorker, { op: T }>;
}

/** Splits n into parts as even as possible, each at least 1 (parts <= n). */
function split(n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}

/** A unary job split over up to `workers` processes (never more processes than connections). */
function splitUnary(job: UnaryJob, workers: number): UnaryJob[] {
  const n = Math.max(1, Math.min(workers, job.conns));
  const conns = split(job.conns, n);
  const clients = split(job.clients, n);
  // Rotate endpoints so each worker's connections spread like the whole job's would.
  let connOffset = 0;
  return conns.map((c, i) => {
    const endpoints = job.endpoints.map((_, k) => job.endpoints[(k + connOffset) % job.endpoints.length] ?? '');
    connOffset += c;
    return { ...job, endpoints, conns: c, clients: clients[i] ?? 1, seed: job.seed + i * 7919 };
  });
}

/** A fill job's key range split into contiguous parts, one per worker. */
function splitFill(job: FillJob, workers: number): FillJob[] {
  const n = Math.max(1, Math.min(workers, job.conns));
  const conns = split(job.conns, n);
  const clients = split(job.clients, n);
  const keys = split(job.to - job.from, n);
  let from = job.from;
  return keys.map((k, i) => {
    const part = { ...job, conns: conns[i] ?? 1, clients: clients[i] ?? 1, from, to: from + k };
    from += k;
    return part;
  });
}

function splitJob(job: Job, workers: number): Job[] {
  switch (job.type) {
    case 'unary':
      return splitUnary(job, workers);
    case 'fill':
      return splitFill(job, workers);
    case 'watch':
      return [job];
  }
}

/** How long a job should take; a fill has no fixed length (bounded by the slack instead). */
function nominalMs(job: Job): number {
  switch (job.type) {
    case 'unary':
      return job.warmupMs + job.measureMs;
    case 'watch':
      return (job.puts * 1000) / job.putRate;
    case 'fill':
      return 30 * 60_000;
  }
}

/** Called when the measured window opens and closes (server CPU meters). */
export interface WindowProbe {
  start(): void;
  stop(): void;
}

/** Runs one job to completion and returns the merged figures. Every worker is gone when this settles. */
export async function runLoad(job: Job, workers: number, probe?: WindowProbe): Promise<LoadResult> {
  const parts = splitJob(job, workers);
  const handles = parts.map(() => new WorkerHandle());
  const timers: NodeJS.Timeout[] = [];
  try {
    parts.forEach((p, i) => handles[i]?.send({ op: 'run', job: p }));
    for (const h of handles) expect(await h.next(slackMs), 'ready');
    for (const h of handles) h.send({ op: 'go' });
    // The probe's window follows the workers' (a late timer on a busy machine still closes it once).
    let probeState: 'before' | 'open' | 'closed' = 'before';
    const open = (): void => {
      if (probeState !== 'before') return;
      probeState = 'open';
      probe?.start();
    };
    const close = (): void => {
      if (probeState !== 'open') return;
      probeState = 'closed';
      probe?.stop();
    };
    if (job.type === 'unary') {
      timers.push(setTimeout(open, job.warmupMs));
      timers.push(setTimeout(close, job.warmupMs + job.measureMs));
    } else {
      open();
    }
    const results: WorkerResult[] = [];
    for (const h of handles) results.push(expect(await h.next(nominalMs(job) + slackMs), 'result').result);
    close();
    return merge(results);
  } finally {
    for (const t of timers) clearTimeout(t);
    for (const h of handles) h.kill();
  }
}

function merge(results: readonly WorkerResult[]): LoadResult {
  const hist = new Histogram();
  let errors = 0;
  let firstError: string | undefined;
  let wallMs = 0;
  let cpuUs = 0;
  for (const r of results) {
    hist.merge(Histogram.fromJSON(r.hist));
    errors += r.errors;
    firstError ??= r.firstError;
    wallMs = Math.max(wallMs, r.wallMs);
    cpuUs += r.cpuUs;
  }
  const rate = wallMs > 0 ? (hist.count * 1000) / wallMs : 0;
  return { count: hist.count, errors, firstError, wallMs, rate, hist, clientCores: wallMs > 0 ? cpuUs / 1000 / wallMs : 0, workers: results.length };
}
