/**
 * The lease checker (P13), over the short leases of leases.ts and the
 * replayed history:
 *
 * - TTL: a grant gets max(asked, the cluster's minimum TTL) — never less
 *   than asked — and every keep-alive answers that same TTL.
 * - Atomic: the keys of one lease that existed are deleted together, at one
 *   revision (a revoke or an expiry deletes all of a lease's keys at once).
 * - Not early: a lease's keys are not deleted — unless its revoke had been
 *   sent — before its TTL has run out since the grant or the last keep-alive
 *   the leader answered (either refreshed it no earlier than its invoke).
 *   When the deletion happened is bounded above by the first watch response
 *   or request that showed its revision or a later one.
 * - Eventually: an abandoned lease's keys are gone by the end of the
 *   history (the client waited for it), and so are a revoked lease's when
 *   the revoke was acknowledged.
 * - Gone: after an acknowledged revoke, a keep-alive answers TTL 0 and
 *   TimeToLive -1 with granted TTL 0, whichever member answers (a leader that has not applied
 *   the revoke yet must wait until it has).
 */
import type { Violation } from './check-kv.js';
import type { History, OpRecord } from './history.js';
import type { Replay } from './model.js';

/** Timer granularity between this process and a member: both read the same monotonic clock. */
const slackMs = 50;

export function checkLeases(h: History, replay: Replay): Violation[] {
  const v: Violation[] = [];
  const leases = h.leases ?? [];
  if (leases.length === 0) return v;
  const add = (message: string, ops: number[] = []): void => void v.push({ check: 'lease', message, ops });
  const ops = new Map(h.ops.map((o) => [o.id, o]));
  const deletedAt = deleteRevisions(replay);
  const seenBy = firstSeen(h, replay);
  const minTtl = h.minLeaseTtl ?? 1;

  for (const l of leases) {
    const grant = ops.get(l.grantOp) as OpRecord;
    const granted = grant.res?.leaseTtl ?? 0;
    const want = Math.max(l.ttlAsked, minTtl);
    if (granted !== want) add(`lease ${l.id}: asked TTL ${l.ttlAsked} s, granted ${granted} s; the minimum being ${minTtl} s, etcd grants ${want} s`, [grant.id]);
    for (const ka of l.keepAlives) if (ka.ttl !== granted) add(`lease ${l.id}: a keep-alive answered TTL ${ka.ttl} s, the lease has ${granted} s`);
    const after = l.afterRevoke;
    if (after?.keepAliveTtl !== undefined && after.keepAliveTtl !== 0) {
      add(`lease ${l.id}: after its revoke was acknowledged, a keep-alive answered by ${after.memberId ?? '?'} renewed it (TTL ${after.keepAliveTtl} s)`, l.revokeOp === undefined ? [] : [l.revokeOp]);
    }
    if (after?.timeToLive !== undefined && (after.timeToLive !== -1 || (after.grantedTtl ?? 0) !== 0)) {
      add(`lease ${l.id}: after its revoke was acknowledged, TimeToLive answered TTL ${after.timeToLive} s (granted ${after.grantedTtl ?? '?'} s), not -1 (granted 0)`, l.revokeOp === undefined ? [] : [l.revokeOp]);
    }

    const existed = l.keys.filter((k) => replay.stateAt(k, replay.maxRev) !== undefined || deletedAt.has(k));
    if (existed.length === 0) continue;
    const revs = new Set(existed.map((k) => deletedAt.get(k)));
    if (revs.size > 1) {
      add(`lease ${l.id}: its keys were deleted at different revisions or not all: ${existed.map((k) => `${k}@${deletedAt.get(k) ?? 'never'}`).join(', ')}`);
      continue;
    }
    const [d] = revs;
    const revoke = l.revokeOp === undefined ? undefined : ops.get(l.revokeOp);
    if (d === undefined) {
      if (l.abandonedMs !== undefined) add(`lease ${l.id} (TTL ${granted} s) was abandoned, yet its keys ${existed.join(', ')} were still there at the end of the history (revision ${replay.maxRev})`);
      if (revoke?.status === 'ok') add(`lease ${l.id}: its revoke #${revoke.id} was acknowledged, yet its keys ${existed.join(', ')} were never deleted`, [revoke.id]);
      continue;
    }
    const observed = seenBy(d);
    const lastAlive = Math.max(grant.invokeMs, ...l.keepAlives.map((k) => k.invokeMs));
    const dueMs = lastAlive + granted * 1000;
    const revokedBefore = revoke !== undefined && revoke.invokeMs <= observed;
    if (!revokedBefore && observed < dueMs - slackMs) {
      const last = l.keepAlives[l.keepAlives.length - 1];
      add(
        `lease ${l.id} (TTL ${granted} s) expired early: its keys were deleted at revision ${d}, seen ${((dueMs - observed) / 1000).toFixed(2)} s before its TTL ran out ` +
          `(${last === undefined ? 'no keep-alive, granted' : `last keep-alive answered by ${last.memberId}`} at ${lastAlive.toFixed(0)} ms, deletion seen at ${observed.toFixed(0)} ms)`,
        [grant.id],
      );
    }
  }
  return v;
}

/** key -> the revision of its (only, for these single-use keys) delete. */
function deleteRevisions(replay: Replay): Map<string, number> {
  const out = new Map<string, number>();
  for (const [rev, events] of replay.revisions) for (const e of events) if (e.type === 'delete' && !out.has(e.kv.key)) out.set(e.kv.key, rev);
  return out;
}

/** The earliest time anything showed revision rev or a later one: a watch response, or an acknowledged request's header. */
function firstSeen(h: History, replay: Replay): (rev: number) => number {
  const at = new Array<number>(replay.maxRev + 2).fill(Infinity);
  const note = (rev: number, ms: number): void => {
    const r = Math.min(rev, replay.maxRev);
    if (r >= 0 && ms < (at[r] as number)) at[r] = ms;
  };
  for (const w of h.watches) for (const seg of w.segments) for (const resp of seg.responses) for (const e of resp.events) note(e.kv.modRev, resp.atMs);
  for (const op of h.ops) if (op.status === 'ok' && op.res !== undefined && op.returnMs !== undefined) note(op.res.revision, op.returnMs);
  // Seen at rev' >= rev means rev had happened: a suffix minimum.
  for (let r = replay.maxRev - 1; r >= 0; r--) at[r] = Math.min(at[r] as number, at[r + 1] as number);
  return (rev) => at[Math.min(rev, replay.maxRev)] ?? Infinity;
}
