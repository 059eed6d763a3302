/**
 * A bounded async queue: the producer pushes and, when the queue is full,
 * awaits room (so a slow consumer holds its producer back instead of growing
 * memory); the consumer reads with await or for-await. Closing with an error
 * makes the reader throw it after the queued items are taken.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private readers: { resolve: (v: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private roomWaiters: (() => void)[] = [];
  private done = false;
  private error: Error | undefined;

  constructor(readonly capacity: number) {}

  get closed(): boolean {
    return this.done;
  }

  get size(): number {
    return this.items.length;
  }

  /** Queues v (dropped once closed); resolves when there is room for more. */
  async push(v: T): Promise<void> {
    if (this.done) return;
    const reader = this.readers.shift();
    if (reader !== undefined) {
      reader.resolve({ value: v, done: false });
      return;
    }
    this.items.push(v);
    while (this.items.length >= this.capacity && !this.done) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  /** Queues v unless the queue is full (then v is dropped and false returned); never waits. */
  offer(v: T): boolean {
    if (this.done) return false;
    const reader = this.readers.shift();
    if (reader !== undefined) {
      reader.resolve({ value: v, done: false });
      return true;
    }
    if (this.items.length >= this.capacity) return false;
    this.items.push(v);
    return true;
  }

  /** No more items; readers get err (if any) after the queued items. */
  close(err?: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = err;
    for (const r of this.readers.splice(0)) {
      if (err === undefined) r.resolve({ value: undefined, done: true });
      else r.reject(err);
    }
    for (const w of this.roomWaiters.splice(0)) w();
  }

  /** The next item; undefined once closed cleanly. */
  async next(): Promise<IteratorResult<T>> {
    const v = this.items.shift();
    if (v !== undefined || this.items.length > 0) {
      this.roomWaiters.shift()?.();
      return { value: v as T, done: false };
    }
    if (this.done) {
      if (this.error !== undefined) throw this.error;
      return { value: undefined, done: true };
    }
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Sleeps ms, or less when signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
