/**
 * Recording watch streams. A Watcher keeps one watch alive for the whole
 * run: when its stream fails (member killed, connection cut) or stalls, it
 * opens a new one on the next endpoint from the revision after the last one
 * it received — the resumption the watch API promises. When the server
 * cancels it for compaction, it restarts at the compact revision (the gap
 * is the one compaction allows). Every response is recorded.
 *
 * A slow watcher (P11) stops reading for a while every few responses: the
 * client's HTTP/2 window fills, the server's send blocks, and the member
 * must hold its events (etcd's victim watchers) and deliver them in order
 * once the reader is back — or cancel the watch for compaction, never skip.
 */
import { utf8 } from '../../src/base/index.js';
import { GrpcChannel, GrpcError } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, methods } from '../harness/index.js';
import { toEvent } from './client.js';
import { nowMs, type WatchRecord, type WatchSegment } from './history.js';

const retryPauseMs = 200;

export interface WatcherOptions {
  readonly record: WatchRecord;
  readonly endpoints: readonly string[];
  readonly startRev: number;
  /** A stream with no response for this long is abandoned for a new one (only while catching up). */
  readonly stallMs: number;
  /** A slow consumer: after every `every` responses with events, read nothing for pauseMs (not while catching up). */
  readonly slow?: { readonly every: number; readonly pauseMs: number };
}

export class Watcher {
  /** The last revision delivered. */
  last = 0;
  private endpointIndex = 0;
  private stopped = false;
  private resolveStop: (() => void) | undefined;
  private current: { cancel(): void } | undefined;
  private target: number | undefined;
  private lastResponseMs = nowMs();
  private responsesSincePause = 0;
  private readonly done: Promise<void>;

  constructor(private readonly o: WatcherOptions) {
    this.last = o.startRev - 1;
    this.done = this.loop();
  }

  get record(): WatchRecord {
    return this.o.record;
  }

  /** Resolves once the stream delivered revision rev (or gives up at the deadline); then stops. */
  async finish(rev: number, deadlineMs: number): Promise<boolean> {
    this.target = rev;
    while (this.last < rev && nowMs() < deadlineMs) {
      if (nowMs() - this.lastResponseMs > this.o.stallMs) this.current?.cancel();
      await delay(100);
    }
    await this.stop();
    return this.last >= rev;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.cancel();
    this.resolveStop?.();
    await this.done;
  }

  private async loop(): Promise<void> {
    let from = this.o.startRev;
    while (!this.stopped) {
      const endpoint = this.o.endpoints[this.endpointIndex % this.o.endpoints.length] as string;
      const seg: WatchSegment = { endpoint, startRev: from, invokeMs: nowMs(), responses: [] };
      this.o.record.segments.push(seg);
      const resumeAt = await this.stream(seg);
      // After a compaction cancel, from the compact revision; a cancel that was not due is the checker's to report.
      from = Math.max(this.last + 1, resumeAt ?? 0);
      if (this.stopped) break;
      this.endpointIndex++;
      await Promise.race([delay(retryPauseMs), new Promise<void>((r) => (this.resolveStop = r))]);
    }
  }

  private async maybeStopReading(hadEvents: boolean): Promise<void> {
    const slow = this.o.slow;
    if (slow === undefined || !hadEvents || this.target !== undefined) return;
    if (++this.responsesSincePause < slow.every) return;
    this.responsesSincePause = 0;
    await delay(slow.pauseMs);
    this.lastResponseMs = nowMs();
  }

  /** One Watch call; returns the compact revision if the server canceled it for compaction. */
  private async stream(seg: WatchSegment): Promise<number | undefined> {
    const ch = new GrpcChannel({ address: seg.endpoint, connectTimeoutMs: 2_000, backoffInitialMs: 100, backoffMaxMs: 500 });
    const w = this.o.record;
    try {
      const call = ch.bidi(methods.watch.Watch);
      this.current = call;
      this.lastResponseMs = nowMs();
      call.write(
        etcdserverpb.WatchRequest.create({
          requestUnion: {
            case: 'createRequest',
            value: etcdserverpb.WatchCreateRequest.create({
              key: utf8(w.key),
              rangeEnd: w.end === '\0' ? new Uint8Array([0]) : utf8(w.end),
              startRevision: seg.startRev,
              prevKv: w.prevKv,
            }),
          },
        }),
      );
      for (;;) {
        const resp = await call.read();
        if (resp === undefined) {
          seg.end = 'stream ended';
          return undefined;
        }
        this.lastResponseMs = nowMs();
        const events = resp.events.map(toEvent);
        const revision = resp.header?.revision ?? 0;
        if (events.length > 0 || resp.canceled || resp.compactRevision > 0) {
          seg.responses.push({
            atMs: nowMs(),
            revision,
            events,
            ...(resp.compactRevision > 0 ? { compactRevision: resp.compactRevision } : {}),
            ...(resp.canceled ? { canceled: true } : {}),
          });
        }
        const lastEvent = events[events.length - 1];
        if (lastEvent !== undefined) this.last = Math.max(this.last, lastEvent.kv.modRev);
        if (resp.canceled) {
          seg.end = `canceled: ${resp.cancelReason}`;
          call.cancel();
          return resp.compactRevision > 0 ? resp.compactRevision : undefined;
        }
        if (this.target !== undefined && this.last >= this.target) {
          seg.end = 'caught up';
          call.cancel();
          this.stopped = true;
          return undefined;
        }
        await this.maybeStopReading(events.length > 0);
      }
    } catch (e) {
      if (!(e instanceof GrpcError)) throw e;
      seg.end = `${e.code}: ${e.message}`;
      return undefined;
    } finally {
      this.current = undefined;
      ch.close();
    }
  }
}
