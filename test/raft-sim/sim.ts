/**
 * A deterministic simulation of a raft cluster in one process: 3 or 5
 * bootstrapped voters plus spare nodes that join through conf changes, a
 * fake network (drops, duplicates, delays that reorder, partitions), crash
 * restarts that lose everything not persisted, random proposals, conf
 * changes (learners, promotions, demotions, removals, joint changes), log
 * compaction with snapshot transfer, and ReadIndex requests. One seeded PRNG
 * drives everything, so a seed replays exactly. Invariants are checked after
 * every event; after the faults stop, a connected majority must commit a new
 * proposal within a bounded number of ticks.
 */
import { type Rand, SeededRand, assert } from '../../src/base/index.js';
import { raftpb } from '../../src/pb/index.js';
import {
  type Config,
  ReadOnlyOption,
  describeMessage,
  isRaftError,
} from '../../src/raft/index.js';
import { Checker, Violation } from './checker.js';
import { FakeNetwork, type NetFaults, healthyNet } from './network.js';
import { SimNode } from './node.js';

export interface SimOptions {
  seed: number;
  /** Ticks with faults; then the network heals and every node restarts. */
  faultTicks?: number;
  /** The liveness bound: ticks after the heal within which a new proposal must commit. */
  livenessTicksMax?: number;
  /** Print every delivered message and role change (debugging one seed). */
  trace?: (line: string) => void;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  failure?: string;
  ticks: number;
  nodes: number;
  proposals: number;
  applied: number;
  leaderTerms: number;
  restarts: number;
  confChanges: number;
  snapshots: number;
  reads: number;
  delivered: number;
  livenessTicks: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CT = raftpb.ConfChangeType;

function pick<T>(rand: Rand, xs: readonly T[]): T | undefined {
  return xs.length === 0 ? undefined : xs[rand.intn(xs.length)];
}

class Sim {
  readonly rand: Rand;
  readonly checker = new Checker();
  readonly net: FakeNetwork;
  readonly nodes = new Map<bigint, SimNode>();
  readonly voterCount: number;
  private readonly netFaults: NetFaults;
  now = 0;
  proposals = 0;
  confChanges = 0;
  snapshots = 0;
  reads = 0;
  private readSeq = 0;
  private readsPending = new Map<string, number>();
  /** Removed node -> index of the entry that removed it. */
  private removing = new Map<bigint, number>();
  private retiring: Array<[bigint, number, bigint[]]> = [];
  private everRemoved = new Set<bigint>();
  /** Set once a proposal made after the heal is applied by a quorum. */
  liveAt = -1;
  private liveProposed = 0;

  constructor(
    readonly seed: number,
    private readonly trace: ((line: string) => void) | undefined,
  ) {
    this.rand = new SeededRand(seed);
    const rand = this.rand;
    this.net = new FakeNetwork(rand);
    this.voterCount = rand.intn(2) === 0 ? 3 : 5;
    const msgAppBytesMax = pick(rand, [0, 64, 512, 1024 * 1024]) ?? 0;
    const config: Omit<Config, 'id' | 'storage'> = {
      electionTicks: 10,
      heartbeatTicks: 1,
      rand,
      preVote: rand.float() < 0.5,
      checkQuorum: rand.float() < 0.5,
      readOnlyOption: ReadOnlyOption.ReadOnlySafe,
      msgAppBytesMax,
      inflightMsgsMax: pick(rand, [1, 2, 4, 256]) ?? 256,
      inflightBytesMax: pick(rand, [0, Math.max(msgAppBytesMax, 256) * 2]) ?? 0,
      uncommittedBytesMax: pick(rand, [0, 0, 1024]) ?? 0,
    };
    this.netFaults = {
      drop: pick(rand, [0, 0.02, 0.1, 0.25]) ?? 0,
      duplicate: pick(rand, [0, 0.02, 0.1]) ?? 0,
      delayMin: 0,
      delayMax: pick(rand, [1, 2, 5]) ?? 1,
    };
    this.net.faults = this.netFaults;
    const spares = 2;
    const hooks = {
      send: (m: raftpb.Message): void => this.send(m),
      onConfState: (_n: SimNode, cc: raftpb.ConfChange | raftpb.ConfChangeV2, cs: raftpb.ConfState, index: number): void =>
        this.onConfState(cc, cs, index),
      onReadState: (n: SimNode, rs: { index: number; requestCtx: Uint8Array }): void => this.onReadState(n, rs),
      onApplied: (_n: SimNode, e: raftpb.Entry): void => this.noteApplied(e),
    };
    for (let i = 1; i <= this.voterCount + spares; i++) {
      const id = BigInt(i);
      this.nodes.set(id, new SimNode(id, config, this.checker, hooks));
    }
    const peers = [...this.nodes.keys()].slice(0, this.voterCount).map((id) => ({ id, context: encoder.encode(`member-${id}`) }));
    for (const n of this.nodes.values()) {
      n.start();
      if (n.id <= BigInt(this.voterCount)) n.rn?.bootstrap(peers);
    }
    this.log(`seed=${seed} voters=${this.voterCount} preVote=${config.preVote} checkQuorum=${config.checkQuorum} msgAppBytesMax=${msgAppBytesMax} inflight=${config.inflightMsgsMax}/${config.inflightBytesMax} uncommitted=${config.uncommittedBytesMax} net=${JSON.stringify(this.netFaults)}`);
  }

  /**
   * Like etcd's merged snapshot: a snapshot goes out as the sender's state at
   * its applied index, not the older one in storage (which may predate the
   * receiver's membership, and the receiver refuses a snapshot without it).
   */
  private send(m: raftpb.Message): void {
    const from = this.nodes.get(m.from);
    if (m.type === raftpb.MessageType.MsgSnap && from !== undefined) {
      from.compact(this.rand.intn(20));
      m.snapshot = from.storage.snapshot();
    }
    // A lost snapshot is reported, as a snapshot stream's failure is.
    if (!this.net.send(m, this.now) && m.type === raftpb.MessageType.MsgSnap) from?.rn?.reportSnapshot(m.to, false);
  }

  private log(line: string): void {
    this.trace?.(`[${this.now}] ${line}`);
  }

  private alive(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive());
  }

  private observe(n: SimNode): void {
    if (n.rn !== undefined) this.checker.observeLeader(n.id, n.rn);
  }

  private onConfState(cc: raftpb.ConfChange | raftpb.ConfChangeV2, cs: raftpb.ConfState, index: number): void {
    const singles = 'changes' in cc ? cc.changes : [cc];
    for (const c of singles) {
      if (c.type === CT.ConfChangeRemoveNode && !this.removing.has(c.nodeId)) this.removing.set(c.nodeId, index);
    }
    const members = new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
    for (const [id, removedAt] of this.removing) {
      // A node replaying old history applies configs from before the removal.
      if (index < removedAt) continue;
      if (!members.has(id) && !this.retiring.some(([x]) => x === id)) {
        this.log(`node ${id} removed at index ${index}; retires once ${[...members].join(',')} applied it`);
        this.retiring.push([id, index, [...members]]);
      }
    }
  }

  /**
   * A member whose removal is complete (not even an outgoing voter) is shut
   * down for good once every remaining member has applied the change, as an
   * operator would: it could only disturb the cluster, and until then it may
   * be the only one that can tell the others about its removal.
   */
  private retireRemoved(): void {
    this.retiring = this.retiring.filter(([id, index, members]) => {
      const n = this.nodes.get(id);
      if (n === undefined || n.retired) return false;
      if (!members.every((m) => (this.nodes.get(m)?.app.applied ?? 0) >= index)) return true;
      this.log(`node ${id} retired`);
      n.retired = true;
      n.crash(this.now, Number.MAX_SAFE_INTEGER);
      return false;
    });
  }

  private onReadState(n: SimNode, rs: { index: number; requestCtx: Uint8Array }): void {
    const key = decoder.decode(rs.requestCtx);
    const floor = this.readsPending.get(key);
    if (floor === undefined) return; // a duplicate answer
    this.readsPending.delete(key);
    if (rs.index < floor) {
      throw new Violation('linearizable read', `node ${n.id} read ${key} at index ${rs.index}, but index ${floor} was applied before it started`);
    }
    this.reads++;
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.alive()) {
      const r = n.rn?.raft;
      if (r?.state === 'StateLeader' && (best?.rn === undefined || r.term > best.rn.raft.term)) best = n;
    }
    return best;
  }

  tick(faults: boolean): void {
    this.retireRemoved();
    if (faults) this.injectFaults();
    this.clientOps(faults);
    this.deliver();
    for (const n of this.alive()) {
      n.rn?.tick();
      this.observe(n);
    }
    for (const n of this.alive()) {
      n.process(this.now, this.rand, true);
      this.observe(n);
    }
  }

  private injectFaults(): void {
    const rand = this.rand;
    for (const n of this.nodes.values()) {
      if (!n.alive() && !n.retired && n.downUntil <= this.now) this.restart(n);
    }
    if (this.now > 20 && rand.float() < 0.01) {
      const victim = pick(rand, this.alive());
      if (victim !== undefined) {
        this.log(`crash ${victim.id}`);
        victim.crash(this.now, 5 + rand.intn(60));
      }
    }
    if (rand.float() < 0.01) {
      if (rand.float() < 0.5) {
        this.log('heal partition');
        this.net.heal();
      } else {
        this.net.partition([...this.nodes.keys()], 2 + rand.intn(2));
        this.log('partition');
      }
    }
    if (rand.float() < 0.02) {
      const n = pick(rand, this.alive());
      if (n?.compact(rand.intn(20)) === true) this.log(`compact ${n.id} at ${n.app.applied}`);
    }
  }

  private restart(n: SimNode): void {
    this.log(`restart ${n.id}`);
    n.start();
  }

  private clientOps(faults: boolean): void {
    const rand = this.rand;
    if (faults && rand.float() < 0.3) this.propose(pick(rand, this.alive()), `p${this.proposals}-${'x'.repeat(rand.intn(40))}`);
    if (!faults && this.liveAt < 0 && (this.now - this.liveProposed >= 10 || this.liveProposed === 0)) {
      this.liveProposed = this.now;
      this.propose(this.leader() ?? pick(rand, this.alive()), `live-${this.now}`);
    }
    if (rand.float() < 0.02) this.confChange(faults);
    if (faults && rand.float() < 0.05) this.readIndex(pick(rand, this.alive()));
    if (faults && rand.float() < 0.01) this.transfer();
    if (faults && rand.float() < 0.005) pick(rand, this.alive())?.rn?.forgetLeader();
  }

  private propose(n: SimNode | undefined, data: string): void {
    if (n?.rn === undefined) return;
    try {
      n.rn.propose(encoder.encode(data));
      this.proposals++;
    } catch (e) {
      if (!isRaftError(e)) throw e;
    }
    this.observe(n);
  }

  /** Asks the leader to hand over to a random voter (as etcdctl move-leader does). */
  private transfer(): void {
    const l = this.leader();
    if (l?.rn === undefined) return;
    const to = pick(this.rand, l.rn.status().config.voters);
    if (to === undefined) return;
    this.log(`transfer ${l.id} -> ${to}`);
    l.rn.transferLeader(to);
    this.observe(l);
  }

  private readIndex(n: SimNode | undefined): void {
    if (n?.rn === undefined) return;
    const key = `r${this.readSeq++}`;
    try {
      n.rn.readIndex(encoder.encode(key));
      // Everything applied anywhere so far was acknowledged (or could have
      // been): a linearizable read must not return an older index.
      this.readsPending.set(key, this.checker.maxApplied);
    } catch (e) {
      if (!isRaftError(e)) throw e;
    }
    this.observe(n);
  }

  private confChange(faults: boolean): void {
    const l = this.leader();
    if (l?.rn === undefined) return;
    const cs = l.rn.status().config;
    let cc: raftpb.ConfChange | raftpb.ConfChangeV2 | undefined;
    if (cs.votersOutgoing.length > 0) {
      // An explicit joint config is left by the operator.
      if (!cs.autoLeave) cc = raftpb.ConfChangeV2.create({ context: encoder.encode('leave') });
    } else if (faults) {
      cc = this.randomConfChange(cs);
    }
    if (cc === undefined) return;
    try {
      l.rn.proposeConfChange(cc);
      this.confChanges++;
      this.log(`propose conf change at ${l.id}: ${JSON.stringify(cc, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v instanceof Uint8Array ? decoder.decode(v) : v))}`);
    } catch (e) {
      if (!isRaftError(e)) throw e;
    }
    this.observe(l);
  }

  private randomConfChange(cs: raftpb.ConfState): raftpb.ConfChange | raftpb.ConfChangeV2 | undefined {
    const rand = this.rand;
    const members = new Set([...cs.voters, ...cs.learners]);
    const addable = [...this.nodes.values()].filter((n) => !n.retired && !members.has(n.id) && !this.everRemoved.has(n.id)).map((n) => n.id);
    const singles: raftpb.ConfChangeSingle[] = [];
    const want = rand.float() < 0.3 ? 2 : 1;
    const used = new Set<bigint>();
    for (let tries = 0; tries < 6 && singles.length < want; tries++) {
      const op = rand.intn(4);
      let c: raftpb.ConfChangeSingle | undefined;
      const learner = pick(rand, cs.learners.filter((id) => !used.has(id)));
      const voter = pick(rand, cs.voters.filter((id) => !used.has(id)));
      const fresh = pick(rand, addable.filter((id) => !used.has(id)));
      if (op === 0 && fresh !== undefined) c = raftpb.ConfChangeSingle.create({ type: CT.ConfChangeAddLearnerNode, nodeId: fresh });
      if (op === 1 && learner !== undefined && cs.voters.length < 5) c = raftpb.ConfChangeSingle.create({ type: CT.ConfChangeAddNode, nodeId: learner });
      if (op === 2 && voter !== undefined && cs.voters.length > 2) c = raftpb.ConfChangeSingle.create({ type: CT.ConfChangeAddLearnerNode, nodeId: voter });
      if (op === 3) {
        const victim = pick(rand, [...cs.learners, ...(cs.voters.length > 2 ? cs.voters : [])].filter((id) => !used.has(id)));
        if (victim !== undefined) c = raftpb.ConfChangeSingle.create({ type: CT.ConfChangeRemoveNode, nodeId: victim });
      }
      if (c === undefined) continue;
      used.add(c.nodeId);
      singles.push(c);
    }
    if (singles.length === 0) return undefined;
    for (const c of singles) if (c.type === CT.ConfChangeRemoveNode) this.everRemoved.add(c.nodeId);
    const only = singles[0];
    if (singles.length === 1 && only !== undefined && rand.float() < 0.5) {
      return raftpb.ConfChange.create({ type: only.type, nodeId: only.nodeId, context: encoder.encode(`cc-${only.nodeId}`) });
    }
    const transition = rand.intn(3) as raftpb.ConfChangeTransition;
    return raftpb.ConfChangeV2.create({ transition, changes: singles, context: encoder.encode('v2') });
  }

  private deliver(): void {
    for (const m of this.net.due(this.now)) {
      const to = this.nodes.get(m.to);
      const from = this.nodes.get(m.from);
      const ok = to?.rn !== undefined && this.net.connected(m.from, m.to);
      if (!ok || to?.rn === undefined) {
        if (from?.rn !== undefined) {
          if (m.type === raftpb.MessageType.MsgSnap) from.rn.reportSnapshot(m.to, false);
          else if (this.rand.float() < 0.1) from.rn.reportUnreachable(m.to);
        }
        continue;
      }
      this.log(describeMessage(m));
      try {
        to.rn.step(m);
      } catch (e) {
        if (!isRaftError(e)) throw e;
      }
      this.net.delivered++;
      if (m.type === raftpb.MessageType.MsgSnap) {
        this.snapshots++;
        from?.rn?.reportSnapshot(m.to, true);
      }
      this.observe(to);
    }
  }

  healAll(): void {
    this.net.faults = healthyNet;
    this.net.heal();
    for (const n of this.nodes.values()) if (!n.alive() && !n.retired) this.restart(n);
    this.log('faults stop');
  }

  /** Whether a proposal made after the heal is applied by a quorum of the latest voters. */
  checkLive(healAt: number): boolean {
    let latest: SimNode | undefined;
    for (const n of this.nodes.values()) if (latest === undefined || n.app.applied > latest.app.applied) latest = n;
    if (latest === undefined) return false;
    let cs = raftpb.ConfState.create();
    for (const [, c] of latest.app.confStates) cs = c;
    const liveIndex = this.liveIndex(latest, healAt);
    if (liveIndex === undefined) return false;
    const acked = cs.voters.filter((id) => (this.nodes.get(id)?.app.applied ?? 0) >= liveIndex).length;
    return acked >= Math.floor(cs.voters.length / 2) + 1;
  }

  private liveMarks = new Map<number, number>();

  noteApplied(e: raftpb.Entry): void {
    if (e.data.length > 5 && decoder.decode(e.data.subarray(0, 5)) === 'live-' && !this.liveMarks.has(e.index)) {
      this.liveMarks.set(e.index, Number(decoder.decode(e.data.subarray(5))));
    }
  }

  private liveIndex(_n: SimNode, healAt: number): number | undefined {
    for (const [index, at] of this.liveMarks) if (at >= healAt) return index;
    return undefined;
  }
}

/** Runs one seed; never throws for a violation (it is in the result). */
export function runSeed(opts: SimOptions): SimResult {
  const faultTicks = opts.faultTicks ?? 600;
  const livenessTicksMax = opts.livenessTicksMax ?? 400;
  const sim = new Sim(opts.seed, opts.trace);
  const result: SimResult = {
    seed: opts.seed,
    ok: true,
    ticks: 0,
    nodes: sim.voterCount,
    proposals: 0,
    applied: 0,
    leaderTerms: 0,
    restarts: 0,
    confChanges: 0,
    snapshots: 0,
    reads: 0,
    delivered: 0,
    livenessTicks: 0,
  };
  try {
    for (; sim.now < faultTicks; sim.now++) sim.tick(true);
    sim.healAll();
    const healAt = sim.now;
    for (; sim.now < healAt + livenessTicksMax; sim.now++) {
      sim.tick(false);
      if (sim.checkLive(healAt)) break;
    }
    result.livenessTicks = sim.now - healAt;
    if (!sim.checkLive(healAt)) {
      throw new Violation('liveness', `no new proposal committed by a quorum within ${livenessTicksMax} ticks after faults stopped`);
    }
  } catch (e) {
    result.ok = false;
    result.failure = e instanceof Violation ? e.message : `crash: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  }
  result.ticks = sim.now;
  result.proposals = sim.proposals;
  result.applied = sim.checker.maxApplied;
  result.leaderTerms = sim.checker.termsWithLeader();
  result.restarts = [...sim.nodes.values()].reduce((s, n) => s + n.restarts, 0);
  result.confChanges = sim.confChanges;
  result.snapshots = sim.snapshots;
  result.reads = sim.reads;
  result.delivered = sim.net.delivered;
  assert(result.ticks > 0);
  return result;
}

/** Parses "A..B" or "N". */
export function parseSeedRange(s: string): [number, number] {
  const m = /^(\d+)(?:\.\.(\d+))?$/.exec(s);
  if (m === null) throw new Error(`bad seed range ${s}: want A..B or N`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (b < a) throw new Error(`bad seed range ${s}`);
  return [a, b];
}
