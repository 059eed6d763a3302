/**
 * Flow control shared by server and client calls. Inbox delivers decoded
 * messages pull-based: while a message waits for its reader the HTTP/2 stream
 * is paused, so Node stops returning window to the peer and the peer stops
 * sending; at most one DATA frame's worth of messages is ever queued.
 * DrainSignal turns a stream's 'drain' into one shared promise.
 */
import { assert } from '../base/index.js';
import type { GrpcError } from './status.js';

/** The side of a stream an Inbox steers: node:http2's streams, or the server's own (h2-connection.ts). */
export interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

/** The side of a stream a DrainSignal listens to. */
export interface Drainable {
  readonly writableNeedDrain: boolean;
  once(event: 'drain', fn: () => void): unknown;
}

export class Inbox<T> {
  private readonly queue: T[] = [];
  private waiter: { resolve: (m: T | undefined) => void; reject: (e: GrpcError) => void } | undefined;
  private ended = false;
  private error: GrpcError | undefined;

  constructor(private readonly stream: Pausable) {}

  /** Hands a message to the waiting reader, or queues it and pauses the stream. */
  push(message: T): void {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.resolve(message);
      return;
    }
    this.queue.push(message);
    this.stream.pause();
  }

  /** No more messages; those queued can still be read. */
  end(): void {
    this.ended = true;
    const w = this.waiter;
    if (w !== undefined && this.queue.length === 0) {
      this.waiter = undefined;
      w.resolve(undefined);
    }
  }

  /** The call failed: queued messages are dropped and reads reject with err. */
  fail(err: GrpcError): void {
    if (this.error !== undefined) return;
    this.error = err;
    this.queue.length = 0;
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.reject(err);
    }
  }

  /** The next message, or undefined at the end; one read at a time. */
  read(): Promise<T | undefined> {
    assert(this.waiter === undefined, 'one read at a time on a call');
    if (this.queue.length > 0) {
      const m = this.queue.shift() as T;
      // Read ahead by one DATA frame so the next read usually finds a message waiting.
      if (this.queue.length === 0 && !this.ended && this.error === undefined) this.stream.resume();
      return Promise.resolve(m);
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.stream.resume();
    });
  }

  /** An async iterator over read(); leaving the loop early calls onReturn. */
  iterator(onReturn?: () => void): AsyncIterator<T> {
    return {
      next: async (): Promise<IteratorResult<T>> => {
        const m = await this.read();
        return m === undefined ? { done: true, value: undefined } : { done: false, value: m };
      },
      return: (): Promise<IteratorResult<T>> => {
        onReturn?.();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}

export class DrainSignal {
  private pending: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(private readonly stream: Drainable) {}

  /** Resolves on the stream's next 'drain' or release(), whichever comes first. */
  wait(): Promise<void> {
    if (!this.stream.writableNeedDrain) return Promise.resolve();
    if (this.pending === undefined) {
      let resolve: () => void = () => undefined;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.pending = { promise, resolve };
      this.stream.once('drain', () => this.release());
    }
    return this.pending.promise;
  }

  /** Wakes every waiter (the call is over, or the stream drained). */
  release(): void {
    const p = this.pending;
    if (p !== undefined) {
      this.pending = undefined;
      p.resolve();
    }
  }
}
