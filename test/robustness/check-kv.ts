/**
 * Linearizability of the KV history, made cheap by etcd's revisions.
 *
 * A porcupine-style search guesses an order of the writes; etcd hands it to
 * us: every write that changes the store gets the next revision, and the
 * watch history (replay) says which events each revision holds. So:
 *
 * 1. Attribution: every revision is traced to exactly one client request —
 *    by its unique put values, else (delete-only revisions) to a delete,
 *    delete txn or lease revoke that answered with that revision, else to
 *    an indeterminate one that could have produced it. A revision nobody
 *    wrote is a phantom write; a request seen at two revisions was applied
 *    twice; an acknowledged put never seen was lost; a value of a write
 *    refused with a definite error (permission, auth, validation:
 *    client.ts) seen anywhere took effect though refused.
 * 2. Semantics: each attributed request, run by the model against the state
 *    just before its revision, must produce exactly that revision's events
 *    and, if it was acknowledged, exactly its response. A request that wrote
 *    nothing is a read of the state at its header revision and must match it.
 * 3. Real time: a total order by revision must fit every request's
 *    [invoke, return] interval (indeterminate writes: [invoke, ∞)) — reads
 *    of revision R between the writes of R and R+1. The earliest feasible
 *    point of each write, taken greedily in revision order, decides it.
 *
 * Serializable reads are not linearizable: they must equal the state at
 * their header revision, and one member's must not go back in time.
 * Historical reads (an explicit revision) must equal the state at it.
 */
import type { OpRecord, Response, TxnRequest, WatchEvent } from './history.js';
import { evaluate, resultDiff, revokeEvents, sameEvent, showEvent, type Replay } from './model.js';

export interface Violation {
  readonly check: string;
  readonly message: string;
  readonly ops?: readonly number[];
}

/** The put values a request might write, in either branch. */
function putValues(op: OpRecord): string[] {
  if (op.req.kind !== 'txn') return [];
  return [...op.req.txn.success, ...op.req.txn.failure].flatMap((o) => (o.type === 'put' ? [o.value] : []));
}

/** Keys a request might delete (leases: unknown here, any key). */
function mayDelete(op: OpRecord, keys: readonly string[]): boolean {
  if (op.req.kind === 'leaseRevoke') return true;
  if (op.req.kind !== 'txn') return false;
  const deletes = new Set([...op.req.txn.success, ...op.req.txn.failure].flatMap((o) => (o.type === 'delete' ? [o.key] : [])));
  return keys.every((k) => deletes.has(k));
}

function isLinearizableRead(req: TxnRequest): boolean {
  return req.success.every((o) => o.type === 'range' && o.serializable !== true && o.revision === undefined) && req.compares.length === 0;
}

function isSerializableRead(req: TxnRequest): boolean {
  return req.compares.length === 0 && req.success.length > 0 && req.success.every((o) => o.type === 'range' && o.serializable === true);
}

function historicalRev(req: TxnRequest): number | undefined {
  const only = req.success[0];
  return req.compares.length === 0 && req.success.length === 1 && only?.type === 'range' ? only.revision : undefined;
}

/** Writes no recorded request made, and where they may come from. */
export interface OtherWriters {
  /** Leases that may expire on their own: a delete-only revision may be exactly one's keys going (check-lease says whether it was due). */
  readonly expirable?: readonly string[];
  /**
   * Keys the v3lock service writes (its Lock puts name/<lease hex> = '' with
   * that lease; Unlock deletes it): a revision with one such put or delete.
   */
  readonly lockPrefix?: string;
}

function lockWrite(events: readonly WatchEvent[], lockPrefix: string | undefined): boolean {
  const [e] = events;
  if (lockPrefix === undefined || events.length !== 1 || e === undefined || !e.kv.key.startsWith(lockPrefix)) return false;
  if (e.type === 'delete') return true;
  return e.kv.value === '' && e.kv.version === 1 && e.kv.lease !== '0' && e.kv.key.endsWith(`/${BigInt(e.kv.lease).toString(16)}`);
}

export function checkKv(ops: readonly OpRecord[], replay: Replay, others: OtherWriters = {}): Violation[] {
  const expirable = others.expirable ?? [];
  const v: Violation[] = [];
  const add = (check: string, message: string, ids: number[] = []): void => void v.push({ check, message, ops: ids });
  const live = ops.filter((o) => o.status === 'ok' || o.status === 'indeterminate');

  // 1. Attribution.
  const byValue = new Map<string, OpRecord>();
  for (const op of live) for (const val of putValues(op)) byValue.set(val, op);
  // Writes refused with a definite error: none of their values may show up.
  const refusedByValue = new Map<string, OpRecord>();
  for (const op of ops) if (op.status === 'failed') for (const val of putValues(op)) refusedByValue.set(val, op);
  const revOf = new Map<number, number>(); // op id -> revision
  const writerOf = new Map<number, OpRecord>(); // revision -> op
  const attribute = (rev: number, op: OpRecord): void => {
    const before = revOf.get(op.id);
    if (before !== undefined) {
      add('attribution', `request #${op.id} (${op.label}) took effect twice: at revisions ${before} and ${rev}`, [op.id]);
      return;
    }
    revOf.set(op.id, rev);
    writerOf.set(rev, op);
  };
  for (let rev = 2; rev <= replay.maxRev; rev++) {
    const events = replay.revisions.get(rev);
    if (events === undefined || events.length === 0) {
      add('history', `revision ${rev} has no events in any watch stream`);
      continue;
    }
    if (lockWrite(events, others.lockPrefix)) continue;
    const writers = new Set(events.flatMap((e) => (e.type === 'put' ? [byValue.get(e.kv.value)] : [])));
    if (writers.size > 0) {
      const [only] = writers;
      if (writers.size > 1 || only === undefined) {
        const refused = events.flatMap((e) => (e.type === 'put' ? [refusedByValue.get(e.kv.value)] : [])).find((op) => op !== undefined);
        if (refused !== undefined) {
          add('refused-write', `revision ${rev} (${events.map(showEvent).join('; ')}) was written by request #${refused.id} (${refused.label}), which was refused (${refused.error ?? '?'})`, [refused.id]);
        } else {
          add('attribution', `revision ${rev} (${events.map(showEvent).join('; ')}) holds values no single request wrote`);
        }
        continue;
      }
      attribute(rev, only);
      continue;
    }
    const keys = events.map((e) => e.kv.key);
    const candidates = live.filter((op) => !revOf.has(op.id) && mayDelete(op, keys));
    // Two acknowledged deletes of one key can answer the same revision: the one that
    // removed it wrote it, the other (deleted 0) came after and only read it. A
    // revoke's answer does not say whether it deleted anything, a delete txn's does:
    // when both fit, the txn wrote the revision and the revoke found the keys gone.
    const fits = candidates.filter(
      (op) => op.status === 'ok' && op.res?.revision === rev && deleteEventsMatch(replay, rev, op, events) && answersAsWriter(replay, rev, op),
    );
    const acked = fits.find((op) => op.req.kind === 'txn') ?? fits[0];
    const maybe = candidates.filter((op) => op.status === 'indeterminate').sort((a, b) => a.invokeMs - b.invokeMs);
    // A short lease's keys going at once is its expiry unless a revoke was acknowledged there: a revoke
    // that failed ("lease not found") is indeterminate and may have been sent after the expiry.
    if (acked === undefined && expirable.some((lease) => sameEvents(revokeEvents(replay, rev - 1, lease), events))) continue;
    const chosen = acked ?? maybe.find((op) => deleteEventsMatch(replay, rev, op, events));
    if (chosen === undefined) {
      add('attribution', `revision ${rev} (${events.map(showEvent).join('; ')}) was written by no client request (phantom write)`);
      continue;
    }
    attribute(rev, chosen);
  }

  // 2. Semantics.
  for (const op of live) {
    const rev = revOf.get(op.id);
    if (rev !== undefined) {
      checkWriter(op, rev, replay, add);
      continue;
    }
    if (op.status !== 'ok' || op.res === undefined) continue;
    checkNonWriter(op, op.res, replay, add);
  }

  // 3. Real time.
  checkRealTime(live, revOf, writerOf, replay, add);
  checkSerializableMonotonic(live, add);
  return v;
}

/** Whether op's acknowledged results are those of applying it at rev (on the state of rev - 1). */
function answersAsWriter(replay: Replay, rev: number, op: OpRecord): boolean {
  if (op.req.kind !== 'txn' || op.res === undefined) return true;
  const want = evaluate(replay, rev - 1, op.req.txn);
  return want.succeeded === op.res.succeeded && want.results.every((r, i) => {
    const got = op.res?.results[i];
    return got !== undefined && resultDiff(got, r) === undefined;
  });
}

function deleteEventsMatch(replay: Replay, rev: number, op: OpRecord, events: readonly WatchEvent[]): boolean {
  const want = expectedEvents(replay, rev, op);
  return want !== undefined && sameEvents(want, events);
}

/** Equal event lists, prev_kv included; a lease's deletes in key order. */
function sameEvents(want: readonly WatchEvent[], events: readonly WatchEvent[]): boolean {
  const got = [...events].sort((a, b) => (a.kv.key < b.kv.key ? -1 : a.kv.key > b.kv.key ? 1 : 0));
  const sortedWant = [...want].sort((a, b) => (a.kv.key < b.kv.key ? -1 : a.kv.key > b.kv.key ? 1 : 0));
  return want.length > 0 && sortedWant.length === got.length && sortedWant.every((e, i) => sameEvent(e, got[i] as WatchEvent, true));
}

/** The events op produces when applied at rev (on the state of rev - 1); undefined for a lease grant. */
function expectedEvents(replay: Replay, rev: number, op: OpRecord): WatchEvent[] | undefined {
  switch (op.req.kind) {
    case 'txn':
      return evaluate(replay, rev - 1, op.req.txn).events;
    case 'leaseRevoke':
      return revokeEvents(replay, rev - 1, op.req.id);
    case 'leaseGrant':
      return undefined;
  }
}

type Add = (check: string, message: string, ids?: number[]) => void;

function checkWriter(op: OpRecord, rev: number, replay: Replay, add: Add): void {
  const events = replay.revisions.get(rev) ?? [];
  const want = expectedEvents(replay, rev, op) ?? [];
  // A revoke's deletes may come in any key order; a txn's follow its ops.
  const got = op.req.kind === 'leaseRevoke' ? [...events].sort((a, b) => (a.kv.key < b.kv.key ? -1 : 1)) : events;
  const same = want.length === got.length && want.every((e, i) => sameEvent(e, got[i] as WatchEvent, true));
  if (!same) {
    add(
      'semantics',
      `request #${op.id} (${op.label}) is at revision ${rev}, which holds [${events.map(showEvent).join('; ')}], but applied to revision ${rev - 1} it gives [${want.map(showEvent).join('; ')}]`,
      [op.id],
    );
    return;
  }
  if (op.status !== 'ok' || op.res === undefined || op.req.kind !== 'txn') return;
  if (op.res.revision !== rev) add('semantics', `request #${op.id} (${op.label}) answered revision ${op.res.revision} but took effect at ${rev}`, [op.id]);
  compareResults(op, op.res, evaluate(replay, rev - 1, op.req.txn), add);
}

function checkNonWriter(op: OpRecord, res: Response, replay: Replay, add: Add): void {
  if (op.req.kind !== 'txn') return;
  const txn = op.req.txn;
  const taken = res.succeeded ? txn.success : txn.failure;
  if (taken.some((o) => o.type === 'put')) {
    add('lost-write', `acknowledged write #${op.id} (${op.label}, revision ${res.revision}) is in no revision of the history`, [op.id]);
    return;
  }
  if (res.revision > replay.maxRev) {
    add('future', `request #${op.id} (${op.label}) answered revision ${res.revision}, beyond the last revision ${replay.maxRev} of the history`, [op.id]);
    return;
  }
  const at = historicalRev(txn) ?? res.revision;
  const want = evaluate(replay, at, txn);
  if (want.events.length > 0) {
    add('semantics', `request #${op.id} (${op.label}) answered revision ${res.revision} without writing, but at that state it writes [${want.events.map(showEvent).join('; ')}]`, [op.id]);
    return;
  }
  compareResults(op, res, want, add);
}

function compareResults(op: OpRecord, res: Response, want: ReturnType<typeof evaluate>, add: Add): void {
  if (res.succeeded !== want.succeeded) {
    add('semantics', `request #${op.id} (${op.label}) succeeded=${res.succeeded}, the model says ${want.succeeded} at revision ${res.revision}`, [op.id]);
    return;
  }
  want.results.forEach((w, i) => {
    const got = res.results[i];
    const diff = got === undefined ? 'missing result' : resultDiff(got, w);
    if (diff !== undefined) add('semantics', `request #${op.id} (${op.label}) at revision ${res.revision}, op ${i}: ${diff}`, [op.id]);
  });
}

/**
 * Writes and linearizable reads placed on one time line in revision order.
 * t(R) = the linearization point of revision R's write; it must lie in the
 * write's interval, after every read of an older revision began, and before
 * every read of R or newer ended.
 */
function checkRealTime(live: readonly OpRecord[], revOf: ReadonlyMap<number, number>, writerOf: ReadonlyMap<number, OpRecord>, replay: Replay, add: Add): void {
  const reads = live.filter(
    (op) => op.status === 'ok' && op.res !== undefined && !revOf.has(op.id) && op.req.kind === 'txn' && (isLinearizableRead(op.req.txn) || op.req.txn.compares.length > 0 || op.req.txn.success.some((o) => o.type !== 'range')),
  );
  const maxRev = replay.maxRev;
  // latestInvokeBelow[R]: the latest invoke of a read of a revision < R; earliestReturnFrom[R]: of a read of a revision >= R.
  const invokeAt = new Map<number, { ms: number; id: number }>();
  const returnAt = new Map<number, { ms: number; id: number }>();
  for (const op of reads) {
    const r = op.res?.revision ?? 0;
    if (r > maxRev) continue;
    const inv = invokeAt.get(r);
    if (inv === undefined || op.invokeMs > inv.ms) invokeAt.set(r, { ms: op.invokeMs, id: op.id });
    const ret = op.returnMs ?? Infinity;
    const cur = returnAt.get(r);
    if (cur === undefined || ret < cur.ms) returnAt.set(r, { ms: ret, id: op.id });
  }
  const earliestReturnFrom: { ms: number; id: number }[] = new Array<{ ms: number; id: number }>(maxRev + 2).fill({ ms: Infinity, id: -1 });
  for (let r = maxRev; r >= 0; r--) {
    const here = returnAt.get(r);
    const later = earliestReturnFrom[r + 1] as { ms: number; id: number };
    earliestReturnFrom[r] = here !== undefined && here.ms < later.ms ? here : later;
  }
  let t = -Infinity;
  let latestReadInvoke = { ms: -Infinity, id: -1 };
  for (let r = 1; r <= maxRev; r++) {
    if (r >= 2) {
      const w = writerOf.get(r);
      if (w !== undefined) {
        const lower = Math.max(t, w.invokeMs, latestReadInvoke.ms);
        const upperWrite = w.status === 'ok' ? (w.returnMs ?? Infinity) : Infinity;
        const upperRead = earliestReturnFrom[r] as { ms: number; id: number };
        if (lower > upperWrite || lower > upperRead.ms) {
          const why =
            lower > upperWrite
              ? `it ended at ${upperWrite.toFixed(1)} ms but cannot come before ${lower.toFixed(1)} ms (an older revision's write or a read of an older revision started then${latestReadInvoke.id >= 0 ? `: read #${latestReadInvoke.id}` : ''})`
              : `read #${upperRead.id} saw revision >= ${r} and ended at ${upperRead.ms.toFixed(1)} ms, before the write could have happened (${lower.toFixed(1)} ms${latestReadInvoke.ms === lower ? `, after read #${latestReadInvoke.id} of an older revision began` : ''})`;
          add('linearizability', `revision ${r}, written by #${w.id} (${w.label}): ${why}`, [w.id, ...(upperRead.id >= 0 ? [upperRead.id] : []), ...(latestReadInvoke.id >= 0 ? [latestReadInvoke.id] : [])]);
          t = lower;
        } else {
          t = lower;
        }
      }
    }
    const inv = invokeAt.get(r);
    if (inv !== undefined && inv.ms > latestReadInvoke.ms) latestReadInvoke = inv;
  }
}

function checkSerializableMonotonic(live: readonly OpRecord[], add: Add): void {
  const reads = live
    .filter((op) => op.status === 'ok' && op.res !== undefined && op.req.kind === 'txn' && isSerializableRead(op.req.txn))
    .sort((a, b) => a.invokeMs - b.invokeMs);
  const byReturn = [...reads].sort((a, b) => (a.returnMs ?? 0) - (b.returnMs ?? 0));
  const seen = new Map<string, { rev: number; id: number }>();
  let j = 0;
  for (const op of reads) {
    // Fold in every read that returned before this one was invoked.
    while (j < byReturn.length && ((byReturn[j] as OpRecord).returnMs ?? 0) < op.invokeMs) {
      const done = byReturn[j] as OpRecord;
      const res = done.res as Response;
      const cur = seen.get(res.memberId);
      if (cur === undefined || res.revision > cur.rev) seen.set(res.memberId, { rev: res.revision, id: done.id });
      j++;
    }
    const res = op.res as Response;
    const before = seen.get(res.memberId);
    if (before !== undefined && res.revision < before.rev) {
      add('serializable', `member ${res.memberId} answered serializable read #${op.id} at revision ${res.revision} after answering #${before.id} at ${before.rev}: its revision went back`, [op.id, before.id]);
    }
  }
}
