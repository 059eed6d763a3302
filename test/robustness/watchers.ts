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
 *
 * Catching up at the end, a watcher also asks for progress: a range that
 * nothing wrote to lately has no event at the last revision, and a progress
 * response there tells it has everything.
 */
import { utf8 } from '../../src/base/index.js';
import { GrpcError } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, methods } from '../harness/index.js';
import { toEvent } from './client.js';
import type { Access } from './access.js';
import { nowMs, type WatchRecord, type WatchSegment } from './history.js';

const retryPauseMs = 200;
export const progressRequest = etcdserverpb.WatchRequest.create({ requestUnion: { case: 'progressRequest', value: etcdserverpb.WatchProgressRequest.create({}) } });

/** A progress response: watch id -1, neither created nor canceled (a refused create also carries -1). */
export function isProgress(resp: etcdserverpb.WatchResponse): boolean {
  return resp.watchId === -1 && !resp.created && !resp.canceled;
}

/** A WatchCreateRequest for the record's range from startRev (watchId 0: the member picks). */
export function createRequest(w: WatchRecord, startRev: number, watchId = 0): etcdserverpb.WatchRequest {
  return etcdserverpb.WatchRequest.create({
    requestUnion: {
      case: 'createRequest',
      value: etcdserverpb.WatchCreateRequest.create({
        key: utf8(w.key),
        rangeEnd: w.end === '\0' ? new Uint8Array([0]) : utf8(w.end),
        startRevision: startRev,
        prevKv: w.prevKv,
        watchId,
      }),
    },
  });
}

export interface ResumingWatchOptions {
  readonly endpoints: readonly string[];
  readonly access: Access;
  /** A stream with no response for this long is abandoned for a new one (only while catching up). */
  readonly stallMs: number;
  /** A slow consumer: after every `every` responses with events, read nothing for pauseMs (not while catching up). */
  readonly slow?: { readonly every: number; readonly pauseMs: number } | undefined;
}

/**
 * What every recording watcher does: one Watch call at a time, on the
 * endpoints in turn, a new one when it fails, until stopped; reading slowly
 * if asked to; and at the end, catching up with a revision.
 */
export abstract class ResumingWatch {
  /** Everything up to here was delivered (or compacted away): where compaction may go, and where a new stream resumes. */
  abstract readonly last: number;
  abstract readonly label: string;
  protected stopped = false;
  protected current: { cancel(): void; write(m: etcdserverpb.WatchRequest): boolean } | undefined;
  /** Set while catching up at the end: the revision to reach. */
  protected target: number | undefined;
  protected lastResponseMs = nowMs();
  private endpointIndex = 0;
  private resolveStop: (() => void) | undefined;
  private responsesSincePause = 0;
  private done: Promise<void> | undefined;
  /** Set by stop(), for good (stopped alone may be a stream that reached the target). */
  private halted = false;

  constructor(protected readonly base: ResumingWatchOptions) {}

  /** One Watch call on endpoint, until it fails, is canceled, or has caught up. */
  protected abstract stream(endpoint: string): Promise<void>;

  /** Starts the streams (once the subclass is set up). */
  protected start(): void {
    this.done = this.loop();
  }

  /** Resolves once everything up to rev was delivered (or gives up at the deadline); called again with a later rev, goes on to it. */
  async catchUp(rev: number, deadlineMs: number): Promise<boolean> {
    this.target = rev;
    if (this.stopped && !this.halted && this.last < rev) {
      // Caught up with an earlier target (its stream ended there): a new stream for the rest.
      await this.done;
      this.stopped = false;
      this.done = this.loop();
    }
    while (this.last < rev && nowMs() < deadlineMs) {
      if (nowMs() - this.lastResponseMs > this.base.stallMs) this.current?.cancel();
      // A range nothing wrote to lately gets no event at rev: a progress response says it has everything up to there.
      this.current?.write(progressRequest);
      await delay(100);
    }
    return this.last >= rev;
  }

  async stop(): Promise<void> {
    this.halted = true;
    this.stopped = true;
    this.current?.cancel();
    this.resolveStop?.();
    await this.done;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.stream(this.base.endpoints[this.endpointIndex % this.base.endpoints.length] as string);
      if (this.stopped) break;
      this.endpointIndex++;
      await Promise.race([delay(retryPauseMs), new Promise<void>((r) => (this.resolveStop = r))]);
    }
  }

  /** A slow consumer stops reading for a while every few responses with events (not while catching up). */
  protected async maybeStopReading(hadEvents: boolean): Promise<void> {
    const slow = this.base.slow;
    if (slow === undefined || !hadEvents || this.target !== undefined) return;
    if (++this.responsesSincePause < slow.every) return;
    this.responsesSincePause = 0;
    await delay(slow.pauseMs);
    this.lastResponseMs = nowMs();
  }
}

export interface WatcherOptions extends ResumingWatchOptions {
  readonly record: WatchRecord;
  readonly startRev: number;
}

/** One watch, alone on its stream. */
export class Watcher extends ResumingWatch {
  /** The last revision delivered, or one below the compact revision it was canceled at. */
  last: number;

  constructor(private readonly o: WatcherOptions) {
    super(o);
    this.last = o.startRev - 1;
    this.start();
  }

  get record(): WatchRecord {
    return this.o.record;
  }

  get label(): string {
    return this.o.record.label;
  }

  protected async stream(endpoint: string): Promise<void> {
    const seg: WatchSegment = { endpoint, startRev: this.last + 1, invokeMs: nowMs(), responses: [] };
    this.o.record.segments.push(seg);
    const resumeAt = await this.watch(seg);
    // After a compaction cancel, from the compact revision (for every later stream too: nothing below
    // it can come any more); a cancel that was not due is the checker's to report.
    if (resumeAt !== undefined) this.last = Math.max(this.last, resumeAt - 1);
  }

  /** One Watch call; returns the compact revision if the server canceled it for compaction. */
  private async watch(seg: WatchSegment): Promise<number | undefined> {
    const ch = this.base.access.channel(seg.endpoint, 'traffic');
    try {
      const call = ch.bidi(methods.watch.Watch);
      this.current = call;
      this.lastResponseMs = nowMs();
      call.write(createRequest(this.o.record, seg.startRev));
      for (;;) {
        const resp = await call.read();
        if (resp === undefined) {
          seg.end = 'stream ended';
          return undefined;
        }
        this.lastResponseMs = nowMs();
        const revision = resp.header?.revision ?? 0;
        if (isProgress(resp)) {
          seg.responses.push({ atMs: nowMs(), revision, events: [], progress: true });
          this.last = Math.max(this.last, revision);
          if (this.target !== undefined && this.last >= this.target) {
            seg.end = 'caught up';
            call.cancel();
            this.stopped = true;
            return undefined;
          }
          continue;
        }
        const events = resp.events.map(toEvent);
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
          // Refused (auth on: a stale token, or the permission taken away for a moment): a new stream, maybe a new token.
          if (resp.compactRevision === 0) this.base.access.noteError('traffic', resp.cancelReason, seg.endpoint);
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
      this.base.access.noteError('traffic', e, seg.endpoint);
      seg.end = `${e.code}: ${e.message}`;
      return undefined;
    } finally {
      this.current = undefined;
      ch.close();
    }
  }
}
