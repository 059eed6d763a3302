/**
 * A bounded FIFO on a ring buffer. The capacity is fixed at construction; a
 * push beyond the limit the caller passes (at most the capacity) is refused,
 * never buffered, which is how the transport keeps its promise of bounded
 * memory per peer.
 */
import { assert } from '../base/index.js';

export class BoundedQueue<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, `bad queue capacity ${capacity}`);
    this.items = new Array<T | undefined>(capacity).fill(undefined);
  }

  get length(): number {
    return this.count;
  }

  /** Appends unless the queue holds `limit` items already; returns whether it did. */
  push(item: T, limit = this.capacity): boolean {
    assert(limit <= this.capacity, 'limit above capacity');
    if (this.count >= limit) return false;
    this.items[(this.head + this.count) % this.capacity] = item;
    this.count++;
    return true;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return item;
  }

  /** Empties the queue; returns how many items were dropped. */
  clear(): number {
    const n = this.count;
    while (this.count > 0) this.shift();
    return n;
  }
}
