/**
 * Liveness of one raw raft stream connection (raw-stream.ts), at both ends.
 *
 * The HTTP/2 session's pings prove that the peer's process answers, but on a
 * connection of their own: a raft stream whose connection alone went dead
 * (a middlebox that dropped its state, a byte stream garbled on its way)
 * would stay "active" and carry nothing until TCP gave up, many minutes
 * later. etcd's peer streams have read and write deadlines for this
 * (ConnReadTimeout) and a link heartbeat every third of it.
 *
 * Here each end that announced it (header `x-etcd-ts-stream-keepalive`, so
 * that an end that does not know about keepalives is never timed out) does
 * the same on a tick of `pingIntervalMs`:
 * - writes an empty frame if it wrote nothing since the last tick and nothing
 *   waits in its socket's buffer;
 * - closes the connection once nothing was read for `pingTimeoutMs`.
 * Both look only at the socket's byte counters, so the raft path pays nothing.
 * A tick that comes late (the event loop was held: a long fsync, a pause) does
 * not judge: unread bytes may be waiting behind it.
 */
import type { Socket } from 'node:net';
import type { Clock } from '../base/index.js';
import type { Timers } from './backoff.js';
import type { TransportContext } from './context.js';
import { frameHeaderBytes } from './frame.js';

/** A zero-length frame: length 0, and 0 as the CRC-32 of no bytes. Receivers skip it. */
export const keepaliveFrame: Uint8Array = new Uint8Array(frameHeaderBytes);

export interface LivenessOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/** A raft stream's liveness as the transport's tuning sets it: a tick each ping interval, dead after the ping timeout. */
export function streamLivenessOptions(ctx: Pick<TransportContext, 'clock' | 'timers' | 'tuning'>): LivenessOptions {
  return { clock: ctx.clock, timers: ctx.timers, intervalMs: ctx.tuning.pingIntervalMs, timeoutMs: ctx.tuning.pingTimeoutMs };
}

export class StreamLiveness {
  private timer: unknown;
  private lastTickMs: number;
  private lastReadMs: number;
  private bytesRead: number;
  private bytesWritten: number;
  private stopped = false;

  /** Starts ticking; `dead` is called once, with the reason, when nothing came for timeoutMs. */
  constructor(
    private readonly socket: Socket,
    private readonly o: LivenessOptions,
    private readonly dead: (reason: string) => void,
  ) {
    this.lastTickMs = this.lastReadMs = o.clock.nowMs();
    this.bytesRead = socket.bytesRead;
    this.bytesWritten = socket.bytesWritten;
    socket.once('close', () => this.stop());
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.o.timers.clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.timers.setTimeout(() => this.tick(), this.o.intervalMs);
  }

  private tick(): void {
    if (this.stopped || this.socket.destroyed) return;
    const now = this.o.clock.nowMs();
    const late = now - this.lastTickMs > 2 * this.o.intervalMs;
    this.lastTickMs = now;
    if (this.socket.bytesRead !== this.bytesRead || late) {
      this.bytesRead = this.socket.bytesRead;
      this.lastReadMs = now;
    }
    if (now - this.lastReadMs >= this.o.timeoutMs) {
      this.stop();
      this.dead(`nothing received for ${this.o.timeoutMs} ms`);
      return;
    }
    if (this.socket.bytesWritten === this.bytesWritten && this.socket.writableLength === 0) this.socket.write(keepaliveFrame);
    this.bytesWritten = this.socket.bytesWritten;
    this.schedule();
  }
}
