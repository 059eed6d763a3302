/**
 * The simulation's one source of time and order: a queue of events on a
 * virtual millisecond clock, run one at a time, with every microtask an
 * event started drained before the next event runs. Nothing in a simulated
 * member touches a real timer or real I/O, so the order of everything is
 * fixed by the seed that drives the events.
 *
 * A Proc is one incarnation of a member: the timers, scheduler and clock its
 * code is given. Killing it (a crash) drops every event it still has queued,
 * so the dead incarnation's pending work never runs.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Clock } from '../../src/base/index.js';
import type { TimerHandle, Timers } from '../../src/backend/index.js';
import type { LoopScheduler } from '../../src/server/raft-node.js';

interface Event {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  readonly proc: Proc | undefined;
}

/** Events past this many in one run mean a livelock. */
const eventsMax = 20_000_000;

export class SimLoop implements Clock {
  private now = 0;
  private seq = 0;
  private heap: Event[] = [];
  private readonly cancelled = new Set<number>();
  private readonly digest: Hash = createHash('sha256');
  events = 0;
  /** Set by run(): the event being run threw. */
  private failure: Error | undefined;

  nowMs(): number {
    return this.now;
  }

  wallMs(): number {
    return 1_700_000_000_000 + this.now;
  }

  /** Prints every trace line too (debugging one seed). */
  echo = false;

  /** Adds a line to the trace whose digest identifies the run. */
  trace(line: string): void {
    this.digest.update(`${this.now} ${line}\n`);
    if (this.echo) process.stdout.write(`${this.now} ${line}\n`);
  }

  traceDigest(): string {
    return this.digest.copy().digest('hex');
  }

  /** Runs fn delayMs from now (0: after everything already due now); returns an id for cancel. */
  at(delayMs: number, fn: () => void, proc?: Proc): number {
    const e: Event = { at: this.now + Math.max(0, Math.floor(delayMs)), seq: this.seq++, fn, proc };
    this.push(e);
    return e.seq;
  }

  cancel(id: number): void {
    this.cancelled.add(id);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.at(ms, resolve));
  }

  /**
   * Runs events in (time, sequence) order until the clock passes endMs or
   * done() says so; after each, lets every microtask it started run.
   */
  async run(endMs: number, done: () => boolean = () => false): Promise<void> {
    while (!done()) {
      const e = this.pop();
      if (e === undefined) break;
      if (e.at > endMs) {
        this.push(e);
        this.now = endMs;
        break;
      }
      this.now = e.at;
      if (this.cancelled.delete(e.seq) || e.proc?.dead === true) continue;
      if (++this.events > eventsMax) throw new Error(`simulation: more than ${eventsMax} events`);
      try {
        e.fn();
      } catch (err) {
        this.fail(err);
      }
      await drainMicrotasks();
      if (this.failure !== undefined) throw this.failure;
    }
  }

  /** A failure in a promise chain of the simulation: ends run() with it. */
  fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p] as Event)) break;
      h[i] = h[p] as Event;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && before(h[r] as Event, h[l] as Event) ? r : l;
      if (!before(h[c] as Event, last)) break;
      h[i] = h[c] as Event;
      i = c;
    }
    h[i] = last;
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Resolves after every queued microtask (and those they queue) has run. */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One incarnation of a member: its timers, its loop scheduler, its clock. */
export class Proc implements Timers, LoopScheduler, Clock {
  dead = false;

  constructor(readonly loop: SimLoop) {}

  nowMs(): number {
    return this.loop.nowMs();
  }

  wallMs(): number {
    return this.loop.wallMs();
  }

  kill(): void {
    this.dead = true;
  }

  after(ms: number, fn: () => void): number {
    return this.loop.at(ms, fn, this);
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return { timerId: this.after(ms, fn) };
  }

  clearTimeout(handle: TimerHandle): void {
    this.loop.cancel(handle.timerId);
  }

  every(ms: number, fn: () => void): () => void {
    let stopped = false;
    const step = (): void => {
      if (stopped) return;
      fn();
      this.after(ms, step);
    };
    this.after(ms, step);
    return () => {
      stopped = true;
    };
  }

  soon(fn: () => void): void {
    this.after(0, fn);
  }
}
