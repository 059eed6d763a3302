/**
 * Many watches multiplexed on one Watch stream, with progress requests
 * (P11, P12). One MuxWatcher holds about a hundred watches — single keys,
 * small ranges, prefixes, every key; most with prev_kv — created together
 * on one stream, and asks for progress every few hundred milliseconds. A
 * progress response (watch id -1) at revision R says that every watch of
 * the stream has been sent everything up to R: it is recorded in each live
 * watch's segment, in stream order, and the watch checker holds it to that
 * (no event at or below R may follow it; nothing at or below R may be
 * missing when it comes).
 *
 * Progress responses are also the watches' bookmarks, as Kubernetes uses
 * them: a watch counts as delivered up to the newer of its last event and
 * the last progress revision. A stream that fails is reopened on the next
 * member with every watch resuming one past its bookmark; a watch the
 * server cancels for compaction is created again on the same stream at the
 * compact revision. The stream's reader stops reading for a while every
 * so often, and the run's compaction may pass these watches (P12): the
 * member must then hold their events, or cancel them as compacted.
 */
import type { Rand } from '../../src/base/index.js';
import { GrpcError } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { methods } from '../harness/index.js';
import { toEvent } from './client.js';
import { nowMs, type WatchRecord, type WatchSegment } from './history.js';
import { ResumingWatch, createRequest, isProgress, progressRequest, type ResumingWatchOptions } from './watchers.js';

/** Progress requests at a random interval in [min, min + spread). */
const progressMinMs = 150;
const progressSpreadMs = 500;

/** One watch of the stream: its record and where it has got. */
interface MuxEntry {
  readonly record: WatchRecord;
  /** The newest revision it is known to have everything up to: its last event or the last progress. */
  bookmark: number;
}

export interface MuxWatcherOptions extends ResumingWatchOptions {
  readonly records: readonly WatchRecord[];
  readonly startRevs: readonly number[];
  readonly rand: Rand;
}

export class MuxWatcher extends ResumingWatch {
  private readonly entries: MuxEntry[];

  constructor(private readonly o: MuxWatcherOptions) {
    super(o);
    this.entries = o.records.map((record, i) => ({ record, bookmark: (o.startRevs[i] ?? 1) - 1 }));
    this.start();
  }

  get label(): string {
    return `mux stream of ${this.entries.length} watches`;
  }

  /** Every watch has everything up to here: what compaction must not pass to spare them. */
  get last(): number {
    return Math.min(...this.entries.map((e) => e.bookmark));
  }

  /** One Watch call carrying every watch, until it fails or the run ends. */
  protected async stream(endpoint: string): Promise<void> {
    const ch = this.base.access.channel(endpoint, 'traffic');
    const call = ch.bidi(methods.watch.Watch);
    this.current = call;
    this.lastResponseMs = nowMs();
    /** watch id -> its entry and segment on this stream; live once created, until canceled. */
    const byId = new Map<number, { entry: MuxEntry; seg: WatchSegment; live: boolean }>();
    let nextId = 1;
    /** Compacted watches this client canceled, whose cancel response is still to come. */
    const closing = new Set<number>();
    const create = (entry: MuxEntry): void => {
      const w = entry.record;
      const startRev = entry.bookmark + 1;
      const seg: WatchSegment = { endpoint, startRev, invokeMs: nowMs(), responses: [] };
      w.segments.push(seg);
      const id = nextId++;
      byId.set(id, { entry, seg, live: false });
      call.write(createRequest(w, startRev, id));
    };
    let progressTimer: ReturnType<typeof setTimeout> | undefined;
    const askProgress = (): void => {
      progressTimer = setTimeout(() => {
        call.write(progressRequest);
        askProgress();
      }, progressMinMs + this.o.rand.intn(progressSpreadMs));
    };
    const endAll = (why: string): void => {
      for (const s of byId.values()) s.seg.end ??= why;
    };
    try {
      for (const e of this.entries) create(e);
      askProgress();
      for (;;) {
        const resp = await call.read();
        if (resp === undefined) {
          endAll('stream ended');
          return;
        }
        if (isProgress(resp)) {
          // A progress response: every watch created before it has been sent everything up to its revision.
          const revision = resp.header?.revision ?? 0;
          for (const s of byId.values()) {
            if (!s.live) continue;
            s.seg.responses.push({ atMs: nowMs(), revision, events: [], progress: true });
            s.entry.bookmark = Math.max(s.entry.bookmark, revision);
          }
          if (this.target !== undefined && this.last >= this.target) {
            endAll('caught up');
            this.stopped = true;
            return;
          }
          continue;
        }
        if (resp.watchId === -1 && resp.canceled) {
          // A create refused (auth on: a stale token, or the permission taken away for a moment): on a new stream.
          this.base.access.noteError('traffic', resp.cancelReason, endpoint);
          endAll(`refused: ${resp.cancelReason}`);
          return;
        }
        const s = byId.get(resp.watchId);
        if (s === undefined) {
          // The answer to our cancel of a watch the server had canceled as compacted.
          if (closing.delete(resp.watchId) && resp.canceled) continue;
          throw new Error(`mux watcher: a response for watch id ${resp.watchId}, which this stream never created or no longer has`);
        }
        this.lastResponseMs = nowMs();
        if (resp.created) s.live = true;
        const events = resp.events.map(toEvent);
        if (events.length > 0 || resp.canceled || resp.compactRevision > 0) {
          s.seg.responses.push({
            atMs: nowMs(),
            revision: resp.header?.revision ?? 0,
            events,
            ...(resp.compactRevision > 0 ? { compactRevision: resp.compactRevision } : {}),
            ...(resp.canceled ? { canceled: true } : {}),
          });
        }
        const lastEvent = events[events.length - 1];
        if (lastEvent !== undefined) s.entry.bookmark = Math.max(s.entry.bookmark, lastEvent.kv.modRev);
        // A slow consumer: the member must hold the events (or cancel watches as compacted), never skip.
        await this.maybeStopReading(events.length > 0);
        if (resp.canceled) {
          s.live = false;
          s.seg.end = `canceled: ${resp.cancelReason}`;
          byId.delete(resp.watchId);
          if (resp.compactRevision === 0) {
            // Refused (auth on: a stale token, or the permission taken away for a moment): every watch on a new stream.
            this.base.access.noteError('traffic', resp.cancelReason, endpoint);
            endAll('a watch was refused');
            return;
          }
          // Compacted: again on this stream from the compact revision.
          {
            // The member keeps a compacted watch on the stream (holding back progress responses) until
            // the client cancels it, as etcd does; clientv3 cancels it too.
            closing.add(resp.watchId);
            call.write(etcdserverpb.WatchRequest.create({ requestUnion: { case: 'cancelRequest', value: etcdserverpb.WatchCancelRequest.create({ watchId: resp.watchId }) } }));
            // Nothing below the compact revision can come any more: the gap compaction allows.
            s.entry.bookmark = Math.max(s.entry.bookmark, resp.compactRevision - 1);
            if (!this.stopped) create(s.entry);
          }
        }
      }
    } catch (e) {
      if (!(e instanceof GrpcError)) throw e;
      this.base.access.noteError('traffic', e, endpoint);
      endAll(`${e.code}: ${e.message}`);
    } finally {
      clearTimeout(progressTimer);
      this.current = undefined;
      call.cancel();
      ch.close();
    }
  }
}
