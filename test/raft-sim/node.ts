import { type Rand, assert } from '../../src/base/index.js';
import { raftpb } from '../../src/pb/index.js';
import {
  type Config,
  MemoryStorage,
  RawNode,
  type Ready,
  confChangeFromEntry,
  describeConfState,
  describeEntry,
  isEmptySnapshot,
} from '../../src/raft/index.js';
import { type Checker, chainHash } from './checker.js';

/**
 * The application's durable state machine: a rolling hash over every applied
 * entry, the index it reached, and the membership after each conf change
 * (for snapshots). It survives crashes, as a database would.
 */
export interface AppState {
  applied: number;
  hash: number;
  confStates: Array<[number, raftpb.ConfState]>;
}

/** A Ready being executed: persisted at persistAt, applied and advanced at applyAt. */
interface PendingReady {
  rd: Ready;
  persistAt: number;
  applyAt: number;
  persisted: boolean;
  sent: boolean;
}

export interface NodeHooks {
  send(m: raftpb.Message): void;
  onConfState(node: SimNode, cc: raftpb.ConfChange | raftpb.ConfChangeV2, cs: raftpb.ConfState, index: number): void;
  onReadState(node: SimNode, rs: { index: number; requestCtx: Uint8Array }): void;
  onApplied(node: SimNode, e: raftpb.Entry): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One member: its durable storage (the MemoryStorage holds exactly what was
 * persisted), its durable application state, and the in-memory RawNode that
 * a crash throws away.
 */
export class SimNode {
  storage = new MemoryStorage();
  app: AppState = { applied: 0, hash: 0, confStates: [[0, raftpb.ConfState.create()]] };
  rn: RawNode | undefined;
  pending: PendingReady | undefined;
  downUntil = 0;
  /** Removed from the cluster and shut down for good. */
  retired = false;
  restarts = 0;

  constructor(
    readonly id: bigint,
    private readonly config: Omit<Config, 'id' | 'storage'>,
    private readonly checker: Checker,
    private readonly hooks: NodeHooks,
  ) {}

  start(): void {
    // Boot reads the durable state back the way a server replays its WAL:
    // the snapshot, then the entries after it, then the hard state.
    this.storage = reload(this.storage);
    const snap = this.storage.snapshot();
    const sIndex = snap.metadata?.index ?? 0;
    // The snapshot was persisted but the crash came before the state
    // machine installed it: install it now, as a server does on boot.
    if (sIndex > this.app.applied) this.installSnapshot(snap);
    // Raft's membership restarts from the snapshot's ConfState; it replays
    // committed entries after the snapshot so conf changes are re-applied.
    this.rn = new RawNode({ ...this.config, id: this.id, storage: this.storage });
  }

  crash(now: number, downTicks: number): void {
    this.rn = undefined;
    this.pending = undefined;
    this.downUntil = now + downTicks;
    this.restarts++;
  }

  alive(): boolean {
    return this.rn !== undefined;
  }

  /** Runs Ready processing as far as the current tick allows. */
  process(now: number, rand: Rand, early: boolean): void {
    for (let round = 0; round < 8; round++) {
      const rn = this.rn;
      if (rn === undefined) return;
      const p = this.pending;
      if (p === undefined) {
        if (!rn.hasReady()) return;
        const rd = rn.ready();
        const persistAt = now + (rand.float() < 0.7 ? 0 : 1 + rand.intn(2));
        const applyAt = persistAt + (rand.float() < 0.8 ? 0 : 1);
        this.pending = { rd, persistAt, applyAt, persisted: false, sent: false };
        // A leader may replicate while its own write is in progress.
        if (early && rd.sendBeforePersist) {
          for (const m of rd.messages) this.hooks.send(m);
          this.pending.sent = true;
        }
        continue;
      }
      if (!p.persisted) {
        if (now < p.persistAt) return;
        this.persist(p.rd);
        p.persisted = true;
        if (!p.sent) for (const m of p.rd.messages) this.hooks.send(m);
        p.sent = true;
      }
      if (now < p.applyAt) return;
      this.apply(p.rd, rn);
      this.pending = undefined;
      rn.advance(p.rd);
    }
  }

  private persist(rd: Ready): void {
    const s = this.storage;
    if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) s.applySnapshot(rd.snapshot);
    s.append(rd.entries);
    for (const e of rd.entries) {
      let prevTerm = -1;
      try {
        prevTerm = s.term(e.index - 1);
      } catch {
        // Compacted: unknown.
      }
      this.checker.observePersisted(this.id, e, prevTerm);
    }
    if (rd.hardState !== undefined) {
      s.setHardState(rd.hardState);
      this.checker.observeDurableCommit(rd.hardState);
    }
  }

  private apply(rd: Ready, rn: RawNode): void {
    if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) this.installSnapshot(rd.snapshot);
    for (const e of rd.committedEntries) {
      const cc = confChangeFromEntry(e);
      // Conf changes always go to raft (its membership restarts from the
      // snapshot); the state machine skips what it already has.
      if (cc !== undefined) {
        let cs: raftpb.ConfState;
        try {
          cs = rn.applyConfChange(cc);
        } catch (err) {
          throw new Error(`node ${this.id} applying entry ${e.index} (${describeEntry(e)}) to ${describeConfState(rn.status().config)}: ${String(err)}`, { cause: err });
        }
        if (e.index > this.app.applied) {
          this.app.confStates.push([e.index, cs]);
          this.hooks.onConfState(this, cc, cs, e.index);
        }
      }
      if (e.index <= this.app.applied) continue;
      assert(e.index === this.app.applied + 1, `node ${this.id} applies ${e.index} after ${this.app.applied}`);
      this.app.hash = chainHash(this.app.hash, e.term, e.index, e.data);
      this.app.applied = e.index;
      this.checker.observeApplied(this.id, e.index, e.term, this.app.hash);
      this.hooks.onApplied(this, e);
    }
    for (const rs of rd.readStates) this.hooks.onReadState(this, rs);
  }

  private installSnapshot(snap: raftpb.Snapshot): void {
    const index = snap.metadata?.index ?? 0;
    if (index <= this.app.applied) return;
    const [i, h] = decoder.decode(snap.data).split(':').map(Number);
    assert(i === index && h !== undefined, `bad snapshot data at ${index}`);
    this.checker.observeSnapshotState(this.id, index, h);
    this.app = {
      applied: index,
      hash: h,
      confStates: [[index, snap.metadata?.confState ?? raftpb.ConfState.create()]],
    };
  }

  /** Snapshots the state machine at its applied index and compacts the log up to `keep` entries before it. */
  compact(keep: number): boolean {
    // Only up to what raft itself has delivered since this boot: after a
    // restart raft replays the conf changes after its snapshot, and those
    // entries must stay until it has (found by this simulation, seed 30).
    const at = this.app.applied;
    if ((this.rn?.status().applied ?? 0) < at) return false;
    const snapIndex = this.storage.snapshot().metadata?.index ?? 0;
    if (at <= snapIndex || at > this.storage.lastIndex()) return false;
    let cs = raftpb.ConfState.create();
    for (const [i, c] of this.app.confStates) if (i <= at) cs = c;
    this.storage.createSnapshot(at, cs, encoder.encode(`${at}:${this.app.hash}`));
    const compactTo = at - keep;
    if (compactTo > snapIndex) this.storage.compact(compactTo);
    this.app.confStates = this.app.confStates.filter(([i]) => i >= at);
    if (this.app.confStates.length === 0 || (this.app.confStates[0]?.[0] ?? 0) > at) this.app.confStates.unshift([at, cs]);
    return true;
  }
}

function reload(old: MemoryStorage): MemoryStorage {
  const s = new MemoryStorage();
  const snap = old.snapshot();
  const sIndex = snap.metadata?.index ?? 0;
  if (sIndex > 0) s.applySnapshot(snap);
  const last = old.lastIndex();
  if (last > sIndex) s.append(old.entries(sIndex + 1, last + 1, Number.MAX_SAFE_INTEGER));
  s.setHardState(old.hardStateNow());
  return s;
}
