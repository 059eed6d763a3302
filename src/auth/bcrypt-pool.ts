/**
 * bcrypt off the main thread. bcryptjs is pure JS: cost 10 takes ~60-150 ms
 * of CPU, which on the event loop would stall every client. A pool of one or
 * two worker threads runs it; callers wait on a Promise. The queue in front
 * is bounded: past it, requests fail fast with TooManyRequests rather than
 * pile up behind a password-guessing client.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { assert, type Logger } from '../base/index.js';
import { AuthError } from './errors.js';

type Task =
  | { readonly op: 'hash'; readonly password: string; readonly cost: number }
  | { readonly op: 'compare'; readonly password: string; readonly hash: string };

/** A message to a worker. */
export type BcryptTask = Task & { readonly id: number };

export type BcryptReply =
  | { readonly id: number; readonly ok: true; readonly value: string | boolean }
  | { readonly id: number; readonly ok: false; readonly error: string };

export const bcryptMinCost = 4;
export const bcryptMaxCost = 31;
export const bcryptDefaultCost = 10;

/** etcd's rule for `--bcrypt-cost`: a cost out of [4, 31] means the default, 10. */
export function normalizeBcryptCost(cost: number): number {
  return Number.isInteger(cost) && cost >= bcryptMinCost && cost <= bcryptMaxCost ? cost : bcryptDefaultCost;
}

/** What etcd's auth store says at start when --bcrypt-cost is one bcrypt does not take (it is no error). */
export function warnIfBcryptCostInvalid(cost: number, logger: Logger): void {
  if (normalizeBcryptCost(cost) === cost) return;
  logger.warn('use default bcrypt cost instead of the invalid given cost', {
    'min-cost': bcryptMinCost,
    'max-cost': bcryptMaxCost,
    'default-cost': bcryptDefaultCost,
    'given-cost': cost,
  });
}

export interface BcryptPoolOptions {
  /** Worker threads, 1 or 2 (default: 2 when the machine has more than one core). */
  readonly size?: number;
  /** Tasks waiting for a worker (not counting those running); default 256. */
  readonly queueMax?: number;
}

interface Pending {
  readonly task: Task;
  readonly resolve: (value: string | boolean) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  running: (Pending & { readonly id: number }) | undefined;
}

const workerUrl = new URL('./bcrypt-worker.js', import.meta.url);

export class BcryptPool {
  readonly size: number;
  readonly queueMax: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: BcryptPoolOptions = {}) {
    this.size = opts.size ?? (availableParallelism() > 1 ? 2 : 1);
    this.queueMax = opts.queueMax ?? 256;
    assert(this.size === 1 || this.size === 2, `bcrypt pool size must be 1 or 2: ${this.size}`);
    assert(Number.isSafeInteger(this.queueMax) && this.queueMax >= 0, 'bad bcrypt queueMax');
  }

  /** A bcrypt hash ("$2b$<cost>$...") of the password with a fresh salt. */
  async hash(password: string, cost: number): Promise<string> {
    assert(Number.isInteger(cost) && cost >= bcryptMinCost && cost <= bcryptMaxCost, `bcrypt cost out of range: ${cost}`);
    const v = await this.submit({ op: 'hash', password, cost });
    assert(typeof v === 'string', 'bcrypt worker answered a hash with a non-string');
    return v;
  }

  /** Whether the password matches the hash; a malformed hash never matches. */
  async compare(password: string, hash: string): Promise<boolean> {
    const v = await this.submit({ op: 'compare', password, hash }).catch(() => false);
    return v === true;
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.queue.length + this.slots.filter((s) => s.running !== undefined).length;
  }

  /** Stops the workers; queued and running tasks fail. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('bcrypt pool closed');
    for (const p of this.queue.splice(0)) p.reject(err);
    const slots = this.slots.splice(0);
    for (const s of slots) s.running?.reject(err);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private submit(task: Task): Promise<string | boolean> {
    if (this.closed) return Promise.reject(new Error('bcrypt pool closed'));
    const idle = this.slots.some((s) => s.running === undefined) || this.slots.length < this.size;
    if (!idle && this.queue.length >= this.queueMax) return Promise.reject(new AuthError('TooManyRequests'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.running === undefined);
      if (slot === undefined && this.slots.length < this.size) slot = this.spawn();
      if (slot === undefined) return;
      const p = this.queue.shift() as Pending;
      const id = this.nextId++;
      slot.running = { ...p, id };
      slot.worker.ref();
      slot.worker.postMessage({ ...p.task, id });
    }
  }

  private spawn(): Slot {
    const worker = new Worker(workerUrl);
    const slot: Slot = { worker, running: undefined };
    worker.unref();
    worker.on('message', (reply: BcryptReply) => {
      const run = slot.running;
      assert(run !== undefined && run.id === reply.id, 'bcrypt reply for a task not running');
      slot.running = undefined;
      worker.unref();
      if (reply.ok) run.resolve(reply.value);
      else run.reject(new Error(`bcrypt: ${reply.error}`));
      this.dispatch();
    });
    const fail = (err: Error): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      slot.running?.reject(err);
      slot.running = undefined;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`bcrypt worker exited with code ${code}`)));
    this.slots.push(slot);
    return slot;
  }
}
