/**
 * One robustness run: start a cluster, drive etcd-style and Kubernetes-style
 * traffic and watches while injecting faults, stop the faults, let every
 * watch catch up, then check the history: linearizability of KV, the watch
 * guarantees, HashKV equal on every member, every member healthy.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRand, type Rand } from '../../src/base/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, getHealth, methods, openChannel, type Cluster, type Member } from '../harness/index.js';
import { checkKv, type Violation } from './check-kv.js';
import { checkLeases } from './check-lease.js';
import { checkLockedSets, checkLocks } from './check-lock.js';
import { checkWatches, mergeReference } from './check-watch.js';
import { RecordingClient, isRead } from './client.js';
import { MemberClocks, findLibfaketime } from './clock.js';
import { startRobustCluster } from './cluster.js';
import { faultKinds, injectFault, isNetworkFault, restoreCluster, type FaultContext, type FaultKind } from './faults.js';
import { RunAuth, isAuthRefusal, noAuth, tokenFlags, type Access, type TokenKind } from './access.js';
import { firstKey, nowMs, type History, type WatchRecord } from './history.js';
import { runLeaseClient } from './leases.js';
import { lockPrefix, runLockClient } from './locks.js';
import { Replay } from './model.js';
import { etcdKeyPrefix, k8sKeyPrefix, listPaginated, prefixEnd, runEtcdClient, runKubernetesClient } from './traffic.js';
import { Compactor } from './maintenance.js';
import { MuxWatcher } from './mux-watchers.js';
import { checkSnapshots } from './snapshots.js';
import { Watcher, type WatcherOptions } from './watchers.js';

export interface RunOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly size: number;
  readonly faults: readonly FaultKind[];
  /** Pause between two requests of one client. */
  readonly pauseMs?: number;
  readonly requestTimeoutMs?: number;
  /** Peer URLs over TLS (--peer-auto-tls). */
  readonly peerTls?: boolean;
  /**
   * Faults overlap (P15, as Jepsen's combined nemesis lets them): the network
   * faults run in a lane of their own, beside the others (3 or 5 members).
   */
  readonly overlap?: boolean;
  /** Auth on, with this kind of token: the traffic as an ordinary user, the run's maintenance as root (P20). */
  readonly auth?: TokenKind;
  /** Where data dirs, logs and the history go; a new temp dir by default. */
  readonly dir?: string;
  readonly log?: (line: string) => void;
}

export interface RunReport {
  readonly seed: number;
  readonly violations: readonly Violation[];
  readonly dir: string;
  readonly historyPath: string | undefined;
  readonly stats: Record<string, number>;
  readonly faults: readonly string[];
}

const readyTimeoutMs = 60_000;
/** Watches on the one multiplexed stream. */
const muxWatchCount = 100;
/** The members run with etcd's default --heartbeat-interval and --election-timeout. */
const defaultHeartbeatMs = 100;
const defaultElectionMs = 1000;

/** etcd's minimum lease TTL: 3/2 of the election ticks (integer ticks, as Go divides), in whole seconds, rounded up. */
export function minLeaseTtlSeconds(heartbeatMs: number, electionMs: number): number {
  const electionTicks = Math.floor(electionMs / heartbeatMs);
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatMs) / 1000);
}
const catchUpMs = 30_000;

export async function runRobustness(o: RunOptions): Promise<RunReport> {
  const rand: Rand = new SeededRand(o.seed);
  const log = o.log ?? ((): void => undefined);
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `etcd-robustness-${o.seed}-`));
  mkdirSync(dir, { recursive: true });
  let t0 = nowMs();
  const history: History = { seed: o.seed, ops: [], watches: [], leases: [], locks: [], compactions: [], snapshots: [], minLeaseTtl: minLeaseTtlSeconds(defaultHeartbeatMs, defaultElectionMs), members: {}, faults: [] };
  const info = (what: string): void => log(`  ${((nowMs() - t0) / 1000).toFixed(1)}s ${what}`);
  const note = (what: string): void => {
    history.faults.push({ atMs: nowMs(), what });
    info(what);
  };
  if (o.overlap === true && o.size < 3) throw new Error('overlapping faults need 3 or 5 members');
  log(`robustness: seed ${o.seed}, ${o.size} member(s)${o.peerTls === true ? ' over peer TLS' : ''}${o.overlap === true ? ', faults overlapping' : ''}${o.auth !== undefined ? ` with auth (${o.auth} tokens)` : ''}, ${o.durationMs / 1000}s, faults ${o.faults.join(',') || 'none'}; files in ${dir}`);
  const failpointsFile = join(dir, 'failpoints');
  writeFileSync(failpointsFile, '');
  // Members run under libfaketime only when the clock fault may come: it costs every wall-clock read a file read.
  const lib = o.faults.includes('clock') ? findLibfaketime() : undefined;
  const clocks = lib !== undefined ? new MemberClocks(dir, lib) : undefined;
  const cluster = await startRobustCluster(dir, o.size, readyTimeoutMs, failpointsFile, o.peerTls === true, o.auth !== undefined ? tokenFlags(o.auth, dir) : [], clocks);
  const auth = o.auth !== undefined ? await RunAuth.enable(() => cluster.endpoints, o.auth) : undefined;
  const access: Access = auth ?? noAuth;
  log(`  cluster up in ${((nowMs() - t0) / 1000).toFixed(1)}s`);
  t0 = nowMs();
  let opSeq = 0;
  let watchSeq = 0;
  const clients: RecordingClient[] = [];
  const newClient = (endpoints: readonly string[]): RecordingClient => {
    const c = new RecordingClient({ id: clients.length, endpoints, timeoutMs: o.requestTimeoutMs ?? 3000, ops: history.ops, nextOpId: () => opSeq++, access });
    clients.push(c);
    return c;
  };
  // Set when the traffic must end: at the end of the run, or when it fails midway (its loops must not outlive it).
  let stopped = false;
  const watchers: Watcher[] = [];
  // The first watch defines the history: compaction never passes it.
  const compactor = new Compactor(cluster, access, [{ get last(): number { return watchers[0]?.last ?? 0; } }], history.compactions ?? [], { dir, records: history.snapshots ?? [] });
  const faultViolations: Violation[] = [];
  // The network lane's fault running now, and the holds that keep it from starting another (quietNetwork).
  let netFault: Promise<void> = Promise.resolve();
  let netHolds = 0;
  const ctx: FaultContext = {
    cluster, rand, readyTimeoutMs, failpointsFile, note, access, auth, clocks,
    recorder: newClient(cluster.endpoints),
    compactOnceSeen: (rev, timeoutMs) => compactor.compactOnceSeen(rev, timeoutMs),
    violation: (check, message) => void faultViolations.push({ check, message }),
    quietNetwork: async () => {
      netHolds++;
      await netFault;
      return () => void netHolds--;
    },
  };
  const muxWatchers: MuxWatcher[] = [];
  const watch = (label: string, key: string, end: string, prevKv: boolean, startRev: number, endpoints: readonly string[], slow?: WatcherOptions['slow']): void => {
    // A watch opened mid-run after the run has ended (or failed) would retry forever.
    if (stopped) return;
    const record: WatchRecord = { id: watchSeq++, label, key, end, prevKv, segments: [] };
    history.watches.push(record);
    watchers.push(new Watcher({ record, endpoints, access, startRev, stallMs: 5000, ...(slow !== undefined ? { slow } : {}) }));
  };
  const rotated = (i: number): string[] => cluster.endpoints.map((_, j) => cluster.endpoints[(i + j) % cluster.endpoints.length] as string);

  let violations: Violation[];
  try {
    // Watches: one from revision 1 on every key with prev_kv (the history), one per member.
    watch('all keys from 1, prev_kv', firstKey, '\0', true, 1, rotated(0));
    cluster.endpoints.forEach((_, i) => watch(`all keys on m${i + 1}`, firstKey, '\0', false, 1, rotated(i)));
    // Slow consumers (P11): stop reading for 2-4 s every 5-15 responses.
    watch('all keys from 1, prev_kv, slow reader', firstKey, '\0', true, 1, rotated(1), { every: 5 + rand.intn(10), pauseMs: 2000 + rand.intn(2000) });
    watch(`${etcdKeyPrefix} from 1, slow reader`, etcdKeyPrefix, prefixEnd(etcdKeyPrefix), false, 1, rotated(2 % cluster.endpoints.length), { every: 5 + rand.intn(10), pauseMs: 2000 + rand.intn(2000) });
    const traffic: Promise<void>[] = [];
    const topts = { rand, pauseMs: o.pauseMs ?? 20, stopped: () => stopped };
    cluster.endpoints.forEach((_, i) => {
      traffic.push(runEtcdClient(newClient(rotated(i).slice(0, 1)), topts));
      traffic.push(runKubernetesClient(newClient(rotated(i).slice(0, 1)), topts));
    });
    traffic.push(runEtcdClient(newClient(rotated(0)), topts));
    traffic.push(runLeaseClient(newClient(rotated(1)), history.leases ?? [], topts));
    for (let i = 0; i < 2; i++) traffic.push(runLockClient(newClient(rotated(i)), rotated(i), access, history.locks ?? [], topts));
    // A Kubernetes list+watch starting mid-run.
    const informer = (async (): Promise<void> => {
      await delay(o.durationMs / 3);
      const c = newClient(rotated(1));
      for (let attempt = 0; attempt < 20 && !stopped; attempt++) {
        const rev = await listPaginated(c, 3);
        if (rev !== undefined) {
          watch('k8s informer pods/ from list+1, prev_kv', k8sKeyPrefix, prefixEnd(k8sKeyPrefix), true, rev + 1, rotated(1));
          return;
        }
        await delay(200);
      }
    })();
    // Watches opened mid-run at -100..+100 around the revision the clients have seen (P1): past ones
    // replay history or are canceled as compacted, future ones wait.
    const offsetWatches = (async (): Promise<void> => {
      for (let n = 0; n < 4 && !stopped; n++) {
        await delay(o.durationMs / 5);
        const current = Math.max(...clients.map((c) => c.lastRevision));
        const offset = rand.intn(201) - 100;
        const [key, end] = rand.intn(2) === 0 ? [firstKey, '\0'] : [k8sKeyPrefix, prefixEnd(k8sKeyPrefix)];
        watch(`${key === firstKey ? 'all keys' : key} from ${current}${offset >= 0 ? '+' : ''}${offset}`, key, end, rand.intn(2) === 0, Math.max(1, current + offset), rotated(n));
      }
    })();
    // About a hundred watches on one stream with progress requests (P11), which compaction may pass (P12).
    const mux = (async (): Promise<void> => {
      await delay(o.durationMs / 4);
      if (stopped) return;
      const current = Math.max(...clients.map((c) => c.lastRevision));
      const records: WatchRecord[] = [];
      const startRevs: number[] = [];
      for (let i = 0; i < muxWatchCount; i++) {
        const [key, end, what] = muxRange(rand);
        const prevKv = rand.intn(10) < 7;
        const startRev = Math.max(1, current - rand.intn(100));
        const record: WatchRecord = { id: watchSeq++, label: `mux ${i}: ${what} from ${startRev}${prevKv ? ', prev_kv' : ''}`, key, end, prevKv, segments: [] };
        history.watches.push(record);
        records.push(record);
        startRevs.push(startRev);
      }
      muxWatchers.push(new MuxWatcher({ records, startRevs, access, endpoints: rotated(2 % cluster.endpoints.length), rand: new SeededRand(rand.uint32()), stallMs: 5000, slow: { every: 20 + rand.intn(30), pauseMs: 1500 + rand.intn(1500) } }));
    })();
    // Every watch but the first compaction may pass.
    const passable = { get last(): number { return Math.min(...watchers.slice(1).map((w) => w.last), ...muxWatchers.map((w) => w.last)); } };
    const maintenance = compactor.run(rand, [passable], clients, () => stopped, info);

    const end = t0 + o.durationMs;
    await delay(Math.min(1500, o.durationMs / 4));
    const lane = async (kinds: readonly FaultKind[], lctx: FaultContext, tag: string, restores?: 'network' | 'members'): Promise<void> => {
      while (nowMs() < end - 1000 && kinds.length > 0) {
        if (restores === 'network' && netHolds > 0) {
          await delay(100);
          continue;
        }
        const kind = kinds[lctx.rand.intn(kinds.length)] as FaultKind;
        const running = (async () => {
          try {
            await injectFault(lctx, kind);
          } catch (e) {
            note(`${tag}fault ${kind} failed: ${(e as Error).message.split('\n')[0] ?? ''}`);
            await restoreCluster(lctx, restores);
          }
        })();
        if (restores === 'network') netFault = running;
        await running;
        await delay(800 + lctx.rand.intn(1200));
      }
    };
    if (o.overlap === true) {
      // Each lane draws from a generator of its own: the interleaving of real processes must not change a lane's choices.
      const netCtx: FaultContext = { ...ctx, rand: new SeededRand(rand.uint32()), note: (what) => note(`[net] ${what}`) };
      await Promise.all([lane(o.faults.filter((k) => !isNetworkFault(k)), ctx, '', 'members'), lane(o.faults.filter(isNetworkFault), netCtx, '[net] ', 'network')]);
    } else {
      await lane(o.faults, ctx, '');
    }
    while (nowMs() < end) await delay(100);
    stopped = true;
    await Promise.all([...traffic, informer, offsetWatches, mux, maintenance]);
    info('traffic stopped');
    await restoreCluster(ctx);
    const healthy = await waitHealthy(cluster.members, 30_000);
    if (!healthy) await savePeerMetrics(cluster.members, dir);

    // Every watch catches up with the last revision anyone saw, then the checks. A lease that outlived
    // the traffic (leader changes extend them) may still expire and delete keys: then catch up again.
    let lastRev = Math.max(...clients.map((c) => c.lastRevision), await latestRevision(cluster, access, info));
    const deadline = nowMs() + catchUpMs;
    const all = [...watchers, ...muxWatchers];
    let caughtUp: boolean[];
    for (;;) {
      caughtUp = await Promise.all(all.map((w) => w.catchUp(lastRev, deadline)));
      const now = await latestRevision(cluster, access, info);
      if (now <= lastRev || nowMs() >= deadline) break;
      info(`revision moved to ${now} while the watches caught up with ${lastRev}`);
      lastRev = now;
    }
    await Promise.all(all.map((w) => w.stop()));
    const behind = all.filter((_, i) => caughtUp[i] !== true).map((w) => `${w.label} at ${w.last}`);
    info(`watches caught up with revision ${lastRev}${behind.length > 0 ? `, but for ${behind.join('; ')}` : ''}`);
    clients.forEach((c) => c.close());
    for (const m of cluster.members) history.members[await memberIdOf(m)] = m.endpoint;

    const { replay, violations: found } = checkHistory(history);
    violations = [
      ...found,
      ...faultViolations,
      ...(await checkHashKv(cluster, access, lastRev)),
      ...(healthy ? [] : [{ check: 'health', message: `not every member was healthy 30 s after the faults stopped` }]),
    ];
    if (replay.maxRev < lastRev) violations.push({ check: 'history', message: `the watch history ends at ${replay.maxRev}, clients saw revision ${lastRev}` });
  } finally {
    stopped = true;
    await Promise.all([...watchers, ...muxWatchers].map((w) => w.stop()));
    clients.forEach((c) => c.close());
    await Promise.all(cluster.members.map((m) => m.kill()));
    if (o.size > 1) await cluster.net.close();
  }

  const stats = summarize(history);
  let historyPath: string | undefined;
  if (violations.length > 0) {
    historyPath = join(dir, 'history.json');
    writeFileSync(historyPath, JSON.stringify({ ...history, violations }, undefined, 1));
  } else if (o.dir === undefined) {
    rmSync(dir, { recursive: true, force: true });
  }
  return { seed: o.seed, violations, dir, historyPath, stats, faults: history.faults.map((f) => f.what) };
}

/** Every check that reads only the history (also main.ts --check on a saved one). */
export function checkHistory(h: History): { replay: Replay; violations: Violation[] } {
  const { replay, problems } = Replay.build(mergeReference(h.watches));
  const violations = [
    ...problems.map((message) => ({ check: 'history', message })),
    ...checkKv(h.ops, replay, { expirable: (h.leases ?? []).map((l) => l.id), lockPrefix }),
    ...checkWatches(h.watches, replay, h.compactions),
    ...checkLeases(h, replay),
    ...checkLocks(h.locks ?? [], replay),
    ...checkLockedSets(replay),
    ...checkSnapshots(h.snapshots ?? [], replay),
  ];
  return { replay, violations };
}

/** Each member's peer traffic counters, twice 2 s apart, next to its log: which links still carry bytes. */
async function savePeerMetrics(members: readonly Member[], dir: string): Promise<void> {
  const lines: string[][] = members.map(() => []);
  for (const round of [0, 1]) {
    if (round > 0) await delay(2000);
    await Promise.all(
      members.map(async (m, i) => {
        try {
          const text = await (await fetch(`${m.clientUrl}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
          lines[i]?.push(`# at ${nowMs().toFixed(0)} ms`, ...text.split('\n').filter((l) => /^etcd_network_peer_|^etcd_server_(is_leader|leader_changes)/.test(l)));
        } catch (e) {
          lines[i]?.push(`# at ${nowMs().toFixed(0)} ms: ${(e as Error).message}`);
        }
      }),
    );
  }
  members.forEach((m, i) => writeFileSync(join(dir, `metrics-${m.name}.txt`), `${(lines[i] ?? []).join('\n')}\n`));
}

async function waitHealthy(members: readonly Member[], timeoutMs: number): Promise<boolean> {
  const deadline = nowMs() + timeoutMs;
  while (nowMs() < deadline) {
    const h = await Promise.all(members.map((m) => getHealth(m.clientUrl)));
    if (h.every((x) => x === 'true')) return true;
    await delay(250);
  }
  return false;
}

/** The cluster's revision by a linearizable read, from whichever member answers within 15 s (0 if none does). */
async function latestRevision(c: Cluster, access: Access, info: (line: string) => void): Promise<number> {
  const deadline = nowMs() + 15_000;
  const failures: string[] = [];
  for (let attempt = 0; nowMs() < deadline; attempt++) {
    const m = c.members[attempt % c.members.length] as Member;
    const ch = access.channel(m.endpoint, 'admin');
    try {
      const r = await ch.unary(methods.kv.Range, etcdserverpb.RangeRequest.create({ key: new TextEncoder().encode(etcdKeyPrefix) }), { timeoutMs: 5000 });
      if (failures.length > 0) info(`latest revision read at ${m.name} after ${failures.join('; ')}`);
      return r.header?.revision ?? 0;
    } catch (e) {
      // A stale token (auth was turned off and on) is refreshed meanwhile; then the next member.
      access.noteError('admin', e, m.endpoint);
      failures.push(`${m.name}: ${(e as Error).message}`);
    } finally {
      ch.close();
    }
    await delay(200);
  }
  return 0;
}

async function memberIdOf(m: Member): Promise<string> {
  const ch = openChannel(m.endpoint);
  try {
    const r = await ch.unary(methods.maintenance.Status, etcdserverpb.StatusRequest.create({}), { timeoutMs: 3000 });
    return (r.header?.memberId ?? 0n).toString(16);
  } catch {
    return `unknown-${m.name}`;
  } finally {
    ch.close();
  }
}

/** HashKV at rev on every member, retried while members catch up: equal hashes and compact revisions. */
async function checkHashKv(c: Cluster, access: Access, rev: number): Promise<Violation[]> {
  const deadline = nowMs() + 20_000;
  let last = '';
  while (nowMs() < deadline) {
    const answers = await Promise.all(
      c.members.map(async (m) => {
        const ch = access.channel(m.endpoint, 'admin');
        try {
          const r = await ch.unary(methods.maintenance.HashKV, etcdserverpb.HashKVRequest.create({ revision: rev }), { timeoutMs: 5000 });
          return { name: m.name, hash: r.hash, compactRevision: r.compactRevision };
        } catch (e) {
          access.noteError('admin', e, m.endpoint);
          return { name: m.name, error: (e as Error).message };
        } finally {
          ch.close();
        }
      }),
    );
    last = answers.map((a) => ('error' in a ? `${a.name}: ${a.error}` : `${a.name}: hash ${a.hash} compact ${a.compactRevision}`)).join('; ');
    if (answers.every((a) => !('error' in a))) {
      const ok = answers.every((a) => 'hash' in a && 'hash' in (answers[0] as object) && a.hash === (answers[0] as { hash: number }).hash && a.compactRevision === (answers[0] as { compactRevision: number }).compactRevision);
      return ok ? [] : [{ check: 'hashkv', message: `HashKV at revision ${rev} differs between members: ${last}` }];
    }
    await delay(500);
  }
  return [{ check: 'hashkv', message: `HashKV at revision ${rev} not answered by every member: ${last}` }];
}

function summarize(h: History): Record<string, number> {
  const count = (p: (x: (typeof h.ops)[number]) => boolean): number => h.ops.filter(p).length;
  return {
    ops: h.ops.length,
    ok: count((o) => o.status === 'ok'),
    failedReads: count((o) => o.status === 'failed' && isRead(o.req)),
    refusedWrites: count((o) => o.status === 'failed' && !isRead(o.req)),
    authRefused: count((o) => isAuthRefusal(o.error ?? '')),
    indeterminate: count((o) => o.status === 'indeterminate'),
    watchEvents: h.watches.reduce((s, w) => s + w.segments.reduce((t, g) => t + g.responses.reduce((u, r) => u + r.events.length, 0), 0), 0),
    watchStreams: h.watches.reduce((s, w) => s + w.segments.length, 0),
    watchProgress: h.watches.reduce((s, w) => s + w.segments.reduce((t, g) => t + g.responses.filter((r) => r.progress === true).length, 0), 0),
    compactCancels: h.watches.reduce((s, w) => s + w.segments.reduce((t, g) => t + g.responses.filter((r) => r.canceled === true && (r.compactRevision ?? 0) > 0).length, 0), 0),
    faults: h.faults.length,
    // Space faults that filled the quota up to NOSPACE.
    nospace: h.faults.filter((f) => /^space: .*; NOSPACE$/.test(f.what)).length,
    shortLeases: h.leases?.length ?? 0,
    abandonedLeases: h.leases?.filter((l) => l.abandonedMs !== undefined).length ?? 0,
    locksHeld: h.locks?.length ?? 0,
    snapshots: h.snapshots?.length ?? 0,
    // Elements added to the locks' sets, and stale adds the lock key's revision fenced off.
    setAdds: count((o) => o.label === 'lockset-add' && o.status === 'ok' && o.res?.succeeded === true),
    fencedOff: count((o) => o.label === 'lockset-add' && o.status === 'ok' && o.res?.succeeded === false),
  };
}

/** A watch's range for the mux stream: mostly single keys and small ranges of the traffic's keys. */
function muxRange(rand: Rand): [key: string, end: string, what: string] {
  const prefix = rand.intn(2) === 0 ? etcdKeyPrefix : k8sKeyPrefix;
  const n = rand.intn(10);
  switch (rand.intn(10)) {
    case 0:
      return [firstKey, '\0', 'all keys'];
    case 1:
    case 2:
      return [prefix, prefixEnd(prefix), prefix];
    case 3:
    case 4: {
      const from = n % 7;
      return [`${prefix}${from}`, `${prefix}${from + 3}`, `[${prefix}${from}, ${prefix}${from + 3})`];
    }
    default:
      return [`${prefix}${n}`, `${prefix}${n}\0`, `${prefix}${n}`];
  }
}

export { faultKinds };
