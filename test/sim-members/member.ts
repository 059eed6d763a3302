/**
 * One simulated member: the production pieces of a member, wired as
 * src/server/server.ts wires them, on the simulation's loop, disk and
 * network. Raft (RawNode) driven by the production RaftNode loop; its WAL and
 * snap files on the fake disk; the backend's batching over an in-memory
 * engine; mvcc (KvStore + WatchableStore); every committed entry applied by
 * the production apply dispatch (applyRequest) in one backend write scope
 * with its applied index, as the server does; compactions through raft,
 * their removal in small batches on the member's timers; raft snapshots:
 * every few entries the production log compaction (snapshot-flow.ts) saves
 * one and compacts the log and the WAL, a leader sends its applied state
 * and database to a follower too far behind (sim.ts), which installs it as
 * the server does. Leases: the production leader half (lease-leader.ts)
 * promotes the lessor, revokes expired leases through raft every 500 ms and
 * answers keep-alives; followers' keep-alives are forwarded by sim.ts. Not
 * included: the peer transport and gRPC (messages go through the fake
 * network as objects).
 */
import { SeededRand, assert, nopLogger, type Logger, type Rand } from '../../src/base/index.js';
import { AuthStore } from '../../src/auth/index.js';
import { Backend, bytesToKey } from '../../src/backend/index.js';
import { Lessor } from '../../src/lease/index.js';
import { KvStore, WatchableStore } from '../../src/mvcc/index.js';
import { etcdserverpb, raftpb, serverpb } from '../../src/pb/index.js';
import { MemoryStorage, RawNode, RaftErrorCode, StateType, isRaftError, type Peer, type SoftState } from '../../src/raft/index.js';
import { AlarmStorage, AuthStorage, LeaseStorage, MembershipStorage, Schema, currentAuthStorage } from '../../src/schema/index.js';
import { allBucketNames } from '../../src/schema/schema.js';
import { AlarmSet } from '../../src/server/alarms.js';
import { EntryApplier } from '../../src/server/apply-entries.js';
import { applyRequest, type ApplyEnv, type ApplyOutcome } from '../../src/server/apply.js';
import { IdGenerator } from '../../src/server/id-gen.js';
import { LeaseLeader } from '../../src/server/lease-leader.js';
import { RaftCluster, memberToRecord } from '../../src/server/membership.js';
import { RaftNode } from '../../src/server/raft-node.js';
import { PeerSnapshotDecoder } from '../../src/server/snapshot-peer.js';
import { LogCompaction, type SnapshotHost } from '../../src/server/snapshot-flow.js';
import { AppliedIndexWait } from '../../src/server/wait.js';
import { Snapshotter, Wal, entriesAfterSnapshot, type Preallocate } from '../../src/wal/index.js';
import { FakeFs, type FakeDisk } from './fake-fs.js';
import type { Proc } from './loop.js';
import { MemDb, MemEngine } from './mem-engine.js';

export const electionTicks = 10;
export const heartbeatMs = 100;
/** The lessor's minimum TTL, in seconds (the server's would be 2 for these ticks too: 1.5 s rounded up). */
export const minLeaseTtlSeconds = 2;
const leaseLoopMs = 500;
const internalProposalTimeoutMs = 3_000;
const walDir = '/data/member/wal';
const snapDir = '/data/member/snap';
const dbPath = '/data/member/db';

/** What a member keeps across crashes. */
export interface MemberDisk {
  readonly fs: FakeDisk;
  /** The backend; replaced whole (atomically, as a rename) when a leader's snapshot is installed. */
  db: MemDb;
  /** Backend copies by name: those a leader sent (receivedDbName), durable once received. */
  readonly copies: Map<string, MemDb>;
  /** Torn WAL tails that a restart cut off (evidence that crashes tore writes). */
  tornTails: number;
  /** Raft snapshots this member saved for log compaction, and leaders' snapshots it installed. */
  snapshotsTaken: number;
  snapshotsInstalled: number;
}

/** Counts the WAL's torn-tail repairs; logs nothing. */
function walLogger(disk: MemberDisk): Logger {
  const l: Logger = {
    ...nopLogger,
    warn: (msg) => {
      if (msg.startsWith('wal: cut off a torn tail')) disk.tornTails++;
    },
    with: () => l,
  };
  return l;
}

/** Where a received snapshot's database is kept until it is installed. */
export function receivedDbName(index: number): string {
  return `received-${index}`;
}

const publishTimeoutMs = 1_000;
/** As the server: a removed member stops a moment after its removal applied. */
const removedStopDelayMs = 1_000;
const publishRetryMs = 200;

export interface MemberBoot {
  readonly proc: Proc;
  readonly disk: MemberDisk;
  readonly rand: Rand;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** Every member of the initial cluster (to bootstrap raft on a new disk). */
  readonly initial: RaftCluster;
  /** Joins a running cluster (added by a conf change): a new disk starts raft with no configuration, learned from the leader. */
  readonly join?: boolean;
  readonly send: (from: SimMember, msgs: raftpb.Message[]) => void;
  readonly segmentBytes: number;
  readonly preallocate: Preallocate;
  /** The fake fs syncs small WAL writes on the calling thread (FakeFs.fdatasyncSync). */
  readonly syncInline: boolean;
  /** Revisions a compaction removes per backend batch (small: a crash lands in the middle of one). */
  readonly compactionBatchLimit: number;
  /** Log compaction: a snapshot every snapshotCount entries, keeping snapshotCatchUpEntries, maxSnapshots snap files. */
  readonly snapshots: { readonly snapshotCount: number; readonly snapshotCatchUpEntries: number; readonly maxSnapshots: number };
}

/** Why a request failed: the member could not be sure it did not (or did) happen. */
export class SimRequestError extends Error {}

export class SimMember implements ApplyEnv, SnapshotHost {
  readonly memberId: bigint;
  readonly logger = nopLogger;
  readonly cluster: RaftCluster;
  readonly lessor: Lessor;
  readonly leaseLeader: LeaseLeader;
  readonly auth: AuthStore;
  alarms: AlarmSet;
  kv: KvStore;
  readonly watchable: WatchableStore;
  readonly raft: RaftNode;
  readonly appliedWait: AppliedIndexWait;
  schema: Schema;
  private leaseStorage: LeaseStorage;
  private authStorage: AuthStorage;
  private readonly idGen: IdGenerator;
  private readonly applier: EntryApplier;
  appliedIndex: number;
  appliedTerm: number;
  private snapshotIndex: number;
  private readonly logCompaction: LogCompaction;
  get cfg(): MemberBoot['snapshots'] {
    return this.boot.snapshots;
  }
  leaderId = 0n;
  term = 0;
  private readonly waits = new Map<bigint, (o: ApplyOutcome) => void>();
  private readonly reads = new Map<string, (index: number) => void>();
  private readSeq = 0;
  private stopped = false;
  /** The commit index in the WAL at start: clients are served once it is applied (below). */
  private published = false;

  private constructor(
    readonly boot: MemberBoot,
    schema: Schema,
    rawNode: RawNode,
    storage: MemoryStorage,
    wal: Wal,
    snapshotter: Snapshotter,
    snapshot: raftpb.Snapshot | undefined,
  ) {
    const proc = boot.proc;
    this.memberId = boot.memberId;
    this.schema = schema;
    this.cluster = new RaftCluster('sim', boot.clusterId);
    this.leaseStorage = new LeaseStorage(schema);
    this.authStorage = new AuthStorage(schema);
    this.lessor = new Lessor({
      clock: proc,
      minTtlSeconds: minLeaseTtlSeconds,
      store: { put: (r) => this.leaseStorage.put(r), delete: (id) => this.leaseStorage.delete(id), loadAll: () => this.leaseStorage.loadAll() },
    });
    this.kv = this.openKv();
    this.lessor.setRangeDeleter({ deleteKeys: (keys) => this.kv.deleteKeys(keys) });
    this.watchable = new WatchableStore(this.kv, { timers: proc });
    this.alarms = new AlarmSet(new AlarmStorage(schema));
    this.auth = new AuthStore({
      backend: currentAuthStorage(() => this.authStorage),
    });
    this.loadMembership();
    const applied = schema.consistentIndex();
    this.appliedIndex = applied.index;
    this.appliedTerm = applied.term;
    this.applier = new EntryApplier(
      {
        memberId: this.memberId,
        cluster: this.cluster,
        logger: nopLogger,
        schema: () => this.schema,
        applyConfChangeToRaft: (cc) => {
          const cs = this.raft.rawNode.applyConfChange(cc);
          proc.loop.trace(`m ${this.memberId.toString(16)} conf change ${cc.type} ${cc.nodeId.toString(16)} voters ${cs.voters.map((v) => v.toString(16)).join(',')}`);
          return cs;
        },
        applyNormal: (e) => this.applyNormal(e),
        noteCommitted: () => undefined,
        advanceApplied: (e) => this.advanceApplied(e),
        answer: (id, outcome) => this.answer(id, outcome),
        // Messages go by member id through the simulation's network: no links to keep.
        peers: { add: () => undefined, remove: () => undefined, update: () => undefined },
        // As the server: it stops a moment after its own removal applied.
        removedSelf: () => void proc.after(removedStopDelayMs, () => this.stop()),
      },
      applied.index,
      schema.confState() ?? snapshot?.metadata?.confState ?? raftpb.ConfState.create(),
    );
    this.snapshotIndex = snapshot?.metadata?.index ?? 0;
    this.logCompaction = new LogCompaction(this);
    this.appliedWait = new AppliedIndexWait(this.appliedIndex);
    this.leaseLeader = new LeaseLeader({
      lessor: this.lessor,
      electionMs: electionTicks * heartbeatMs,
      isLeader: () => this.isLeader(),
      term: () => this.term,
      linearizableRead: () => this.linearizableRead(internalProposalTimeoutMs),
      propose: (request) => this.propose(request, internalProposalTimeoutMs),
      proposeInternal: (request) => this.propose(request, internalProposalTimeoutMs).catch(() => undefined),
    });
    proc.every(leaseLoopMs, () => {
      if (!this.stopped) this.leaseLeader.tick();
    });
    this.idGen = new IdGenerator(this.memberId, proc.wallMs());
    this.raft = new RaftNode({
      rawNode,
      storage,
      wal,
      snapshotter,
      heartbeatMs,
      logger: nopLogger,
      scheduler: proc,
      app: {
        onSoftState: (s) => this.onSoftState(s),
        onHardState: (hs) => {
          this.term = hs.term;
        },
        send: (msgs) => boot.send(this, msgs),
        applySnapshot: (snap) => this.installSnapshot(snap),
        applyEntries: (entries) => this.applier.applyEntries(entries),
        onReadState: (ctx, index) => {
          const key = Buffer.from(ctx).toString('hex');
          const done = this.reads.get(key);
          this.reads.delete(key);
          done?.(index);
        },
        afterAdvance: () => this.logCompaction.maybeSnapshot(),
        onFatal: (err) => {
          // A crash inside a sync (FakeFs.syncNow) unwinds through the raft loop of a dead process.
          if (!proc.dead) proc.loop.fail(err);
        },
      },
    });
  }

  /** Opens (restart) or creates (new disk) the member on its disk, and starts raft. */
  static async start(boot: MemberBoot): Promise<SimMember> {
    const fs = new FakeFs(boot.disk.fs, boot.proc, boot.rand, boot.syncInline);
    const walOpts = { fs, segmentBytes: boot.segmentBytes, preallocate: boot.preallocate, logger: walLogger(boot.disk), nowMs: () => boot.proc.nowMs() };
    const snapshotter = new Snapshotter(snapDir, { fs });
    const storage = new MemoryStorage();
    let wal: Wal;
    let peers: Peer[] | undefined;
    let snapshot: raftpb.Snapshot | undefined;
    if (Wal.exists(walDir, fs)) {
      const r = await Wal.open(walDir, walOpts);
      snapshot = await snapshotter.loadNewestAvailable(r.snapshots);
      if (snapshot !== undefined) storage.applySnapshot(snapshot);
      storage.setHardState(r.hardState);
      const md = snapshot?.metadata;
      const entries = entriesAfterSnapshot(r, { index: md?.index ?? 0, term: md?.term ?? 0 });
      if (entries.length > 0) storage.append(entries);
      wal = r.wal;
    } else {
      const metadata = serverpb.WalMetadata.encode(serverpb.WalMetadata.create({ memberId: boot.memberId, clusterId: boot.clusterId }));
      wal = await Wal.create(walDir, metadata, walOpts);
      if (boot.join !== true) peers = boot.initial.memberList().map((m) => ({ id: m.id, context: serverpb.MemberRecord.encode(memberToRecord(m)) }));
    }
    let schema = openSchema(boot);
    const snapIndex = snapshot?.metadata?.index ?? 0;
    if (schema.consistentIndex().index < snapIndex) {
      // A crash between saving a received snapshot and installing its database: install it now, as the server does.
      await schema.backend.close();
      installReceived(boot.disk, snapIndex);
      schema = openSchema(boot);
    }
    const rawNode = new RawNode({
      id: boot.memberId,
      electionTicks,
      heartbeatTicks: 1,
      storage,
      msgAppBytesMax: 64 * 1024,
      inflightMsgsMax: 256,
      uncommittedBytesMax: 1 << 30,
      checkQuorum: true,
      preVote: true,
      rand: new SeededRand(boot.rand.uint32()),
      logger: nopLogger,
    });
    if (peers !== undefined) rawNode.bootstrap(peers);
    const m = new SimMember(boot, schema, rawNode, storage, wal, snapshotter, snapshot);
    m.raft.start();
    m.publish();
    return m;
  }

  private openKv(): KvStore {
    return KvStore.open({
      schema: this.schema,
      timers: this.boot.proc,
      compactionBatchLimit: this.boot.compactionBatchLimit,
      // Nothing damages the simulated backend: a compaction that finds records missing is a bug.
      onCorrupt: (e) => this.boot.proc.loop.fail(e),
      leases: {
        exists: (id) => this.lessor.lookup(id) !== undefined,
        attach: (id, keys) => this.lessor.attach(id, keys),
        detach: (id, keys) => this.lessor.detach(id, keys),
      },
    });
  }

  private loadMembership(): void {
    const membership = new MembershipStorage(this.schema);
    this.cluster.load(membership.members(), membership.removedIds(), this.schema.clusterVersion() ?? '');
  }

  /** Raft's configuration as applied (the log compaction saves it with each snapshot). */
  get confState(): raftpb.ConfState {
    return this.applier.confState;
  }

  // ---- raft snapshots (as EtcdServer.installSnapshotDb)

  lastSnapshotIndex(): number {
    return this.snapshotIndex;
  }

  setLastSnapshotIndex(index: number): void {
    this.snapshotIndex = index;
    this.boot.disk.snapshotsTaken++;
  }

  /** Follower: keeps the database a leader sent with its MsgSnap, durably, before raft sees the message. */
  /** The database stream that came with a leader's MsgSnap, decoded as the server's receiver decodes it; durable once whole. */
  receiveSnapshotDb(index: number, stream: Uint8Array): void {
    const db = new MemDb();
    const decoder = new PeerSnapshotDecoder();
    let bucket: string | undefined;
    for (const r of decoder.push(stream)) {
      if ('bucket' in r) bucket = r.bucket;
      else db.bucket(bucket as string).set(bytesToKey(r.key), { key: r.key, value: r.value });
    }
    decoder.end();
    this.boot.disk.copies.set(receivedDbName(index), db);
  }

  /** Raft handed out a leader's snapshot (saved, its marker in the WAL): the received database replaces the backend. */
  private async installSnapshot(snap: raftpb.Snapshot): Promise<void> {
    const md = snap.metadata;
    assert(md !== undefined, 'a snapshot has metadata');
    await this.kv.compactionsDone();
    await this.schema.backend.close();
    installReceived(this.boot.disk, md.index);
    const schema = openSchema(this.boot);
    this.schema = schema;
    this.leaseStorage = new LeaseStorage(schema);
    this.lessor.recover();
    this.kv = this.openKv();
    this.watchable.restore(this.kv);
    this.alarms = new AlarmSet(new AlarmStorage(schema));
    this.authStorage = new AuthStorage(schema);
    this.auth.recover();
    this.loadMembership();
    const applied = schema.consistentIndex();
    this.applier.installed(schema, md.confState);
    this.appliedIndex = Math.max(this.appliedIndex, applied.index);
    this.appliedTerm = applied.term;
    this.appliedWait.advance(this.appliedIndex);
    this.snapshotIndex = md.index;
  }

  // ---- ApplyEnv

  quotaAvailable(): boolean {
    return true;
  }

  saveMember(id: bigint): void {
    const m = this.cluster.members.get(id);
    if (m !== undefined) new MembershipStorage(this.schema).putMember(memberToRecord(m));
  }

  setClusterVersion(version: string): void {
    this.cluster.version = version;
    this.schema.setClusterVersion(version);
  }

  // ---- state

  isLeader(): boolean {
    return this.leaderId !== 0n && this.leaderId === this.memberId;
  }

  get stateType(): number {
    return this.raft.rawNode.status().raftState === StateType.StateLeader ? 1 : 0;
  }

  private onSoftState(s: SoftState): void {
    const wasLeader = this.isLeader();
    this.leaderId = s.lead;
    this.leaseLeader.onSoftState(wasLeader);
  }

  /** Stops after its removal: as a crash, but its disk is left as it is (it is never started again). */
  stop(): void {
    if (!this.stopped) this.crash();
  }

  /** The crash: nothing more runs; every waiting request fails (its outcome unknown). */
  crash(): void {
    this.stopped = true;
    this.boot.proc.kill();
    const err = new SimRequestError('member crashed');
    for (const w of this.waits.values()) w({ ok: false, error: err });
    this.waits.clear();
    for (const r of this.reads.values()) r(-1);
    this.reads.clear();
    this.appliedWait.failAll(err);
    this.watchable.close();
  }

  /** Proposals / read-index rounds / applied-index waits in progress. */
  pendingCount(): string {
    return `${this.waits.size}/${this.reads.size}/${this.appliedWait.pending}`;
  }

  /**
   * Serving clients: as etcd (ReadyNotify) and etcd-ts (whenReady), only once
   * an entry this member proposed after its start has applied, so its state
   * holds everything it applied before a crash. Otherwise a serializable read
   * right after a crash could go back in time (bug 3 in the README).
   */
  get ready(): boolean {
    return !this.stopped && this.published;
  }

  /** Proposes this member's attributes until they apply (EtcdServer.publish, which whenReady waits for). */
  private publish(): void {
    if (this.stopped) return;
    const request = {
      case: 'memberAttributesSet' as const,
      value: serverpb.MemberAttributesSetRequest.create({ memberId: this.memberId, name: `m${this.memberId}` }),
    };
    this.propose(request, publishTimeoutMs).then(
      () => (this.published = true),
      () => this.boot.proc.after(publishRetryMs, () => this.publish()),
    );
  }

  get alive(): boolean {
    return !this.stopped;
  }

  // ---- apply (the production EntryApplier; normal entries as EtcdServer.applyNormal)

  private advanceApplied(e: raftpb.Entry): void {
    if (e.index <= this.appliedIndex) return;
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
    this.appliedWait.advance(e.index);
  }

  private applyNormal(e: raftpb.Entry): void {
    if (e.data.length === 0) {
      // A new leader's first entry: its lessor serves from here on (as the server).
      this.leaseLeader.onEmptyEntry(e.term);
      return;
    }
    const req = serverpb.InternalRaftRequest.decode(e.data);
    this.answer(req.header?.ID ?? 0n, applyRequest(this, req, e.index));
  }

  private answer(id: bigint, outcome: ApplyOutcome): void {
    const w = this.waits.get(id);
    this.waits.delete(id);
    w?.(outcome);
  }

  // ---- requests

  /**
   * Proposes a request and resolves with its applied response; rejects when
   * the outcome is unknown, or with the apply's refusal. user: who sends it
   * and the auth store revision its token was issued at (as the server puts
   * them in the header).
   */
  propose(request: serverpb.InternalRaftRequest['request'], timeoutMs: number, user?: { readonly name: string; readonly authRevision: number }): Promise<object> {
    if (this.stopped) return Promise.reject(new SimRequestError('member stopped'));
    const id = this.idGen.next();
    const header = serverpb.RequestHeader.create({ ID: id, ...(user !== undefined ? { username: user.name, authRevision: user.authRevision } : {}) });
    const data = serverpb.InternalRaftRequest.encode(serverpb.InternalRaftRequest.create({ header, request }));
    return this.proposeAndWait(id, timeoutMs, (n) => n.propose(data));
  }

  /** Proposes a membership change; resolves once it applied here, rejects if refused or its outcome is unknown. */
  async proposeConfChange(cc: raftpb.ConfChange, timeoutMs: number): Promise<void> {
    if (this.stopped) throw new SimRequestError('member stopped');
    cc.id = this.idGen.next();
    await this.proposeAndWait(cc.id, timeoutMs, (n) => n.proposeConfChange(cc));
  }

  /** Hands a proposal to raft and waits for the entry carrying id to apply here (or for timeoutMs). */
  private proposeAndWait(id: bigint, timeoutMs: number, proposal: (n: RawNode) => void): Promise<object> {
    return new Promise<object>((resolve, reject) => {
      const timer = this.boot.proc.after(timeoutMs, () => {
        if (this.waits.delete(id)) reject(new SimRequestError('request timed out'));
      });
      this.waits.set(id, (o) => {
        this.boot.proc.loop.cancel(timer);
        if (o.ok) resolve(o.response);
        else reject(o.error);
      });
      try {
        this.raft.with(proposal);
      } catch (e) {
        this.waits.delete(id);
        this.boot.proc.loop.cancel(timer);
        reject(isRaftError(e) && e.code === RaftErrorCode.ProposalDropped ? new SimRequestError('no leader') : asError(e));
      }
    });
  }

  /** Waits until this member has applied everything committed when the read was issued (ReadIndex). */
  linearizableRead(timeoutMs: number): Promise<void> {
    if (this.stopped) return Promise.reject(new SimRequestError('member stopped'));
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, this.memberId ^ BigInt(++this.readSeq));
    const key = Buffer.from(ctx).toString('hex');
    return new Promise<void>((resolve, reject) => {
      const timer = this.boot.proc.after(timeoutMs, () => {
        if (this.reads.delete(key)) reject(new SimRequestError('read timed out'));
      });
      this.reads.set(key, (index) => {
        this.boot.proc.loop.cancel(timer);
        if (index < 0) reject(new SimRequestError('member crashed'));
        else this.appliedWait.wait(index).then(resolve, reject);
      });
      try {
        this.raft.with((n) => n.readIndex(ctx));
      } catch (e) {
        this.reads.delete(key);
        this.boot.proc.loop.cancel(timer);
        reject(isRaftError(e) && e.code === RaftErrorCode.ProposalDropped ? new SimRequestError('no leader') : asError(e));
      }
    });
  }

  header(): etcdserverpb.ResponseHeader {
    return etcdserverpb.ResponseHeader.create({ clusterId: this.boot.clusterId, memberId: this.memberId, revision: this.kv.rev, raftTerm: this.term });
  }
}

function openSchema(boot: MemberBoot): Schema {
  return new Schema(
    Backend.open({
      path: dbPath,
      bucketNames: allBucketNames,
      timers: boot.proc,
      engine: (_path, names) => new MemEngine(boot.disk.db, names, boot.proc, boot.rand),
    }),
  );
}

/** The received database of the snapshot at index replaces the backend (one step, as a rename); older received ones go. */
function installReceived(disk: MemberDisk, index: number): void {
  const received = disk.copies.get(receivedDbName(index));
  assert(received !== undefined, `no received database for the snapshot at ${index}`);
  disk.db = received.clone();
  disk.snapshotsInstalled++;
  for (const name of [...disk.copies.keys()]) {
    const m = /^received-(\d+)$/.exec(name);
    if (m !== null && Number(m[1]) <= index) disk.copies.delete(name);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
