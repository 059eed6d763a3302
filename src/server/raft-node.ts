/**
 * The raft-node loop: drives RawNode with ticks and messages and executes its
 * Ready batches strictly one at a time (src/raft/index.ts has the contract):
 *
 *   1. a leader sends its messages at once (it may replicate while its own
 *      disk write runs, thesis §10.2.1), and lets them reach the wire
 *      before it starts that write;
 *   2. committed entries this member already has on disk (persisted by an
 *      earlier Ready) are applied at once: they wait for no write;
 *   3. the snapshot (snap file, then its WAL marker), entries and hard state
 *      are written to the WAL with ONE fdatasync when raft asks for it;
 *      while that fsync runs, new proposals pile up in raft and go out in
 *      the next Ready together (group commit);
 *   4. a follower sends its messages (its acks promise step 3 is durable)
 *      and lets them reach the wire before it applies; a small write that
 *      the WAL synced on this thread is durable before step 2, so its acks
 *      leave before that step's apply too;
 *   5. the application installs the snapshot and applies the rest of the
 *      committed entries;
 *   6. advance; when that made more work (the leader counts its own entries
 *      once they are durable, which commits them on a single voter), the
 *      next Ready is processed in the same turn, so a write is answered
 *      right after its fsync instead of one event-loop trip later.
 *
 * Nothing is applied (and so nothing is acknowledged to a client) before
 * this member has it on disk, and a leader counts its own entries only once
 * advance() reports them durable.
 */
import { assert, failpoint, idToHex, type Logger } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { type MemoryStorage, RawNode, type Ready, type SoftState, coalesceMessages, isRaftError } from '../raft/index.js';
import type { Snapshotter, Wal } from '../wal/index.js';

/**
 * Readys processed back to back in one turn before the loop yields to the
 * event loop (a Ready with entries yields anyway, during its fsync).
 */
const readyChainMax = 8;

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
  /** Default: realLoopScheduler. */
  scheduler?: LoopScheduler;
  /**
   * Bound on the entries of one append made by merging a Ready's appends to
   * a peer (coalesceMessages); default 1 MiB, raft's default msgAppBytesMax.
   */
  mergedAppendBytesMax?: number;
}

/**
 * Whether a Ready's write must be synced. Raft asks for it when entries,
 * term or vote change; a snapshot's Ready needs it too, for its hard state:
 * the WAL offers a snapshot marker at open only up to the commit index it
 * holds, so a commit index below an installed snapshot (one not synced
 * before a crash) would restart the member on an older snapshot, short of
 * entries it acknowledged ("tocommit out of range"; etcd's issue 10219,
 * which etcd answers the same way).
 */
function mustSync(rd: Ready): boolean {
  return rd.mustSync || rd.snapshot !== undefined;
}

export class RaftNode {
  readonly rawNode: RawNode;
  readonly storage: MemoryStorage;
  readonly wal: Wal;
  readonly snapshotter: Snapshotter;
  private readonly app: RaftNodeApp;
  private readonly logger: Logger;
  private readonly heartbeatMs: number;
  private readonly scheduler: LoopScheduler;
  private readonly mergedAppendBytesMax: number;
  private stopTicker: (() => void) | undefined;
  private scheduled = false;
  private running = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | undefined;
  /** Work to run between Readys (exclusive), oldest first. */
  private readonly tasks: { run: () => Promise<void>; fail: (e: Error) => void }[] = [];

  constructor(opts: RaftNodeOptions) {
    this.rawNode = opts.rawNode;
    this.storage = opts.storage;
    this.wal = opts.wal;
    this.snapshotter = opts.snapshotter;
    this.app = opts.app;
    this.logger = opts.logger;
    this.heartbeatMs = opts.heartbeatMs;
    this.scheduler = opts.scheduler ?? realLoopScheduler;
    this.mergedAppendBytesMax = opts.mergedAppendBytesMax ?? 1024 * 1024;
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

  /**
   * Runs fn on the loop, between two Readys: no Ready is handled while it
   * runs (a backend repair swaps the state under the apply). Rejects if the
   * loop stops first.
   */
  exclusive(fn: () => Promise<void>): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('raft loop stopped'));
    return new Promise((resolve, reject) => {
      this.tasks.push({ run: () => fn().then(resolve, reject), fail: reject });
      this.kick();
    });
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
    for (const t of this.tasks.splice(0)) t.fail(new Error('raft loop stopped'));
  }

  private async process(): Promise<void> {
    if (this.running || this.stopped || (!this.rawNode.hasReady() && this.tasks.length === 0)) return;
    this.running = true;
    this.idle = new Promise((resolve) => {
      this.idleResolve = resolve;
    });
    try {
      for (let n = 1; ; n++) {
        while (this.tasks.length > 0 && !this.stopped) await (this.tasks.shift() as { run: () => Promise<void> }).run();
        if (this.stopped || !this.rawNode.hasReady()) break;
        const rd = this.rawNode.ready();
        await this.handleReady(rd);
        this.rawNode.advance(rd);
        await this.app.afterAdvance();
        if (this.stopped || n >= readyChainMax || !this.rawNode.hasReady()) break;
      }
    } catch (e) {
      this.stopped = true;
      this.stopTicker?.();
      this.app.onFatal(e);
    } finally {
      this.running = false;
      this.idleResolve?.();
    }
    if (!this.stopped && (this.rawNode.hasReady() || this.tasks.length > 0)) this.kick();
    if (this.stopped) for (const t of this.tasks.splice(0)) t.fail(new Error('raft loop stopped'));
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.hardState !== undefined) this.app.onHardState(rd.hardState);
    if (rd.softState !== undefined) this.app.onSoftState(rd.softState);
    // Proposals taken in one turn went out as one append each: one per peer is enough.
    const messages = coalesceMessages(rd.messages, this.mergedAppendBytesMax);
    if (rd.sendBeforePersist && messages.length > 0) {
      // On the wire before this returns (Transport.send): the followers' writes,
      // the longer way to a quorum, start before our own, and followers learn
      // of a commit before the leader spends its time answering it.
      this.app.send(messages);
    }
    if (rd.snapshot !== undefined) {
      // The snap file first, then its marker: a marker in the WAL always has its file.
      failpoint('raftBeforeSaveSnap');
      await this.snapshotter.save(rd.snapshot);
      const md = rd.snapshot.metadata;
      assert(md !== undefined, 'a snapshot has metadata');
      await this.wal.saveSnapshot({ index: md.index, term: md.term, ...(md.confState ? { confState: md.confState } : {}) });
      failpoint('raftAfterSaveSnap');
    }
    // A write that must sync is issued first, so that applying what is
    // already durable overlaps its fsync. One that need not (only the commit
    // index moved, the usual Ready after an ack) goes after the apply, which
    // answers the clients a write sooner; unsynced, it was never part of what
    // a crash is sure to keep.
    const syncing = rd.entries.length > 0 || mustSync(rd);
    const saving = syncing ? this.save(rd) : undefined;
    let sent = rd.sendBeforePersist;
    if (!sent && saving !== undefined && rd.snapshot === undefined && this.wal.allSynced()) {
      // A small write was synced on this thread: durable already, so the
      // acks leave before the apply below.
      this.app.send(messages);
      sent = true;
    }
    let committed: raftpb.Entry[];
    try {
      committed = this.applyDurable(rd);
    } catch (e) {
      await saving?.catch(() => undefined);
      throw e;
    }
    // The answers to what was just applied are written when the handlers'
    // promise chains have run, which needs a turn of the event loop: give it
    // before a WAL write that nobody waits for (or the rest of this Ready).
    if (committed.length < rd.committedEntries.length && saving === undefined) await this.nextTurn();
    await (saving ?? this.save(rd));
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (!sent && messages.length > 0) {
      // A follower's acks are on the leader's way to a quorum, its applying
      // is on nobody's: they are on the wire before it applies.
      this.app.send(messages);
    }
    if (rd.snapshot !== undefined) {
      failpoint('raftBeforeApplySnap');
      await this.app.applySnapshot(rd.snapshot);
      failpoint('raftAfterApplySnap');
    }
    if (committed.length > 0) this.app.applyEntries(committed);
    for (const rs of rd.readStates) this.app.onReadState(rs.requestCtx, rs.index);
  }

  /** Resolves on a later turn of the event loop, once the promise chains of what was just applied have run. */
  private nextTurn(): Promise<void> {
    return new Promise<void>((resolve) => this.scheduler.soon(resolve));
  }

  /** Writes the Ready's entries and hard state to the WAL (one fdatasync when it must sync; the Wal times it). */
  private async save(rd: Ready): Promise<void> {
    if (rd.hardState === undefined && rd.entries.length === 0) return;
    failpoint('raftBeforeSave');
    await this.wal.save(rd.hardState, rd.entries, mustSync(rd));
    failpoint('raftAfterSave');
  }

  /**
   * Applies the committed entries that earlier Readys already made durable
   * here; returns the rest, which wait for this Ready's write. The storage
   * holds only what is on disk, but this Ready's entries may replace a
   * stored tail (a follower's uncommitted entries of an older term) and be
   * committed at once: only stored entries below them count. A Ready with a
   * snapshot keeps its order: snapshot first, then its entries.
   */
  private applyDurable(rd: Ready): raftpb.Entry[] {
    const ents = rd.committedEntries;
    if (rd.snapshot !== undefined || ents.length === 0) return ents;
    const firstWritten = rd.entries[0]?.index ?? Number.MAX_SAFE_INTEGER;
    const durable = Math.min(this.storage.lastIndex(), firstWritten - 1);
    let n = 0;
    while (n < ents.length && (ents[n] as raftpb.Entry).index <= durable) n++;
    if (n === 0) return ents;
    this.app.applyEntries(n === ents.length ? ents : ents.slice(0, n));
    return ents.slice(n);
  }
}
