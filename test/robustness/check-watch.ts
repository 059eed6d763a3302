/**
 * The watch guarantees, checked against the replayed history: every watch
 * stream must be ordered (revisions strictly increase; one revision's events
 * never split over two responses, which also makes them atomic and unique),
 * reliable (from its start revision on it delivers every revision that
 * touched its range, no gap, up to the end of the history), resumable (a
 * stream restarted at last+1 continues exactly there), correct (each event,
 * prev_kv included when asked for, equals the history's; no prev_kv when not
 * asked for). The only allowed gap is after the server canceled a stream
 * for compaction: the next stream starts at the compact revision.
 *
 * Bookmarkable (P11, #15220): a progress response at revision R on a
 * stream comes only once the watch has been sent every revision up to R
 * in its range, and nothing at or below R follows it; a stream reopened
 * after it may resume at R + 1.
 */
import { firstKey, inRange, type WatchEvent, type WatchRecord } from './history.js';
import type { Violation } from './check-kv.js';
import { sameEvent, showEvent, type Replay } from './model.js';

const fullRange = (w: WatchRecord): boolean => (w.key === '' || w.key === firstKey) && w.end === '\0';

/**
 * The history's events by revision, from the streams that watched every key
 * with prev_kv: the first stream to deliver a revision defines it; the
 * checker below then holds every stream, that one included, to it.
 */
export function mergeReference(watches: readonly WatchRecord[]): Map<number, WatchEvent[]> {
  const byRevision = new Map<number, WatchEvent[]>();
  for (const w of watches) {
    if (!fullRange(w) || !w.prevKv) continue;
    for (const seg of w.segments) {
      for (const resp of seg.responses) {
        for (const [rev, events] of groupByRevision(resp.events)) if (!byRevision.has(rev) && events.every(hasPrev)) byRevision.set(rev, events);
      }
    }
  }
  return byRevision;
}

/** Whether an event that had a previous version carries it (not so when that version was compacted as it was sent). */
function hasPrev(e: WatchEvent): boolean {
  return e.prevKv !== undefined || (e.type === 'put' && e.kv.version === 1);
}

function groupByRevision(events: readonly WatchEvent[]): [number, WatchEvent[]][] {
  const groups: [number, WatchEvent[]][] = [];
  for (const e of events) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[0] === e.kv.modRev) last[1].push(e);
    else groups.push([e.kv.modRev, [e]]);
  }
  return groups;
}

/**
 * compactions: those the run asked for, when. An event sent without its
 * prev_kv is correct once its previous revision may have been compacted:
 * etcd reads prev_kv at the event's revision - 1 as it sends the event and
 * leaves it out when that read finds the revision compacted.
 */
export function checkWatches(watches: readonly WatchRecord[], replay: Replay, compactions: readonly { atMs: number; revision: number }[] = []): Violation[] {
  const v: Violation[] = [];
  const compactedBy = (atMs: number): number => compactions.reduce((m, c) => (c.atMs <= atMs && c.revision > m ? c.revision : m), 0);
  for (const w of watches) checkWatch(w, replay, compactedBy, (message) => v.push({ check: 'watch', message: `watch #${w.id} (${w.label}): ${message}` }));
  return v;
}

function checkWatch(w: WatchRecord, replay: Replay, compactedBy: (atMs: number) => number, add: (m: string) => void): void {
  const expectedAt = (rev: number): WatchEvent[] => (replay.revisions.get(rev) ?? []).filter((e) => inRange(e.kv.key, w.key, w.end));
  // The revisions that touched the range, ascending.
  const touching: number[] = [];
  for (let r = 2; r <= replay.maxRev; r++) if (expectedAt(r).length > 0) touching.push(r);
  /** The first revision >= from that touched the range, or undefined. */
  const nextExpected = (from: number): number | undefined => {
    let lo = 0;
    let hi = touching.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((touching[mid] as number) < from) lo = mid + 1;
      else hi = mid;
    }
    return touching[lo];
  };
  let last = (w.segments[0]?.startRev ?? 1) - 1;
  /** The newest progress revision the watch was sent. */
  let progressed = 0;
  let compactedTo: number | undefined;
  for (const [si, seg] of w.segments.entries()) {
    if (si > 0 && seg.startRev !== last + 1 && seg.startRev !== Math.max(last + 1, compactedTo ?? 0)) {
      add(`stream ${si} resumed at ${seg.startRev}, not at ${last + 1} (after the last revision delivered)`);
    } else if (compactedTo !== undefined) {
      // Resumed at the compact revision: what lies below it is the gap compaction allows.
      last = Math.max(last, seg.startRev - 1);
    }
    let from = Math.max(seg.startRev, last + 1);
    compactedTo = undefined;
    for (const resp of seg.responses) {
      if (resp.progress === true) {
        const want = nextExpected(from);
        if (want !== undefined && want <= resp.revision) add(`a progress response at revision ${resp.revision} on ${seg.endpoint} came before revision ${want} of the watch's range was sent`);
        progressed = Math.max(progressed, resp.revision);
        if (resp.revision > last) {
          last = resp.revision;
          from = last + 1;
        }
        continue;
      }
      if (resp.canceled === true && (resp.compactRevision ?? 0) > 0) {
        compactedTo = resp.compactRevision;
        if ((compactedTo ?? 0) <= last + 1) add(`canceled as compacted at ${compactedTo ?? 0} on ${seg.endpoint}, though it needed revision ${last + 1} next`);
      }
      for (const [rev, events] of groupByRevision(resp.events)) {
        if (rev < seg.startRev) {
          add(`revision ${rev} delivered on ${seg.endpoint} by a stream started at revision ${seg.startRev}`);
          continue;
        }
        if (rev <= progressed) {
          add(`revision ${rev} sent on ${seg.endpoint} after a progress response at revision ${progressed}`);
          continue;
        }
        if (rev <= last) {
          add(`revision ${rev} delivered after revision ${last} (${rev === last ? 'split over two responses, or twice' : 'out of order'}) on ${seg.endpoint}`);
          continue;
        }
        const want = nextExpected(from);
        if (want === undefined || rev > want) {
          add(`revision ${want ?? '?'} missing: the stream on ${seg.endpoint} went from ${last} to ${rev}`);
        }
        const expected = expectedAt(rev);
        const prevCompacted = rev <= compactedBy(resp.atMs);
        const same =
          expected.length === events.length &&
          expected.every((e, i) => {
            const got = events[i] as WatchEvent;
            return sameEvent(e, got, w.prevKv && !(prevCompacted && got.prevKv === undefined));
          });
        if (!same) add(`revision ${rev} on ${seg.endpoint}: got [${events.map(showEvent).join('; ')}], the history has [${expected.map(showEvent).join('; ')}]`);
        if (!w.prevKv && events.some((e) => e.prevKv !== undefined)) add(`revision ${rev} carries prev_kv, which was not asked for`);
        last = rev;
        from = rev + 1;
      }
    }
  }
  const missing = compactedTo === undefined ? nextExpected(Math.max(last + 1, w.segments[0]?.startRev ?? 0)) : undefined;
  if (missing !== undefined) add(`ended at revision ${last}, but the history has revision ${missing} in its range (up to ${replay.maxRev})`);
}
