/**
 * Watchers and the sets the watchable store keeps them in, and the batching
 * of events per watcher (etcd's watcher_group.go).
 */
import { assert } from '../base/index.js';
import type { mvccpb } from '../pb/index.js';
import type { KeySpan } from './tree-index.js';

/** etcd's watchBatchMaxRevs: distinct revisions sent to a catching-up watcher at a time. */
export const eventBatchRevsMax = 1000;

export interface WatcherOwner {
  /** Queues a response for the watcher's stream; false when the stream's queue is full. */
  enqueue(w: Watcher, events: mvccpb.Event[], revision: number, compactRevision: number): boolean;
}

export class Watcher {
  /** The lowest revision the watcher still wants events from. */
  minRev: number;
  /** Its stream's queue was full: the undelivered batch waits in the store's victims. */
  victim = false;
  /** Canceled because its history was compacted (already told so). */
  compacted = false;
  /** Moved to unsynced by a restore, possibly with a future minRev. */
  restore = false;
  /**
   * Catching up: the events read for it by earlier sync passes and not sent
   * yet (fewer than eventBatchRevsMax revisions; minRev is past them). They
   * go out with the rest of their batch, in one response, as etcd's one
   * read of the whole history would send them.
   */
  held: EventBatch | undefined;
  canceled = false;

  constructor(
    readonly id: number,
    readonly span: KeySpan,
    startRev: number,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    readonly prevKv: boolean,
    readonly owner: WatcherOwner,
  ) {
    this.minRev = startRev;
  }

  matches(key: string): boolean {
    const s = this.span;
    if (s.single) return key === s.start;
    return key >= s.start && (s.end === undefined || key < s.end);
  }
}

/** Events for one watcher, revision ordered, at most eventBatchRevsMax distinct revisions. */
export class EventBatch {
  readonly events: mvccpb.Event[] = [];
  revs = 0;
  /** The first revision left out because the batch was full (0: none). */
  moreRev = 0;

  add(ev: mvccpb.Event): void {
    if (this.moreRev !== 0) return;
    const rev = (ev.kv as mvccpb.KeyValue).modRevision;
    const last = this.events[this.events.length - 1];
    if (last === undefined || rev > (last.kv as mvccpb.KeyValue).modRevision) {
      if (this.revs === eventBatchRevsMax) {
        this.moreRev = rev;
        return;
      }
      this.revs++;
    }
    this.events.push(ev);
  }
}

/** A set of watchers indexed by key: exact keys in a map, ranges by their span. */
export class WatcherGroup {
  readonly watchers = new Set<Watcher>();
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Map<string, { span: KeySpan; set: Set<Watcher> }>();

  get size(): number {
    return this.watchers.size;
  }

  has(w: Watcher): boolean {
    return this.watchers.has(w);
  }

  add(w: Watcher): void {
    assert(!this.watchers.has(w), 'watcher added twice to a group');
    this.watchers.add(w);
    if (w.span.single) {
      let set = this.byKey.get(w.span.start);
      if (set === undefined) this.byKey.set(w.span.start, (set = new Set()));
      set.add(w);
      return;
    }
    const rk = rangeKey(w.span);
    let r = this.ranges.get(rk);
    if (r === undefined) this.ranges.set(rk, (r = { span: w.span, set: new Set() }));
    r.set.add(w);
  }

  delete(w: Watcher): boolean {
    if (!this.watchers.delete(w)) return false;
    if (w.span.single) {
      const set = this.byKey.get(w.span.start) as Set<Watcher>;
      set.delete(w);
      if (set.size === 0) this.byKey.delete(w.span.start);
      return true;
    }
    const rk = rangeKey(w.span);
    const r = this.ranges.get(rk);
    assert(r !== undefined, 'range watcher without its range');
    r.set.delete(w);
    if (r.set.size === 0) this.ranges.delete(rk);
    return true;
  }

  /** Whether any watcher of the group watches key. */
  contains(key: string): boolean {
    if (this.byKey.has(key)) return true;
    for (const r of this.ranges.values()) if (inSpan(r.span, key)) return true;
    return false;
  }

  /** Calls fn for every watcher of the group watching key. */
  forEachWatching(key: string, fn: (w: Watcher) => void): void {
    const set = this.byKey.get(key);
    if (set !== undefined) for (const w of set) fn(w);
    for (const r of this.ranges.values()) {
      if (inSpan(r.span, key)) for (const w of r.set) fn(w);
    }
  }
}

function rangeKey(span: KeySpan): string {
  return span.end === undefined ? `${span.start}\u0000*` : `${span.start}\u0000${span.end}`;
}

function inSpan(span: KeySpan, key: string): boolean {
  return key >= span.start && (span.end === undefined || key < span.end);
}

/** An event with its key in bytesToKey form. */
export interface KeyedEvent {
  readonly ev: mvccpb.Event;
  readonly key: string;
}

/**
 * Maps each watcher of the group to its events (those at or after its
 * minRev), after the events it holds from earlier passes (Watcher.held).
 */
export function batchEvents(group: WatcherGroup, events: readonly KeyedEvent[]): Map<Watcher, EventBatch> {
  const out = new Map<Watcher, EventBatch>();
  if (group.size === 0) return out;
  for (const w of group.watchers) {
    if (w.held !== undefined) out.set(w, w.held);
    w.held = undefined;
  }
  for (const { ev, key } of events) {
    const rev = (ev.kv as mvccpb.KeyValue).modRevision;
    group.forEachWatching(key, (w) => {
      if (rev < w.minRev) return;
      let eb = out.get(w);
      if (eb === undefined) out.set(w, (eb = new EventBatch()));
      eb.add(ev);
    });
  }
  return out;
}
