/**
 * The space fault (P16). The cluster runs with a small backend quota
 * (quotaBytes); the fault fills it with big puts until one is answered
 * "database space exceeded", holds the cluster to what etcd promises while
 * its NOSPACE alarm is up, and then recovers as an operator would:
 *
 * - every member lists the alarm (it goes through raft), also a member
 *   restarted meanwhile (one time in two: the alarm is stored);
 * - a put, a txn with a put and a lease grant are refused with
 *   RESOURCE_EXHAUSTED and etcd's message;
 * - reads and deletes go on: the fill keys are read and deleted;
 * - the deletes are compacted and every member defragmented; writes are
 *   still refused (by every member's apply now) until the alarm is
 *   disarmed; then they succeed again and no member lists an alarm.
 *
 * Every request of the fault's own that touches keys or leases is an op of
 * the history (through the recorder), so the linearizability check holds
 * them to the same rules as the traffic's; the traffic goes on throughout
 * and gets its writes refused while the alarm is up. Whatever fails on the
 * way, the fault ends with the alarm disarmed, so the run goes on.
 */
import { GrpcError, GrpcStatus } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, getHealth, methods, type Member } from '../harness/index.js';
import type { FaultContext } from './fault-kit.js';
import { defragment } from './maintenance.js';
import { nowMs } from './history.js';
import { prefixEnd, txn } from './traffic.js';

/** The members' --quota-backend-bytes: a run's backend stays near 150 KB (compaction every second, defrag every 5 s). */
export const quotaBytes = 4 * 1024 * 1024;
/** Padding of each fill put: some 70 of them cross the quota. */
const fillPadBytes = 64 * 1024;
const noSpaceMessage = 'etcdserver: mvcc: database space exceeded';
export const fillPrefix = 'fill/';
/** Leases the fault tries to grant: apart from every other client's ids. */
const fillLeaseBase = 1n << 44n;

let fills = 0;

export async function spaceFault(ctx: FaultContext): Promise<void> {
  const round = ++fills;
  const keys: string[] = [];
  let full = false;
  try {
    full = await fill(ctx, round, keys);
    ctx.note(`space: ${keys.length} puts of ${fillPadBytes / 1024} KiB; ${full ? 'NOSPACE' : 'the quota was never hit'}`);
    if (!full) {
      ctx.violation('space', `${keys.length} puts of ${fillPadBytes} bytes never crossed a quota of ${quotaBytes} bytes`);
      return;
    }
    await checkAlarmRaised(ctx, 'once the quota was hit');
    await checkWritesRefused(ctx, round, 0);
    if (ctx.rand.intn(2) === 0) {
      const m = ctx.cluster.members[ctx.rand.intn(ctx.cluster.members.length)] as Member;
      ctx.note(`space: restart ${m.name} under NOSPACE`);
      await m.kill();
      // Serving, not healthy: /health is false while an alarm is up.
      await m.start({ timeoutMs: ctx.readyTimeoutMs, until: 'serving' });
      await checkAlarmRaised(ctx, `after ${m.name} restarted`);
    }
  } finally {
    // Space first: a member over its quota raises the alarm again at the next write.
    const lastDelete = await readAndDelete(ctx, [...keys, `${fillPrefix}${round}/refused-0`]);
    const compacted = lastDelete !== undefined && (await ctx.compactOnceSeen(lastDelete, 20_000));
    const defragged = await defragAll(ctx);
    ctx.note(`space: fill deleted${lastDelete !== undefined ? ` by ${lastDelete}` : ''}, ${compacted ? 'compacted' : 'not compacted'}, ${defragged}`);
    if (full) await checkWritesRefused(ctx, round, 1);
    await disarm(ctx);
  }
  await checkWritesResume(ctx, round);
}

/** Puts padded values until one is refused for space; true when one was. */
async function fill(ctx: FaultContext, round: number, keys: string[]): Promise<boolean> {
  const maxPuts = (2 * quotaBytes) / fillPadBytes + 20;
  const deadline = nowMs() + 60_000;
  while (keys.length < maxPuts && nowMs() < deadline) {
    const key = `${fillPrefix}${round}/${keys.length}`;
    keys.push(key);
    // The put that crosses the quota is applied and then answered NOSPACE: its key exists too.
    if ((await ctx.recorder.run('space-fill', txn({ success: [{ type: 'put', key, value: `fill-${round}-${keys.length}`, pad: fillPadBytes }] }))) !== undefined) continue;
    if (isNoSpace(ctx.recorder.lastError)) return true;
  }
  return false;
}

function isNoSpace(e: GrpcError | undefined): boolean {
  return e?.code === GrpcStatus.RESOURCE_EXHAUSTED && e.details === noSpaceMessage;
}

async function alarms(ctx: FaultContext, m: Member): Promise<etcdserverpb.AlarmMember[] | undefined> {
  const ch = ctx.access.channel(m.endpoint, 'admin');
  try {
    const r = await ch.unary(methods.maintenance.Alarm, etcdserverpb.AlarmRequest.create({ action: etcdserverpb.AlarmRequest_AlarmAction.GET }), { timeoutMs: 3000 });
    return r.alarms;
  } catch (e) {
    ctx.access.noteError('admin', e, m.endpoint);
    return undefined;
  } finally {
    ch.close();
  }
}

/** Waits (10 s at most) until every member answers the predicate over its alarm list; the members that never did. */
async function untilEveryMember(ctx: FaultContext, ok: (list: readonly etcdserverpb.AlarmMember[]) => boolean): Promise<string[]> {
  const deadline = nowMs() + 10_000;
  let pending = [...ctx.cluster.members];
  while (pending.length > 0 && nowMs() < deadline) {
    const answers = await Promise.all(pending.map((m) => alarms(ctx, m)));
    pending = pending.filter((_, i) => answers[i] === undefined || !ok(answers[i]));
    if (pending.length > 0) await delay(250);
  }
  return pending.map((m) => m.name);
}

/** Every member lists NOSPACE, and its /health says false but for ?exclude=NOSPACE (etcd 3.4's health). */
async function checkAlarmRaised(ctx: FaultContext, when: string): Promise<void> {
  const release = await ctx.quietNetwork();
  try {
    await checkAlarmRaisedEverywhere(ctx, when);
  } finally {
    release();
  }
}

async function checkAlarmRaisedEverywhere(ctx: FaultContext, when: string): Promise<void> {
  const missing = await untilEveryMember(ctx, (list) => list.some((a) => a.alarm === etcdserverpb.AlarmType.NOSPACE));
  if (missing.length > 0) ctx.violation('space', `${when}: ${missing.join(', ')} did not list the NOSPACE alarm within 10 s`);
  for (const m of ctx.cluster.members) {
    const health = await getHealth(m.clientUrl);
    if (health !== undefined && health !== 'false') ctx.violation('space', `${when}: /health of ${m.name} said ${health} under NOSPACE`);
  }
  const deadline = nowMs() + 10_000;
  const wrong: string[] = [];
  for (const m of ctx.cluster.members) {
    const excluding = (): Promise<string | undefined> => getHealth(m.clientUrl, undefined, undefined, '?exclude=NOSPACE');
    let h = await excluding();
    while (h !== 'true' && nowMs() < deadline) h = await delay(250).then(excluding);
    if (h !== 'true') wrong.push(`${m.name}: ${h ?? 'no answer'}`);
  }
  if (wrong.length > 0) ctx.violation('space', `${when}: /health?exclude=NOSPACE was not true within 10 s on ${wrong.join(', ')}`);
}

/**
 * A put, a txn with a put and a lease grant must all be refused for space
 * while the alarm is up: at first by the member that takes them (its
 * backend is over the quota) and by every member's apply, and once the
 * space is freed (phase 1) by the apply alone, until the alarm is disarmed.
 */
async function checkWritesRefused(ctx: FaultContext, round: number, phase: 0 | 1): Promise<void> {
  const key = `${fillPrefix}${round}/refused-${phase}`;
  const attempts = [
    { what: 'a put', label: 'space-put', req: txn({ success: [{ type: 'put', key, value: `fill-${round}-${phase}-put` }] }) },
    { what: 'a txn with a put', label: 'space-txn', req: txn({ compares: [{ key, modRev: 0 }], success: [{ type: 'put', key, value: `fill-${round}-${phase}-txn` }], failure: [{ type: 'range', key }] }) },
    { what: 'a lease grant', label: 'space-lease', req: { kind: 'leaseGrant' as const, id: (fillLeaseBase + BigInt(2 * round + phase)).toString(), ttl: 60 } },
  ];
  const when = phase === 0 ? 'under NOSPACE' : 'after the space was freed, before the disarm';
  for (const a of attempts) {
    // A member that is not reachable answers unavailable: try again, a few times.
    for (let i = 0; i < 5; i++) {
      const res = await ctx.recorder.run(a.label, a.req);
      if (res !== undefined) {
        ctx.violation('space', `${a.what} succeeded (revision ${res.revision}) ${when}`);
        if (a.req.kind === 'leaseGrant') await ctx.recorder.run('space-lease-revoke', { kind: 'leaseRevoke', id: a.req.id });
        break;
      }
      const e = ctx.recorder.lastError;
      if (isNoSpace(e)) break;
      if (e?.code !== GrpcStatus.UNAVAILABLE && e?.code !== GrpcStatus.DEADLINE_EXCEEDED) {
        ctx.violation('space', `${a.what} ${when} failed with ${e?.code ?? '?'} "${e?.details ?? ''}", not RESOURCE_EXHAUSTED "${noSpaceMessage}"`);
        break;
      }
    }
  }
}

/** Reads the fill back and deletes it (both must work under NOSPACE); the revision by which every key is gone. */
async function readAndDelete(ctx: FaultContext, keys: readonly string[]): Promise<number | undefined> {
  const [first] = keys;
  if (first !== undefined) {
    const prefix = first.slice(0, first.lastIndexOf('/') + 1);
    // A read may fail for other reasons (a member restarting, a stale token to fetch again): only NOSPACE is a violation.
    for (let i = 0; i < 5; i++) {
      if ((await ctx.recorder.run('space-read', txn({ success: [{ type: 'range', key: prefix, end: prefixEnd(prefix), limit: 5 }] }))) !== undefined) break;
      if (isNoSpace(ctx.recorder.lastError)) {
        ctx.violation('space', `a read under NOSPACE was refused: ${ctx.recorder.lastError?.message ?? '?'}`);
        break;
      }
    }
  }
  // The header revision of the last delete answered: every fill key is gone by then.
  let last: number | undefined;
  for (const key of keys) {
    for (let i = 0; i < 5; i++) {
      const res = await ctx.recorder.run('space-delete', txn({ success: [{ type: 'delete', key }] }));
      if (res !== undefined) {
        last = res.revision;
        break;
      }
      if (isNoSpace(ctx.recorder.lastError)) {
        ctx.violation('space', `a delete under NOSPACE was refused: ${ctx.recorder.lastError?.message ?? '?'}`);
        break;
      }
    }
  }
  return last;
}

async function defragAll(ctx: FaultContext): Promise<string> {
  const failed: string[] = [];
  for (const m of ctx.cluster.members) {
    let ok = false;
    for (let i = 0; i < 3 && !ok; i++) ok = await defragment(ctx.access, m.endpoint).then(() => true, () => delay(300).then(() => false));
    if (!ok) failed.push(m.name);
  }
  return failed.length === 0 ? 'every member defragmented' : `defrag failed on ${failed.join(', ')}`;
}

/** Disarms every alarm, as `etcdctl alarm disarm` does (each member's in turn), retried for a while. */
async function disarm(ctx: FaultContext): Promise<void> {
  const deadline = nowMs() + 20_000;
  while (nowMs() < deadline) {
    const m = ctx.cluster.members.filter((x) => x.running)[0];
    const list = m === undefined ? undefined : await alarms(ctx, m);
    if (list !== undefined && list.length === 0) return;
    for (const a of list ?? []) {
      const ch = ctx.access.channel((m as Member).endpoint, 'admin');
      try {
        await ch.unary(methods.maintenance.Alarm, etcdserverpb.AlarmRequest.create({ action: etcdserverpb.AlarmRequest_AlarmAction.DEACTIVATE, memberID: a.memberID, alarm: a.alarm }), { timeoutMs: 3000 });
      } catch (e) {
        ctx.access.noteError('admin', e, (m as Member).endpoint);
      } finally {
        ch.close();
      }
    }
    await delay(250);
  }
  ctx.note('space: the alarm could not be disarmed within 20 s');
}

/** After the recovery: no member lists an alarm, and a put succeeds (retried over failovers). */
async function checkWritesResume(ctx: FaultContext, round: number): Promise<void> {
  const release = await ctx.quietNetwork();
  const raised = await untilEveryMember(ctx, (list) => list.length === 0).finally(release);
  if (raised.length > 0) ctx.violation('space', `after the disarm, ${raised.join(', ')} still listed an alarm after 10 s`);
  const key = `${fillPrefix}${round}/after`;
  for (let i = 0; i < 10; i++) {
    if ((await ctx.recorder.run('space-after', txn({ success: [{ type: 'put', key, value: `fill-${round}-after-${i}` }] }))) !== undefined) {
      await ctx.recorder.run('space-delete', txn({ success: [{ type: 'delete', key }] }));
      return;
    }
  }
  ctx.violation('space', `no put succeeded after the recovery: ${ctx.recorder.lastError?.message ?? '?'}`);
}
