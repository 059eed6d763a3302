/**
 * A binary min-heap of items ordered by a due time in ms, with each item's
 * position kept on the item itself so that reschedule and remove are
 * O(log n) without a side map or wrapper objects. One item can sit in several
 * queues at once (a lease is in the expiry queue and the checkpoint queue):
 * each queue reads and writes its own fields through a DueSlot.
 */
import { assert } from '../base/index.js';

/** Where one queue keeps its bookkeeping on an item. */
export interface DueSlot<T> {
  dueMs(item: T): number;
  setDueMs(item: T, dueMs: number): void;
  /** The item's index in the heap array; -1 while it is not queued. */
  position(item: T): number;
  setPosition(item: T, position: number): void;
}

export class DueQueue<T> {
  private readonly heap: T[] = [];

  /**
   * @param tieBreak orders items due at the same ms, so that the order in which
   * due items come out never depends on the history of inserts.
   */
  constructor(
    private readonly slot: DueSlot<T>,
    private readonly tieBreak: (a: T, b: T) => number,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  has(item: T): boolean {
    const at = this.slot.position(item);
    return at >= 0 && this.heap[at] === item;
  }

  /** Inserts the item, or moves it if it is already queued. */
  schedule(item: T, dueMs: number): void {
    assert(!Number.isNaN(dueMs), 'due time is NaN');
    this.slot.setDueMs(item, dueMs);
    if (this.has(item)) {
      this.fix(this.slot.position(item));
      return;
    }
    this.heap.push(item);
    this.slot.setPosition(item, this.heap.length - 1);
    this.up(this.heap.length - 1);
  }

  /** Removes the item if it is queued. */
  remove(item: T): void {
    if (!this.has(item)) return;
    const at = this.slot.position(item);
    const last = this.heap.pop();
    assert(last !== undefined, 'heap underflow');
    this.slot.setPosition(item, -1);
    if (at === this.heap.length) return;
    this.heap[at] = last;
    this.slot.setPosition(last, at);
    this.fix(at);
  }

  peek(): T | undefined {
    return this.heap[0];
  }

  pop(): T | undefined {
    const top = this.heap[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** Empties the queue, marking every item as not queued. */
  clear(): void {
    for (const item of this.heap) this.slot.setPosition(item, -1);
    this.heap.length = 0;
  }

  /** Checks the heap property and every position; for tests. O(n). */
  checkInvariants(): void {
    for (let i = 0; i < this.heap.length; i++) {
      const item = this.heap[i] as T;
      assert(this.slot.position(item) === i, `position of item ${i} is ${this.slot.position(item)}`);
      if (i > 0) assert(!this.less(item, this.heap[(i - 1) >> 1] as T), `heap order broken at ${i}`);
    }
  }

  private less(a: T, b: T): boolean {
    const da = this.slot.dueMs(a);
    const db = this.slot.dueMs(b);
    if (da !== db) return da < db;
    return this.tieBreak(a, b) < 0;
  }

  private fix(at: number): void {
    if (!this.up(at)) this.down(at);
  }

  /** Sifts the item at `at` towards the root; returns whether it moved. */
  private up(at: number): boolean {
    const item = this.heap[at] as T;
    let i = at;
    while (i > 0) {
      const parentAt = (i - 1) >> 1;
      const parent = this.heap[parentAt] as T;
      if (!this.less(item, parent)) break;
      this.heap[i] = parent;
      this.slot.setPosition(parent, i);
      i = parentAt;
    }
    this.heap[i] = item;
    this.slot.setPosition(item, i);
    return i !== at;
  }

  private down(at: number): void {
    const n = this.heap.length;
    const item = this.heap[at] as T;
    let i = at;
    for (;;) {
      const leftAt = 2 * i + 1;
      if (leftAt >= n) break;
      const rightAt = leftAt + 1;
      let childAt = leftAt;
      if (rightAt < n && this.less(this.heap[rightAt] as T, this.heap[leftAt] as T)) childAt = rightAt;
      const child = this.heap[childAt] as T;
      if (!this.less(child, item)) break;
      this.heap[i] = child;
      this.slot.setPosition(child, i);
      i = childAt;
    }
    this.heap[i] = item;
    this.slot.setPosition(item, i);
  }
}
