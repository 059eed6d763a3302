/**
 * One outgoing raft message stream to one peer (etcd's streamWriter): a
 * bounded queue drained into a long-lived connection of its own
 * (raw-stream.ts). Everything queued when the stream is writable goes out as
 * one batch in one write; while the socket is backed up the queue absorbs up
 * to its bound and the caller drops the rest.
 */
import type { raftpb } from '../pb/index.js';
import type { TransportContext } from './context.js';
import { encodeFrames } from './frame.js';
import type { StreamKind } from './protocol.js';
import { BoundedQueue } from './queue.js';

/** An upper estimate of a message's encoded size, to cut batches without encoding twice. */
export function estimateBytes(m: raftpb.Message): number {
  let n = 64 + m.context.length;
  for (const e of m.entries) n += e.data.length + 32;
  return n;
}

/** Where a stream's frames go: a raw stream's socket (raw-stream.ts), or an HTTP/2 request body. */
export interface FrameSink {
  write(data: Uint8Array): boolean;
  once(event: 'drain', fn: () => void): unknown;
  readonly destroyed: boolean;
  readonly closed: boolean;
}

export class OutStream {
  private readonly queue: BoundedQueue<raftpb.Message>;
  private stream: FrameSink | undefined;
  private waitingDrain = false;
  private flushHandle: NodeJS.Immediate | undefined;
  /** Diagnostics: messages and writes so far. */
  sentMessages = 0;
  sentBatches = 0;

  constructor(
    private readonly ctx: TransportContext,
    private readonly to: bigint,
    readonly kind: StreamKind,
  ) {
    this.queue = new BoundedQueue(ctx.tuning.streamQueueMax);
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Queues m unless `limit` messages wait already; returns whether it was
   * queued. It is written by flushNow(), which the sender calls once it has
   * queued a whole batch, or else on the next turn.
   */
  enqueue(m: raftpb.Message, limit: number): boolean {
    if (!this.queue.push(m, limit)) return false;
    if (this.stream !== undefined) this.scheduleFlush();
    return true;
  }

  /**
   * Writes what is queued now instead of on the next turn: a leader's
   * appends then leave before its own fdatasync holds the event loop.
   */
  flushNow(): void {
    if (this.flushHandle !== undefined) {
      clearImmediate(this.flushHandle);
      this.flushHandle = undefined;
    }
    this.flush();
  }

  /** The stream was accepted by the peer: start writing. */
  attach(stream: FrameSink): void {
    this.stream = stream;
    this.waitingDrain = false;
    this.scheduleFlush();
  }

  /** The connection is gone: forget the stream and drop what waits. Returns the number dropped. */
  detach(): number {
    this.stream = undefined;
    this.waitingDrain = false;
    if (this.flushHandle !== undefined) clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    return this.queue.clear();
  }

  /**
   * Flushes on the next turn rather than now, so that every message the
   * member sends in this turn (a whole Ready) lands in one batch.
   */
  private scheduleFlush(): void {
    if (this.flushHandle !== undefined || this.waitingDrain) return;
    this.flushHandle = setImmediate(() => {
      this.flushHandle = undefined;
      this.flush();
    });
  }

  private flush(): void {
    const s = this.stream;
    if (s === undefined || this.waitingDrain) return;
    const { batchBytesMax, frameCrc } = this.ctx.tuning;
    while (this.queue.length > 0) {
      if (s.destroyed || s.closed) return;
      const batch: raftpb.Message[] = [];
      let bytes = 0;
      // Bounded by the queue length and, past the first message, by batchBytesMax.
      for (let next = this.queue.peek(); next !== undefined; next = this.queue.peek()) {
        const size = estimateBytes(next);
        if (batch.length > 0 && bytes + size > batchBytesMax) break;
        batch.push(next);
        bytes += size;
        this.queue.shift();
      }
      const buf = encodeFrames(batch, frameCrc, bytes);
      this.ctx.metrics.sent(this.to, buf.length);
      this.sentMessages += batch.length;
      this.sentBatches++;
      if (!s.write(buf)) {
        this.waitingDrain = true;
        s.once('drain', () => {
          if (this.stream !== s) return;
          this.waitingDrain = false;
          this.scheduleFlush();
        });
        return;
      }
    }
  }
}
