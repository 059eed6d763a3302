/**
 * Watch: many watchers share one gRPC Watch stream (one per require-leader
 * flavour), as clientv3 multiplexes them.
 *
 * - Creates go out one at a time and are matched to "created" answers in
 *   order, because the server assigns watch ids (watch_id 0 = auto) and
 *   answers creates in the order it got them.
 * - When the stream breaks (Unavailable, the member went away; or a member
 *   named corrupt ended it and there are other endpoints) it is reopened,
 *   on the next endpoint, and every live watcher is created again from the
 *   revision after the last one it saw (or after the revision its creation
 *   was answered at), so no event is lost or repeated across the reconnect.
 * - A progress request is answered with watch id -1: every watcher of the
 *   stream gets it as a progress notification (no events, header revision).
 * - Each watcher buffers a bounded number of responses; while a reader lags
 *   the stream stops being read and HTTP/2 flow control holds the server back.
 */
import type { ClientDuplexCall } from '../grpc/index.js';
import { GrpcStatus } from '../grpc/index.js';
import { etcdserverpb, type mvccpb } from '../pb/index.js';
import type { Connection } from './connection.js';
import { ClientError, cancelReasonError, canceledError, clientFailure, toClientError } from './errors.js';
import { keyRange, type Bytes, type RangeOptions } from './kv.js';
import { AsyncQueue, sleep } from './queue.js';

export interface WatchOptions extends RangeOptions {
  /** First revision to report; 0 = from now. */
  readonly startRevision?: number | undefined;
  readonly prevKv?: boolean | undefined;
  /** Ask the server for periodic progress notifications. */
  readonly progressNotify?: boolean | undefined;
  readonly noPut?: boolean | undefined;
  readonly noDelete?: boolean | undefined;
  /** Fail the watcher when its member has no leader (etcdctl watch sets it). */
  readonly requireLeader?: boolean | undefined;
  /** Cancels the watcher. */
  readonly signal?: AbortSignal | undefined;
}

/** One batch the watcher delivers. */
export interface WatchResponse {
  readonly header: etcdserverpb.ResponseHeader | undefined;
  readonly events: readonly mvccpb.Event[];
  /** Set when the watcher was cancelled because its start revision was compacted. */
  readonly compactRevision: number;
  readonly canceled: boolean;
  readonly cancelReason: string;
  /** No events: a progress notification (header.revision is the stream's progress). */
  readonly progressNotify: boolean;
}

const queuedResponsesMax = 256;
const reconnectPauseMs = 200;
const progressWatchId = -1;

/** A live watch: iterate it for responses; cancel() stops it. */
export class Watcher implements AsyncIterable<WatchResponse> {
  readonly queue = new AsyncQueue<WatchResponse>(queuedResponsesMax);
  /** The server's id for this watcher on the current stream; undefined while (re)creating. */
  id: number | undefined;
  /** The revision to resume from after a reconnect (0 = the original start). */
  nextRevision: number;
  readonly created: Promise<void>;
  resolveCreated!: () => void;
  rejectCreated!: (e: unknown) => void;
  closed = false;
  /** Its create was refused for the token once, and created again after authenticating again. */
  reauthenticated = false;

  constructor(
    readonly request: etcdserverpb.WatchCreateRequest,
    private readonly stream: WatchStream,
  ) {
    this.nextRevision = request.startRevision;
    this.created = new Promise((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    this.created.catch(() => undefined);
  }

  /** Stops the watcher: the server is told, the iterator ends. */
  cancel(): void {
    this.stream.cancel(this);
  }

  /** The request to (re)create this watcher now. */
  createRequest(): etcdserverpb.WatchCreateRequest {
    return { ...this.request, startRevision: this.nextRevision };
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    return this.queue[Symbol.asyncIterator]();
  }
}

/** The error a cancelled watch response stands for, if any. */
export function watchResponseError(r: WatchResponse): ClientError | undefined {
  if (!r.canceled) return undefined;
  if (r.compactRevision !== 0) return clientFailure('etcdserver: mvcc: required revision has been compacted');
  return r.cancelReason !== '' ? cancelReasonError(r.cancelReason) : clientFailure('watch canceled');
}

class WatchStream {
  private call: ClientDuplexCall<etcdserverpb.WatchRequest, etcdserverpb.WatchResponse> | undefined;
  private readonly watchers = new Set<Watcher>();
  private readonly byId = new Map<number, Watcher>();
  /** Waiting to be (re)created, in order; the head is in flight when creating is true. */
  private pending: Watcher[] = [];
  private creating = false;
  private running = false;
  /** The stream is being replaced to carry a new token (see dispatch). */
  private renewing = false;
  private abort = new AbortController();

  constructor(
    private readonly conn: Connection,
    private readonly requireLeader: boolean,
  ) {}

  add(w: Watcher): void {
    this.watchers.add(w);
    this.pending.push(w);
    if (!this.running) {
      this.running = true;
      void this.run();
    } else {
      this.sendNextCreate();
    }
  }

  cancel(w: Watcher): void {
    if (w.closed) return;
    this.finish(w);
    if (w.id !== undefined && this.call !== undefined) {
      this.call.write({ requestUnion: { case: 'cancelRequest', value: { watchId: w.id } } });
    }
    this.pending = this.pending.filter((p) => p !== w);
    if (this.watchers.size === 0) this.stop();
  }

  requestProgress(): void {
    this.call?.write({ requestUnion: { case: 'progressRequest', value: {} } });
  }

  close(): void {
    for (const w of [...this.watchers]) this.finish(w, canceledError());
    this.stop();
  }

  private stop(): void {
    this.abort.abort();
    this.call?.cancel();
    this.call = undefined;
  }

  private finish(w: Watcher, err?: Error): void {
    if (w.closed) return;
    w.closed = true;
    this.watchers.delete(w);
    if (w.id !== undefined) this.byId.delete(w.id);
    w.rejectCreated(err ?? canceledError());
    w.queue.close(err);
  }

  private async run(): Promise<void> {
    this.abort = new AbortController();
    const signal = AbortSignal.any([this.abort.signal, this.conn.closeSignal]);
    while (this.watchers.size > 0 && !signal.aborted) {
      let call: ClientDuplexCall<etcdserverpb.WatchRequest, etcdserverpb.WatchResponse>;
      try {
        call = await this.conn.bidi(etcdserverpb.WatchService.methods.Watch, { signal, requireLeader: this.requireLeader });
      } catch (err) {
        if (signal.aborted) break;
        const e = toClientError(err);
        if (!isRetryable(e, this.conn.endpoints.length)) {
          for (const w of [...this.watchers]) this.finish(w, e);
          break;
        }
        await sleep(reconnectPauseMs, signal);
        continue;
      }
      this.call = call;
      this.creating = false;
      this.sendNextCreate();
      try {
        for (;;) {
          const resp = await call.read();
          if (resp === undefined) break;
          await this.dispatch(resp);
        }
      } catch (err) {
        if (signal.aborted) break;
        const e = toClientError(err);
        // Canceled here to take a new token: not a failure.
        if (!this.renewing && !isRetryable(e, this.conn.endpoints.length) && !(await this.conn.refreshIfTokenRejected(e))) {
          for (const w of [...this.watchers]) this.finish(w, e);
          break;
        }
      }
      this.renewing = false;
      this.call = undefined;
      call.cancel();
      // Everyone left is created again on the next stream, resuming where it stopped.
      this.byId.clear();
      for (const w of this.watchers) w.id = undefined;
      this.pending = [...this.watchers];
      await sleep(reconnectPauseMs, signal);
    }
    this.running = false;
    this.call = undefined;
    // A watcher added while the loop was winding down needs a new loop.
    if (this.watchers.size > 0 && !this.conn.closed) {
      this.running = true;
      void this.run();
    }
  }

  private sendNextCreate(): void {
    if (this.creating || this.call === undefined) return;
    const head = this.pending[0];
    if (head === undefined) return;
    this.creating = true;
    this.call.write({ requestUnion: { case: 'createRequest', value: head.createRequest() } });
  }

  private async dispatch(resp: etcdserverpb.WatchResponse): Promise<void> {
    if (resp.created) {
      const w = this.pending.shift();
      this.creating = false;
      this.sendNextCreate();
      if (w === undefined || w.closed) {
        // Cancelled while its create was in flight: tell the server too.
        if (!resp.canceled) this.call?.write({ requestUnion: { case: 'cancelRequest', value: { watchId: resp.watchId } } });
        return;
      }
      if (resp.canceled) {
        const refusal = resp.compactRevision === 0 && resp.cancelReason !== '' ? cancelReasonError(resp.cancelReason) : undefined;
        // A token the server no longer takes (a simple token's TTL ran out, auth changed): authenticate
        // again and create it on a new stream, which carries the new token. Once: a second refusal stands.
        if (refusal !== undefined && !w.reauthenticated && (await this.conn.refreshIfTokenRejected(refusal).catch(() => false))) {
          w.reauthenticated = true;
          this.renewing = true;
          this.call?.cancel();
          return;
        }
        await w.queue.push(toResponse(resp));
        this.finish(w, refusal);
        return;
      }
      w.id = resp.watchId;
      this.byId.set(resp.watchId, w);
      if (w.nextRevision === 0) w.nextRevision = (resp.header?.revision ?? 0) + 1;
      w.resolveCreated();
      return;
    }
    if (resp.watchId === progressWatchId && resp.events.length === 0) {
      const r = toResponse(resp);
      for (const w of this.byId.values()) await w.queue.push(r);
      return;
    }
    const w = this.byId.get(resp.watchId);
    if (w === undefined) return;
    const last = resp.events[resp.events.length - 1];
    if (last?.kv !== undefined) w.nextRevision = last.kv.modRevision + 1;
    await w.queue.push(toResponse(resp));
    if (resp.canceled) this.finish(w);
  }
}

function toResponse(r: etcdserverpb.WatchResponse): WatchResponse {
  return {
    header: r.header,
    events: r.events,
    compactRevision: r.compactRevision,
    canceled: r.canceled,
    cancelReason: r.cancelReason,
    progressNotify: !r.created && !r.canceled && r.events.length === 0,
  };
}

/**
 * Whether a broken stream is reopened. Our own cancellation is checked before
 * this, so a CANCELLED here is the server's RST_STREAM(CANCEL) (a member going
 * away without a word is UNAVAILABLE).
 */
function isRetryable(e: ClientError, endpoints: number): boolean {
  const c = e.grpcCode;
  if (c === GrpcStatus.DATA_LOSS) return endpoints > 1; // a member named corrupt: the others serve watches
  return c === GrpcStatus.UNAVAILABLE || c === GrpcStatus.INTERNAL || c === GrpcStatus.UNKNOWN || c === GrpcStatus.CANCELLED;
}

const filterTypes = etcdserverpb.WatchCreateRequest_FilterType;

export class Watch {
  private readonly streams = new Map<boolean, WatchStream>();

  constructor(private readonly conn: Connection) {}

  /** Starts watching key (or a range); iterate the returned Watcher. */
  watch(key: Bytes, o: WatchOptions = {}): Watcher {
    const { key: k, rangeEnd } = keyRange(key, o);
    const filters: etcdserverpb.WatchCreateRequest_FilterType[] = [];
    if (o.noPut === true) filters.push(filterTypes.NOPUT);
    if (o.noDelete === true) filters.push(filterTypes.NODELETE);
    const req = etcdserverpb.WatchCreateRequest.create({
      key: k,
      rangeEnd,
      startRevision: o.startRevision ?? 0,
      progressNotify: o.progressNotify ?? false,
      filters,
      prevKv: o.prevKv ?? false,
    });
    const stream = this.stream(o.requireLeader === true);
    const w = new Watcher(req, stream);
    if (o.signal?.aborted === true) {
      w.queue.close();
      w.closed = true;
      w.rejectCreated(canceledError());
      return w;
    }
    o.signal?.addEventListener('abort', () => w.cancel(), { once: true });
    stream.add(w);
    return w;
  }

  /** Asks every stream for a progress notification. */
  requestProgress(): void {
    for (const s of this.streams.values()) s.requestProgress();
  }

  close(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
  }

  private stream(requireLeader: boolean): WatchStream {
    let s = this.streams.get(requireLeader);
    if (s === undefined) {
      s = new WatchStream(this.conn, requireLeader);
      this.streams.set(requireLeader, s);
    }
    return s;
  }
}
