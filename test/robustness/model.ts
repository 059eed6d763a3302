/**
 * The KV model the checkers compare against: the history of every key,
 * replayed from the watch events of the run (etcd's robustness tests replay
 * the WAL instead; a watch from revision 1 on every key carries the same
 * information, and the watch checker verifies the streams agree), and an
 * evaluator that computes what a request must return and which events it
 * must produce when run against the state at a given revision.
 */
import { inRange, keyCompare, type Kv, type OpResult, type TxnOp, type TxnRequest, type WatchEvent } from './history.js';

export interface Version {
  readonly rev: number;
  /** undefined: deleted at rev. */
  readonly kv: Kv | undefined;
}

export class Replay {
  /** Events of each revision, in the order the server emitted them. */
  readonly revisions = new Map<number, readonly WatchEvent[]>();
  private readonly versions = new Map<string, Version[]>();
  private sortedKeys: string[] = [];
  /** The highest revision with events. */
  maxRev = 1;

  /**
   * Builds the replay from each revision's events, checking that they are a
   * possible mvcc history: versions count up from 1, create revisions stick,
   * deletes delete existing keys, prev_kv is the state before, no key twice
   * in one revision. Problems are returned, not thrown: they are violations.
   */
  static build(byRevision: ReadonlyMap<number, readonly WatchEvent[]>): { replay: Replay; problems: string[] } {
    const r = new Replay();
    const problems: string[] = [];
    const revs = [...byRevision.keys()].sort((a, b) => a - b);
    for (const rev of revs) {
      const events = byRevision.get(rev) ?? [];
      const seen = new Set<string>();
      for (const e of events) {
        const key = e.kv.key;
        if (seen.has(key)) problems.push(`revision ${rev}: key ${key} changed twice`);
        seen.add(key);
        if (e.kv.modRev !== rev) problems.push(`revision ${rev}: event on ${key} has mod_revision ${e.kv.modRev}`);
        const prev = r.stateAt(key, rev - 1);
        if (e.prevKv !== undefined && !sameKv(e.prevKv, prev)) {
          problems.push(`revision ${rev}: prev_kv of ${key} is ${showKv(e.prevKv)}, the state before was ${showKv(prev)}`);
        }
        if (e.type === 'put') {
          const wantVersion = prev === undefined ? 1 : prev.version + 1;
          const wantCreate = prev === undefined ? rev : prev.createRev;
          if (e.kv.version !== wantVersion || e.kv.createRev !== wantCreate) {
            problems.push(`revision ${rev}: put ${key} has version ${e.kv.version} create ${e.kv.createRev}, want ${wantVersion} / ${wantCreate}`);
          }
          r.addVersion(key, { rev, kv: e.kv });
        } else {
          if (prev === undefined) problems.push(`revision ${rev}: delete of ${key}, which did not exist`);
          r.addVersion(key, { rev, kv: undefined });
        }
      }
      r.revisions.set(rev, events);
      r.maxRev = Math.max(r.maxRev, rev);
    }
    return { replay: r, problems };
  }

  private addVersion(key: string, v: Version): void {
    let list = this.versions.get(key);
    if (list === undefined) {
      list = [];
      this.versions.set(key, list);
      this.sortedKeys.push(key);
      this.sortedKeys.sort(keyCompare);
    }
    list.push(v);
  }

  /** The key's value at rev, undefined if absent. */
  stateAt(key: string, rev: number): Kv | undefined {
    const list = this.versions.get(key);
    if (list === undefined) return undefined;
    let lo = 0;
    let hi = list.length; // first index with v.rev > rev
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid] as Version).rev <= rev) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : (list[lo - 1] as Version).kv;
  }

  /** Every version of the key in revision order: its value from rev on (undefined: deleted at rev). */
  versionsOf(key: string): readonly Version[] {
    return this.versions.get(key) ?? [];
  }

  /** Every key ever written, in key order. */
  keys(): readonly string[] {
    return this.sortedKeys;
  }
}

/** A view of the state at one revision with a txn's own writes on top. */
class View {
  private readonly overlay = new Map<string, Kv | undefined>();
  constructor(
    private readonly replay: Replay,
    readonly rev: number,
  ) {}

  get(key: string): Kv | undefined {
    return this.overlay.has(key) ? this.overlay.get(key) : this.replay.stateAt(key, this.rev);
  }
  set(key: string, kv: Kv | undefined): void {
    this.overlay.set(key, kv);
  }
  range(start: string, end: string | undefined): Kv[] {
    const keys = new Set([...this.replay.keys(), ...this.overlay.keys()]);
    const out: Kv[] = [];
    for (const k of [...keys].sort(keyCompare)) {
      if (!inRange(k, start, end)) continue;
      const kv = this.get(k);
      if (kv !== undefined) out.push(kv);
    }
    return out;
  }
}

export interface Evaluation {
  readonly succeeded: boolean;
  readonly results: OpResult[];
  /** The events the request produces, all at revision rev + 1. */
  readonly events: WatchEvent[];
}

/** Runs a txn against the state at rev, as etcd's apply would (no two writes to one key). */
export function evaluate(replay: Replay, rev: number, txn: TxnRequest): Evaluation {
  const view = new View(replay, rev);
  const succeeded = txn.compares.every((c) => (view.get(c.key)?.modRev ?? 0) === c.modRev);
  const ops = succeeded ? txn.success : txn.failure;
  const newRev = rev + 1;
  const events: WatchEvent[] = [];
  const results = ops.map((op) => applyOp(view, op, newRev, events));
  return { succeeded, results, events };
}

function applyOp(view: View, op: TxnOp, newRev: number, events: WatchEvent[]): OpResult {
  switch (op.type) {
    case 'range': {
      const all = view.range(op.key, op.end);
      const limited = op.limit !== undefined && op.limit > 0 ? all.slice(0, op.limit) : all;
      return { type: 'range', kvs: limited, count: all.length, more: limited.length < all.length };
    }
    case 'put': {
      const prev = view.get(op.key);
      const kv: Kv = {
        key: op.key,
        value: op.value,
        createRev: prev === undefined ? newRev : prev.createRev,
        modRev: newRev,
        version: prev === undefined ? 1 : prev.version + 1,
        lease: op.lease ?? '0',
      };
      view.set(op.key, kv);
      events.push(prev === undefined ? { type: 'put', kv } : { type: 'put', kv, prevKv: prev });
      return op.prevKv === true && prev !== undefined ? { type: 'put', prevKv: prev } : { type: 'put' };
    }
    case 'delete': {
      const prev = view.get(op.key);
      if (prev === undefined) return { type: 'delete', deleted: 0 };
      view.set(op.key, undefined);
      events.push({ type: 'delete', kv: deletedKv(op.key, newRev), prevKv: prev });
      return { type: 'delete', deleted: 1 };
    }
  }
}

/** The kv of a delete event: etcd sends only the key and the deleting revision. */
export function deletedKv(key: string, rev: number): Kv {
  return { key, value: '', createRev: 0, modRev: rev, version: 0, lease: '0' };
}

/** The delete events a revoke of lease at the state of rev produces, in key order. */
export function revokeEvents(replay: Replay, rev: number, lease: string): WatchEvent[] {
  const view = new View(replay, rev);
  return view
    .range('', '\0')
    .filter((kv) => kv.lease === lease)
    .map((kv) => ({ type: 'delete' as const, kv: deletedKv(kv.key, rev + 1), prevKv: kv }));
}

export function sameKv(a: Kv | undefined, b: Kv | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.key === b.key && a.value === b.value && a.createRev === b.createRev && a.modRev === b.modRev && a.version === b.version && a.lease === b.lease;
}

/** Events equal as the watch API defines them (a delete's kv carries only key and revision). */
export function sameEvent(a: WatchEvent, b: WatchEvent, withPrev: boolean): boolean {
  if (a.type !== b.type) return false;
  const kvSame = a.type === 'delete' ? a.kv.key === b.kv.key && a.kv.modRev === b.kv.modRev : sameKv(a.kv, b.kv);
  return kvSame && (!withPrev || sameKv(a.prevKv, b.prevKv));
}

export function showKv(kv: Kv | undefined): string {
  if (kv === undefined) return '(none)';
  const lease = kv.lease === '0' ? '' : ` lease=${kv.lease}`;
  return `${kv.key}=${JSON.stringify(kv.value)}@c${kv.createRev}/m${kv.modRev}/v${kv.version}${lease}`;
}

export function showEvent(e: WatchEvent): string {
  return `${e.type} ${e.type === 'delete' ? `${e.kv.key}@m${e.kv.modRev}` : showKv(e.kv)}${e.prevKv !== undefined ? ` prev ${showKv(e.prevKv)}` : ''}`;
}

/** Whether two results are equal; undefined when they are, else what differs. */
export function resultDiff(got: OpResult, want: OpResult): string | undefined {
  if (got.type !== want.type) return `a ${got.type} result where a ${want.type} was due`;
  switch (want.type) {
    case 'range': {
      const g = got as typeof want;
      const kvsSame = g.kvs.length === want.kvs.length && g.kvs.every((kv, i) => sameKv(kv, want.kvs[i]));
      if (!kvsSame) return `range returned [${g.kvs.map(showKv).join(', ')}], the state has [${want.kvs.map(showKv).join(', ')}]`;
      if (g.count !== want.count || g.more !== want.more) return `range count/more ${g.count}/${g.more}, want ${want.count}/${want.more}`;
      return undefined;
    }
    case 'put': {
      const g = got as typeof want;
      return sameKv(g.prevKv, want.prevKv) ? undefined : `put prev_kv ${showKv(g.prevKv)}, want ${showKv(want.prevKv)}`;
    }
    case 'delete': {
      const g = got as typeof want;
      return g.deleted === want.deleted ? undefined : `delete removed ${g.deleted} keys, want ${want.deleted}`;
    }
  }
}
