/**
 * The watchable store: watchers over the kv store, each in one of three
 * places (etcd's watchable_store.go):
 *
 * - synced: caught up with the store; every write transaction's events go
 *   straight to the matching synced watchers as it ends;
 * - unsynced: behind (a start revision in the past, or back from being a
 *   victim); a sync pass reads their missing history from the backend, a
 *   bounded slice at a time (watchersPerSyncMax watchers, syncReadEntriesMax
 *   backend entries, eventBatchRevsMax revisions per watcher), every
 *   syncIntervalMs or sooner when there is more to do;
 * - victims: their stream's queue (streamResponsesMax responses) was full; the
 *   undelivered response waits here, and nothing more is buffered for them,
 *   until the consumer drains the stream; then they go back to unsynced and
 *   catch up from the backend. Memory stays bounded however slow a consumer.
 *
 * A watcher whose next revision falls below the compact revision is told
 * so (a response with compactRevision set) and removed. Progress responses
 * go through the same queue as events and only when the watchers concerned
 * are synced, so a progress revision never overtakes an event.
 */
import { assert, emptyBytes, failpointHoldMs, nopLogger, type Logger } from '../base/index.js';
import { bytesToKey, realTimers, type TimerHandle, type Timers } from '../backend/index.js';
import { Reader, etcdserverpb, mvccpb } from '../pb/index.js';
import { isTombstoneBytes } from '../schema/index.js';
import { KvError } from './errors.js';
import { spanOf, type KvStore, type TxnObserver } from './kv-store.js';
import { bytesToRev, revToBytes } from './revision.js';
import { batchEvents, Watcher, WatcherGroup, type KeyedEvent, type WatcherOwner } from './watcher-group.js';

/** etcd's sync loop period. */
export const syncIntervalMsDefault = 100;
/** etcd's maxWatchersPerSync. */
export const watchersPerSyncMaxDefault = 512;
/** etcd's chanBufLen: responses a stream holds before its watchers become victims. */
export const streamResponsesMaxDefault = 128;
/** Backend entries one sync pass reads (etcd reads them all at once). */
export const syncReadEntriesMaxDefault = 10_000;

export interface WatchableStoreOptions {
  readonly timers?: Timers;
  readonly syncIntervalMs?: number;
  readonly watchersPerSyncMax?: number;
  readonly streamResponsesMax?: number;
  readonly syncReadEntriesMax?: number;
  readonly logger?: Logger;
  /**
   * Told of an error a sync pass (a timer's work, nobody's call) threw while
   * reading the store, such as a corrupt record; the pass is abandoned and
   * tried again later. Absent: the error is thrown (and crashes the process).
   */
  readonly onPassError?: (e: unknown) => void;
}

/** A watcher to create, as in a WatchCreateRequest. */
export interface WatchRequest {
  /** 0 or absent: the stream picks one (etcd's AutoWatchID). */
  readonly id?: number;
  readonly key: Uint8Array;
  /** Empty: the key alone; "\0": every key from key on; else [key, rangeEnd). */
  readonly rangeEnd?: Uint8Array;
  /** 0 or absent: from the next revision. A past revision replays history. */
  readonly startRevision?: number;
  readonly filters?: readonly etcdserverpb.WatchCreateRequest_FilterType[];
  readonly prevKv?: boolean;
}

export interface WatchResponse {
  /** -1 for a progress response on behalf of every watcher of the stream. */
  readonly watchId: number;
  /** In revision order; all events of a revision in the same response. */
  readonly events: mvccpb.Event[];
  /** The response's header revision: the store revision the watcher has seen everything up to. */
  readonly revision: number;
  /** Non-zero: the watcher is canceled because the history it needs was compacted away. */
  readonly compactRevision: number;
}

/**
 * An undelivered response. Its retry carries the revision its watcher has
 * seen everything up to (minRev - 1: the notified revision, or the store
 * revision of the pass that read the batch), as etcd 3.4's moveVictims
 * sends it, not the store revision of the retry: writes since then are not
 * in it.
 */
interface Victim {
  readonly events: mvccpb.Event[];
}

const PUT = mvccpb.Event_EventType.PUT;
const DELETE = mvccpb.Event_EventType.DELETE;
const { NOPUT, NODELETE } = etcdserverpb.WatchCreateRequest_FilterType;

export class WatchableStore implements TxnObserver {
  private kvStore: KvStore;
  private readonly timers: Timers;
  private readonly syncIntervalMs: number;
  private readonly watchersPerSyncMax: number;
  readonly streamResponsesMax: number;
  private readonly syncReadEntriesMax: number;
  private readonly logger: Logger;
  private readonly onPassError: ((e: unknown) => void) | undefined;
  private readonly synced = new WatcherGroup();
  private readonly unsynced = new WatcherGroup();
  private victims: Map<Watcher, Victim>[] = [];
  private timer: TimerHandle | undefined;
  private timerSoon = false;
  /** A pass is held at the beforeSyncWatchers failpoint. */
  private holding = false;
  private closed = false;
  /** Open streams (etcd_debugging_mvcc_watch_stream_total, pending events). */
  private readonly streams = new Set<WatchStream>();
  /** Events queued for clients so far (etcd_debugging_mvcc_events_total). */
  eventsQueued = 0;

  constructor(kv: KvStore, options: WatchableStoreOptions = {}) {
    this.kvStore = kv;
    this.timers = options.timers ?? realTimers;
    this.syncIntervalMs = options.syncIntervalMs ?? syncIntervalMsDefault;
    this.watchersPerSyncMax = options.watchersPerSyncMax ?? watchersPerSyncMaxDefault;
    this.streamResponsesMax = options.streamResponsesMax ?? streamResponsesMaxDefault;
    this.syncReadEntriesMax = options.syncReadEntriesMax ?? syncReadEntriesMaxDefault;
    this.logger = options.logger ?? nopLogger;
    this.onPassError = options.onPassError;
    assert(kv.observer === undefined, 'one watchable store per kv store');
    kv.observer = this;
  }

  get kv(): KvStore {
    return this.kvStore;
  }

  newWatchStream(): WatchStream {
    assert(!this.closed, 'watchable store is closed');
    const ws = new WatchStream(this);
    this.streams.add(ws);
    return ws;
  }

  /** @internal WatchStream.close. */
  streamClosed(ws: WatchStream): void {
    this.streams.delete(ws);
  }

  /** Open watch streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Events queued on streams and not yet taken by their consumers (read at scrape time). */
  pendingEvents(): number {
    let n = 0;
    for (const ws of this.streams) n += ws.pendingEvents();
    return n;
  }

  /** Watchers in each state, for metrics and tests. */
  counts(): { synced: number; unsynced: number; victims: number } {
    let victims = 0;
    for (const v of this.victims) victims += v.size;
    return { synced: this.synced.size, unsynced: this.unsynced.size, victims };
  }

  // ---- watchers ----

  /** @internal WatchStream.watch. */
  addWatcher(w: Watcher, startRev: number): void {
    const cur = this.kvStore.rev;
    if (startRev === 0 || startRev > cur) {
      w.minRev = Math.max(cur + 1, startRev);
      this.synced.add(w);
    } else {
      this.unsynced.add(w);
      this.schedule(true);
    }
  }

  /** @internal WatchStream.cancel. */
  removeWatcher(w: Watcher): void {
    w.canceled = true;
    if (this.synced.delete(w) || this.unsynced.delete(w)) return;
    for (const batch of this.victims) if (batch.delete(w)) return;
  }

  /** @internal Whether the watcher is caught up (what a progress request needs). */
  isSynced(w: Watcher): boolean {
    return this.synced.has(w);
  }

  // ---- delivery ----

  /**
   * The events a watcher gets from these: its filters applied, prev_kv
   * attached when it asked (from the store at modRevision - 1, unless that
   * was compacted). undefined when the filters leave nothing.
   */
  private prepare(w: Watcher, events: mvccpb.Event[]): mvccpb.Event[] | undefined {
    if (!w.noPut && !w.noDelete && !w.prevKv) return events;
    const out: mvccpb.Event[] = [];
    for (const ev of events) {
      if ((ev.type === PUT && w.noPut) || (ev.type === DELETE && w.noDelete)) continue;
      const kv = ev.kv as mvccpb.KeyValue;
      if (!w.prevKv || (ev.type === PUT && kv.createRevision === kv.modRevision)) {
        out.push(ev);
        continue;
      }
      let prevKv: mvccpb.KeyValue | undefined;
      try {
        prevKv = this.kvStore.range(kv.key, emptyBytes, { rev: kv.modRevision - 1 }).kvs[0];
      } catch (e) {
        if (!(e instanceof KvError)) throw e;
      }
      out.push(mvccpb.Event.create({ type: ev.type, kv, prevKv }));
    }
    return out.length === 0 && events.length > 0 ? undefined : out;
  }

  /** TxnObserver: fans a write transaction's events out to the synced watchers. */
  onTxnEnd(rev: number, changes: readonly mvccpb.KeyValue[]): void {
    if (this.synced.size === 0) return;
    const events: KeyedEvent[] = changes.map((kv) => ({
      ev: kv.createRevision === 0
        ? mvccpb.Event.create({ type: DELETE, kv: mvccpb.KeyValue.create({ key: kv.key, modRevision: rev }) })
        : mvccpb.Event.create({ type: PUT, kv }),
      key: bytesToKey(kv.key),
    }));
    let victims: Map<Watcher, Victim> | undefined;
    for (const [w, eb] of batchEvents(this.synced, events)) {
      assert(eb.revs === 1, 'one revision per notification');
      const prepared = this.prepare(w, eb.events);
      if (prepared === undefined || w.owner.enqueue(w, prepared, rev, 0)) continue;
      w.minRev = rev + 1;
      w.victim = true;
      this.synced.delete(w);
      (victims ??= new Map()).set(w, { events: prepared });
    }
    if (victims !== undefined) {
      this.victims.push(victims);
      this.schedule(false);
    }
  }

  /** @internal A stream had room again: retry its victims soon. */
  streamDrained(): void {
    if (this.victims.length > 0) this.schedule(true);
  }

  private schedule(soon: boolean): void {
    // A pass held at its failpoint runs when the hold ends, and schedules what follows.
    if (this.closed || this.holding) return;
    if (this.timer !== undefined) {
      if (!soon || this.timerSoon) return;
      this.timers.clearTimeout(this.timer);
    }
    this.timerSoon = soon;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      const holdMs = failpointHoldMs('beforeSyncWatchers');
      if (holdMs === 0) {
        this.runPass();
        return;
      }
      this.holding = true;
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        this.holding = false;
        this.runPass();
      }, holdMs);
    }, soon ? 0 : this.syncIntervalMs);
  }

  /** One round of the sync loop: victims first, then a bounded slice of unsynced watchers. */
  private runPass(): void {
    let moved: number;
    let progressed: number;
    try {
      moved = this.moveVictims();
      progressed = this.syncWatchers();
    } catch (e) {
      if (this.onPassError === undefined) throw e;
      this.onPassError(e);
      if (this.unsynced.size > 0 || this.victims.length > 0) this.schedule(false);
      return;
    }
    if (this.unsynced.size > 0 || this.victims.length > 0) this.schedule(moved + progressed > 0 && this.unsynced.size > 0);
  }

  /** Retries the victims' responses; the delivered ones go back to unsynced or synced. */
  private moveVictims(): number {
    const batches = this.victims;
    this.victims = [];
    const cur = this.kvStore.rev;
    let moved = 0;
    const still = new Map<Watcher, Victim>();
    for (const batch of batches) {
      for (const [w, v] of batch) {
        if (w.canceled) continue;
        if (!w.owner.enqueue(w, v.events, w.minRev - 1, 0)) {
          still.set(w, v);
          continue;
        }
        moved++;
        w.victim = false;
        if (w.minRev <= cur) this.unsynced.add(w);
        else this.synced.add(w);
      }
    }
    if (still.size > 0) this.victims.push(still);
    return moved;
  }

  /** Picks up to watchersPerSyncMax unsynced watchers, canceling those behind the compaction. */
  private chooseUnsynced(cur: number, compactRev: number): { chosen: Watcher[]; minRev: number } {
    const chosen: Watcher[] = [];
    let minRev = Number.POSITIVE_INFINITY;
    for (const w of [...this.unsynced.watchers]) {
      if (chosen.length === this.watchersPerSyncMax) break;
      if (w.minRev > cur) {
        // Only a restore leaves a future start revision in unsynced: it waits among the synced.
        assert(w.restore, `unsynced watcher ahead of the store: ${w.minRev} > ${cur}`);
        w.restore = false;
        this.unsynced.delete(w);
        this.synced.add(w);
        continue;
      }
      if (w.minRev < compactRev) {
        // As etcd, the cancel response carries revision 0 and the compact revision.
        if (w.owner.enqueue(w, [], 0, compactRev)) {
          w.compacted = true;
          this.unsynced.delete(w);
        }
        continue;
      }
      if (w.minRev < 0) {
        // A negative start revision not below the compact revision (-1 when never
        // compacted): etcd reads its history from the revision's bytes as an
        // unsigned number, past every revision, and finds none. It goes on from here.
        w.minRev = cur + 1;
        this.unsynced.delete(w);
        this.synced.add(w);
        continue;
      }
      w.restore = false;
      chosen.push(w);
      minRev = Math.min(minRev, w.minRev);
    }
    return { chosen, minRev };
  }

  /** One bounded catch-up pass; returns how many watchers moved forward. */
  private syncWatchers(): number {
    if (this.unsynced.size === 0) return 0;
    const cur = this.kvStore.rev;
    const { chosen, minRev } = this.chooseUnsynced(cur, this.kvStore.compactRev);
    if (chosen.length === 0) return 0;
    const group = new WatcherGroup();
    for (const w of chosen) group.add(w);
    const { events, upTo } = this.readHistory(group, minRev, cur);
    const batches = batchEvents(group, events);
    let victims: Map<Watcher, Victim> | undefined;
    for (const w of chosen) {
      const eb = batches.get(w);
      // A watcher that starts past this pass's read keeps its own start: the
      // pass only covered revisions up to upTo for those who needed them.
      w.minRev = eb !== undefined && eb.moreRev !== 0 ? eb.moreRev : Math.max(w.minRev, upTo + 1);
      if (eb !== undefined && eb.moreRev === 0 && upTo < cur) {
        // Neither full nor caught up: the next pass reads on and adds to it.
        w.held = eb;
        continue;
      }
      // As etcd, a catch-up response carries the store revision of the pass,
      // though a batch cut at eventBatchRevsMax has more to come.
      const prepared = eb === undefined ? undefined : this.prepare(w, eb.events);
      if (prepared !== undefined && !w.owner.enqueue(w, prepared, cur, 0)) {
        this.unsynced.delete(w);
        w.victim = true;
        (victims ??= new Map()).set(w, { events: prepared });
        continue;
      }
      if (w.minRev > cur) {
        this.unsynced.delete(w);
        this.synced.add(w);
      }
    }
    if (victims !== undefined) this.victims.push(victims);
    return chosen.length;
  }

  /**
   * The events of revisions minRev.. that the group watches, reading at most
   * syncReadEntriesMax backend entries but never part of a revision. upTo is
   * the last revision read completely.
   */
  private readHistory(group: WatcherGroup, minRev: number, cur: number): { events: KeyedEvent[]; upTo: number } {
    const events: KeyedEvent[] = [];
    let read = 0;
    let lastMain = 0;
    let upTo = cur;
    this.kvStore.backend.forEach(this.kvStore.schema.buckets.key, revToBytes({ main: minRev, sub: 0 }), revToBytes({ main: cur + 1, sub: 0 }), (k, v) => {
      const main = bytesToRev(k).main;
      if (read >= this.syncReadEntriesMax && main !== lastMain) {
        upTo = lastMain;
        return false;
      }
      read++;
      lastMain = main;
      // Most of a long history is usually other keys': those are not decoded.
      const raw = encodedKey(v);
      let kv: mvccpb.KeyValue | undefined;
      const key = bytesToKey(raw ?? (kv = mvccpb.KeyValue.decode(v)).key);
      if (!group.contains(key)) return true;
      kv ??= mvccpb.KeyValue.decode(v);
      if (isTombstoneBytes(k)) {
        // A tombstone stores only the key: the event carries the delete's revision.
        kv.modRevision = main;
        events.push({ ev: mvccpb.Event.create({ type: DELETE, kv }), key });
      } else {
        events.push({ ev: mvccpb.Event.create({ type: PUT, kv }), key });
      }
      return true;
    });
    return { events, upTo };
  }

  /**
   * Switches to another kv store (a snapshot was installed): every synced
   * watcher goes to unsynced and catches up from the new store's history.
   * A synced watcher has seen every revision of the old store, but its
   * minRev is only kept up to date while it is unsynced or a victim: it is
   * moved past the old store's revision first, or the catch-up would send
   * revisions again, or cancel it as compacted (etcd #15271).
   */
  restore(kv: KvStore): void {
    const seenUpTo = this.kvStore.rev;
    this.kvStore.observer = undefined;
    assert(kv.observer === undefined, 'one watchable store per kv store');
    this.kvStore = kv;
    kv.observer = this;
    for (const w of [...this.synced.watchers]) {
      this.synced.delete(w);
      w.minRev = Math.max(w.minRev, seenUpTo + 1);
      w.restore = true;
      this.unsynced.add(w);
    }
    this.schedule(true);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.kvStore.observer = undefined;
  }

  /** @internal */
  logSlowConsumer(stream: WatchStream): void {
    this.logger.debug('watch stream full, watchers become victims', { pending: stream.pending });
  }
}

/**
 * The watchers of one client stream and their responses, in one bounded FIFO
 * queue that the gRPC layer pulls from (next()) as fast as its HTTP/2 stream
 * takes them. `onReady` is called (on a microtask) when a response arrives
 * in an empty queue. A watcher's events are never queued from inside watch():
 * the caller can send its "created" answer first.
 */
export class WatchStream implements WatcherOwner {
  private readonly watchers = new Map<number, Watcher>();
  private queue: WatchResponse[] = [];
  private head = 0;
  private nextId = 0;
  private notifyQueued = false;
  private closed = false;
  /** Called when responses are waiting after next() came back empty. */
  onReady: (() => void) | undefined;

  constructor(private readonly store: WatchableStore) {}

  /** Responses waiting. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** The current store revision (for a created answer's header). */
  rev(): number {
    return this.store.kv.rev;
  }

  /** Creates a watcher; returns its id. Throws empty-watcher-range, watcher-duplicate-id. */
  watch(req: WatchRequest): number {
    assert(!this.closed, 'watch on a closed stream');
    const span = spanOf(req.key, req.rangeEnd ?? emptyBytes);
    if (span.end !== undefined && span.start >= span.end) throw new KvError('empty-watcher-range');
    let id = req.id ?? 0;
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      throw new KvError('watcher-duplicate-id');
    }
    const filters = req.filters ?? [];
    const w = new Watcher(id, span, req.startRevision ?? 0, filters.includes(NOPUT), filters.includes(NODELETE), req.prevKv ?? false, this);
    this.watchers.set(id, w);
    this.store.addWatcher(w, req.startRevision ?? 0);
    return id;
  }

  /** Cancels a watcher and drops its queued responses. Throws watcher-not-exist. */
  cancel(id: number): void {
    const w = this.watchers.get(id);
    if (w === undefined || this.closed) throw new KvError('watcher-not-exist');
    this.store.removeWatcher(w);
    this.watchers.delete(id);
    const rest = this.queue.slice(this.head).filter((r) => r.watchId !== id);
    this.queue = rest;
    this.head = 0;
  }

  /** Queues a progress response for the watcher if it is synced (periodic progress_notify). */
  requestProgress(id: number): void {
    const w = this.watchers.get(id);
    if (w !== undefined && this.store.isSynced(w)) this.push({ watchId: id, events: [], revision: this.store.kv.rev, compactRevision: 0 });
  }

  /**
   * A WatchProgressRequest: if every watcher of the stream is synced, queues
   * one progress response with watch id -1 at the current revision and
   * returns true; a stream without watchers gets it too, as from etcd 3.4.23.
   * Otherwise it queues nothing and returns false: etcd 3.4.23 answered at
   * once, ahead of events still to come (etcd #15220, fixed in 3.4.31). A
   * watcher canceled by a compaction (its id kept until the client cancels
   * it) has no events to come and holds nothing back.
   */
  requestProgressAll(): boolean {
    for (const w of this.watchers.values()) if (!w.compacted && !this.store.isSynced(w)) return false;
    this.push({ watchId: -1, events: [], revision: this.store.kv.rev, compactRevision: 0 });
    return true;
  }

  /** Takes the oldest waiting response. */
  next(): WatchResponse | undefined {
    if (this.head === this.queue.length) return undefined;
    const wasFull = this.pending >= this.store.streamResponsesMax;
    const r = this.queue[this.head] as WatchResponse;
    this.queue[this.head++] = undefined as unknown as WatchResponse;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (wasFull) this.store.streamDrained();
    return r;
  }

  /** @internal WatcherOwner: false when the queue is full. */
  enqueue(w: Watcher, events: mvccpb.Event[], revision: number, compactRevision: number): boolean {
    if (this.closed) return true;
    if (this.pending >= this.store.streamResponsesMax) {
      this.store.logSlowConsumer(this);
      return false;
    }
    this.push({ watchId: w.id, events, revision, compactRevision });
    this.store.eventsQueued += events.length;
    return true;
  }

  /** Events in the queued responses. */
  pendingEvents(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) n += (this.queue[i] as WatchResponse).events.length;
    return n;
  }

  private push(r: WatchResponse): void {
    if (this.pending >= this.store.streamResponsesMax) return; // a progress response is never worth a victim
    this.queue.push(r);
    if (this.pending === 1 && !this.notifyQueued && this.onReady !== undefined) {
      this.notifyQueued = true;
      queueMicrotask(() => {
        this.notifyQueued = false;
        if (this.pending > 0 && !this.closed) this.onReady?.();
      });
    }
  }

  /** Cancels every watcher; no more responses. */
  close(): void {
    if (this.closed) return;
    for (const w of this.watchers.values()) this.store.removeWatcher(w);
    this.watchers.clear();
    this.queue = [];
    this.head = 0;
    this.closed = true;
    this.store.streamClosed(this);
  }
}

/**
 * The key of an encoded KeyValue, read without decoding the rest: field 1
 * (tag 0x0a, length-delimited), which encoders write first (ours and
 * etcd's). undefined when it does not come first; the caller then decodes
 * the whole message.
 */
function encodedKey(v: Uint8Array): Uint8Array | undefined {
  if (v[0] !== 0x0a) return undefined;
  const r = new Reader(v);
  r.pos = 1;
  return r.bytes(v.length);
}
