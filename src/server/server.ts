/**
 * EtcdServer: one member. It wires the raft-node loop to the state it
 * applies (mvcc, lessor, auth, alarms, membership) and offers the operations
 * the API layer serves, each with etcd's semantics:
 *
 * - writes are proposed through raft and answered when applied here (after
 *   this member fsynced them and a quorum acknowledged them);
 * - linearizable reads wait for a ReadIndex round and the applied index;
 *   serializable reads are served from local state at once;
 * - the leader alone expires leases, by proposing their revocation.
 */
import { randomInt } from 'node:crypto';
import { renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import {
  SeededRand,
  assert,
  idToHex,
  systemClock,
  type Clock,
  type Logger,
  type Registry,
} from '../base/index.js';
import { AuthError, AuthStore, BcryptPool, NopTokenProvider, newTokenProvider, warnIfBcryptCostInvalid, type AuthInfo } from '../auth/index.js';
import { installSnapshotFile, isBackendCorrupt, realTimers, type BackendCorruptError } from '../backend/index.js';
import { Lessor, minLeaseTtlSeconds } from '../lease/index.js';
import { KvStore, WatchableStore, isKvError, rangeEncoded, rangeRequest, txnRequest, hashKvRequest } from '../mvcc/index.js';
import { encodeKept, etcdserverpb, raftpb, serverpb } from '../pb/index.js';
import { RawNode, StateType, isRaftError, RaftErrorCode, type SoftState } from '../raft/index.js';
import { AlarmStorage, AuthStorage, LeaseStorage, MembershipStorage, Schema, currentAuthStorage } from '../schema/index.js';
import { Transport, membersRpcMethod } from '../transport/index.js';
import { AlarmSet } from './alarms.js';
import { EntryApplier, type EntryApplierHost } from './apply-entries.js';
import { applyRequest, type ApplyEnv, type ApplyOutcome } from './apply.js';
import { bootstrap, type BootState } from './bootstrap.js';
import { ConfigError, electionTicks, electionTimeoutMs, parseCompactionRetention, type ServerConfig } from './config.js';
import { ServerError, serverErrorCodes, type ServerErrorCode } from './errors.js';
import { IdGenerator } from './id-gen.js';
import { dataLayout, prepareLayout, receivedDbPath, type DataLayout } from './layout.js';
import { LeaseLeader } from './lease-leader.js';
import { LinearizableReads } from './linearizable-read.js';
import { RaftCluster, computeMemberId, memberToRecord, sameUrls, type Member } from './membership.js';
import { HeartbeatDetector, ServerMetrics } from './metrics.js';
import { RaftNode } from './raft-node.js';
import { SnapshotFlow } from './snapshot-flow.js';
import type { SizedDbExport } from './snapshot-export.js';
import { BackendQuota, noSpaceAlarm } from './quota.js';
import { newCompactor, type Compactor } from './compactor.js';
import { checkHashKv, checkInitialHashKv, hashKvRpc, type CorruptCheckHost } from './corrupt.js';
import {
  answerDigest, checkRevisionDigests, decodeDigestReply, decodeDigestRequest, encodeDigestReply, encodeDigestRequest, revisionDigestRpc, type RevisionCheckHost,
} from './revision-check.js';
import { peerTransportTls } from './tls.js';
import { walMetrics } from '../wal/index.js';
import { AppliedIndexWait, WaitRegistry } from './wait.js';
import { BackendRepair, openCheckedAtStart, type RepairHost } from './backend-repair.js';
import { memberReplaceRpc } from './wal-replace.js';

/** etcd's version this member reports (Status, /version): the API it implements. */
export const serverVersion = '3.4.23';
export const clusterVersionDefault = '3.4.0';

/** Proposals waiting to apply; past it, new ones fail with "too many requests". */
const pendingProposalsMax = 100_000;
/** Applied index lagging the committed index by more than this refuses new proposals (etcd's maxGapBetweenApplyAndCommitIndex). */
const applyLagMax = 5000;
/** Entry bytes in one append message, and in one made by merging a Ready's appends to a peer. */
const msgAppBytesMax = 1024 * 1024;
const leaseLoopMs = 500;
/** Peer RPCs: what a follower forwards to the leader. */
export const leaseRenewRpc = 'leaseRenew';
export const leaseTimeToLiveRpc = 'leaseTimeToLive';
export const memberPromoteRpc = 'memberPromote';
const leaseRetryMs = 500;
const publishRetryMs = 500;
/** How often a member that replaced a damaged one asks to be promoted while the leader finds it not ready. */
const promoteSelfRetryMs = 1000;
/** How long a removed member keeps running after applying its removal (etcd's 1 s). */
const removedStopDelayMs = 1_000;
/** etcd's HealthInterval: a peer link counts for strict reconfiguration once up this long. */
const peerHealthyAfterMs = 5_000;

export interface EtcdServerOptions {
  config: ServerConfig;
  logger: Logger;
  registry: Registry;
  clock?: Clock;
}

/** What the caller of an RPC is (for auth), and when it gives up. */
export interface RequestContext {
  readonly user?: AuthInfo;
  readonly signal?: AbortSignal;
  /**
   * The signal's abort event, cheaper: fn runs once when the caller goes
   * away; returns the function that unregisters it. A proposal uses this
   * when it is there, else the signal.
   */
  onAbort?(fn: () => void): () => void;
  /**
   * Fail at once, as every proposal of etcd's does, when raft drops it (no
   * leader, or a leadership transfer under way) instead of waiting for the
   * next leader: for the leader's own lease duties (expiry revokes,
   * checkpoints), which the next leader decides afresh. A queued expiry
   * revoke would otherwise reach the next leader and revoke a lease it had
   * extended and a client had renewed there since.
   */
  readonly dropWithoutLeader?: boolean;
}

/** Runs fn once when the caller of ctx goes away (its onAbort if it has one, else its signal); returns what unregisters fn. */
function whenCallerGone(ctx: RequestContext | undefined, fn: () => void): () => void {
  if (ctx?.onAbort !== undefined) return ctx.onAbort(fn);
  const signal = ctx?.signal;
  if (signal === undefined) return () => undefined;
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

export class EtcdServer implements ApplyEnv {
  readonly cfg: ServerConfig;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: Clock;
  readonly layout: DataLayout;
  readonly memberId: bigint;
  readonly cluster: RaftCluster;
  readonly metrics: ServerMetrics;
  private readonly heartbeats: HeartbeatDetector;
  readonly transport: Transport;
  readonly raft: RaftNode;
  readonly lessor: Lessor;
  readonly auth: AuthStore;
  readonly bcrypt: BcryptPool;
  readonly quota: BackendQuota;
  private schemaRef: Schema;
  private kvRef: KvStore;
  readonly watchable: WatchableStore;
  private alarmsRef: AlarmSet;
  private leaseStorage: LeaseStorage;
  private authStorage: AuthStorage;

  // Raft state as last seen.
  leaderId = 0n;
  /** Raft's current term (elections move it on even when nothing commits). */
  term = 0;
  committedIndex = 0;
  appliedIndex = 0;
  /**
   * The term of the last entry applied: what responses and Status show as the
   * raft term, as etcd's do (its EtcdServer.Term()); a member that lost its
   * quorum keeps showing the term of its last entry however many elections it
   * starts.
   */
  appliedTerm = 0;
  /** Committed entries into the state; keeps raft's configuration as applied. */
  private readonly applier: EntryApplier;
  /** When a leader other than the previous one was last seen (etcd's leadElectedTime). */
  private leaderElectedMs = 0;
  private snapshotIndex = 0;
  private stopping = false;
  private stoppedErr: Error | undefined;
  private readonly doneHandlers: ((err: Error | undefined) => void)[] = [];
  /** Settles once this member's attributes, proposed after the start, have applied (etcd's ReadyNotify). */
  private readonly ready = settleable();

  readonly idGen: IdGenerator;
  private readonly waits = new WaitRegistry<ApplyOutcome>(pendingProposalsMax);
  readonly appliedWait: AppliedIndexWait;
  readonly reads: LinearizableReads;
  private readonly snapshots: SnapshotFlow;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** The leader's half of leases: promotion, expiry, keep-alives. */
  private readonly leaseLeader: LeaseLeader;
  /** Auto compaction (off unless --auto-compaction-retention is set); runs only while leader. */
  private readonly compactor: Compactor | undefined;
  /** The timers of everyOnLeader's passes. */
  private readonly leaderTimers = new Set<NodeJS.Timeout>();
  /** Proposals that found no leader; retried when one is elected. */
  private noLeaderQueue: (() => void)[] = [];
  /** Settles at the next change of leader (then replaced), for calls that wait on the current one. */
  private leaderChange = settleable();

  private constructor(opts: EtcdServerOptions, layout: DataLayout, boot: BootState, schema: Schema) {
    this.cfg = opts.config;
    this.logger = opts.logger;
    this.registry = opts.registry;
    this.clock = opts.clock ?? systemClock;
    this.layout = layout;
    this.memberId = boot.memberId;
    this.cluster = new RaftCluster(this.cfg.initialClusterToken, boot.clusterId);
    this.metrics = new ServerMetrics(this.registry, this);
    this.heartbeats = new HeartbeatDetector(2 * this.cfg.heartbeatMs, this.metrics.heartbeatSendFailures);
    this.schemaRef = schema;
    schema.backend.onCommit = this.metrics.observeCommit;
    this.quota = new BackendQuota(this.cfg.quotaBackendBytes, () => this.schemaRef.backend.size(), this.clock);
    this.metrics.quotaBytes.set(this.quota.bytes);
    if (this.quota.disabled) this.logger.info('disabled backend quota', { 'quota-size-bytes': this.quota.bytes });
    this.leaseStorage = new LeaseStorage(schema);
    this.authStorage = new AuthStorage(schema);
    this.lessor = new Lessor({
      clock: this.clock,
      // Whole ticks, as etcd divides: 1000/5000 ms gives 7 s, not 7.5 s rounded up to 8.
      minTtlSeconds: minLeaseTtlSeconds(electionTicks(this.cfg), this.cfg.heartbeatMs),
      store: { put: (r) => this.leaseStorage.put(r), delete: (id) => this.leaseStorage.delete(id), loadAll: () => this.leaseStorage.loadAll() },
      checkpointEnabled: this.cfg.experimentalEnableLeaseCheckpoint,
      registry: this.registry,
    });
    this.kvRef = this.openKvStore(schema);
    this.lessor.setRangeDeleter({ deleteKeys: (keys) => this.kvRef.deleteKeys(keys) });
    this.watchable = new WatchableStore(this.kvRef, {
      // A catch-up pass runs on a timer: a corrupt record starts the repair (the watch streams end with it).
      onPassError: (e) => {
        if (!isBackendCorrupt(e)) throw e;
        this.backendCorrupt(e, this.appliedIndex, 'watch');
      },
    });
    this.alarmsRef = new AlarmSet(new AlarmStorage(schema), (set) => this.alarmsChanged(set));
    this.bcrypt = new BcryptPool({ size: 1 });
    this.auth = new AuthStore({
      // The backend behind the auth store changes when a snapshot is installed: always ask the current one.
      backend: currentAuthStorage(() => this.authStorage),
      tokenProvider: this.tokenProvider(),
      bcrypt: this.bcrypt,
      logger: this.logger,
      metrics: this.registry,
    });
    warnIfBcryptCostInvalid(this.cfg.bcryptCost, this.logger);
    this.loadMembership();
    const applied = schema.consistentIndex();
    this.appliedIndex = Math.max(applied.index, boot.snapshot?.metadata?.index ?? 0);
    this.appliedTerm = applied.term;
    this.snapshotIndex = boot.snapshot?.metadata?.index ?? 0;
    this.applier = new EntryApplier(this.applierHost(), applied.index, schema.confState() ?? boot.snapshot?.metadata?.confState ?? raftpb.ConfState.create());
    this.appliedWait = new AppliedIndexWait(this.appliedIndex);
    this.leaseLeader = this.newLeaseLeader();
    this.idGen = new IdGenerator(this.memberId, Math.floor(this.clock.wallMs()));
    this.reads = new LinearizableReads({
      issue: (ctx) => this.issueReadIndex(ctx),
      localIndex: () => this.raft.rawNode.localReadIndex(),
      nextId: () => this.idGen.next(),
      appliedWait: this.appliedWait,
      nowMs: () => this.clock.nowMs(),
      retryMs: 500,
      timeoutMs: this.requestTimeoutMs(),
      pendingMax: pendingProposalsMax,
      onSlow: () => this.metrics.slowReadIndexes.inc(),
      onFailed: () => this.metrics.readIndexesFailed.inc(),
    });
    this.transport = this.newTransport(boot);
    const rawNode = new RawNode({
      id: this.memberId,
      electionTicks: electionTicks(this.cfg),
      heartbeatTicks: 1,
      storage: boot.storage,
      msgAppBytesMax,
      inflightMsgsMax: 512,
      uncommittedBytesMax: 1 << 30,
      checkQuorum: true,
      preVote: this.cfg.preVote,
      rand: new SeededRand(randomInt(0, 2 ** 47)),
      logger: this.logger.with({ component: 'raft' }),
    });
    if (boot.kind === 'new') rawNode.bootstrap(boot.peers);
    boot.snapshotter.onSave = (t) => this.metrics.observeSnapSave(t);
    this.raft = new RaftNode({
      rawNode,
      mergedAppendBytesMax: msgAppBytesMax,
      storage: boot.storage,
      wal: boot.wal,
      snapshotter: boot.snapshotter,
      heartbeatMs: this.cfg.heartbeatMs,
      logger: this.logger,
      app: {
        onSoftState: (s) => this.onSoftState(s),
        onHardState: (hs) => {
          this.term = hs.term;
          this.committedIndex = Math.max(this.committedIndex, hs.commit);
        },
        send: (msgs) => {
          if (this.isLeader()) this.heartbeats.observe(msgs);
          this.transport.send(msgs);
        },
        applySnapshot: (snap) => this.installSnapshot(snap),
        applyEntries: (entries) => this.applyOrHold(entries),
        onReadState: (ctx, index) => this.reads.onReadState(ctx, index),
        afterAdvance: () => this.snapshots.maybeSnapshot(),
        onFatal: (err) => this.fatal(err),
      },
    });
    this.snapshots = new SnapshotFlow(this);
    this.compactor = newCompactor(parseCompactionRetention(this.cfg.autoCompactionMode, this.cfg.autoCompactionRetention), {
      rev: () => this.kvRef.rev,
      compact: (rev) => this.autoCompact(rev),
      timers: realTimers,
      clock: this.clock,
      logger: this.logger.with({ component: 'compactor' }),
    });
  }

  /**
   * Runs pass while this member leads, intervalMs after the last pass
   * ended, until the member stops: the periodic corruption check
   * (--experimental-corrupt-check-time) and the revision hash check
   * (--experimental-revision-hash-check-time). A failed pass is logged.
   */
  private everyOnLeader(intervalMs: number, failure: string, pass: () => Promise<unknown>): void {
    const timer = setTimeout(() => {
      this.leaderTimers.delete(timer);
      if (this.stopping) return;
      (this.isLeader() ? pass() : Promise.resolve())
        .catch((e: unknown) => this.logger.warn(failure, { error: (e as Error).message }))
        .finally(() => {
          if (!this.stopping) this.everyOnLeader(intervalMs, failure, pass);
        });
    }, intervalMs);
    timer.unref();
    this.leaderTimers.add(timer);
  }

  private revisionCheckHost(): RevisionCheckHost {
    return {
      memberId: this.memberId,
      logger: this.logger,
      hashes: () => this.kvRef.revisionHashes,
      peerIds: () => [...this.cluster.members.keys()].filter((id) => id !== this.memberId),
      // A member down must not hold the pass (and the next) for a whole request timeout.
      peerDigest: async (id, req) => decodeDigestReply(await this.transport.call(id, revisionDigestRpc, encodeDigestRequest(req), Math.max(500, Math.min(this.requestTimeoutMs(), this.cfg.experimentalRevisionHashCheckTimeMs)))),
      raiseCorrupt: (id) => this.raiseCorrupt(id),
      reported: this.revisionDivergenceReported,
    };
  }

  /** What the revision checks of this member, as leader, reported (revision-check.ts). */
  private readonly revisionDivergenceReported = new Map<bigint, number>();

  /**
   * Whether this member refuses KV reads and watches (they fail with
   * "etcdserver: corrupt cluster") while the other members go on serving:
   * - a CORRUPT alarm names it (its state diverged from the others'), until
   *   the alarm is disarmed; writes are refused cluster-wide by the alarm,
   *   as etcd's;
   * - its backend is being repaired (a record failed its checksum), until
   *   the repair ends; its own clients' writes are refused meanwhile.
   */
  get refusesReads(): boolean {
    return this.corruptNamed || this.repair !== undefined;
  }

  /** A CORRUPT alarm names this member. */
  private corruptNamed = false;
  private readonly corruptListeners = new Set<() => void>();
  /** Set while the backend, found corrupt, is repaired from a peer (backend-repair.ts). */
  private repair: BackendRepair | undefined;

  /** Calls fn when this member comes to refuse reads (see refusesReads); returns the unsubscribe. */
  onRefusingReads(fn: () => void): () => void {
    this.corruptListeners.add(fn);
    return () => this.corruptListeners.delete(fn);
  }

  private alarmsChanged(set: AlarmSet): void {
    const named = set.names(this.memberId, etcdserverpb.AlarmType.CORRUPT);
    if (named === this.corruptNamed) return;
    this.corruptNamed = named;
    if (!named) {
      this.logger.warn('no CORRUPT alarm names this member any more; serving reads and watches again');
      return;
    }
    this.logger.error('a CORRUPT alarm names this member; refusing reads and watches until it is disarmed', { 'member-id': idToHex(this.memberId) });
    for (const fn of [...this.corruptListeners]) fn();
  }

  /** A read must not be served from a state named corrupt, or from a backend being repaired. */
  private refuseIfCorrupt(): void {
    if (this.refusesReads) throw new ServerError('Corrupt');
  }

  // ---------------------------------------------------------------- backend repair

  /**
   * fn, which reads the backend; a record found corrupt on the way starts the
   * repair and fails the read as a read on a corrupt member.
   */
  private async readingBackend<T>(fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      this.onBackendError(e);
      throw e;
    }
  }

  /** An error from reading the backend: a corrupt record starts the repair and becomes ServerError Corrupt; others pass. */
  private onBackendError(e: unknown): void {
    if (!isBackendCorrupt(e)) return;
    this.backendCorrupt(e, this.appliedIndex, 'read');
    throw new ServerError('Corrupt');
  }

  /** Entries raft hands out: applied, or held while the backend is repaired. */
  private applyOrHold(entries: raftpb.Entry[]): void {
    if (this.repair !== undefined) {
      this.repair.hold(entries);
      return;
    }
    const before = { index: this.appliedIndex, term: this.appliedTerm };
    try {
      this.applier.applyEntries(entries);
    } catch (e) {
      if (!isBackendCorrupt(e)) throw e;
      // The entries' write scope failed: none of them is in the backend, whatever the
      // applied index moved to meanwhile.
      this.appliedIndex = before.index;
      this.appliedTerm = before.term;
      this.backendCorrupt(e, before.index, 'apply');
      (this.repair as BackendRepair | undefined)?.hold(entries);
    }
  }

  private backendCorrupt(e: BackendCorruptError, lastApplied: number, foundBy: 'read' | 'watch' | 'apply' | 'compaction'): void {
    if (this.repair !== undefined || this.stopping) return;
    this.logger.error('backend record corrupt: refusing reads and writes here and repairing the backend from a peer', { error: e.message, 'found-by': foundBy, 'applied-index': lastApplied });
    const repair = new BackendRepair(this.repairHost(), lastApplied, e);
    this.repair = repair;
    for (const fn of [...this.corruptListeners]) fn();
    if (this.isLeader()) {
      // Leases and linearizable reads are better served by a member that applies.
      const to = [...this.cluster.members.values()].find((m) => m.id !== this.memberId && !m.isLearner);
      if (to !== undefined) this.raft.with((n) => n.transferLeader(to.id));
    }
    // Not before the read or apply that found it has failed: a member with no peer stops at once.
    setImmediate(() => void repair.run());
  }

  private repairHost(): RepairHost {
    return {
      logger: this.logger.with({ component: 'backend-repair' }),
      dir: this.layout.snapDir,
      peersToAsk: () => {
        const others = [...this.cluster.members.keys()].filter((id) => id !== this.memberId);
        return others.sort((a, b) => Number(b === this.leaderId) - Number(a === this.leaderId));
      },
      fetchDb: (id, minIndex, timeoutMs) => this.transport.fetchDb(id, minIndex, timeoutMs),
      answerTimeoutMs: () => this.requestTimeoutMs(),
      install: (path) => this.installRepairedDb(path),
      stopping: () => this.stopping,
      fail: (err) => this.fatal(err),
    };
  }

  /** A peer repairing its backend pulls this member's once it has applied minIndex. */
  private async serveDbForRepair(from: bigint, minIndex: number): Promise<AsyncIterable<Uint8Array>> {
    if (this.refusesReads) throw new Error('this member refuses reads (corrupt) and serves no database');
    if (this.appliedIndex < minIndex) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`applied index ${this.appliedIndex} has not reached ${minIndex}`)), this.requestTimeoutMs());
      });
      try {
        await Promise.race([this.appliedWait.wait(minIndex), timeout]);
      } finally {
        clearTimeout(timer);
      }
    }
    const db = await this.snapshots.openForRepair();
    this.logger.info('serving the database to a member repairing its own', { to: idToHex(from), 'min-index': minIndex, 'applied-index': this.appliedIndex });
    return db;
  }

  /** On the raft loop: the pulled database replaces the corrupt one, and the held entries are applied. */
  private installRepairedDb(path: string): Promise<void> {
    return this.raft.exclusive(async () => {
      const repair = this.repair;
      if (repair === undefined || repair.ended) {
        // A leader's snapshot repaired it first.
        await rm(path, { force: true });
        return;
      }
      await this.kvRef.compactionsDone();
      await this.closeBackendAnyway();
      // Kept for a post-mortem, the last one only.
      renameSync(this.layout.dbPath, `${this.layout.dbPath}.corrupt`);
      installSnapshotFile(path, this.layout.dbPath);
      this.reopenBackend(this.applier.confState);
      // What raft handed out up to now: entries held while this waited for the loop count too.
      this.endRepair(repair.lastApplied, repair.heldThrough);
    });
  }

  /** The backend is whole again: applies the held entries (from after + 1 through to) and serves again. */
  private endRepair(after: number, to: number): void {
    const repair = this.repair;
    if (repair === undefined) return;
    repair.end();
    this.repair = undefined;
    const storage = this.raft.storage;
    const from = Math.max(after, storage.firstIndex() - 1) + 1;
    const through = Math.min(to, storage.lastIndex());
    this.logger.warn('backend repaired; serving reads again', { 'applied-index': this.appliedIndex, 'reapplying-from': from, 'reapplying-through': through });
    if (through >= from) this.applyOrHold(storage.entries(from, through + 1, Number.MAX_SAFE_INTEGER));
  }

  /** Closes the backend; one whose scope failed on a corrupt record cannot commit, which is no error here. */
  private async closeBackendAnyway(): Promise<void> {
    try {
      await this.schemaRef.backend.close();
    } catch (e) {
      if (this.repair === undefined || !isBackendCorrupt(e)) throw e;
    }
  }

  /**
   * A local read, as etcd's doSerialize: a token of another auth revision
   * than the store's once read fails the read, whatever it answered (a
   * compacted or future revision too), auth on or off (a JWT outlives an
   * auth disable, which moves the revision).
   */
  private async serialized<T>(user: RequestContext['user'], read: () => Promise<T>): Promise<T> {
    const refuseStaleToken = (): void => {
      if (user !== undefined && user.revision !== 0 && user.revision !== this.auth.revision()) throw new AuthError('AuthOldRevision');
    };
    let out: T;
    try {
      out = await read();
    } catch (e) {
      refuseStaleToken();
      throw e;
    }
    refuseStaleToken();
    return out;
  }

  /** Proposes a CORRUPT alarm for the member, unless it has one already. */
  private raiseCorrupt(id: bigint): void {
    if (this.alarmsRef.names(id, etcdserverpb.AlarmType.CORRUPT)) return;
    const a = etcdserverpb.AlarmRequest.create({ action: etcdserverpb.AlarmRequest_AlarmAction.ACTIVATE, memberID: id, alarm: etcdserverpb.AlarmType.CORRUPT });
    void this.proposeInternal({ case: 'alarm', value: a });
  }

  private corruptCheckHost(): CorruptCheckHost {
    return {
      memberId: this.memberId,
      logger: this.logger,
      hashKv: (rev) => this.hashKv(etcdserverpb.HashKVRequest.create({ revision: rev })),
      peerIds: () => [...this.cluster.members.keys()].filter((id) => id !== this.memberId),
      peerHashKv: async (id, rev) => {
        const body = etcdserverpb.HashKVRequest.encode(etcdserverpb.HashKVRequest.create({ revision: rev }));
        return etcdserverpb.HashKVResponse.decode(await this.transport.call(id, hashKvRpc, body, this.requestTimeoutMs()));
      },
      linearizableRead: () => this.linearizableRead(),
      raiseCorrupt: (id) => this.raiseCorrupt(id),
    };
  }

  private async autoCompact(rev: number): Promise<void> {
    try {
      await this.compact(etcdserverpb.CompactionRequest.create({ revision: rev }));
    } catch (e) {
      if (!(isKvError(e) && e.code === 'compacted')) throw e;
    }
  }

  /** Opens (or creates) the member's data and starts serving peers and raft. */
  static async start(opts: EtcdServerOptions): Promise<EtcdServer> {
    const cfg = opts.config;
    const layout = dataLayout(cfg.dataDir, cfg.walDir);
    prepareLayout(layout);
    const boot = await bootstrap(cfg, layout, opts.logger, walMetrics(opts.registry));
    await installReceivedDb(layout, boot, opts.logger);
    const openSchema = (): Schema => Schema.open({
      path: layout.dbPath,
      batchIntervalMs: cfg.backendBatchIntervalMs,
      batchOpsMax: cfg.backendBatchLimit,
      noSync: cfg.unsafeNoFsync,
      logger: opts.logger,
    });
    // The member reads its whole state as it starts: every record is checked first.
    const schema = await openCheckedAtStart({
      open: openSchema,
      dbPath: layout.dbPath,
      dir: layout.snapDir,
      logger: opts.logger,
      clusterId: boot.clusterId,
      memberId: boot.memberId,
      snapshot: boot.snapshot,
      initialPeerUrls: [...cfg.initialCluster].filter(([name]) => name !== cfg.name).flatMap(([, urls]) => urls),
      tls: peerTransportTls(cfg),
      answerTimeoutMs: requestTimeoutMsOf(cfg),
      rounds: startRepairRounds,
    });
    const s = new EtcdServer(opts, layout, boot, schema);
    await s.run(boot);
    if (cfg.experimentalInitialCorruptCheck) {
      const inconsistent = await checkInitialHashKv(s.corruptCheckHost());
      if (inconsistent !== undefined) {
        await s.stop();
        throw new ConfigError(inconsistent);
      }
    }
    return s;
  }

  private async run(boot: BootState): Promise<void> {
    // Peers: those the backend knows (a restart), or those the cluster reported (a join);
    // a new cluster learns them as its bootstrap conf changes apply.
    for (const m of this.cluster.members.values()) {
      if (m.id !== this.memberId) this.transport.addPeer(m.id, m.peerUrls);
    }
    for (const m of boot.remotes) {
      if (m.ID !== this.memberId && m.peerURLs.length > 0 && !this.transport.hasPeer(m.ID)) this.transport.addPeer(m.ID, m.peerURLs);
    }
    await this.transport.listen(this.cfg.listenPeerUrls);
    this.logger.info('starting member', {
      'local-member-id': idToHex(this.memberId),
      'cluster-id': idToHex(this.cluster.clusterId),
      'initial-cluster-state': boot.kind,
    });
    this.raft.start();
    // A one-voter cluster elects itself at once instead of waiting an election timeout.
    if (this.cfg.initialElectionTickAdvance) {
      const ticks = electionTicks(this.cfg) - 1;
      for (let i = 0; i < ticks; i++) this.raft.tick();
    }
    if (boot.promoteSelf) void this.promoteSelfWhenReady();
    this.leaseTimer = setInterval(() => this.leaseLoop(), leaseLoopMs);
    this.compactor?.run();
    if (this.cfg.experimentalCorruptCheckTimeMs > 0) {
      this.everyOnLeader(this.cfg.experimentalCorruptCheckTimeMs, 'failed to check hash KV', () => checkHashKv(this.corruptCheckHost()));
    }
    if (this.cfg.experimentalRevisionHashCheckTimeMs > 0) {
      this.everyOnLeader(this.cfg.experimentalRevisionHashCheckTimeMs, 'failed to compare revision hashes', () => checkRevisionDigests(this.revisionCheckHost()));
    }
    await this.snapshots.purgeStale(this.snapshotIndex);
    void this.publish();
  }

  /**
   * Asks raft for a read index. Without a leader raft drops the request; the
   * round is reissued when a leader is elected or on its retry timer, and
   * fails with Timeout as etcd's read loop does.
   */
  private issueReadIndex(ctx: Uint8Array): void {
    try {
      this.raft.with((n) => n.readIndex(ctx));
    } catch (e) {
      if (isRaftError(e) && e.code === RaftErrorCode.ProposalDropped) return;
      throw e;
    }
  }

  // ---------------------------------------------------------------- ApplyEnv

  get kv(): KvStore {
    return this.kvRef;
  }

  get schema(): Schema {
    return this.schemaRef;
  }

  get alarms(): AlarmSet {
    return this.alarmsRef;
  }

  quotaAvailable(costBytes: number): boolean {
    return this.quota.available(costBytes);
  }

  saveMember(id: bigint): void {
    const m = this.cluster.members.get(id);
    if (m !== undefined) new MembershipStorage(this.schemaRef).putMember(memberToRecord(m));
  }

  setClusterVersion(version: string): void {
    this.cluster.version = version;
    this.schemaRef.setClusterVersion(version);
  }

  // ---------------------------------------------------------------- state

  isLeader(): boolean {
    return this.leaderId === this.memberId && this.leaderId !== 0n;
  }

  isLearner(): boolean {
    return this.cluster.members.get(this.memberId)?.isLearner ?? false;
  }

  /** etcd's request timeout: 5 s plus two election timeouts. */
  requestTimeoutMs(): number {
    return requestTimeoutMsOf(this.cfg);
  }

  /** A response header for this member: cluster, member, revision (current if not given), term. */
  header(revision?: number): etcdserverpb.ResponseHeader {
    return etcdserverpb.ResponseHeader.create({
      clusterId: this.cluster.clusterId,
      memberId: this.memberId,
      revision: revision ?? this.kvRef.rev,
      raftTerm: this.appliedTerm,
    });
  }

  /**
   * Resolves once the member may serve clients: an entry it proposed after
   * the start (its published attributes) has applied, so the state it serves
   * from includes everything it applied, and so answered, before a crash —
   * the backend commits in batches, and the WAL replay that restores the rest
   * is done by then. Rejects if the member stops first. etcd's members serve
   * no client request before this either (ReadyNotify).
   */
  whenReady(): Promise<void> {
    return this.ready.promise;
  }

  /** Resolves (or rejects) when the member stops. */
  onDone(fn: (err: Error | undefined) => void): void {
    if (this.stopping) fn(this.stoppedErr);
    else this.doneHandlers.push(fn);
  }

  private onSoftState(s: SoftState): void {
    const changed = s.lead !== this.leaderId;
    const wasLeader = this.isLeader();
    this.leaderId = s.lead;
    if (changed) {
      if (s.lead !== 0n) this.leaderElectedMs = this.clock.nowMs();
      this.metrics.leaderChanges.inc();
      this.heartbeats.reset();
      this.logger.info(s.lead === 0n ? 'lost leader' : 'leader elected', { leader: idToHex(s.lead), term: this.term });
      this.reads.onLeaderChange();
      if (s.lead !== 0n) this.flushNoLeaderQueue();
      this.leaderChange.resolve();
      this.leaderChange = settleable();
    }
    this.leaseLeader.onSoftState(wasLeader);
    if (this.isLeader()) this.compactor?.resume();
    else this.compactor?.pause();
    this.metrics.hasLeader.set(s.lead === 0n ? 0 : 1);
    this.metrics.isLeader.set(s.raftState === StateType.StateLeader ? 1 : 0);
  }

  // ---------------------------------------------------------------- apply

  /** Raft's configuration as applied (the snapshot flow saves it with each snapshot). */
  get confState(): raftpb.ConfState {
    return this.applier.confState;
  }

  private applierHost(): EntryApplierHost {
    return {
      memberId: this.memberId,
      cluster: this.cluster,
      logger: this.logger,
      schema: () => this.schemaRef,
      applyConfChangeToRaft: (cc) => this.raft.rawNode.applyConfChange(cc),
      applyNormal: (e) => this.applyNormal(e),
      noteCommitted: (e) => this.noteCommitted(e),
      advanceApplied: (e) => this.advanceApplied(e),
      answer: (id, outcome) => this.waits.trigger(id, outcome),
      peers: {
        add: (id, urls) => this.transport.addPeer(id, urls),
        remove: (id) => this.transport.removePeer(id),
        update: (id, urls) => this.transport.updatePeer(id, urls),
      },
      removedSelf: () => {
        // As etcd, a moment later: a removed leader hands over (raft does that once the
        // others have the log) and the others learn the removal committed.
        this.logger.warn('the member has been permanently removed from the cluster');
        const timer = setTimeout(() => void this.stop(new ServerError('IDRemoved', 'the member has been permanently removed from the cluster')), removedStopDelayMs);
        this.onDone(() => clearTimeout(timer));
      },
      slowApply: () => this.metrics.slowApplies.inc(),
    };
  }

  private noteCommitted(e: raftpb.Entry): void {
    if (e.index > this.committedIndex) this.committedIndex = e.index;
    if (e.term > this.term) this.term = e.term;
  }

  private advanceApplied(e: raftpb.Entry): void {
    // Entries replayed after a restart or a snapshot install are below what is already applied.
    if (e.index <= this.appliedIndex) return;
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
    this.appliedWait.advance(e.index);
    this.metrics.proposalsApplied.inc();
  }

  private applyNormal(e: raftpb.Entry): void {
    if (e.data.length === 0) {
      // A new leader's first entry: from here on its lessor serves renewals.
      if (this.leaseLeader.onEmptyEntry(e.term)) {
        if (this.cluster.version === '') void this.proposeInternal({ case: 'clusterVersionSet', value: serverpb.ClusterVersionSetRequest.create({ version: clusterVersionDefault }) });
      }
      return;
    }
    const req = serverpb.InternalRaftRequest.decode(e.data);
    const outcome = applyRequest(this, req, e.index);
    if (!outcome.ok && outcome.error instanceof ServerError && outcome.error.code === 'NoSpace' && !this.alarmsRef.has(etcdserverpb.AlarmType.NOSPACE)) {
      // Applied past this member's quota: the member raises NOSPACE for itself, as etcd's does.
      this.logger.warn('message exceeded backend quota; raising alarm', { 'quota-size-bytes': this.quota.bytes });
      void this.proposeInternal({ case: 'alarm', value: noSpaceAlarm(this.memberId) });
    }
    const id = req.header?.ID ?? 0n;
    if (id !== 0n) this.waits.trigger(id, outcome);
  }

  private loadMembership(): void {
    const membership = new MembershipStorage(this.schemaRef);
    this.cluster.load(membership.members(), membership.removedIds(), this.schemaRef.clusterVersion() ?? '');
  }

  /** Installs a database received with a snapshot from the leader. */
  private async installSnapshot(snap: raftpb.Snapshot): Promise<void> {
    const md = snap.metadata;
    assert(md !== undefined, 'a snapshot has metadata');
    this.logger.info('installing snapshot database', { index: md.index, term: md.term });
    this.metrics.snapshotApplyInProgress.set(1);
    try {
      await this.installSnapshotDb(md);
    } finally {
      this.metrics.snapshotApplyInProgress.set(0);
    }
  }

  private async installSnapshotDb(md: raftpb.SnapshotMetadata): Promise<void> {
    const received = receivedDbPath(this.layout, md.index);
    await this.kvRef.compactionsDone();
    await this.closeBackendAnyway();
    installSnapshotFile(received, this.layout.dbPath);
    this.reopenBackend(md.confState);
    this.snapshotIndex = md.index;
    await this.snapshots.purgeStale(md.index);
    // A repair under way ends here: the leader's database replaces the corrupt one.
    if (this.repair !== undefined) this.endRepair(this.repair.lastApplied, this.repair.heldThrough);
  }

  /**
   * Opens the database now at the backend's path (a leader's snapshot or a
   * repair put it there) and rebuilds everything kept in memory from it.
   */
  private reopenBackend(confState: raftpb.ConfState | undefined): void {
    const schema = Schema.open({
      path: this.layout.dbPath,
      batchIntervalMs: this.cfg.backendBatchIntervalMs,
      batchOpsMax: this.cfg.backendBatchLimit,
      noSync: this.cfg.unsafeNoFsync,
      logger: this.logger,
    });
    this.schemaRef = schema;
    schema.backend.onCommit = this.metrics.observeCommit;
    this.quota.invalidate();
    this.leaseStorage = new LeaseStorage(schema);
    this.lessor.recover();
    this.kvRef = this.openKvStore(schema);
    this.watchable.restore(this.kvRef);
    this.alarmsRef = new AlarmSet(new AlarmStorage(schema), (set) => this.alarmsChanged(set));
    this.authStorage = new AuthStorage(schema);
    this.auth.recover();
    this.loadMembership();
    for (const m of this.cluster.members.values()) {
      if (m.id !== this.memberId) this.transport.addPeer(m.id, m.peerUrls);
    }
    const applied = schema.consistentIndex();
    this.applier.installed(schema, confState);
    this.appliedIndex = Math.max(this.appliedIndex, applied.index);
    this.appliedTerm = applied.term;
    this.appliedWait.advance(this.appliedIndex);
  }

  lastSnapshotIndex(): number {
    return this.snapshotIndex;
  }

  setLastSnapshotIndex(index: number): void {
    this.snapshotIndex = index;
  }

  /** The member's KV store over schema (at start, and again over a backend swapped in by a snapshot or a repair). */
  private openKvStore(schema: Schema): KvStore {
    return KvStore.open({
      schema,
      leases: this.leaseHooks(),
      compactionBatchLimit: this.cfg.experimentalCompactionBatchLimit,
      logger: this.logger,
      metrics: this.metrics.mvcc,
      onCorrupt: (e) => this.backendCorrupt(e, this.appliedIndex, 'compaction'),
    });
  }

  private leaseHooks(): { exists(id: bigint): boolean; attach(id: bigint, keys: readonly Uint8Array[]): void; detach(id: bigint, keys: readonly Uint8Array[]): void } {
    return {
      exists: (id) => this.lessor.lookup(id) !== undefined,
      attach: (id, keys) => this.lessor.attach(id, keys),
      detach: (id, keys) => this.lessor.detach(id, keys),
    };
  }

  private tokenProvider(): ReturnType<typeof newTokenProvider> | NopTokenProvider {
    return newTokenProvider(this.cfg.authToken, { clock: this.clock, simpleTtlMs: this.cfg.authTokenTtlSeconds * 1000, logger: this.logger });
  }

  // ---------------------------------------------------------------- proposals

  /**
   * Proposes a request through raft and resolves with its applied response.
   * Without a leader it waits (up to the request timeout) for one; when none
   * came, it fails as etcd's does (ProposalDeadline), not as a timeout.
   */
  async propose(request: serverpb.InternalRaftRequest['request'], ctx: RequestContext = {}): Promise<object> {
    if (this.stopping) throw new ServerError('Stopped');
    // Its answer would wait for an apply held until the repair ends.
    if (this.repair !== undefined) throw new ServerError('Corrupt');
    if (this.committedIndex - this.appliedIndex > applyLagMax) throw new ServerError('TooManyRequests');
    const id = this.idGen.next();
    const req = serverpb.InternalRaftRequest.create({
      header: serverpb.RequestHeader.create({ ID: id, username: ctx.user?.username ?? '', authRevision: ctx.user?.revision ?? 0 }),
      request,
    });
    // Kept in the raft log until a snapshot: apart from the encodings that pass (encodeKept).
    const data = encodeKept(serverpb.InternalRaftRequest, req);
    // --max-request-bytes bounds what etcd 3.4 proposes through its v3 path; what it proposes through
    // the v2 one (its attributes, the cluster version, the health check's round) is not bounded.
    const v2Path = request === undefined || request.case === 'memberAttributesSet' || request.case === 'clusterVersionSet';
    if (!v2Path && data.length > this.cfg.maxRequestBytes) throw new ServerError('RequestTooLarge');
    const wait = this.waits.register(id);
    if (wait === undefined) throw new ServerError('TooManyRequests');
    this.metrics.proposalsPending.inc();
    const started = this.clock.nowMs();
    let inRaft = false;
    const timer = setTimeout(() => {
      this.waits.fail(id, new ServerError(!inRaft ? 'ProposalDeadline' : this.startedBeforeLeaderFailover(started) ? 'TimeoutDueToLeaderFail' : 'Timeout'));
    }, this.requestTimeoutMs());
    const onAbort = (): void => this.waits.fail(id, new ServerError('Canceled'));
    const offAbort = whenCallerGone(ctx, onAbort);
    this.submit(
      () => {
        this.raft.with((n) => n.propose(data));
        inRaft = true;
      },
      id,
      ctx.dropWithoutLeader === true,
    );
    try {
      const outcome = await wait;
      if (!outcome.ok) throw outcome.error;
      if (outcome.physical !== undefined) await outcome.physical;
      return outcome.response;
    } catch (e) {
      if (e instanceof ServerError && (e.code === 'Timeout' || e.code === 'TimeoutDueToLeaderFail' || e.code === 'ProposalDeadline')) this.metrics.proposalsFailed.inc();
      throw e;
    } finally {
      clearTimeout(timer);
      offAbort();
      this.metrics.proposalsPending.dec();
    }
  }

  /**
   * As etcd's parseProposeCtxErr: a proposal that timed out is blamed on a
   * leader failure when a new leader was elected after it started, and it
   * started at most two election timeouts before that (while the old leader
   * was failing). Merely losing the leader (a partitioned member) is a plain timeout.
   */
  private startedBeforeLeaderFailover(startedMs: number): boolean {
    const elected = this.leaderElectedMs;
    return startedMs < elected && startedMs > elected - 2 * this.cfg.electionMs;
  }

  /** Proposes a request the member makes itself (no user, no waiting for a client). */
  proposeInternal(request: serverpb.InternalRaftRequest['request'], ctx: RequestContext = {}): Promise<object | undefined> {
    return this.propose(request, ctx).catch((e: unknown) => {
      this.logger.debug('internal proposal failed', { request: request?.case, error: (e as Error).message });
      return undefined;
    });
  }

  /** Hands a proposal to raft; without a leader it waits in a queue until one is elected, unless it is to be dropped. */
  private submit(doPropose: () => void, id: bigint, dropWithoutLeader = false): void {
    const attempt = (): void => {
      if (!this.waits.has(id)) return;
      try {
        doPropose();
      } catch (e) {
        if (isRaftError(e) && e.code === RaftErrorCode.ProposalDropped && !dropWithoutLeader) {
          // No leader (or a transfer in progress): try again when a leader is known.
          this.noLeaderQueue.push(attempt);
          return;
        }
        this.waits.fail(id, e);
      }
    };
    attempt();
  }

  private flushNoLeaderQueue(): void {
    const q = this.noLeaderQueue;
    this.noLeaderQueue = [];
    for (const attempt of q) attempt();
  }

  // ---------------------------------------------------------------- KV

  /** A Range: linearizable unless the request asks for a serializable read. */
  async range(r: etcdserverpb.RangeRequest): Promise<etcdserverpb.RangeResponse> {
    if (!r.serializable) await this.linearizableRead();
    this.refuseIfCorrupt();
    const resp = await this.readingBackend(() => rangeRequest(this.kvRef, r));
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  /**
   * A Range as its encoded RangeResponse, what the gRPC service sends: the
   * kvs go out as the backend holds them, and a large range is read in
   * slices between other work (mvcc's rangeEncoded). A request that filters
   * by revision or sorts by another target is encoded from range's answer.
   */
  async rangeBytes(r: etcdserverpb.RangeRequest, user?: RequestContext['user']): Promise<Uint8Array> {
    if (!r.serializable) await this.linearizableRead();
    this.refuseIfCorrupt();
    let out: Uint8Array;
    try {
      out = await this.serialized(user, () => this.readingBackend(() => this.onCurrentStore((kv) => {
        const out = rangeEncoded(kv, r, (rev) => this.header(rev));
        if (out !== undefined) return out;
        const resp = rangeRequest(kv, r);
        resp.header = this.header(resp.header?.revision);
        return etcdserverpb.RangeResponse.encode(resp);
      })));
    } catch (e) {
      // The store closed under a read in slices because the member is stopping.
      if (this.stopping && !isKvError(e) && !(e instanceof ServerError) && !(e instanceof AuthError)) throw new ServerError('Stopped');
      throw e;
    }
    return out;
  }

  /**
   * fn on the current store; again on the new one when a snapshot replaced
   * the store while fn ran between turns of the event loop (the closed store
   * then fails it with an error other than a KvError).
   */
  private async onCurrentStore<T>(fn: (kv: KvStore) => T | Promise<T>): Promise<T> {
    for (;;) {
      const kv = this.kvRef;
      try {
        return await fn(kv);
      } catch (e) {
        if (this.kvRef !== kv && !isKvError(e)) continue;
        throw e;
      }
    }
  }

  async put(r: etcdserverpb.PutRequest, ctx: RequestContext = {}): Promise<etcdserverpb.PutResponse> {
    const resp = (await this.propose({ case: 'put', value: r }, ctx)) as etcdserverpb.PutResponse;
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  async deleteRange(r: etcdserverpb.DeleteRangeRequest, ctx: RequestContext = {}): Promise<etcdserverpb.DeleteRangeResponse> {
    const resp = (await this.propose({ case: 'deleteRange', value: r }, ctx)) as etcdserverpb.DeleteRangeResponse;
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  async txn(r: etcdserverpb.TxnRequest, ctx: RequestContext = {}): Promise<etcdserverpb.TxnResponse> {
    if (isTxnReadonly(r)) {
      // As etcd: a read-only txn is served locally after a linearizable read barrier.
      if (!isTxnSerializable(r)) await this.linearizableRead();
      this.refuseIfCorrupt();
      const resp = await this.serialized(ctx.user, () => this.readingBackend(() => txnRequest(this.kvRef, r)));
      resp.header = this.header(resp.header?.revision);
      return resp;
    }
    const resp = (await this.propose({ case: 'txn', value: r }, ctx)) as etcdserverpb.TxnResponse;
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  async compact(r: etcdserverpb.CompactionRequest, ctx: RequestContext = {}): Promise<etcdserverpb.CompactionResponse> {
    const resp = (await this.propose({ case: 'compaction', value: r }, ctx)) as etcdserverpb.CompactionResponse;
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  /** Waits until a local read reflects every write acknowledged before the call. */
  linearizableRead(): Promise<void> {
    if (this.stopping) return Promise.reject(new ServerError('Stopped'));
    return this.reads.read();
  }

  // ---------------------------------------------------------------- leases

  async leaseGrant(r: etcdserverpb.LeaseGrantRequest, ctx: RequestContext = {}): Promise<etcdserverpb.LeaseGrantResponse> {
    // As etcd: the proposer picks an id when the client did not (positive int64).
    const id = r.ID !== 0n ? r.ID : this.idGen.next() & ((1n << 63n) - 1n);
    const resp = (await this.propose({ case: 'leaseGrant', value: etcdserverpb.LeaseGrantRequest.create({ TTL: r.TTL, ID: id }) }, ctx)) as etcdserverpb.LeaseGrantResponse;
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  async leaseRevoke(r: etcdserverpb.LeaseRevokeRequest, ctx: RequestContext = {}): Promise<etcdserverpb.LeaseRevokeResponse> {
    const resp = (await this.propose({ case: 'leaseRevoke', value: r }, ctx)) as etcdserverpb.LeaseRevokeResponse;
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  /**
   * Every half second: the backend's size gauges, the leader's lease duties,
   * and proposals raft dropped during a leadership transfer that gave up
   * (the same leader goes on: no leader change flushes the queue then).
   */
  private leaseLoop(): void {
    if (this.stopping) return;
    this.metrics.dbTotalSize.set(this.schemaRef.backend.size());
    this.metrics.dbInUse.set(this.schemaRef.backend.sizeInUse());
    this.leaseLeader.tick();
    if (this.noLeaderQueue.length > 0 && this.leaderId !== 0n) this.flushNoLeaderQueue();
  }

  private newLeaseLeader(): LeaseLeader {
    return new LeaseLeader({
      lessor: this.lessor,
      electionMs: electionTimeoutMs(this.cfg),
      isLeader: () => this.isLeader(),
      term: () => this.term,
      linearizableRead: () => this.linearizableRead(),
      propose: (request) => this.propose(request),
      proposeInternal: (request) => this.proposeInternal(request, { dropWithoutLeader: true }),
      onExpired: () => this.metrics.leaseExpired.inc(),
    });
  }

  /** A keepalive: renews the lease on the leader (forwarding to it from a follower); 0 when the lease is gone. */
  leaseRenew(id: bigint): Promise<number> {
    const body = etcdserverpb.LeaseKeepAliveRequest.encode(etcdserverpb.LeaseKeepAliveRequest.create({ ID: id }));
    return this.onLeader('renewal', () => this.leaseLeader.renew(id), leaseRenewRpc, body, (b) => etcdserverpb.LeaseKeepAliveResponse.decode(b).TTL);
  }

  /**
   * A lease call the leader answers, until the request timeout: run by local
   * on this member while it leads (undefined: not answerable yet, asked
   * again), forwarded to the leader otherwise and its answer decoded.
   */
  private async onLeader<T>(what: string, local: () => Promise<T | undefined>, method: string, body: Uint8Array, decode: (answer: Uint8Array) => T): Promise<T> {
    const deadline = this.clock.nowMs() + this.requestTimeoutMs();
    for (;;) {
      if (this.stopping) throw new ServerError('Stopped');
      if (this.clock.nowMs() > deadline) throw new ServerError(this.leaderId === 0n ? 'NoLeader' : 'Timeout');
      if (this.isLeader()) {
        const v = await local();
        if (v !== undefined) return v;
      } else if (this.leaderId !== 0n) {
        try {
          const answer = await this.callLeader(method, body, deadline);
          if (answer !== undefined) return decode(answer);
          // A new leader (or none): ask again at once.
          continue;
        } catch (e) {
          this.logger.debug(`forwarding a lease ${what} failed`, { error: (e as Error).message });
        }
      }
      await sleep(leaseRetryMs);
    }
  }

  /**
   * Forwards a lease call to the current leader until the deadline;
   * undefined when the leader changed first. A dead leader's link holds a
   * call until it connects again, so without this a follower would wait out
   * the whole request timeout on the old leader while a new one serves; etcd's
   * forwarding fails at once against a dead leader and asks again.
   */
  private async callLeader(method: string, body: Uint8Array, deadlineMs: number): Promise<Uint8Array | undefined> {
    const call = this.transport.call(this.leaderId, method, body, Math.max(1, deadlineMs - this.clock.nowMs()));
    // Abandoned when the leader changes: its answer, or its failure, no longer matters.
    call.catch(() => undefined);
    return Promise.race([call, this.leaderChange.promise.then(() => undefined)]);
  }

  private async handleLeaseRenew(body: Uint8Array): Promise<Uint8Array> {
    const req = etcdserverpb.LeaseKeepAliveRequest.decode(body);
    if (!this.isLeader()) throw peerError('NotLeader');
    const ttl = await this.leaseRenew(req.ID);
    return etcdserverpb.LeaseKeepAliveResponse.encode(etcdserverpb.LeaseKeepAliveResponse.create({ ID: req.ID, TTL: ttl }));
  }

  /** LeaseTimeToLive, answered by the leader (whose lessor knows the remaining time). */
  leaseTimeToLive(r: etcdserverpb.LeaseTimeToLiveRequest): Promise<etcdserverpb.LeaseTimeToLiveResponse> {
    const local = async (): Promise<etcdserverpb.LeaseTimeToLiveResponse | undefined> => {
      const t = await this.leaseLeader.timeToLive(r.ID, r.keys);
      return t === undefined ? undefined : etcdserverpb.LeaseTimeToLiveResponse.create({ header: this.header(), ID: r.ID, TTL: t.ttlSeconds, grantedTTL: t.grantedTtlSeconds, keys: t.keys });
    };
    return this.onLeader('TimeToLive', local, leaseTimeToLiveRpc, etcdserverpb.LeaseTimeToLiveRequest.encode(r), (b) => {
      const resp = etcdserverpb.LeaseTimeToLiveResponse.decode(b);
      resp.header = this.header();
      return resp;
    });
  }

  private async handleLeaseTimeToLive(body: Uint8Array): Promise<Uint8Array> {
    if (!this.isLeader()) throw peerError('NotLeader');
    return etcdserverpb.LeaseTimeToLiveResponse.encode(await this.leaseTimeToLive(etcdserverpb.LeaseTimeToLiveRequest.decode(body)));
  }

  leaseLeases(): etcdserverpb.LeaseLeasesResponse {
    return etcdserverpb.LeaseLeasesResponse.create({
      header: this.header(),
      leases: this.lessor.leasesByExpiry().map((l) => etcdserverpb.LeaseStatus.create({ ID: l.id })),
    });
  }

  // ---------------------------------------------------------------- membership

  memberList(): Member[] {
    return this.cluster.memberList();
  }

  /**
   * Proposes a conf change and resolves with the members after it applied.
   * A client's change waits as etcd's configure does: until it applies or
   * the client goes away (its deadline, or a cancel), with no timeout of the
   * server's own, so a change that cannot commit (no quorum) fails on the
   * client's deadline. The member's own changes (no client) time out after
   * the request timeout.
   */
  async proposeConfChange(cc: raftpb.ConfChange, ctx?: RequestContext): Promise<Member[]> {
    if (this.stopping) throw new ServerError('Stopped');
    const id = this.idGen.next();
    cc.id = id;
    const wait = this.waits.register(id);
    if (wait === undefined) throw new ServerError('TooManyRequests');
    const timer = ctx === undefined ? setTimeout(() => this.waits.fail(id, new ServerError('Timeout')), this.requestTimeoutMs()) : undefined;
    const onAbort = (): void => this.waits.fail(id, new ServerError('Canceled'));
    const offAbort = whenCallerGone(ctx, onAbort);
    this.submit(() => this.raft.with((n) => n.proposeConfChange(cc)), id);
    try {
      const outcome = await wait;
      if (!outcome.ok) throw outcome.error;
      return (outcome.response as { members: Member[] }).members;
    } finally {
      clearTimeout(timer);
      offAbort();
    }
  }

  /** A member for MemberAdd: its id hashes its peer URLs and the time, with no cluster token (etcd's v3 MemberAdd passes none). */
  newMember(peerUrls: readonly string[], isLearner: boolean): Member {
    const id = computeMemberId(peerUrls, '', Math.floor(this.clock.wallMs() / 1000));
    return { id, name: '', peerUrls: [...peerUrls].sort(), clientUrls: [], isLearner };
  }

  /** Voters whose peer link has been up for peerHealthyAfterMs, this member included (etcd's numConnectedSince). */
  private votersConnected(): number {
    const since = this.clock.nowMs() - peerHealthyAfterMs;
    let n = 0;
    for (const id of this.cluster.voterIds()) {
      const up = this.transport.activeSince(id);
      if (id === this.memberId || (up !== undefined && up <= since)) n++;
    }
    return n;
  }

  /**
   * etcd's strict reconfiguration check of an add: a voter only while the
   * started voters stay a quorum, and anything only while this member has
   * been connected to every voter for a while.
   */
  checkMayAddMember(isLearner: boolean): void {
    if (!this.cfg.strictReconfigCheck) return;
    if (!isLearner && !this.cluster.isReadyToAddVoter()) throw new ServerError('MemberNotEnoughStarted');
    if (this.votersConnected() !== this.cluster.voterIds().length) throw new ServerError('Unhealthy');
  }

  /** etcd's strict reconfiguration check of a removal: the active voters left must still be a quorum. */
  checkMayRemoveMember(id: bigint): void {
    if (!this.cfg.strictReconfigCheck) return;
    if (this.cluster.members.get(id)?.isLearner === true) return;
    if (!this.cluster.isReadyToRemoveVoter(id)) throw new ServerError('MemberNotEnoughStarted');
    // A member that is down is not part of the active quorum: removing it is safe.
    if (id !== this.memberId && this.transport.activeSince(id) === undefined) return;
    const voters = this.cluster.voterIds().length;
    if (this.votersConnected() - 1 < 1 + Math.floor((voters - 1) / 2)) throw new ServerError('Unhealthy');
  }

  /**
   * etcd's check before proposing a promotion, on the leader: a member raft
   * tracks must be within 90% of the leader's log (etcd's readyPercent), and
   * the started voters with it must be a quorum. Whether the id is a learner
   * at all is checked when the change applies, as etcd does.
   */
  private checkMayPromote(id: bigint): void {
    const st = this.raft.rawNode.status();
    const pr = st.progress.get(id);
    if (pr !== undefined && pr.match < (st.progress.get(this.memberId)?.match ?? 0) * 0.9) throw new ServerError('LearnerNotReady');
    if (this.cfg.strictReconfigCheck && !this.cluster.isReadyToPromote()) throw new ServerError('MemberNotEnoughStarted');
  }

  /** Promotes a learner; runs on the leader (a follower forwards it there). ctx: the client's, when it asked this member. */
  async memberPromote(id: bigint, ctx?: RequestContext): Promise<Member[]> {
    if (!this.isLeader()) await this.waitLeader();
    if (!this.isLeader()) {
      const body = etcdserverpb.MemberPromoteRequest.encode(etcdserverpb.MemberPromoteRequest.create({ ID: id }));
      let resp: Uint8Array;
      try {
        resp = await this.transport.call(this.leaderId, memberPromoteRpc, body, this.requestTimeoutMs());
      } catch (e) {
        throw errorFromPeer(e);
      }
      return etcdserverpb.MemberPromoteResponse.decode(resp).members.map((m) => ({
        id: m.ID,
        name: m.name,
        peerUrls: [...m.peerURLs],
        clientUrls: [...m.clientURLs],
        isLearner: m.isLearner,
      }));
    }
    let members: Member[];
    try {
      this.checkMayPromote(id);
      const context = serverpb.MemberRecord.encode(serverpb.MemberRecord.create({ ID: id, isPromote: true }));
      members = await this.proposeConfChange(raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeAddNode, nodeId: id, context }), ctx);
    } catch (e) {
      this.metrics.learnerPromoteFailed.labels({ Reason: promoteFailureReason(e) }).inc();
      throw e;
    }
    this.metrics.learnerPromoteSucceed.inc();
    return members;
  }

  /**
   * As etcd's waitLeader before it forwards a promotion: without a leader,
   * waits for one to be elected, up to the request timeout ("no leader" then).
   */
  private async waitLeader(): Promise<void> {
    const deadline = this.clock.nowMs() + this.requestTimeoutMs();
    while (this.leaderId === 0n) {
      if (this.stopping) throw new ServerError('Stopped');
      const left = deadline - this.clock.nowMs();
      if (left <= 0) throw new ServerError('NoLeader');
      await Promise.race([this.leaderChange.promise, sleep(Math.min(left, this.cfg.electionMs))]);
    }
  }

  private async handleMemberPromote(body: Uint8Array): Promise<Uint8Array> {
    const req = etcdserverpb.MemberPromoteRequest.decode(body);
    try {
      const members = await this.memberPromote(req.ID);
      return etcdserverpb.MemberPromoteResponse.encode(etcdserverpb.MemberPromoteResponse.create({ members: members.map(toPbMember) }));
    } catch (e) {
      throw e instanceof ServerError ? peerError(e.code) : e;
    }
  }

  /**
   * The memberReplace rpc (wal-replace.ts): a member whose WAL was damaged,
   * calling as its new id, has the member it was removed and itself added
   * as a learner with the same peer URLs. Idempotent: the caller retries
   * after any failure, and may have stopped after a change applied.
   */
  private async handleMemberReplace(from: bigint, body: Uint8Array): Promise<Uint8Array> {
    const req = serverpb.MemberReplaceRequest.decode(body);
    const urls = [...req.peerUrls].sort();
    if (from !== req.newId || req.newId === 0n || urls.length === 0) throw new Error('member replace: the caller must be the new member and name its peer URLs');
    if (this.cluster.members.has(req.newId)) return this.encodeMembers();
    try {
      const old = this.cluster.members.get(req.oldId);
      if (old !== undefined) {
        if (!sameUrls(old.peerUrls, urls)) throw new Error(`member replace: ${idToHex(req.oldId)} has other peer URLs than ${urls.join(',')}`);
        // The member being replaced is the caller's former self, so it cannot be running: one that is (a caller
        // started with another member's URLs) is left alone. A link that has not noticed its end yet: retried.
        if (old.id !== this.memberId && this.transport.activeSince(old.id) !== undefined) {
          throw new Error(`member replace: ${idToHex(old.id)} is connected and running; it is not replaced`);
        }
        this.checkMayRemoveMember(old.id);
        this.logger.warn('removing a member whose WAL was damaged, at its request; it comes back as a learner under a new id', {
          'removed-member-id': idToHex(old.id),
          'new-member-id': idToHex(req.newId),
        });
        await this.proposeConfChange(raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeRemoveNode, nodeId: old.id }));
      }
      const m: Member = { id: req.newId, name: '', peerUrls: urls, clientUrls: [], isLearner: true };
      this.checkMayAddMember(true);
      await this.proposeConfChange(
        raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeAddLearnerNode, nodeId: m.id, context: serverpb.MemberRecord.encode(memberToRecord(m)) }),
      );
    } catch (e) {
      throw e instanceof ServerError ? peerError(e.code) : e;
    }
    return this.encodeMembers();
  }

  /** A member that replaced a damaged one (wal-replace.ts) asks the leader to promote it, until it is a voter. */
  private async promoteSelfWhenReady(): Promise<void> {
    while (!this.stopping) {
      const me = this.cluster.members.get(this.memberId);
      if (me !== undefined && !me.isLearner) return;
      if (me !== undefined && this.leaderId !== 0n) {
        try {
          await this.memberPromote(this.memberId);
          this.logger.info('promoted itself to a voting member, having replaced one whose WAL was damaged', { 'local-member-id': idToHex(this.memberId) });
          return;
        } catch (e) {
          this.logger.debug('self-promotion not done yet', { error: (e as Error).message });
        }
      }
      await sleep(promoteSelfRetryMs);
    }
  }

  /** Publishes this member's name and client URLs through raft, retrying until it applies. */
  private async publish(): Promise<void> {
    const req = serverpb.MemberAttributesSetRequest.create({
      memberId: this.memberId,
      name: this.cfg.name,
      clientUrls: this.cfg.advertiseClientUrls,
    });
    while (!this.stopping) {
      try {
        await this.propose({ case: 'memberAttributesSet', value: req });
        this.logger.info('published local member to cluster through raft', {
          'local-member-id': idToHex(this.memberId),
          'local-member-attributes': { name: this.cfg.name, clientUrls: this.cfg.advertiseClientUrls },
        });
        this.ready.resolve();
        return;
      } catch (e) {
        this.logger.debug('publish failed, retrying', { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, publishRetryMs).unref());
      }
    }
  }

  // ---------------------------------------------------------------- maintenance

  status(): etcdserverpb.StatusResponse {
    const errors: string[] = [];
    if (this.leaderId === 0n) errors.push('etcdserver: no leader');
    for (const a of this.alarmsRef.get()) {
      errors.push(`memberID:${a.memberID} alarm:${etcdserverpb.AlarmType_info.names[a.alarm] ?? a.alarm} `);
    }
    return etcdserverpb.StatusResponse.create({
      header: this.header(),
      version: serverVersion,
      dbSize: this.schemaRef.backend.size(),
      dbSizeInUse: this.schemaRef.backend.sizeInUse(),
      leader: this.leaderId,
      raftIndex: this.committedIndex,
      raftTerm: this.appliedTerm,
      raftAppliedIndex: this.appliedIndex,
      errors,
      isLearner: this.isLearner(),
    });
  }

  async alarm(r: etcdserverpb.AlarmRequest, ctx: RequestContext = {}): Promise<etcdserverpb.AlarmResponse> {
    const resp = (await this.propose({ case: 'alarm', value: r }, ctx)) as etcdserverpb.AlarmResponse;
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  async hashKv(r: etcdserverpb.HashKVRequest): Promise<etcdserverpb.HashKVResponse> {
    if (this.repair !== undefined) throw new ServerError('Corrupt');
    const resp = await this.readingBackend(() => this.onCurrentStore((kv) => hashKvRequest(kv, r)));
    resp.header = this.header(resp.header?.revision);
    return resp;
  }

  hash(): etcdserverpb.HashResponse {
    if (this.repair !== undefined) throw new ServerError('Corrupt');
    const startedMs = performance.now();
    const hash = this.schemaRef.hash();
    this.metrics.mvcc.hashSeconds.observe((performance.now() - startedMs) / 1000);
    return etcdserverpb.HashResponse.create({ header: this.header(), hash });
  }

  async defragment(): Promise<void> {
    if (this.repair !== undefined) throw new ServerError('Corrupt');
    this.logger.info('starting defragmentation');
    const startedMs = performance.now();
    this.metrics.defragInflight.set(1);
    try {
      await this.readingBackend(() => this.schemaRef.backend.defrag());
    } finally {
      this.metrics.defragInflight.set(0);
      this.metrics.defragSeconds.observe((performance.now() - startedMs) / 1000);
    }
    this.quota.invalidate();
    this.logger.info('finished defragmentation');
  }

  /**
   * Moves leadership to target; must run on the leader. giveUp, checked
   * while waiting, ends the wait early with Timeout.
   */
  /**
   * Transfers leadership to target (etcd's MoveLeader) and waits until the
   * target leads. A client's call waits as etcd's does, until the target
   * leads or the call is over (its deadline or cancel: TimeoutLeaderTransfer),
   * however long raft takes or retries; without a call, the wait ends at the
   * request timeout, or as soon as giveUp says so.
   */
  async moveLeader(target: bigint, until: { readonly call?: AbortSignal; readonly giveUp?: () => boolean } = {}): Promise<void> {
    if (!this.isLeader()) throw new ServerError('NotLeader');
    const m = this.cluster.members.get(target);
    if (m === undefined || m.isLearner) throw new ServerError('BadLeaderTransferee');
    if (target === this.memberId) return;
    const startedMs = this.clock.nowMs();
    this.logger.info('leadership transfer starting', { 'local-member-id': idToHex(this.memberId), 'current-leader-member-id': idToHex(this.leaderId), 'transferee-member-id': idToHex(target) });
    this.raft.with((n) => n.transferLeader(target));
    const deadline = until.call === undefined ? startedMs + this.requestTimeoutMs() : Infinity;
    while (this.leaderId !== target) {
      if (until.call?.aborted === true) throw new ServerError('TimeoutLeaderTransfer');
      if (this.stopping) throw new ServerError('Stopped');
      if (this.clock.nowMs() > deadline || until.giveUp?.() === true) throw new ServerError('Timeout');
      await new Promise((r) => setTimeout(r, this.cfg.heartbeatMs));
    }
    this.logger.info('leadership transfer finished', { 'local-member-id': idToHex(this.memberId), 'old-leader-member-id': idToHex(this.memberId), 'new-leader-member-id': idToHex(target), took: `${this.clock.nowMs() - startedMs}ms` });
  }

  /**
   * Before a graceful stop, hands leadership to the voter whose link has been
   * up longest, as etcd's Stop does: the others go on at once instead of
   * waiting out an election timeout, so a rolling restart costs no election
   * gap. A failure is logged and the stop goes on.
   */
  async transferLeadership(): Promise<void> {
    const local = idToHex(this.memberId);
    if (!this.isLeader()) {
      this.logger.info('skipped leadership transfer; local server is not leader', { 'local-member-id': local, 'current-leader-member-id': idToHex(this.leaderId) });
      return;
    }
    const voters = [...this.cluster.members.values()].filter((m) => !m.isLearner && m.id !== this.memberId);
    if (voters.length === 0) {
      this.logger.info('skipped leadership transfer for single voting member cluster', { 'local-member-id': local, 'current-leader-member-id': local });
      return;
    }
    let transferee: bigint | undefined;
    let since = Infinity;
    for (const m of voters) {
      const t = this.transport.activeSince(m.id);
      if (t !== undefined && t < since) [transferee, since] = [m.id, t];
    }
    try {
      if (transferee === undefined) throw new ServerError('Unhealthy');
      const target = transferee;
      // A transferee whose link went down (stopping beside this member, or dead) cannot take
      // over: giving up then spares a cluster stopped all at once the request timeout.
      await this.moveLeader(target, { giveUp: () => this.transport.activeSince(target) === undefined });
    } catch (e) {
      this.logger.warn('leadership transfer failed', { 'local-member-id': local, error: (e as Error).message });
    }
  }

  /** The backend for the Snapshot RPC, as a stream of one consistent view; the caller reads it to its end or stops it. */
  snapshotDb(): Promise<SizedDbExport> {
    if (this.repair !== undefined) return Promise.reject(new ServerError('Corrupt'));
    return this.snapshots.exportClientDb();
  }

  // ---------------------------------------------------------------- peers

  private newTransport(boot: BootState): Transport {
    const tls = peerTransportTls(this.cfg);
    return new Transport({
      ...(tls !== undefined ? { tls } : {}),
      clock: this.clock,
      localId: this.memberId,
      clusterId: boot.clusterId,
      logger: this.logger.with({ component: 'transport' }),
      metrics: this.registry,
      raft: {
        process: (m) => this.raft.step(m),
        isRemoved: (id) => this.cluster.removed.has(id),
        reportUnreachable: (id) => this.raft.with((n) => n.reportUnreachable(id)),
        reportSnapshot: (id, ok) => this.raft.with((n) => n.reportSnapshot(id, ok)),
      },
      snapshots: {
        open: (m) => this.snapshots.openForPeer(m),
        receive: (m, body) => this.snapshots.receiveFromLeader(m, body),
        serveDb: (from, minIndex) => this.serveDbForRepair(from, minIndex),
      },
      rpcHandlers: {
        [membersRpcMethod]: () => Promise.resolve(this.encodeMembers()),
        [leaseRenewRpc]: (_from, body) => this.handleLeaseRenew(body),
        [leaseTimeToLiveRpc]: (_from, body) => this.handleLeaseTimeToLive(body),
        [memberPromoteRpc]: (_from, body) => this.handleMemberPromote(body),
        [memberReplaceRpc]: (from, body) => this.handleMemberReplace(from, body),
        [hashKvRpc]: async (_from, body) => etcdserverpb.HashKVResponse.encode(await this.hashKv(etcdserverpb.HashKVRequest.decode(body))),
        [revisionDigestRpc]: (_from, body) => Promise.resolve(encodeDigestReply(answerDigest(this.kvRef.revisionHashes, decodeDigestRequest(body)))),
      },
      onRejected: (_peer, err) => {
        if (err.code === 'member-removed') void this.stop(new ServerError('IDRemoved', 'the member has been permanently removed from the cluster'));
      },
    });
  }

  private encodeMembers(): Uint8Array {
    return etcdserverpb.MemberListResponse.encode(
      etcdserverpb.MemberListResponse.create({
        header: this.header(),
        members: this.cluster.memberList().map(toPbMember),
      }),
    );
  }

  // ---------------------------------------------------------------- stop

  private fatal(err: unknown): void {
    this.logger.error('raft loop failed; stopping the member', { error: err instanceof Error ? err.message : String(err) });
    void this.stop(err instanceof Error ? err : new Error(String(err)));
  }

  /** Stops serving: fails waiters, stops raft and the transport, flushes the backend. */
  async stop(err?: Error): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stoppedErr = err;
    this.ready.reject(err ?? new ServerError('Stopped'));
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    this.compactor?.stop();
    for (const t of this.leaderTimers) clearTimeout(t);
    this.leaderTimers.clear();
    const stopped = new ServerError('Stopped');
    this.reads.stop(stopped);
    this.waits.failAll(stopped);
    this.appliedWait.failAll(stopped);
    this.noLeaderQueue = [];
    await this.raft.stop();
    await this.transport.stop();
    this.watchable.close();
    await this.kvRef.compactionsDone();
    try {
      await this.schemaRef.backend.forceCommit();
    } finally {
      await this.schemaRef.backend.close();
      await this.raft.wal.close();
      await this.bcrypt.close();
    }
    for (const fn of this.doneHandlers.splice(0)) fn(err);
  }
}

export function toPbMember(m: Member): etcdserverpb.Member {
  return etcdserverpb.Member.create({
    ID: m.id,
    name: m.name,
    peerURLs: m.peerUrls,
    clientURLs: m.clientUrls,
    isLearner: m.isLearner,
  });
}

/** etcd's own words for the errors a promotion fails with, as its learner_promote_failures labels them. */
const promoteFailureReasons: Partial<Record<ServerErrorCode, string>> = {
  MemberNotFound: 'membership: ID not found',
  MemberNotLearner: 'membership: can only promote a learner member',
  IDRemoved: 'membership: ID removed',
  LearnerNotReady: 'etcdserver: can only promote a learner member which is in sync with leader',
  MemberNotEnoughStarted: 'etcdserver: re-configuration failed due to not enough started members',
  Timeout: 'etcdserver: request timed out',
  TimeoutDueToLeaderFail: 'etcdserver: request timed out, possibly due to previous leader failure',
  Stopped: 'etcdserver: server stopped',
  TooManyRequests: 'etcdserver: too many requests',
};

function promoteFailureReason(e: unknown): string {
  if (e instanceof ServerError) return promoteFailureReasons[e.code] ?? e.message;
  return e instanceof Error ? e.message : String(e);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Errors cross the peer RPC as their code, so the forwarding member can rethrow them typed. */
function peerError(code: ServerErrorCode): Error {
  return new Error(`etcd-ts-error:${code}`);
}

function errorFromPeer(e: unknown): Error {
  const m = /etcd-ts-error:([A-Za-z]+)/.exec(e instanceof Error ? e.message : String(e));
  const code = m?.[1];
  if (code !== undefined && (serverErrorCodes as readonly string[]).includes(code)) return new ServerError(code as ServerErrorCode);
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * A txn whose every op is a range: served locally, as etcd serves it. An op
 * that is a nested txn (even one of ranges only) or empty makes it a write
 * txn, proposed, as in etcd (whose applied txns skip the token's
 * revision check a local read makes).
 */
function isTxnReadonly(r: etcdserverpb.TxnRequest): boolean {
  return [...r.success, ...r.failure].every((op) => op.request?.case === 'requestRange');
}

function isTxnSerializable(r: etcdserverpb.TxnRequest): boolean {
  for (const op of [...r.success, ...r.failure]) {
    const q = op.request;
    if (q === undefined) continue;
    if (q.case === 'requestRange' && !q.value.serializable) return false;
    if (q.case === 'requestTxn' && !isTxnSerializable(q.value)) return false;
  }
  return true;
}

/**
 * A restart after a crash that happened between persisting a received
 * snapshot and installing its database: install it now (as etcd's
 * recoverSnapshotBackend does), before the backend is opened.
 */
async function installReceivedDb(layout: DataLayout, boot: BootState, logger: Logger): Promise<void> {
  const index = boot.snapshot?.metadata?.index ?? 0;
  if (boot.kind !== 'restart' || index === 0) return;
  const received = receivedDbPath(layout, index);
  try {
    const schema = Schema.open({ path: layout.dbPath, logger });
    const consistent = schema.consistentIndex().index;
    await schema.backend.close();
    if (consistent >= index) {
      await rm(received, { force: true });
      return;
    }
  } catch {
    // No usable backend yet: the received database is all there is.
  }
  logger.info('installing a received snapshot database left by a crash', { index });
  installSnapshotFile(received, layout.dbPath);
}

/** etcd's ReqTimeout: 5 s plus two election timeouts. */
function requestTimeoutMsOf(cfg: ServerConfig): number {
  return 5000 + 2 * cfg.electionMs;
}

/**
 * Rounds over the peers' URLs a member whose backend is corrupt at start
 * makes before it gives up (about 2 minutes when none answers at once).
 */
const startRepairRounds = 30;

/** A promise with its settle functions; an unawaited rejection is not an error. */
function settleable(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
