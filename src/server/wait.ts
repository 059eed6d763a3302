/**
 * Waiting for raft: a proposer registers the id of its request and is woken
 * with the apply result when the entry with that id is applied; readers wait
 * for the applied index to reach a read index. Both are bounded by the
 * caller's timeouts, and both are failed all at once when the member stops.
 */
import { assert } from '../base/index.js';

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

export class WaitRegistry<T> {
  private readonly waiters = new Map<bigint, Waiter<T>>();

  constructor(private readonly pendingMax: number) {}

  get size(): number {
    return this.waiters.size;
  }

  /** Registers id; returns undefined when too many are pending (the caller answers "too many requests"). */
  register(id: bigint): Promise<T> | undefined {
    assert(!this.waiters.has(id), 'request id registered twice');
    if (this.waiters.size >= this.pendingMax) return undefined;
    return new Promise<T>((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
    });
  }

  has(id: bigint): boolean {
    return this.waiters.has(id);
  }

  trigger(id: bigint, value: T): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    this.waiters.delete(id);
    w.resolve(value);
  }

  fail(id: bigint, err: unknown): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    this.waiters.delete(id);
    w.reject(err);
  }

  failAll(err: unknown): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of all) w.reject(err);
  }
}

interface IndexWaiter {
  index: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** Resolves waits for "applied index >= i" as the applied index advances. */
export class AppliedIndexWait {
  // A binary min-heap on index.
  private readonly heap: IndexWaiter[] = [];
  private applied: number;

  constructor(applied: number) {
    this.applied = applied;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get pending(): number {
    return this.heap.length;
  }

  wait(index: number): Promise<void> {
    if (index <= this.applied) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.push({ index, resolve, reject }));
  }

  advance(applied: number): void {
    assert(applied >= this.applied, `applied index went back: ${this.applied} -> ${applied}`);
    this.applied = applied;
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.index > applied) return;
      this.pop().resolve();
    }
  }

  failAll(err: unknown): void {
    const all = this.heap.splice(0);
    for (const w of all) w.reject(err);
  }

  private push(w: IndexWaiter): void {
    const h = this.heap;
    h.push(w);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as IndexWaiter;
      if (p.index <= w.index) break;
      h[i] = p;
      i = parent;
    }
    h[i] = w;
  }

  private pop(): IndexWaiter {
    const h = this.heap;
    const top = h[0] as IndexWaiter;
    const last = h.pop() as IndexWaiter;
    if (h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as IndexWaiter).index < (h[l] as IndexWaiter).index ? r : l;
      if ((h[c] as IndexWaiter).index >= last.index) break;
      h[i] = h[c] as IndexWaiter;
      i = c;
    }
    h[i] = last;
    return top;
  }
}
