/**
 * The raft-node loop: drives RawNode with ticks and messages and executes its
 * Ready batches strictly one at a time (src/raft/index.ts has the contract):
 *
 *   1. a leader sends its messages at once (it may replicate while its own
 *      disk write runs, thesis §10.2.1);
 *   2. the snapshot (snap file, then its WAL marker), entries and hard state
 *      are written to the WAL with ONE fdatasync when raft asks for it;
 *      while that fsync runs, new proposals pile up in raft and go out in
 *      the next Ready together (group commit);
 *   3. a follower sends its messages (its acks promise step 2 is durable);
 *   4. the application installs the snapshot and applies committed entries;
 *   5. advance.
 *
 * Because step 4 comes after step 2 for every Ready, nothing is applied (and
 * so nothing is acknowledged to a client) before this member has it on disk;
 * a leader counts its own entries only once advance() reports them durable.
 */
import { assert, failpoint, idToHex, type Logger } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { type MemoryStorage, RawNode, type Ready, type SoftState, isRaftError } from '../raft/index.js';
import type { Snapshotter, Wal } from '../wal/index.js';

export interface RaftNodeApp {
  /** A new leader or role; called before anything else of the Ready. */
  onSoftState(s: SoftState): void;
  /** The hard state (term, vote, commit) changed. */
  onHardState(hs: raftpb.HardState): void;
  /** Messages to peers (the transport). */
  send(msgs: raftpb.Message[]): void;
  /** Installs a snapshot received from the leader (after it is persisted). */
  applySnapshot(snap: raftpb.Snapshot): Promise<void>;
  /** Applies committed entries in order, synchronously. */
  applyEntries(entries: raftpb.Entry[]): void;
  onReadState(ctx: Uint8Array, index: number): void;
  /** After advance: a place to take snapshots and compact the log (serialized with WAL writes). */
  afterAdvance(): Promise<void>;
  /** The loop failed (a disk error): the member must stop. */
  onFatal(err: unknown): void;
}

/**
 * How the loop is scheduled: ticks on an interval and each Ready on a later
 * turn of the event loop. Real timers by default; a simulation passes its
 * own, so that a seed fixes the order of everything.
 */
export interface LoopScheduler {
  /** Calls fn every ms milliseconds; the returned function stops it. */
  every(ms: number, fn: () => void): () => void;
  /** Calls fn on a later turn of the event loop, before timers (setImmediate). */
  soon(fn: () => void): void;
}

export const realLoopScheduler: LoopScheduler = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  soon: (fn) => setImmediate(fn),
};

export interface RaftNodeOptions {
  rawNode: RawNode;
  storage: MemoryStorage;
  wal: Wal;
  snapshotter: Snapshotter;
  app: RaftNodeApp;
  heartbeatMs: number;
  logger: Logger;
  /** Observes each fsync'd WAL save (seconds), for etcd_disk_wal_fsync_duration_seconds. */
  onWalSync?: (seconds: number) => void;
  /** Default: realLoopScheduler. */
  scheduler?: LoopScheduler;
}

export class RaftNode {
  readonly rawNode: RawNode;
  readonly storage: MemoryStorage;
  readonly wal: Wal;
  readonly snapshotter: Snapshotter;
  private readonly app: RaftNodeApp;
  private readonly logger: Logger;
  private readonly onWalSync: ((seconds: number) => void) | undefined;
  private readonly heartbeatMs: number;
  private readonly scheduler: LoopScheduler;
  private stopTicker: (() => void) | undefined;
  private scheduled = false;
  private running = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | undefined;

  constructor(opts: RaftNodeOptions) {
    this.rawNode = opts.rawNode;
    this.storage = opts.storage;
    this.wal = opts.wal;
    this.snapshotter = opts.snapshotter;
    this.app = opts.app;
    this.logger = opts.logger;
    this.onWalSync = opts.onWalSync;
    this.heartbeatMs = opts.heartbeatMs;
    this.scheduler = opts.scheduler ?? realLoopScheduler;
  }

  start(): void {
    assert(this.stopTicker === undefined, 'started twice');
    this.stopTicker = this.scheduler.every(this.heartbeatMs, () => this.tick());
    this.kick();
  }

  tick(): void {
    if (this.stopped) return;
    this.rawNode.tick();
    this.kick();
  }

  /** Delivers a peer's message. Messages from unknown or removed peers are dropped. */
  step(m: raftpb.Message): void {
    if (this.stopped) return;
    try {
      this.rawNode.step(m);
    } catch (e) {
      if (!isRaftError(e)) throw e;
      this.logger.debug('dropped raft message', { type: m.type, from: idToHex(m.from), error: e.message });
    }
    this.kick();
  }

  /** Runs fn against the raw node (propose, readIndex, ...) and schedules a Ready. */
  with<T>(fn: (node: RawNode) => T): T {
    const result = fn(this.rawNode);
    this.kick();
    return result;
  }

  /** Schedules processing of the next Ready at the end of this turn of the event loop. */
  kick(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    this.scheduler.soon(() => {
      this.scheduled = false;
      void this.process();
    });
  }

  /** Resolves when no Ready is being processed. */
  whenIdle(): Promise<void> {
    return this.running ? this.idle : Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTicker?.();
    await this.whenIdle();
  }

  private async process(): Promise<void> {
    if (this.running || this.stopped || !this.rawNode.hasReady()) return;
    this.running = true;
    this.idle = new Promise((resolve) => {
      this.idleResolve = resolve;
    });
    try {
      const rd = this.rawNode.ready();
      await this.handleReady(rd);
      this.rawNode.advance(rd);
      await this.app.afterAdvance();
    } catch (e) {
      this.stopped = true;
      this.stopTicker?.();
      this.app.onFatal(e);
    } finally {
      this.running = false;
      this.idleResolve?.();
    }
    if (!this.stopped && this.rawNode.hasReady()) this.kick();
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.hardState !== undefined) this.app.onHardState(rd.hardState);
    if (rd.softState !== undefined) this.app.onSoftState(rd.softState);
    if (rd.sendBeforePersist && rd.messages.length > 0) this.app.send(rd.messages);
    if (rd.snapshot !== undefined) {
      // The snap file first, then its marker: a marker in the WAL always has its file.
      failpoint('raftBeforeSaveSnap');
      await this.snapshotter.save(rd.snapshot);
      const md = rd.snapshot.metadata;
      assert(md !== undefined, 'a snapshot has metadata');
      await this.wal.saveSnapshot({ index: md.index, term: md.term, ...(md.confState ? { confState: md.confState } : {}) });
      failpoint('raftAfterSaveSnap');
    }
    if (rd.hardState !== undefined || rd.entries.length > 0) {
      failpoint('raftBeforeSave');
      const started = performance.now();
      await this.wal.save(rd.hardState, rd.entries, rd.mustSync);
      if (rd.mustSync) this.onWalSync?.((performance.now() - started) / 1000);
      failpoint('raftAfterSave');
    }
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (!rd.sendBeforePersist && rd.messages.length > 0) this.app.send(rd.messages);
    if (rd.snapshot !== undefined) {
      failpoint('raftBeforeApplySnap');
      await this.app.applySnapshot(rd.snapshot);
      failpoint('raftAfterApplySnap');
    }
    if (rd.committedEntries.length > 0) this.app.applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) this.app.onReadState(rs.requestCtx, rs.index);
  }
}
