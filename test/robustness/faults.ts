/**
 * The faults a run injects, one at a time, each ending with the cluster
 * whole again (every member running, the network healed):
 *
 * - kill: SIGKILL the leader or a follower (one time in four SIGTERM, a
 *   graceful stop), restart it after a moment.
 * - pause: SIGSTOP the leader or a follower for 1-3 s, then SIGCONT.
 * - isolate: blackhole all peer traffic of the leader or a follower, both
 *   ways, for 1.5-3.5 s.
 * - isolate-until-snapshot: cut a follower off until the leader's log has
 *   moved on far enough that it must send a snapshot, then heal.
 * - delay: 50-100 ms on every peer link for 2 s.
 * - drop (P7): every member, or one, loses 20, 50 or 80 % of the raft
 *   messages it sends, for 1.5-4 s (the peerBeforeSendMessage drop site,
 *   armed at run time as the stall fault arms its sleeps; a lost snapshot
 *   is reported failed, as a broken connection would have it).
 * - failpoint: restart a member with ETCD_TS_FAILPOINTS arming a crash at
 *   one persistence point, provoke that point (traffic, a compaction, a
 *   defrag, a snapshot), wait for the crash, restart it with no failpoint.
 * - stall: a disk stall on the leader or a follower — arm, at run time
 *   (SIGUSR2 + ETCD_TS_FAILPOINTS_FILE, no restart), a 1-3.5 s sleep at the
 *   WAL save (before or after its fsync) or at the backend commit. The
 *   member's whole event loop stops, as its raft loop would on a stuck
 *   fsync; a leader stalled past the election timeout is replaced, and
 *   steps down when it wakes to the higher term.
 * - flaky: every peer link of one member, or of all, cut at random 2-5
 *   times a second for 2-4 s (FaultNet's flaky links).
 * - replace: MemberRemove a follower, or one time in three the leader (it
 *   stops itself; a removed leader first steps down), wipe its data dir,
 *   MemberAdd it back (a new member id, same name and URLs) and start it
 *   with --initial-cluster-state existing.
 * - learner: the same, re-added as a learner, then MemberPromote (retried
 *   until the leader finds it caught up).
 * - auth (runs with auth on; a pause otherwise): change the auth store under
 *   traffic — an unused permission granted or revoked (every token goes
 *   stale), or the traffic's permission taken away for 0.3-1 s.
 * - space: fill the members' small quota until NOSPACE, check the alarm and
 *   what it refuses and allows, then compact, defrag and disarm (space.ts).
 * - bitflip: flip one bit of a stopped follower's WAL, snapshot or backend file and
 *   start it; replace it when it refuses to (bitflip.ts).
 * - watch-hold (P11): on one member or on every member, for 2-5 s, every
 *   watch response held 0.5-1.5 s before it is sent, or every pass that
 *   moves victims and catches up unsynced watchers held as long (holds at
 *   run time, as the stall fault arms its sleeps; only that path waits).
 * - clock (P9): the wall clock of one member or of all jumps or strobes
 *   (clock.ts; members run under libfaketime when it is installed).
 * - transfer: MoveLeader from the leader to a follower, as an operator
 *   moves leadership before maintenance; one time in three the follower is
 *   paused first, so the transfer gives up after an election timeout while
 *   the leader holds the writes raft drops meanwhile (the call ends at its
 *   3 s deadline).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import type { FailpointName } from '../../src/base/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, memberStatus, methods, outcome, type Member } from '../harness/index.js';
import { bitflipFault } from './bitflip.js';
import { clockFault } from './clock.js';
import { clusterCall, leaderIndex, pickTarget, rejoinWiped, type FaultContext } from './fault-kit.js';
import { defragment } from './maintenance.js';
import { spaceFault } from './space.js';

export type { FaultContext } from './fault-kit.js';

export const faultKinds = [
  'kill', 'pause', 'isolate', 'isolate-until-snapshot', 'delay', 'drop', 'failpoint', 'stall', 'flaky', 'replace', 'learner', 'auth', 'space', 'bitflip', 'watch-hold', 'clock',
  'transfer',
] as const;
export type FaultKind = (typeof faultKinds)[number];

/**
 * The faults that only change the proxies' links (FaultNet): with overlapping
 * faults they run beside the others, which leave FaultNet alone (but for
 * restoreCluster after a failed fault). The faults armed through the shared
 * failpoints file (stall, drop, watch-hold) stay in the other lane: two arms
 * at once could each signal a member that reads the other's spec.
 */
export function isNetworkFault(k: FaultKind): boolean {
  return k === 'isolate' || k === 'isolate-until-snapshot' || k === 'delay' || k === 'flaky';
}

/** Failpoints and the hit on which to crash (a range: some are hit often, some once per compaction). */
const crashPoints: readonly { name: FailpointName; hitMax: number }[] = [
  { name: 'raftBeforeSave', hitMax: 60 },
  { name: 'raftAfterSave', hitMax: 60 },
  { name: 'backendBeforeCommit', hitMax: 10 },
  { name: 'backendAfterCommit', hitMax: 10 },
  { name: 'raftBeforeSaveSnap', hitMax: 1 },
  { name: 'raftAfterSaveSnap', hitMax: 1 },
  { name: 'raftAfterWalRelease', hitMax: 1 },
  { name: 'raftBeforeApplySnap', hitMax: 1 },
  { name: 'raftAfterApplySnap', hitMax: 1 },
  { name: 'compactBeforeBatch', hitMax: 3 },
  { name: 'compactAfterBatch', hitMax: 2 },
  { name: 'compactAfterFinish', hitMax: 1 },
  { name: 'defragBeforeCopy', hitMax: 1 },
  { name: 'defragBeforeRename', hitMax: 1 },
];

const role = (ctx: FaultContext): 'leader' | 'follower' => (ctx.rand.intn(2) === 0 ? 'leader' : 'follower');

export async function injectFault(ctx: FaultContext, kind: FaultKind): Promise<void> {
  const c = ctx.cluster;
  const size = c.members.length;
  switch (kind) {
    case 'kill': {
      const r = role(ctx);
      const i = await pickTarget(ctx, r);
      const m = c.members[i] as Member;
      // One in four stops gracefully (SIGTERM), as a rolling restart does: a leader hands leadership over first.
      const graceful = ctx.rand.intn(4) === 0;
      ctx.note(`${graceful ? 'stop' : 'kill'} ${r} ${m.name}`);
      if (graceful) await m.stop();
      else await m.kill();
      await delay(300 + ctx.rand.intn(1200));
      await m.start({ timeoutMs: ctx.readyTimeoutMs });
      return;
    }
    case 'pause': {
      const r = role(ctx);
      const i = await pickTarget(ctx, r);
      const m = c.members[i] as Member;
      const ms = 1000 + ctx.rand.intn(2000);
      ctx.note(`pause ${r} ${m.name} for ${ms} ms`);
      m.pause();
      await delay(ms);
      m.resume();
      return;
    }
    case 'auth': {
      if (ctx.auth === undefined) return injectFault(ctx, 'pause');
      ctx.note(`auth: ${await ctx.auth.churn(ctx.rand, 300 + ctx.rand.intn(700))}`);
      return;
    }
    case 'isolate': {
      if (size < 3) return injectFault(ctx, 'pause');
      const r = role(ctx);
      const i = await pickTarget(ctx, r);
      const ms = 1500 + ctx.rand.intn(2000);
      ctx.note(`isolate ${r} ${(c.members[i] as Member).name} for ${ms} ms`);
      c.net.isolate((c.members[i] as Member).name);
      await delay(ms);
      c.net.heal();
      return;
    }
    case 'isolate-until-snapshot': {
      if (size < 3) return injectFault(ctx, 'kill');
      const i = await pickTarget(ctx, 'follower');
      ctx.note(`isolate follower ${(c.members[i] as Member).name} until a snapshot is due`);
      await isolateUntilSnapshot(ctx, i);
      return;
    }
    case 'delay': {
      if (size < 3) return injectFault(ctx, 'pause');
      ctx.note('delay every peer link 50-100 ms for 2 s');
      for (const a of c.members) for (const b of c.members) if (a !== b) c.net.delay(a.name, b.name, 50 + ctx.rand.intn(50));
      await delay(2000);
      c.net.heal();
      return;
    }
    case 'failpoint':
      return failpointCrash(ctx);
    case 'stall':
      return diskStall(ctx);
    case 'flaky': {
      if (size < 3) return injectFault(ctx, 'pause');
      const all = ctx.rand.intn(3) === 0;
      const i = await pickTarget(ctx, 'any');
      const rate = 2 + ctx.rand.intn(4);
      const ms = 2000 + ctx.rand.intn(2000);
      const name = (c.members[i] as Member).name;
      ctx.note(`flaky ${all ? 'every peer link' : `every peer link of ${name}`}: ${rate} cuts/s for ${ms} ms`);
      for (const a of c.members) {
        for (const b of c.members) if (a !== b && (all || a.name === name || b.name === name)) c.net.flaky(a.name, b.name, rate);
      }
      await delay(ms);
      c.net.heal();
      return;
    }
    case 'replace':
    case 'learner':
      if (size < 3) return injectFault(ctx, 'kill');
      return replaceMember(ctx, kind === 'learner');
    case 'space':
      return spaceFault(ctx);
    case 'bitflip':
      if (size < 3) return injectFault(ctx, 'kill');
      return bitflipFault(ctx);
    case 'watch-hold':
      return watchHold(ctx);
    case 'drop':
      if (size < 3) return injectFault(ctx, 'pause');
      return dropMessages(ctx);
    case 'transfer':
      if (size < 3) return injectFault(ctx, 'pause');
      return transferFault(ctx);
    case 'clock':
      if (ctx.clocks === undefined) {
        ctx.note('clock: members run without libfaketime (apt-get install libfaketime); a pause instead');
        return injectFault(ctx, 'pause');
      }
      return clockFault(ctx, ctx.clocks);
  }
}

async function transferFault(ctx: FaultContext): Promise<void> {
  const c = ctx.cluster;
  const from = await leaderIndex(c);
  if (from === undefined) {
    ctx.note('transfer: no leader');
    return;
  }
  const leader = c.members[from] as Member;
  const target = c.members[(from + 1 + ctx.rand.intn(c.members.length - 1)) % c.members.length] as Member;
  const targetId = (await memberStatus(target.endpoint).catch(() => undefined))?.header?.memberId;
  if (targetId === undefined) {
    ctx.note(`transfer: ${target.name} did not answer`);
    return;
  }
  const paused = ctx.rand.intn(3) === 0;
  if (paused) target.pause();
  const ch = ctx.access.channel(leader.endpoint, 'admin');
  const startedMs = performance.now();
  try {
    const r = await outcome(ch.unary(methods.maintenance.MoveLeader, etcdserverpb.MoveLeaderRequest.create({ targetID: targetId }), { timeoutMs: 3000 }));
    ctx.note(`transfer ${leader.name} -> ${paused ? 'paused ' : ''}${target.name}: ${r.ok ? 'moved' : r.message} after ${Math.round(performance.now() - startedMs)} ms`);
  } finally {
    ch.close();
    if (paused) target.resume();
  }
}

/** Where the stalls go: the WAL save (before or after the fsync) and the backend's commit. */
const stallPoints: readonly FailpointName[] = ['raftBeforeSave', 'raftAfterSave', 'backendBeforeCommit'];

function logSize(m: Member): number {
  try {
    return statSync(m.logFile).size;
  } catch {
    return 0;
  }
}

/** What the member logged after byte offset from. */
function logSince(m: Member, from: number): string {
  return readFileSync(m.logFile).subarray(from).toString('utf8');
}

/** Waits until the member's log, after byte offset from, matches re; false at the deadline. */
async function waitLog(m: Member, from: number, re: RegExp, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (re.test(logSince(m, from))) return true;
    await delay(100);
  }
  return false;
}

/** Re-arms m's failpoints at run time; resolves once it logged that it did. */
async function armAtRunTime(ctx: FaultContext, m: Member, spec: string): Promise<boolean> {
  const from = logSize(m);
  writeFileSync(ctx.failpointsFile, spec);
  m.signal('SIGUSR2');
  return waitLog(m, from, /failpoints: armed/, 5000);
}

async function diskStall(ctx: FaultContext): Promise<void> {
  const c = ctx.cluster;
  const r = role(ctx);
  const i = await pickTarget(ctx, r);
  const m = c.members[i] as Member;
  const point = stallPoints[ctx.rand.intn(stallPoints.length)] as FailpointName;
  const ms = 1000 + ctx.rand.intn(2500);
  const spec = `${point}=sleep(${ms})@${1 + ctx.rand.intn(5)}`;
  const from = logSize(m);
  if (!(await armAtRunTime(ctx, m, spec))) {
    ctx.note(`stall ${spec} on ${r} ${m.name}: not armed`);
    return;
  }
  const fired = await waitLog(m, from, /failpoint \w+: sleep/, 10_000);
  if (!fired) await armAtRunTime(ctx, m, '');
  // The sleep blocks the member's event loop: its log line comes first, the rest after.
  await delay(fired ? ms + 1500 : 0);
  const after = c.members.length > 1 ? await leaderIndex(c) : undefined;
  const leaderNow = after === undefined ? '?' : (c.members[after] as Member).name;
  ctx.note(`stall ${spec} on ${r} ${m.name}: ${fired ? `stalled; leader now ${leaderNow}` : 'not reached (disarmed)'}`);
}

/** Where the watch holds go: the send of each response, the pass over victims and unsynced watchers. */
const holdPoints: readonly FailpointName[] = ['beforeSendWatchResponse', 'beforeSyncWatchers'];

async function watchHold(ctx: FaultContext): Promise<void> {
  const point = holdPoints[ctx.rand.intn(holdPoints.length)] as FailpointName;
  const spec = `${point}=sleep(${500 + ctx.rand.intn(1000)})@*`;
  const r = await armForAWhile(ctx, spec, 2000 + ctx.rand.intn(3000));
  ctx.note(`watch hold ${spec} on ${r.names} for ${r.ms} ms${r.partly}`);
}

async function dropMessages(ctx: FaultContext): Promise<void> {
  const percent = [20, 50, 80][ctx.rand.intn(3)] as number;
  const r = await armForAWhile(ctx, `peerBeforeSendMessage=drop(${percent})@*`, 1500 + ctx.rand.intn(2500));
  ctx.note(`drop ${percent} % of the raft messages ${r.names} send${r.partly}, for ${r.ms} ms`);
}

/** Arms spec at run time on every member or on one (at random) for ms, then disarms it; what to say of it. */
async function armForAWhile(ctx: FaultContext, spec: string, ms: number): Promise<{ names: string; ms: number; partly: string }> {
  const c = ctx.cluster;
  const targets = ctx.rand.intn(2) === 0 ? [...c.members] : [c.members[ctx.rand.intn(c.members.length)] as Member];
  const armed = [];
  for (const m of targets) if (await armAtRunTime(ctx, m, spec)) armed.push(m);
  await delay(ms);
  for (const m of armed) await armAtRunTime(ctx, m, '');
  return {
    names: targets.map((m) => m.name).join(', '),
    ms,
    partly: armed.length < targets.length ? ` (armed on ${armed.length} of ${targets.length})` : '',
  };
}

async function replaceMember(ctx: FaultContext, learner: boolean): Promise<void> {
  const c = ctx.cluster;
  // The leader one time in three: it keeps leading until its removal commits, then steps down and stops.
  const r = ctx.rand.intn(3) === 0 ? 'leader' : 'follower';
  const i = await pickTarget(ctx, r);
  const m = c.members[i] as Member;
  const oldId = (await memberStatus(m.endpoint)).header?.memberId ?? 0n;
  ctx.note(`replace ${r} ${m.name} (${oldId.toString(16)})${learner ? ' through a learner' : ''}: remove`);
  // Not found: an earlier attempt that timed out was applied after all.
  await clusterCall(ctx.access, c, i, methods.cluster.MemberRemove, etcdserverpb.MemberRemoveRequest.create({ ID: oldId }), (e) => /member not found/.test(e.message));
  const exited = await Promise.race([m.waitExit().then(() => true), delay(10_000).then(() => false)]);
  await m.kill();
  await rejoinWiped(ctx, i, learner, exited ? 'it stopped itself' : 'killed (it did not stop within 10 s)');
}

/**
 * Keeps follower i cut off until the leader's raft index moved past
 * snapshot-count + catch-up entries. Heals early when the index stands still
 * for stillMs: the others cannot commit without i (a voter another fault
 * took away, or one removed and not yet back), and holding the cut would
 * only keep the cluster without a quorum.
 */
async function isolateUntilSnapshot(ctx: FaultContext, i: number): Promise<void> {
  const c = ctx.cluster;
  const stillMs = 3000;
  const other = c.members.find((_, j) => j !== i && c.members[j]?.running === true) as Member;
  const indexOf = async (): Promise<number> => (await memberStatus(other.endpoint).catch(() => undefined))?.raftIndex ?? 0;
  const start = await indexOf();
  c.net.isolate((c.members[i] as Member).name);
  const deadline = performance.now() + 20_000;
  let last = start;
  let movedAt = performance.now();
  while (performance.now() < deadline) {
    await delay(250);
    const now = await indexOf();
    // snapshot-count 100 + 50 catch-up entries: past that, the leader's log no longer reaches back.
    if (now - start > 170) break;
    if (now > last) {
      last = now;
      movedAt = performance.now();
    } else if (performance.now() - movedAt > stillMs) {
      ctx.note(`isolated ${(c.members[i] as Member).name}: no index moved for ${stillMs} ms without it (no quorum); healed`);
      break;
    }
  }
  c.net.heal();
}

async function failpointCrash(ctx: FaultContext): Promise<void> {
  const c = ctx.cluster;
  const point = crashPoints[ctx.rand.intn(crashPoints.length)] as (typeof crashPoints)[number];
  const snapApply = point.name === 'raftBeforeApplySnap' || point.name === 'raftAfterApplySnap';
  if (snapApply && c.members.length < 3) return injectFault(ctx, 'kill');
  const i = await pickTarget(ctx, snapApply ? 'follower' : 'any');
  const m = c.members[i] as Member;
  const hit = 1 + ctx.rand.intn(point.hitMax);
  const env = `${point.name}=crash@${hit}`;
  await m.kill();
  await m.start({ wait: false, env: { ETCD_TS_FAILPOINTS: env } });
  const exited = m.waitExit();
  const provoke = async (): Promise<void> => {
    // A loaded machine takes seconds to boot a member: the 15 s to reach the point start once it serves.
    await m.waitReady({ until: 'serving', timeoutMs: ctx.readyTimeoutMs }).catch(() => undefined);
    const deadline = performance.now() + 15_000;
    let round = 0;
    while (m.running && performance.now() < deadline) {
      await delay(500);
      round++;
      if (point.name.startsWith('defrag')) await defragment(ctx.access, m.endpoint).catch(() => undefined);
      if (snapApply && round === 1) await isolateUntilSnapshot(ctx, i);
    }
  };
  await Promise.race([exited, provoke()]);
  const crashed = m.exitInfo?.signal === 'SIGKILL' && /failpoint .*: crash/.test(m.logTail(20));
  ctx.note(`failpoint ${env} on ${m.name}: ${crashed ? 'crashed' : 'not reached'}`);
  await m.kill();
  await m.start({ timeoutMs: ctx.readyTimeoutMs });
}

/**
 * Undoes whatever a failed fault left behind: heals the network, resumes and
 * starts every member. only: just the network, or just the members (a lane
 * of overlapping faults restores what its own faults change, and leaves
 * alone a member the other lane may be replacing).
 */
export async function restoreCluster(ctx: FaultContext, only?: 'network' | 'members'): Promise<void> {
  if (ctx.cluster.members.length > 1 && only !== 'members') ctx.cluster.net.heal();
  if (only === 'network') return;
  const rejoin: number[] = [];
  for (let i = 0; i < ctx.cluster.members.length; i++) {
    const m = ctx.cluster.members[i] as Member;
    m.resume();
    if (m.running) continue;
    const from = logSize(m);
    try {
      await m.start({ timeoutMs: ctx.readyTimeoutMs });
    } catch (e) {
      // A replacement that failed after its MemberRemove committed (the add refused as
      // "unhealthy cluster" while overlapping faults kept cutting links), before or
      // after the wipe: finish it.
      if (!/permanently removed from the cluster|has not been added to the cluster/.test(logSince(m, from))) throw e;
      await m.kill();
      rejoin.push(i);
    }
  }
  // A learner a failed fault left behind is promoted: etcd 3.4 allows one
  // learner, so it would refuse every later replacement through a learner.
  await promoteLearners(ctx);
  for (const i of rejoin) await rejoinWiped(ctx, i, false, 'removed by a fault that failed before adding it back');
}

/** Promotes every learner in the member list (each must catch up with the leader first). */
async function promoteLearners(ctx: FaultContext): Promise<void> {
  const list = await clusterCall(ctx.access, ctx.cluster, -1, methods.cluster.MemberList, etcdserverpb.MemberListRequest.create({}));
  for (const learner of list?.members.filter((x) => x.isLearner) ?? []) {
    await clusterCall(ctx.access, ctx.cluster, -1, methods.cluster.MemberPromote, etcdserverpb.MemberPromoteRequest.create({ ID: learner.ID }), (e) => /is not a learner|member not found/.test(e.message));
    ctx.note(`restore: learner ${learner.ID.toString(16)} promoted`);
  }
}
