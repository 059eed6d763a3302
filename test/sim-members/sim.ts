/**
 * One seeded run of whole simulated members (member.ts) on one loop
 * (loop.ts): clients and watchers record a history in the format of
 * test/robustness/history.ts while a fault schedule crashes members (their
 * fake disks lose or tear what was not synced, loop.ts + fake-fs.ts),
 * isolates them, makes the network lossy and slow and replaces members,
 * with compactions, defrags and short leases going on (and, on seeds
 * divisible by 3, auth on with its store churned under the traffic). At the
 * end the faults stop, every member restarts and catches up, and the
 * history is checked by the robustness checkers (linearizability, watch
 * guarantees, leases); HashKV and the auth store are compared across
 * members. A seed fixes everything: the digest of the event trace is the
 * same on every run of it.
 */
import { SeededRand, idToHex, nopLogger, type Rand } from '../../src/base/index.js';
import { LeaseError } from '../../src/lease/index.js';
import { hashKvRequest, isKvError, rangeRequest as kvRange, txnRequest as kvTxn, type WatchStream } from '../../src/mvcc/index.js';
import { authpb, etcdserverpb, raftpb, serverpb } from '../../src/pb/index.js';
import { AuthError, checkRangeRequest, checkTxnRequest } from '../../src/auth/index.js';
import { RaftCluster } from '../../src/server/membership.js';
import { appliedSnapshot } from '../../src/server/snapshot-flow.js';
import { streamPeerSnapshot } from '../../src/server/snapshot-peer.js';
import { answerDigest, checkRevisionDigests } from '../../src/server/revision-check.js';
import type { Preallocate } from '../../src/wal/index.js';
import { checkKv, type Violation } from '../robustness/check-kv.js';
import { checkLeases } from '../robustness/check-lease.js';
import { checkWatches, mergeReference } from '../robustness/check-watch.js';
import { deleteRequest, putRequest, putResult, deleteResult, rangeRequest, rangeResult, toEvent, txnRequestPb, txnResults } from '../robustness/client.js';
import { firstKey, type History, type KeepAliveRecord, type LeaseRecord, type OpRecord, type Request, type Response, type TxnOp, type TxnRequest, type WatchRecord, type WatchSegment } from '../robustness/history.js';
import { leaseTraffic } from '../robustness/leases.js';
import { Replay } from '../robustness/model.js';
import { FakeDisk } from './fake-fs.js';
import { Proc, SimLoop } from './loop.js';
import { MemDb } from './mem-engine.js';
import { SimMember, SimRequestError, minLeaseTtlSeconds, type MemberDisk } from './member.js';

export interface SimOptions {
  readonly seed: number;
  readonly members: number;
  /** Simulated milliseconds of traffic and faults. */
  readonly durationMs: number;
  readonly clients?: number;
  /** Prints every member's raft status every this many simulated ms (0: never). */
  readonly statusEveryMs?: number;
  /** Prints the event trace as it goes. */
  readonly trace?: boolean;
  /** Auth on, traffic as an ordinary user, the auth store churned under it (default: seeds divisible by 3). */
  readonly auth?: boolean;
  /**
   * A soak: the run alternates busyMs of the usual traffic and faults with
   * quietMs in which nothing fails and one client writes now and then, so
   * that long stretches of simulated time (a day) cost little. 0: always busy.
   */
  readonly quietMs?: number;
  /** The busy stretch of a soak's cycle (default 20 s). */
  readonly busyMs?: number;
}

export interface SimReport {
  readonly seed: number;
  readonly violations: Violation[];
  readonly digest: string;
  readonly ops: number;
  readonly okOps: number;
  readonly watchEvents: number;
  readonly faults: number;
  readonly lastRevision: number;
  readonly events: number;
  /** Simulated time at the end of the run (traffic and faults, then the catch-up and the checks). */
  readonly simulatedMs: number;
  /** Crashes, and WAL tails torn by them that restarts cut off. */
  readonly crashes: number;
  /** Members replaced (removed, and a new one added). */
  readonly replaced: number;
  readonly tornTails: number;
  /** Compactions sent, and the last revision compacted. */
  readonly compactions: number;
  readonly compactRevision: number;
  /** Defragmentations that finished (one in two compactions is followed by one on a member). */
  readonly defrags: number;
  /** Raft snapshots: saved for log compaction, sent by leaders, installed by followers. */
  readonly snapshots: { readonly taken: number; readonly sent: number; readonly installed: number };
  /** With auth: the churn's changes made, and the traffic's writes auth refused. */
  readonly auth: { readonly on: boolean; readonly changes: number; readonly refused: number };
  /** Leases of the lease traffic: granted, abandoned (left to expire), revoked, keep-alives answered. */
  readonly leases: { readonly granted: number; readonly abandoned: number; readonly revoked: number; readonly keepAlives: number };
  /** The revision hash check's passes, and the members compared with in all (src/server/revision-check.ts). */
  readonly revisionChecks: { readonly passes: number; readonly compared: number };
  readonly history: History;
}

const requestTimeoutMs = 3000;
const keys = Array.from({ length: 8 }, (_, i) => `key/${i}`);
const catchUpMs = 60_000;
const trafficUser = 'robust';
const trafficRole = 'robust-rw';

/** Read and write on every key the traffic uses (from \x00 on). */
function everyKeyGrant(): serverpb.InternalRaftRequest['request'] {
  const perm = authpb.Permission.create({ permType: authpb.Permission_Type.READWRITE, key: Buffer.from(firstKey), rangeEnd: new Uint8Array([0]) });
  return { case: 'authRoleGrantPermission', value: etcdserverpb.AuthRoleGrantPermissionRequest.create({ name: trafficRole, perm }) };
}

function revokeGrant(key: Uint8Array, rangeEnd: Uint8Array): serverpb.InternalRaftRequest['request'] {
  return { case: 'authRoleRevokePermission', value: etcdserverpb.AuthRoleRevokePermissionRequest.create({ role: trafficRole, key, rangeEnd }) };
}
/** Keys of the lease traffic: under key/, so that the prefix watch sees every revision. */
const leaseKeyPrefix = 'key/lease/';
/** How long a lease client waits for an abandoned lease to be gone after the traffic. */

interface Slot {
  readonly index: number;
  readonly id: bigint;
  readonly disk: MemberDisk;
  member: SimMember | undefined;
  /** Partition group: messages pass only within one group. */
  group: number;
  starting: boolean;
  /** Added by a conf change: its disk starts with no raft configuration. */
  readonly join: boolean;
  /** Removed from the cluster: never started again, out of the checks. */
  retired: boolean;
}

function newDisk(): MemberDisk {
  return { fs: new FakeDisk(), db: new MemDb(), copies: new Map(), tornTails: 0, snapshotsTaken: 0, snapshotsInstalled: 0 };
}

class Sim {
  readonly loop = new SimLoop();
  readonly rand: Rand;
  readonly slots: Slot[] = [];
  readonly initial: RaftCluster;
  readonly history: History;
  private nextOpId = 1;
  drop = 0;
  delayMaxMs = 10;
  stopTraffic = false;
  private readonly segmentBytes: number;
  private readonly preallocate: Preallocate;
  /** Odd seeds sync small WAL writes on the calling thread, as the real fs does; even seeds on the "pool". */
  private readonly syncInline: boolean;
  private readonly compactionBatchLimit: number;
  private readonly snapshots: { readonly snapshotCount: number; readonly snapshotCatchUpEntries: number; readonly maxSnapshots: number };
  /** The highest compaction acknowledged. */
  private compacted = 0;
  snapshotsSent = 0;

  constructor(readonly o: SimOptions) {
    this.rand = new SeededRand(o.seed);
    const urls = new Map<string, string[]>();
    for (let i = 0; i < o.members; i++) urls.set(`m${i}`, [`http://m${i}.sim:2380`]);
    this.initial = RaftCluster.fromInitialCluster('sim', urls);
    this.history = { seed: o.seed, ops: [], watches: [], leases: [], minLeaseTtl: minLeaseTtlSeconds, compactions: [], members: {}, faults: [] };
    this.segmentBytes = [4096, 16384, 65536][this.rand.intn(3)] as number;
    this.preallocate = (['none', 'sparse', 'zero'] as const)[this.rand.intn(3)] as Preallocate;
    this.syncInline = o.seed % 2 === 1;
    this.compactionBatchLimit = [2, 7, 1000][this.rand.intn(3)] as number;
    this.snapshots = { snapshotCount: [15, 40, 100][this.rand.intn(3)] as number, snapshotCatchUpEntries: [3, 20][this.rand.intn(2)] as number, maxSnapshots: 1 + this.rand.intn(3) };
    this.initial.memberList().forEach((m, index) => {
      this.slots.push({ index, id: m.id, disk: newDisk(), member: undefined, group: 0, starting: false, join: false, retired: false });
      this.history.members[idToHex(m.id)] = `m${index}`;
    });
    this.loop.trace(`seed ${o.seed} members ${o.members} segment ${this.segmentBytes} ${this.preallocate}${this.syncInline ? ' inline-sync' : ''} compaction batches of ${this.compactionBatchLimit} snapshot every ${this.snapshots.snapshotCount} keeping ${this.snapshots.snapshotCatchUpEntries}`);
  }

  /** Whether the run is in a quiet stretch of a soak (never once the traffic stopped). */
  quiet(): boolean {
    const quietMs = this.o.quietMs ?? 0;
    if (quietMs <= 0 || this.stopTraffic) return false;
    const busyMs = this.o.busyMs ?? 20_000;
    return this.loop.nowMs() % (busyMs + quietMs) >= busyMs;
  }

  /** Sleeps to the start of the next busy stretch (or for a moment, outside a soak). */
  untilBusy(): Promise<void> {
    const cycle = (this.o.busyMs ?? 20_000) + (this.o.quietMs ?? 0);
    return this.loop.sleep(this.quiet() ? cycle - (this.loop.nowMs() % cycle) : 1);
  }

  fault(what: string): void {
    this.history.faults.push({ atMs: this.loop.nowMs(), what });
    this.loop.trace(`fault ${what}`);
  }

  start(slot: Slot): void {
    if (slot.member?.alive === true || slot.starting || slot.retired) return;
    slot.starting = true;
    const proc = new Proc(this.loop);
    SimMember.start({
      proc,
      disk: slot.disk,
      rand: new SeededRand(this.rand.uint32()),
      memberId: slot.id,
      clusterId: this.initial.clusterId,
      initial: this.initial,
      join: slot.join,
      send: (from, msgs) => this.send(from, msgs),
      segmentBytes: this.segmentBytes,
      preallocate: this.preallocate,
      syncInline: this.syncInline,
      compactionBatchLimit: this.compactionBatchLimit,
      snapshots: this.snapshots,
    }).then(
      (m) => {
        slot.member = m;
        slot.starting = false;
        this.loop.trace(`started m${slot.index}`);
      },
      (e: unknown) => this.loop.fail(e),
    );
  }

  crash(slot: Slot): void {
    const m = slot.member;
    if (m === undefined || !m.alive) return;
    m.crash();
    slot.disk.fs.crash(this.rand);
    this.fault(`crash m${slot.index}`);
  }

  /** The fake network: each message delayed, maybe dropped, cut by partitions at delivery. */
  send(from: SimMember, msgs: raftpb.Message[]): void {
    for (const m of msgs) {
      if (m.type === raftpb.MessageType.MsgSnap) {
        this.sendSnapshot(from, m);
        continue;
      }
      if (this.drop > 0 && this.rand.float() < this.drop) continue;
      const to = this.slots.find((s) => s.id === m.to);
      const src = this.slots.find((s) => s.id === from.memberId);
      if (to === undefined || src === undefined) continue;
      const wire = raftpb.Message.encode(m);
      this.loop.at(1 + this.rand.intn(this.delayMaxMs), () => {
        const target = to.member;
        if (target === undefined || !target.alive || to.group !== src.group || !from.alive) return;
        const copy = raftpb.Message.decode(wire);
        this.loop.trace(`deliver ${copy.type} ${src.index}->${to.index} t${copy.term} i${copy.index} c${copy.commit} n${copy.entries.length}${copy.reject ? ' reject' : ''}`);
        target.raft.step(copy);
      });
    }
  }

  /**
   * A leader's MsgSnap, as the server's transport sends it: the message
   * carries the leader's applied state and its database at least that new,
   * streamed as the server streams it (snapshot-peer.ts); the follower keeps
   * the database before raft sees the message; the leader's raft is told
   * whether it arrived.
   */
  private sendSnapshot(from: SimMember, m: raftpb.Message): void {
    const to = this.slots.find((s) => s.id === m.to);
    const src = this.slots.find((s) => s.id === from.memberId);
    if (to === undefined || src === undefined) return;
    m.snapshot = appliedSnapshot(from);
    // Read in one step, as the server's view holds one state: what the leader has applied.
    const pieces: Buffer[] = [];
    streamPeerSnapshot(from.schema, (piece) => void pieces.push(Buffer.from(piece)));
    const db = Buffer.concat(pieces);
    this.snapshotsSent++;
    const wire = raftpb.Message.encode(m);
    const index = m.snapshot.metadata?.index ?? 0;
    this.loop.trace(`send snapshot ${src.index}->${to.index} i${index} t${m.term}`);
    const lost = this.drop > 0 && this.rand.float() < this.drop;
    this.loop.at(5 + this.rand.intn(this.delayMaxMs + 20), () => {
      const target = to.member;
      const arrived = !lost && target !== undefined && target.alive && to.group === src.group && from.alive;
      if (arrived) {
        target.receiveSnapshotDb(index, db);
        this.loop.trace(`deliver snapshot ${src.index}->${to.index} i${index}`);
        target.raft.step(raftpb.Message.decode(wire));
      }
      if (from.alive) from.raft.with((n) => n.reportSnapshot(m.to, arrived));
    });
  }

  alive(): SimMember[] {
    return this.slots.flatMap((s) => (s.member?.alive === true && !s.retired ? [s.member] : []));
  }

  /** The members of the cluster now (not those removed). */
  current(): Slot[] {
    return this.slots.filter((s) => !s.retired);
  }

  pick<T>(xs: readonly T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[this.rand.intn(xs.length)];
  }

  /** A live member that serves clients, at random. */
  pickReady(): SimMember | undefined {
    return this.pick(this.alive().filter((x) => x.ready));
  }

  // ---- clients

  async client(id: number): Promise<void> {
    const lastSeen = new Map<string, number>();
    let n = 0;
    while (!this.stopTraffic) {
      // In a soak's quiet stretch one client writes every 5-35 s; the others wait for the next busy one.
      if (this.quiet()) {
        if (id !== 0) {
          await this.untilBusy();
          continue;
        }
        await this.loop.sleep(5000 + this.rand.intn(30_000));
        // The traffic may have stopped meanwhile: the checks are then under way.
        if (this.stopTraffic) break;
      }
      await this.loop.sleep(this.rand.intn(40));
      const m = this.pickReady();
      if (m === undefined) {
        await this.loop.sleep(100);
        continue;
      }
      const { label, req } = this.nextRequest(id, ++n, lastSeen);
      const { res } = await this.runOp(id, m, label, req);
      if (res !== undefined) this.noteSeen(req, res, lastSeen);
    }
  }

  /** Runs one request on m and records it: its op id, and its response (undefined when it failed). */
  private async runOp(client: number, m: SimMember, label: string, req: Request): Promise<{ readonly id: number; readonly res: Response | undefined }> {
    const op: OpRecord = { id: this.nextOpId++, client, label, endpoint: `m${this.slotOf(m)}`, invokeMs: this.loop.nowMs(), req };
    this.history.ops.push(op);
    this.loop.trace(`invoke ${op.id} ${label} on ${op.endpoint} ${JSON.stringify(req)}`);
    try {
      const res = await this.execute(m, req, client);
      op.returnMs = this.loop.nowMs();
      op.status = 'ok';
      op.res = res;
      this.loop.trace(`return ${op.id} ${JSON.stringify(res)}`);
      return { id: op.id, res };
    } catch (e) {
      if (e instanceof AuthError) {
        // Refused by auth when applied, alike on every member: it did nothing. A stale revision is renewed, as a client authenticates again.
        op.status = 'failed';
        op.returnMs = this.loop.nowMs();
        op.error = e.message;
        this.authRefused++;
        if (e.code === 'AuthOldRevision') this.authRevs.set(client, m.auth.revision());
        this.loop.trace(`refused ${op.id} ${e.message}`);
        return { id: op.id, res: undefined };
      }
      // A lease gone (expired, revoked) refuses a put or a revoke: as the robustness client, indeterminate.
      if (!(e instanceof SimRequestError || e instanceof LeaseError || (isKvError(e) && e.code === 'lease-not-found'))) throw e;
      const read = req.kind === 'txn' && [...req.txn.success, ...req.txn.failure].every((o) => o.type === 'range');
      op.status = read ? 'failed' : 'indeterminate';
      if (read) op.returnMs = this.loop.nowMs();
      op.error = e.message;
      this.loop.trace(`fail ${op.id} ${e.message}`);
      return { id: op.id, res: undefined };
    }
  }


  private slotOf(m: SimMember): number {
    return this.slots.findIndex((s) => s.id === m.memberId);
  }

  private noteSeen(req: Request, res: Response, lastSeen: Map<string, number>): void {
    if (req.kind !== 'txn') return;
    const ops = res.succeeded ? req.txn.success : req.txn.failure;
    ops.forEach((o, i) => {
      const r = res.results[i];
      if (o.type === 'range' && r?.type === 'range') {
        if (o.end === undefined) lastSeen.set(o.key, r.kvs[0]?.modRev ?? 0);
        else for (const kv of r.kvs) lastSeen.set(kv.key, kv.modRev);
      }
      if (o.type === 'put') lastSeen.set(o.key, res.revision);
      if (o.type === 'delete') lastSeen.set(o.key, 0);
    });
  }

  private nextRequest(client: number, n: number, lastSeen: Map<string, number>): { label: string; req: Request } {
    const key = this.pick(keys) as string;
    const value = `c${client}-${n}`;
    const txn = (t: TxnRequest): Request => ({ kind: 'txn', txn: t });
    const one = (o: TxnOp): Request => txn({ compares: [], success: [o], failure: [] });
    const x = this.rand.intn(100);
    if (x < 20) return { label: 'get', req: one({ type: 'range', key }) };
    if (x < 28) return { label: 'get-serializable', req: one({ type: 'range', key, serializable: true }) };
    if (x < 35) return { label: 'range', req: one({ type: 'range', key: 'key/', end: 'key0', ...(this.rand.intn(2) === 0 ? { limit: 3 } : {}) }) };
    if (x < 60) return { label: 'put', req: one({ type: 'put', key, value, ...(this.rand.intn(3) === 0 ? { prevKv: true } : {}) }) };
    if (x < 68) return { label: 'delete', req: one({ type: 'delete', key }) };
    if (x < 90) {
      return {
        label: 'cas',
        req: txn({ compares: [{ key, modRev: lastSeen.get(key) ?? 0 }], success: [{ type: 'put', key, value }], failure: [{ type: 'range', key }] }),
      };
    }
    const [a, b, c] = this.distinctKeys(3) as [string, string, string];
    return {
      label: 'txn',
      req: txn({
        compares: [],
        success: [
          { type: 'put', key: a, value: `${value}a` },
          { type: 'put', key: b, value: `${value}b` },
          { type: 'delete', key: c },
          { type: 'range', key: 'key/', end: 'key0' },
        ],
        failure: [],
      }),
    };
  }

  private distinctKeys(n: number): string[] {
    const pool = [...keys];
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(pool.splice(this.rand.intn(pool.length), 1)[0] as string);
    return out;
  }

  private async execute(m: SimMember, req: Request, client: number): Promise<Response> {
    const memberId = idToHex(m.memberId);
    const user = this.authOn ? { name: trafficUser, authRevision: this.authRevOf(client, m) } : undefined;
    if (req.kind === 'leaseGrant') {
      const r = (await m.propose({ case: 'leaseGrant', value: etcdserverpb.LeaseGrantRequest.create({ ID: BigInt(req.id), TTL: req.ttl }) }, requestTimeoutMs, user)) as etcdserverpb.LeaseGrantResponse;
      return { revision: r.header?.revision ?? 0, memberId, leaseTtl: r.TTL, succeeded: true, results: [] };
    }
    if (req.kind === 'leaseRevoke') {
      const r = (await m.propose({ case: 'leaseRevoke', value: etcdserverpb.LeaseRevokeRequest.create({ ID: BigInt(req.id) }) }, requestTimeoutMs, user)) as etcdserverpb.LeaseRevokeResponse;
      return { revision: r.header?.revision ?? 0, memberId, succeeded: true, results: [] };
    }
    const t = req.txn;
    const allReads = [...t.success, ...t.failure].every((o) => o.type === 'range');
    const single = t.compares.length === 0 && t.success.length === 1 && t.failure.length === 0 ? t.success[0] : undefined;
    if (allReads) {
      if (user !== undefined) {
        // The API layer's permission check, before the read (the server's Range and read-only Txn).
        const ai = { username: user.name, revision: user.authRevision };
        const refused = single?.type === 'range' ? checkRangeRequest(m.auth, ai, rangeRequest(single)) : checkTxnRequest(m.auth, ai, txnRequestPb(t), () => undefined);
        if (refused !== undefined) throw refused;
      }
      if (!(single?.type === 'range' && single.serializable === true)) await m.linearizableRead(requestTimeoutMs);
      if (!m.alive) throw new SimRequestError('member crashed');
      if (single?.type === 'range') {
        const r = kvRange(m.kv, rangeRequest(single));
        return { revision: r.header?.revision ?? 0, memberId, succeeded: true, results: [rangeResult(r)] };
      }
      const r = kvTxn(m.kv, txnRequestPb(t));
      return { revision: r.header?.revision ?? 0, memberId, succeeded: r.succeeded, results: txnResults(r) };
    }
    if (single?.type === 'put') {
      const r = (await m.propose({ case: 'put', value: putRequest(single) }, requestTimeoutMs, user)) as etcdserverpb.PutResponse;
      return { revision: r.header?.revision ?? 0, memberId, succeeded: true, results: [putResult(r)] };
    }
    if (single?.type === 'delete') {
      const r = (await m.propose({ case: 'deleteRange', value: deleteRequest(single) }, requestTimeoutMs, user)) as etcdserverpb.DeleteRangeResponse;
      return { revision: r.header?.revision ?? 0, memberId, succeeded: true, results: [deleteResult(r)] };
    }
    const r = (await m.propose({ case: 'txn', value: txnRequestPb(t) }, requestTimeoutMs, user)) as etcdserverpb.TxnResponse;
    return { revision: r.header?.revision ?? 0, memberId, succeeded: r.succeeded, results: txnResults(r) };
  }

  // ---- leases

  /** Lease clients still running (they wait for their abandoned leases to expire after the traffic). */
  leaseClientsRunning = 0;

  /**
   * The robustness lease traffic (test/robustness/leases.ts) on the
   * simulated clock: each request goes to a member that serves, picked at
   * random; keep-alives and TimeToLive are answered by the leader, forwarded
   * by a follower (atLeader).
   */
  async leaseClient(id: number): Promise<void> {
    this.leaseClientsRunning++;
    // The member picked for the round; a request goes there when no member serves at the time.
    let current: SimMember | undefined;
    await leaseTraffic(
      {
        clientId: id,
        rand: this.rand,
        keyPrefix: leaseKeyPrefix,
        nowMs: () => this.loop.nowMs(),
        sleep: (ms) => this.loop.sleep(ms),
        stopped: () => this.stopTraffic,
        ready: async () => {
          while (this.quiet()) await this.untilBusy();
          if (this.stopTraffic) return false;
          await this.loop.sleep(this.rand.intn(100));
          current = this.pickReady();
          if (current === undefined) await this.loop.sleep(100);
          return current !== undefined;
        },
        run: async (label, req) => {
          const m = this.pickReady() ?? current;
          if (m === undefined) return { res: undefined, opId: -1 };
          const op = await this.runOp(id, m, label, req);
          return { res: op.res, opId: op.id };
        },
        keepAlive: (leaseId) => this.keepAlive(leaseId),
        timeToLive: (leaseId) => this.leaseTimeToLive(leaseId),
      },
      this.history.leases as LeaseRecord[],
    );
    this.leaseClientsRunning--;
  }

  /** A keep-alive sent to a member: the leader answers it, a follower forwards it. */
  private async keepAlive(leaseId: string): Promise<KeepAliveRecord | undefined> {
    const m = this.pickReady();
    if (m === undefined) return undefined;
    const invokeMs = this.loop.nowMs();
    const ttl = await this.atLeader(m, (l) => l.leaseLeader.renew(BigInt(leaseId)));
    this.loop.trace(`keepalive ${leaseId} on m${this.slotOf(m)}: ${ttl ?? 'failed'}`);
    return ttl === undefined ? undefined : { invokeMs, returnMs: this.loop.nowMs(), ttl, memberId: idToHex(m.memberId) };
  }

  /** LeaseTimeToLive sent to a member (answered by the leader); undefined when it failed. */
  private async leaseTimeToLive(leaseId: string): Promise<{ ttl: number; grantedTtl: number } | undefined> {
    const m = this.pickReady();
    if (m === undefined) return undefined;
    const t = await this.atLeader(m, (l) => l.leaseLeader.timeToLive(BigInt(leaseId), false));
    return t === undefined ? undefined : { ttl: t.ttlSeconds, grantedTtl: t.grantedTtlSeconds };
  }

  /**
   * Runs fn on the leader as the server does for keep-alives and TimeToLive:
   * on m if it leads, else forwarded to the leader m knows, across the
   * network (a hop each way, each one delayed, dropped, or cut by a
   * partition). Retried every 500 ms for up to the request timeout;
   * undefined when it did not succeed (fn's undefined means "try again").
   */
  private async atLeader<T>(m: SimMember, fn: (leader: SimMember) => Promise<T | undefined>): Promise<T | undefined> {
    const deadline = this.loop.nowMs() + requestTimeoutMs;
    const hop = async (a: SimMember, b: SimMember): Promise<boolean> => {
      if (this.drop > 0 && this.rand.float() < this.drop) return false;
      await this.loop.sleep(1 + this.rand.intn(this.delayMaxMs));
      const sa = this.slots.find((s) => s.id === a.memberId);
      const sb = this.slots.find((s) => s.id === b.memberId);
      return a.alive && b.alive && sa !== undefined && sb !== undefined && sa.group === sb.group;
    };
    while (m.alive && this.loop.nowMs() < deadline) {
      const leader = m.isLeader() ? m : this.slots.find((s) => s.id === m.leaderId)?.member;
      if (leader !== undefined && leader.alive && (leader === m || (await hop(m, leader))) && leader.isLeader()) {
        const r = await this.bounded(fn(leader), deadline);
        if (r !== undefined && (leader === m || (await hop(leader, m)))) return r;
      }
      await this.loop.sleep(500);
    }
    return undefined;
  }

  /** p's value, or undefined if it fails or has not settled by deadline (a member that crashed never settles some). */
  private bounded<T>(p: Promise<T | undefined>, deadline: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const timer = this.loop.at(Math.max(1, deadline - this.loop.nowMs()), () => resolve(undefined));
      p.then(
        (v) => {
          this.loop.cancel(timer);
          resolve(v);
        },
        () => {
          this.loop.cancel(timer);
          resolve(undefined);
        },
      );
    });
  }

  // ---- auth (P20 in the simulation)

  /** Traffic is sent as the traffic user (auth may be on or off at any moment). */
  authOn = false;
  authChanges = 0;
  authRefused = 0;
  /** The auth store revision each client presents, as a token carries the one it was issued at. */
  private readonly authRevs = new Map<number, number>();

  private authRevOf(client: number, m: SimMember): number {
    let rev = this.authRevs.get(client);
    if (rev === undefined) {
      rev = m.auth.revision();
      this.authRevs.set(client, rev);
    }
    return rev;
  }

  /**
   * As the robustness runs' auth setup: root, a role that may read and
   * write every key, the traffic user holding it, then auth on; the traffic
   * sends its writes as that user from the start.
   */
  async authSetup(): Promise<void> {
    this.authOn = true;
    const noPassword = authpb.UserAddOptions.create({ noPassword: true });
    await this.adminRequest('add root', { case: 'authUserAdd', value: etcdserverpb.AuthUserAddRequest.create({ name: 'root', options: noPassword }) }, ['UserAlreadyExist']);
    await this.adminRequest('grant root', { case: 'authUserGrantRole', value: etcdserverpb.AuthUserGrantRoleRequest.create({ user: 'root', role: 'root' }) });
    await this.adminRequest('add role', { case: 'authRoleAdd', value: etcdserverpb.AuthRoleAddRequest.create({ name: trafficRole }) }, ['RoleAlreadyExist']);
    await this.adminRequest('grant every key', everyKeyGrant());
    await this.adminRequest('add user', { case: 'authUserAdd', value: etcdserverpb.AuthUserAddRequest.create({ name: trafficUser, options: noPassword }) }, ['UserAlreadyExist']);
    await this.adminRequest('grant role', { case: 'authUserGrantRole', value: etcdserverpb.AuthUserGrantRoleRequest.create({ user: trafficUser, role: trafficRole }) });
    await this.adminRequest('enable', { case: 'authEnable', value: etcdserverpb.AuthEnableRequest.create({}) });
    this.fault('auth enabled');
  }

  /**
   * The robustness auth fault every 1-3 s: auth off for a moment; a
   * permission on keys the traffic never touches granted or taken back
   * (every token's revision goes stale); or the traffic's own permission
   * taken away for a moment.
   */
  async authChurn(): Promise<void> {
    await this.authSetup();
    const unused = authpb.Permission.create({ permType: authpb.Permission_Type.READ, key: Buffer.from('unused/'), rangeEnd: Buffer.from('unused0') });
    while (!this.stopTraffic) {
      await this.loop.sleep(1000 + this.rand.intn(2000));
      if (this.quiet()) {
        await this.untilBusy();
        continue;
      }
      if (this.stopTraffic) return;
      const holdMs = 200 + this.rand.intn(1300);
      switch (this.rand.intn(4)) {
        case 0:
          await this.adminRequest('disable', { case: 'authDisable', value: etcdserverpb.AuthDisableRequest.create({}) });
          this.fault(`auth disabled for ${holdMs} ms`);
          await this.loop.sleep(holdMs);
          await this.adminRequest('enable', { case: 'authEnable', value: etcdserverpb.AuthEnableRequest.create({}) });
          this.fault('auth enabled');
          break;
        case 1:
          await this.adminRequest('grant unused', { case: 'authRoleGrantPermission', value: etcdserverpb.AuthRoleGrantPermissionRequest.create({ name: trafficRole, perm: unused }) });
          this.fault('auth: granted an unused permission');
          break;
        case 2:
          await this.adminRequest('revoke unused', revokeGrant(unused.key, unused.rangeEnd), ['PermissionNotGranted']);
          this.fault('auth: revoked an unused permission');
          break;
        default:
          await this.adminRequest('revoke every key', revokeGrant(Buffer.from(firstKey), new Uint8Array([0])), ['PermissionNotGranted']);
          this.fault(`auth: took the traffic's permission away for ${holdMs} ms`);
          await this.loop.sleep(holdMs);
          await this.adminRequest('grant every key', everyKeyGrant());
          this.fault("auth: gave the traffic's permission back");
      }
      this.authChanges++;
    }
  }

  /** Proposes as root, on a live member, until it applied (or was refused with one of doneCodes: an earlier attempt applied). */
  private async adminRequest(what: string, request: serverpb.InternalRaftRequest['request'], doneCodes: readonly string[] = []): Promise<void> {
    for (;;) {
      const m = this.pickReady();
      if (m === undefined) {
        await this.loop.sleep(100);
        continue;
      }
      try {
        await m.propose(request, requestTimeoutMs, { name: 'root', authRevision: m.auth.revision() });
        return;
      } catch (e) {
        if (e instanceof AuthError && doneCodes.includes(e.code)) return;
        if (!(e instanceof SimRequestError || e instanceof AuthError)) throw e;
        this.loop.trace(`auth ${what} on m${this.slotOf(m)}: ${e.message}`);
        await this.loop.sleep(200);
      }
    }
  }

  // ---- watchers

  /** A watch that moves to another member when its member crashes (or at random), resuming at last+1. */
  async watcher(record: WatchRecord): Promise<void> {
    let last = 0;
    for (;;) {
      const m = this.pickReady();
      if (m === undefined) {
        await this.loop.sleep(100);
        continue;
      }
      const seg: WatchSegment = { endpoint: `m${this.slotOf(m)}`, startRev: last + 1, invokeMs: this.loop.nowMs(), responses: [] };
      record.segments.push(seg);
      const stream: WatchStream = m.watchable.newWatchStream();
      stream.onReady = () => {
        for (let r = stream.next(); r !== undefined; r = stream.next()) {
          seg.responses.push({
            atMs: this.loop.nowMs(),
            revision: r.revision,
            events: r.events.map(toEvent),
            ...(r.compactRevision !== 0 ? { compactRevision: r.compactRevision, canceled: true } : {}),
          });
          const lastEvent = r.events[r.events.length - 1];
          if (lastEvent?.kv !== undefined) last = lastEvent.kv.modRevision;
          this.loop.trace(`watch ${record.id} ${r.revision} ${r.events.length}`);
        }
      };
      stream.watch({ key: Buffer.from(record.key), rangeEnd: Buffer.from(record.end), startRevision: last + 1, prevKv: record.prevKv });
      // Stay until the member crashes, or move on after a while to exercise resumption.
      const stayMs = 500 + this.rand.intn(4000);
      const until = this.loop.nowMs() + stayMs;
      while (m.alive && (this.loop.nowMs() < until || this.stopTraffic || this.quiet()) && !this.watchesDone) await this.loop.sleep(this.quiet() ? 1000 : 50);
      seg.end = m.alive ? 'moved' : 'member crashed';
      stream.close();
      if (this.watchesDone) return;
      await this.loop.sleep(this.rand.intn(200));
    }
  }

  watchesDone = false;

  // ---- compaction

  /**
   * Compacts through raft every 0.5-2 s, up to 30 revisions behind the
   * slowest watch (which the history is replayed from: compaction never
   * passes one, and a watch resumes past what it saw). Half of them wait for
   * the removal to finish; either way it runs in small batches on every
   * member, where crashes land in the middle of it.
   */
  async compactor(watches: readonly WatchRecord[]): Promise<void> {
    while (!this.stopTraffic) {
      await this.loop.sleep(500 + this.rand.intn(1500));
      if (this.quiet()) {
        await this.untilBusy();
        continue;
      }
      const target = Math.min(...watches.map(lastDelivered)) - this.rand.intn(30);
      const m = this.pickReady();
      if (m === undefined || target <= this.compacted + 5) continue;
      const physical = this.rand.intn(2) === 0;
      this.history.compactions?.push({ atMs: this.loop.nowMs(), revision: target });
      this.loop.trace(`compact ${target}${physical ? ' physical' : ''} on m${this.slotOf(m)}`);
      try {
        await m.propose({ case: 'compaction', value: etcdserverpb.CompactionRequest.create({ revision: target, physical }) }, requestTimeoutMs);
        this.compacted = target;
      } catch (e) {
        // Its outcome unknown (it may still apply), or refused as compacted by one that applied late.
        this.loop.trace(`compact ${target} failed: ${(e as Error).message}`);
      }
      // As an operator after a compaction: defragment a member (its commits held meanwhile).
      if (this.rand.intn(2) === 0) this.defrag();
    }
  }

  /** Defragmentations finished. */
  defrags = 0;

  private defrag(): void {
    const m = this.pickReady();
    if (m === undefined) return;
    const name = `m${this.slotOf(m)}`;
    this.loop.trace(`defrag ${name}`);
    m.schema.backend.defrag().then(
      () => {
        this.defrags++;
        this.loop.trace(`defrag ${name} done`);
      },
      (e: unknown) => this.loop.trace(`defrag ${name} failed: ${(e as Error).message}`),
    );
  }

  // ---- faults

  async faults(): Promise<void> {
    while (!this.stopTraffic) {
      await this.loop.sleep(300 + this.rand.intn(1500));
      if (this.quiet()) {
        await this.untilBusy();
        continue;
      }
      if (this.stopTraffic) return;
      const slot = this.pick(this.current()) as Slot;
      const leader = this.current().find((s) => s.member?.alive === true && s.member.isLeader());
      switch (this.rand.intn(7)) {
        case 6:
          if (this.changing) break;
          this.changing = true;
          this.replaceMember(this.rand.intn(3) === 0 && leader !== undefined ? leader : slot, this.rand.intn(2) === 0)
            .catch((e: unknown) => this.loop.fail(e))
            .finally(() => (this.changing = false));
          break;
        case 0:
        case 1: {
          const target = this.rand.intn(2) === 0 && leader !== undefined ? leader : slot;
          this.crash(target);
          const downMs = 100 + this.rand.intn(2000);
          this.loop.at(downMs, () => this.start(target));
          break;
        }
        case 5: {
          // A crash in the persistence path: at the member's next WAL fsync, with the write in flight.
          const target = this.rand.intn(2) === 0 && leader !== undefined ? leader : slot;
          if (target.member?.alive !== true) break;
          this.fault(`arm a crash of m${target.index} at its next wal sync`);
          target.disk.fs.crashAtNextSync = () => {
            this.crash(target);
            this.loop.at(100 + this.rand.intn(2000), () => this.start(target));
          };
          break;
        }
        case 2: {
          slot.group = 1;
          this.fault(`isolate m${slot.index}`);
          this.loop.at(200 + this.rand.intn(3000), () => {
            slot.group = 0;
            this.fault(`heal m${slot.index}`);
          });
          break;
        }
        case 3: {
          this.drop = 0.05 + this.rand.float() * 0.25;
          this.delayMaxMs = 20 + this.rand.intn(200);
          this.fault(`lossy drop=${this.drop.toFixed(2)} delay<=${this.delayMaxMs}`);
          this.loop.at(500 + this.rand.intn(2000), () => {
            this.drop = 0;
            this.delayMaxMs = 10;
            this.fault('network healthy');
          });
          break;
        }
        default: {
          // Split the cluster: a minority and a majority.
          const current = this.current();
          const minority = new Set<number>();
          const k = Math.floor((current.length - 1) / 2);
          while (minority.size < k) minority.add((current[this.rand.intn(current.length)] as Slot).index);
          for (const s of this.slots) s.group = minority.has(s.index) ? 2 : 0;
          this.fault(`split minority ${[...minority].sort().join(',')}`);
          this.loop.at(300 + this.rand.intn(3000), () => {
            for (const s of this.slots) s.group = 0;
            this.fault('heal split');
          });
        }
      }
    }
  }

  /** A membership change in progress (one at a time, as an operator would). */
  changing = false;

  /**
   * Replaces a member as an operator does (P10): removes it through raft
   * (retried until the removal applies on a live member: its outcome may be
   * unknown, and it may already have applied), then adds a new member with a
   * new id and an empty disk, as a voter or as a learner promoted once it
   * caught up. The removed member stops itself when its removal applies on
   * it (or is left down if it was down). Meanwhile the other faults go on.
   */
  private async replaceMember(old: Slot, learner: boolean): Promise<void> {
    this.fault(`replace m${old.index}${learner ? ' through a learner' : ''}: remove`);
    // Removed: a member has applied the removal. Not merely "not a member" on some member, which is
    // also true of one that has not applied the old member's addition yet.
    const removed = await this.confChange(raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeRemoveNode, nodeId: old.id }), (m) => m.cluster.removed.has(old.id));
    if (!removed) return;
    old.retired = true;
    this.fault(`replace m${old.index}: removed`);
    // A removed member cut off from the others never applies its removal: its peers refuse it
    // (the transport's "member removed"), and it stops; or its operator stops it.
    this.loop.at(2000, () => {
      if (old.member?.alive === true) {
        this.fault(`m${old.index} stopped (removed)`);
        old.member.stop();
      }
    });
    const index = this.slots.length;
    const id = BigInt.asUintN(64, (BigInt(this.rand.uint32()) << 32n) | BigInt(this.rand.uint32())) || 1n;
    const record = serverpb.MemberRecord.create({ ID: id, name: `m${index}`, peerUrls: [`http://m${index}.sim:2380`], clientUrls: [], isLearner: learner });
    const slot: Slot = { index, id, disk: newDisk(), member: undefined, group: 0, starting: false, join: true, retired: false };
    this.slots.push(slot);
    this.history.members[idToHex(id)] = `m${index}`;
    const type = learner ? raftpb.ConfChangeType.ConfChangeAddLearnerNode : raftpb.ConfChangeType.ConfChangeAddNode;
    const added = await this.confChange(raftpb.ConfChange.create({ type, nodeId: id, context: serverpb.MemberRecord.encode(record) }), (m) => m.cluster.members.has(id));
    if (!added) {
      slot.retired = true;
      return;
    }
    this.fault(`replace m${old.index}: added m${index} (${idToHex(id)})${learner ? ' as a learner' : ''}`);
    this.start(slot);
    if (!learner) return;
    // Promoted once it has applied what the leader had committed (etcd's readiness check is on the leader's progress).
    const promote = serverpb.MemberRecord.encode(serverpb.MemberRecord.create({ ID: id, isPromote: true }));
    const promoted = await this.confChange(raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeAddNode, nodeId: id, context: promote }), (m) => m.cluster.members.get(id)?.isLearner === false, () => {
      const leader = this.alive().find((m) => m.isLeader());
      const me = slot.member;
      return leader !== undefined && me?.alive === true && me.appliedIndex >= leader.raft.rawNode.status().commit - 5;
    });
    if (promoted) this.fault(`replace m${old.index}: m${index} promoted`);
  }

  /**
   * Proposes a conf change through a live member (the leader when there is
   * one) until a live member has applied it (done), for up to 30 s of
   * simulated time; false if it gave up. ready: wait until then to propose.
   */
  private async confChange(cc: raftpb.ConfChange, done: (m: SimMember) => boolean, ready: () => boolean = () => true): Promise<boolean> {
    const deadline = this.loop.nowMs() + 30_000;
    while (this.loop.nowMs() < deadline) {
      const live = this.alive().filter((m) => m.ready);
      if (live.some(done)) return true;
      const via = live.find((m) => m.isLeader()) ?? this.pick(live);
      if (via !== undefined && ready()) {
        try {
          await via.proposeConfChange(raftpb.ConfChange.create({ ...cc }), requestTimeoutMs);
          return true;
        } catch (e) {
          this.loop.trace(`conf change ${cc.type} ${idToHex(cc.nodeId)} on m${this.slotOf(via)}: ${(e as Error).message}`);
        }
      }
      await this.loop.sleep(200 + this.rand.intn(300));
    }
    this.fault(`conf change ${cc.type} of ${idToHex(cc.nodeId)} gave up after 30 s`);
    return false;
  }

  /** What the revision hash checks found: members named as diverged. */
  readonly revisionMismatches: string[] = [];
  revisionChecks = 0;
  revisionsCompared = 0;

  /**
   * The server's revision hash check (src/server/revision-check.ts), run by
   * whichever member leads, against every other member up: the digests
   * without the rpc. Every revision a member applies must hash as the
   * others' did, through crashes, snapshots and replacements.
   */
  async revisionChecker(everyMs: number): Promise<void> {
    while (!this.watchesDone) {
      // Nothing changes much in a soak's quiet stretch: a pass every 30 s there.
      await this.loop.sleep(this.quiet() ? 30_000 : everyMs);
      this.checkRevisions();
    }
  }

  /** One pass, from the leader if there is one. */
  checkRevisions(): void {
    const up = this.alive();
    const leader = up.find((m) => m.isLeader());
    if (leader === undefined) return;
    this.revisionChecks++;
    const name = (id: bigint): string => `m${this.slots.find((s) => s.id === id)?.index ?? '?'}`;
    void checkRevisionDigests({
      memberId: leader.memberId,
      logger: nopLogger,
      hashes: () => leader.kv.revisionHashes,
      peerIds: () => up.filter((m) => m !== leader).map((m) => m.memberId),
      peerDigest: (id, req) => {
        const peer = up.find((m) => m.memberId === id);
        return peer !== undefined && peer.alive ? Promise.resolve(answerDigest(peer.kv.revisionHashes, req)) : Promise.reject(new Error('down'));
      },
      raiseCorrupt: (id) => {
        const h = leader.kv.revisionHashes;
        this.revisionMismatches.push(`${name(id)} named by leader ${name(leader.memberId)} at ${this.loop.nowMs()} ms (leader holds (${h.oldest}, ${h.newest}])`);
      },
    }).then(
      (r) => (this.revisionsCompared += r.compared),
      (e: unknown) => this.loop.fail(e),
    );
  }

  async printStatus(everyMs: number): Promise<void> {
    // On past the faults, through the catch-up (how a run converges, or does not, shows there).
    while (!this.watchesDone) {
      await this.loop.sleep(everyMs);
      const line = this.slots.map((s) => {
        const m = s.member;
        if (m === undefined || !m.alive) return `m${s.index} down`;
        const st = m.raft.rawNode.status();
        const voters = st.config.voters.map((id) => `m${this.slots.find((x) => x.id === id)?.index ?? '?'}`).join(',');
        return `m${s.index} ${st.raftState.replace('State', '')} t${st.term} lead ${this.slots.find((x) => x.id === st.lead)?.index ?? '-'} commit ${st.commit} applied ${m.appliedIndex} last ${m.raft.storage.lastIndex()} voters ${voters} waiting ${m.pendingCount()}`;
      });
      console.log(`${this.loop.nowMs()} ms: ${line.join(' | ')}`);
    }
  }

  /** All up, one leader, every member applied the leader's commit index. */
  converged(): boolean {
    const ms = this.alive();
    if (ms.length !== this.current().length) return false;
    const leader = ms.find((m) => m.isLeader());
    if (leader === undefined) return false;
    // Nothing in flight: the leader's whole log is committed (a timed-out proposal may still be in it).
    const commit = leader.raft.rawNode.status().commit;
    if (leader.raft.storage.lastIndex() !== commit) return false;
    return ms.every((m) => m.appliedIndex === commit && m.kv.rev === leader.kv.rev);
  }
}

export async function runSim(o: SimOptions): Promise<SimReport> {
  const sim = new Sim(o);
  const loop = sim.loop;
  loop.echo = o.trace === true;
  for (const s of sim.slots) sim.start(s);
  const clients = o.clients ?? 8;
  const leaseClients = 2;
  const work: Promise<void>[] = [];
  for (let c = 0; c < clients; c++) work.push(sim.client(c));
  for (let c = 0; c < leaseClients; c++) work.push(sim.leaseClient(clients + c));
  const watchRecords: WatchRecord[] = [
    { id: 1, label: 'all-prev', key: '', end: '\0', prevKv: true, segments: [] },
    { id: 2, label: 'all-prev', key: '', end: '\0', prevKv: true, segments: [] },
    { id: 3, label: 'prefix', key: 'key/', end: 'key0', prevKv: false, segments: [] },
  ];
  sim.history.watches.push(...watchRecords);
  const watching = watchRecords.map((w) => sim.watcher(w));
  work.push(sim.faults());
  work.push(sim.compactor(watchRecords));
  if (o.auth ?? o.seed % 3 === 0) work.push(sim.authChurn());
  if ((o.statusEveryMs ?? 0) > 0) work.push(sim.printStatus(o.statusEveryMs ?? 0));
  work.push(sim.revisionChecker(1000));
  for (const p of [...work, ...watching]) p.catch((e: unknown) => loop.fail(e));

  await loop.run(o.durationMs);
  sim.stopTraffic = true;
  // Faults stop: heal everything, restart every member, let the clients finish.
  sim.drop = 0;
  sim.delayMaxMs = 10;
  for (const s of sim.slots) {
    s.group = 0;
    sim.start(s);
  }
  sim.fault('restore');
  // A membership change still under way finishes (or gives up) before the cluster is judged.
  await loop.run(o.durationMs + 35_000, () => !sim.changing);
  const end = o.durationMs + catchUpMs;
  await loop.run(end, () => sim.converged() && sim.leaseClientsRunning === 0 && sim.history.ops.every((op) => op.status !== undefined));
  // Proposals forwarded to the leader just before may still be on the wire: converge once more after a pause.
  await loop.run(loop.nowMs() + 2000, () => false);
  await loop.run(end, () => sim.converged());
  // Watches catch up with the last revision, then stop.
  const lastRevision = Math.max(1, ...sim.alive().map((m) => m.kv.rev));
  // Every key the traffic writes is under key/: every revision touches every watch.
  const caughtUp = (): boolean => watchRecords.every((w) => lastDelivered(w) >= lastRevision);
  await loop.run(end, caughtUp);
  sim.watchesDone = true;
  await loop.run(end + 1000, () => false);

  const { replay, problems } = Replay.build(mergeReference(sim.history.watches));
  const violations: Violation[] = [
    ...problems.map((message) => ({ check: 'history', message })),
    ...checkKv(sim.history.ops, replay, { expirable: (sim.history.leases ?? []).map((l) => l.id) }),
    ...checkWatches(sim.history.watches, replay, sim.history.compactions),
    ...checkLeases(sim.history, replay),
  ];
  sim.checkRevisions();
  await new Promise<void>((resolve) => setImmediate(resolve));
  for (const message of sim.revisionMismatches) violations.push({ check: 'revision-hash', message });
  if (sim.leaseClientsRunning > 0) violations.push({ check: 'liveness', message: `${sim.leaseClientsRunning} lease clients still waiting for their leases to go` });
  if (!sim.converged()) violations.push({ check: 'liveness', message: `the cluster did not converge within ${catchUpMs} ms after the faults stopped` });
  if (replay.maxRev < lastRevision) violations.push({ check: 'history', message: `the watch history ends at ${replay.maxRev}, the members are at ${lastRevision}` });
  // HashKV yields between slices on the members' timers: the loop runs until every hash is in.
  let hashed = false;
  const hashing = Promise.all(sim.alive().map(async (m) => ({ m: idToHex(m.memberId), ...(await hashOf(m.kv)) }))).finally(() => (hashed = true));
  await new Promise<void>((resolve) => setImmediate(resolve));
  await loop.run(loop.nowMs() + 60_000, () => hashed);
  const hashes = await hashing;
  if (new Set(hashes.map((h) => `${h.rev}/${h.hash}`)).size > 1) {
    violations.push({ check: 'hashkv', message: `members differ: ${hashes.map((h) => `${h.m} rev ${h.rev} hash ${h.hash}`).join('; ')}` });
  }
  for (const h of hashes) loop.trace(`hashkv ${h.m} ${h.rev} ${h.hash}`);
  // The auth store alike on every member (members diverged on auth in etcd #14571): its revision moves with every change.
  const authStates = sim.alive().map((m) => `m${sim.slots.findIndex((x) => x.id === m.memberId)} ${m.auth.isEnabled() ? 'on' : 'off'} rev ${m.auth.revision()} users ${m.auth.userList().join(',')}`);
  if (new Set(authStates.map((a) => a.replace(/^m\d+ /, ''))).size > 1) violations.push({ check: 'auth', message: `auth stores differ: ${authStates.join('; ')}` });
  return {
    seed: o.seed,
    violations,
    digest: loop.traceDigest(),
    ops: sim.history.ops.length,
    okOps: sim.history.ops.filter((op) => op.status === 'ok').length,
    watchEvents: sim.history.watches.reduce((n, w) => n + w.segments.reduce((k, s) => k + s.responses.reduce((j, r) => j + r.events.length, 0), 0), 0),
    faults: sim.history.faults.length,
    lastRevision,
    events: loop.events,
    simulatedMs: loop.nowMs(),
    crashes: sim.history.faults.filter((f) => f.what.startsWith('crash')).length,
    replaced: sim.history.faults.filter((f) => /: added m\d+/.test(f.what)).length,
    tornTails: sim.slots.reduce((n, s) => n + s.disk.tornTails, 0),
    compactions: sim.history.compactions?.length ?? 0,
    compactRevision: Math.max(0, ...sim.alive().map((m) => m.kv.compactRev)),
    defrags: sim.defrags,
    snapshots: {
      taken: sim.slots.reduce((n, s) => n + s.disk.snapshotsTaken, 0),
      sent: sim.snapshotsSent,
      installed: sim.slots.reduce((n, s) => n + s.disk.snapshotsInstalled, 0),
    },
    auth: { on: sim.authOn, changes: sim.authChanges, refused: sim.authRefused },
    leases: {
      granted: sim.history.leases?.length ?? 0,
      abandoned: sim.history.leases?.filter((l) => l.abandonedMs !== undefined).length ?? 0,
      revoked: sim.history.leases?.filter((l) => l.afterRevoke !== undefined).length ?? 0,
      keepAlives: sim.history.leases?.reduce((n, l) => n + l.keepAlives.length, 0) ?? 0,
    },
    revisionChecks: { passes: sim.revisionChecks, compared: sim.revisionsCompared },
    history: sim.history,
  };
}

/** The last revision a watch delivered an event of. */
function lastDelivered(w: WatchRecord): number {
  let last = 0;
  for (const s of w.segments) for (const r of s.responses) for (const e of r.events) last = Math.max(last, e.kv.modRev);
  return last;
}

async function hashOf(kv: SimMember['kv']): Promise<{ rev: number; hash: number }> {
  const r = await hashKvRequest(kv, etcdserverpb.HashKVRequest.create({ revision: 0 }));
  return { rev: r.header?.revision ?? 0, hash: r.hash };
}
