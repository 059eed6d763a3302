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
 */
import { inRange, type WatchEvent, type WatchRecord } from './history.js';
import type { Violation } from './check-kv.js';
import { sameEvent, showEvent, type Replay } from './model.js';

const fullRange = (w: WatchRecord): boolean => w.key === '' && w.end === '\0';

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
        for (const [rev, events] of groupByRevision(resp.events)) if (!byRevision.has(rev)) byRevision.set(rev, events);
      }
    }
  }
  return byRevision;
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

export function checkWatches(watches: readonly WatchRecord[], replay: Replay): Violation[] {
  const v: Violation[] = [];
  for (const w of watches) checkWatch(w, replay, (message) => v.push({ check: 'watch', message: `watch #${w.id} (${w.label}): ${message}` }));
  return v;
}

function checkWatch(w: WatchRecord, replay: Replay, add: (m: string) => void): void {
  const expectedAt = (rev: number): WatchEvent[] => (replay.revisions.get(rev) ?? []).filter((e) => inRange(e.kv.key, w.key, w.end));
  /** The first revision >= from that touched the range, or undefined. */
  const nextExpected = (from: number): number | undefined => {
    for (let r = Math.max(from, 2); r <= replay.maxRev; r++) if (expectedAt(r).length > 0) return r;
    return undefined;
  };
  let last = (w.segments[0]?.startRev ?? 1) - 1;
  let compactedTo: number | undefined;
  for (const [si, seg] of w.segments.entries()) {
    if (si > 0 && seg.startRev !== last + 1 && seg.startRev !== Math.max(last + 1, compactedTo ?? 0)) {
      add(`stream ${si} resumed at ${seg.startRev}, not at ${last + 1} (after the last revision delivered)`);
    }
    let from = Math.max(seg.startRev, last + 1);
    compactedTo = undefined;
    for (const resp of seg.responses) {
      if (resp.canceled === true && (resp.compactRevision ?? 0) > 0) {
        compactedTo = resp.compactRevision;
        if ((compactedTo ?? 0) <= last + 1) add(`canceled as compacted at ${compactedTo ?? 0} on ${seg.endpoint}, though it needed revision ${last + 1} next`);
      }
      for (const [rev, events] of groupByRevision(resp.events)) {
        if (rev < seg.startRev) {
          add(`revision ${rev} delivered on ${seg.endpoint} by a stream started at revision ${seg.startRev}`);
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
        const same = expected.length === events.length && expected.every((e, i) => sameEvent(e, events[i] as WatchEvent, w.prevKv));
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
