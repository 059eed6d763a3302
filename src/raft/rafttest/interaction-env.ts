import { type LogFields, type Logger, SeededRand, assert } from '../../base/index.js';
import { raftpb } from '../../pb/index.js';
import { confChangeFromEntry, parseConfChanges } from '../confchange/index.js';
import { type Config, ReadOnlyOption } from '../config.js';
import { describeEntries, describeMessage, describeReady } from '../describe.js';
import { isRaftError } from '../errors.js';
import { RawNode } from '../raw-node.js';
import { MemoryStorage } from '../storage.js';
import { isEmptySnapshot, snapshotIndex } from '../util.js';
import { type TestCase, argVals, hasArg } from './datadriven.js';

const levels = ['debug', 'info', 'warn', 'error', 'none'] as const;
type Level = (typeof levels)[number];

/** A logger that writes into the transcript, so that role changes show up in the expected output. */
class TranscriptLogger implements Logger {
  constructor(
    private readonly env: { out: string[]; level: Level },
    private readonly fields: LogFields = {},
  ) {}

  private log(level: Level, msg: string, fields?: LogFields): void {
    if (levels.indexOf(level) < levels.indexOf(this.env.level)) return;
    const all: Record<string, unknown> = { ...this.fields, ...fields };
    const id = all['id'];
    delete all['id'];
    const rest = Object.entries(all)
      .map(([k, v]) => `${k}=${fmtField(v)}`)
      .join(' ');
    this.env.out.push(`${level.toUpperCase()} ${typeof id === 'bigint' ? id.toString() : ''} ${msg}${rest.length > 0 ? ' ' + rest : ''}`);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  with(fields: LogFields): Logger {
    return new TranscriptLogger(this.env, { ...this.fields, ...fields });
  }
}

function fmtField(v: unknown): string {
  if (v instanceof Set) return `(${[...(v as Set<unknown>)].map(String).join(' ')})`;
  if (typeof v === 'object' && v !== null && 'voters' in v) {
    const cs = v as raftpb.ConfState;
    return `(${cs.voters.join(' ')})`;
  }
  return String(v);
}

/** One node of the environment: what it has persisted, and its in-memory raft. */
interface Node {
  id: bigint;
  storage: MemoryStorage;
  rn: RawNode;
  config: Config;
  /** Membership after each applied conf change, for snapshots: [index, ConfState]. */
  confHistory: Array<[number, raftpb.ConfState]>;
  applied: number;
}

/**
 * Drives a set of RawNodes from datadriven scripts. Messages between nodes
 * wait in a queue until a script delivers (or drops) them, so every
 * interleaving in a transcript is explicit.
 */
export class InteractionEnv {
  out: string[] = [];
  level: Level = 'info';
  nodes: Node[] = [];
  messages: raftpb.Message[] = [];
  private readonly rand = new SeededRand(1);

  handle(c: TestCase): string {
    this.out = [];
    try {
      this.dispatch(c);
      // `quiet` runs the command but keeps its transcript out (setup steps).
      if (hasArg(c, 'quiet')) this.out = [];
    } catch (e) {
      if (isRaftError(e)) this.out.push(`error: ${e.code}`);
      else if (e instanceof Error) this.out.push(`error: ${e.message}`);
      else throw e;
    }
    return this.out.join('\n');
  }

  private node(c: TestCase, key?: string): Node {
    const v = key === undefined ? c.args[0]?.key : argVals(c, key)?.[0];
    const id = Number(v);
    const n = this.nodes[id - 1];
    if (n === undefined) throw new Error(`no node ${v}`);
    return n;
  }

  private ids(c: TestCase): Node[] {
    const bare = c.args.filter((a) => a.vals.length === 0 && /^\d+$/.test(a.key));
    if (bare.length === 0) return this.nodes;
    return bare.map((a) => {
      const n = this.nodes[Number(a.key) - 1];
      if (n === undefined) throw new Error(`no node ${a.key}`);
      return n;
    });
  }

  private dispatch(c: TestCase): void {
    switch (c.cmd) {
      case 'add-nodes':
        return this.addNodes(c);
      case 'campaign':
        return this.node(c).rn.campaign();
      case 'propose':
        return this.node(c).rn.propose(new TextEncoder().encode(c.args[1]?.key ?? ''));
      case 'propose-conf-change':
        return this.proposeConfChange(c);
      case 'process-ready':
        for (const n of this.ids(c)) this.processReady(n);
        return;
      case 'deliver-msgs':
        this.deliverMsgs(c);
        return;
      case 'stabilize':
        return this.stabilize(this.ids(c));
      case 'tick-election': {
        // A leader ticks one election timeout; anyone else ticks until its
        // randomized timeout fires.
        const r = this.node(c).rn.raft;
        const n = r.state === 'StateLeader' ? r.electionTimeout : Math.max(1, r.randomizedElectionTimeout - r.electionElapsed);
        return this.tickN(this.node(c), n);
      }
      case 'tick-heartbeat':
        return this.tickN(this.node(c), this.node(c).rn.raft.heartbeatTimeout);
      case 'tick':
        return this.tickN(this.node(c), Number(argVals(c, 'n')?.[0] ?? '1'));
      case 'transfer-leadership':
        return this.node(c, 'from').rn.transferLeader(BigInt(argVals(c, 'to')?.[0] ?? '0'));
      case 'compact':
        return this.compact(this.node(c), Number(c.args[1]?.key));
      case 'raft-log':
        return this.raftLog(this.node(c));
      case 'raft-state':
        return this.raftState();
      case 'status':
        return this.status(this.node(c));
      case 'read-index':
        return this.node(c).rn.readIndex(new TextEncoder().encode(c.args[1]?.key ?? ''));
      case 'report-unreachable':
        return this.node(c).rn.reportUnreachable(BigInt(c.args[1]?.key ?? '0'));
      case 'report-snapshot':
        return this.node(c).rn.reportSnapshot(BigInt(c.args[1]?.key ?? '0'), !hasArg(c, 'failed'));
      case 'forget-leader':
        return this.node(c).rn.forgetLeader();
      case 'send-snapshot':
        return this.sendSnapshot(this.node(c), BigInt(c.args[1]?.key ?? '0'));
      case 'restart':
        return this.restart(this.node(c));
      case 'log-level':
        this.level = (c.args[0]?.key ?? 'info') as Level;
        assert(levels.includes(this.level), `bad level ${this.level}`);
        return;
      default:
        throw new Error(`unknown command ${c.cmd}`);
    }
  }

  /**
   * add-nodes N [voters=(1,2,3)] [learners=(4)] [index=K] [prevote] [checkquorum]
   * [lease-reads] [max-msg-bytes=] [max-inflight=] [max-inflight-bytes=]
   * [max-uncommitted-bytes=] [election=] [heartbeat=] [disable-forwarding]
   * Without voters the nodes start empty (new members).
   */
  private addNodes(c: TestCase): void {
    const n = Number(c.args[0]?.key);
    const voters = (argVals(c, 'voters') ?? []).map(BigInt);
    const learners = (argVals(c, 'learners') ?? []).map(BigInt);
    const index = Number(argVals(c, 'index')?.[0] ?? '1');
    const num = (k: string): number | undefined => {
      const v = argVals(c, k)?.[0];
      return v === undefined ? undefined : Number(v);
    };
    for (let i = 0; i < n; i++) {
      const id = BigInt(this.nodes.length + 1);
      const storage = new MemoryStorage();
      const cs = raftpb.ConfState.create({ voters, learners });
      if (voters.length > 0) {
        storage.applySnapshot(
          raftpb.Snapshot.create({ metadata: raftpb.SnapshotMetadata.create({ index, term: 1, confState: cs }) }),
        );
      }
      const config: Config = {
        id,
        storage,
        rand: this.rand,
        electionTicks: num('election') ?? 10,
        heartbeatTicks: num('heartbeat') ?? 1,
        preVote: hasArg(c, 'prevote'),
        checkQuorum: hasArg(c, 'checkquorum'),
        readOnlyOption: hasArg(c, 'lease-reads') ? ReadOnlyOption.ReadOnlyLeaseBased : ReadOnlyOption.ReadOnlySafe,
        msgAppBytesMax: num('max-msg-bytes') ?? 1024 * 1024,
        inflightMsgsMax: num('max-inflight') ?? 256,
        inflightBytesMax: num('max-inflight-bytes') ?? 0,
        uncommittedBytesMax: num('max-uncommitted-bytes') ?? 0,
        disableProposalForwarding: hasArg(c, 'disable-forwarding'),
        logger: new TranscriptLogger(this),
      };
      const rn = new RawNode(config);
      this.nodes.push({ id, storage, rn, config, confHistory: [[index, cs]], applied: voters.length > 0 ? index : 0 });
    }
  }

  private proposeConfChange(c: TestCase): void {
    const cc = parseConfChanges(c.input);
    if (hasArg(c, 'v1')) {
      assert(cc.changes.length === 1, 'v1 takes exactly one change');
      const ch = cc.changes[0];
      assert(ch !== undefined);
      this.node(c).rn.proposeConfChange(raftpb.ConfChange.create({ type: ch.type, nodeId: ch.nodeId }));
      return;
    }
    this.node(c).rn.proposeConfChange(cc);
  }

  /** Persists, applies and advances one Ready of node n; its messages join the queue. */
  processReady(n: Node): boolean {
    if (!n.rn.hasReady()) return false;
    const rd = n.rn.ready();
    this.out.push(`> ${n.id} handling Ready`);
    this.out.push(indent(describeReady(rd)));
    if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) {
      n.storage.applySnapshot(rd.snapshot);
      const cs = rd.snapshot.metadata?.confState ?? raftpb.ConfState.create();
      n.confHistory = [[snapshotIndex(rd.snapshot), cs]];
      n.applied = snapshotIndex(rd.snapshot);
    }
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      // After a restart raft replays entries after its snapshot: conf
      // changes go to raft again; the application skips what it has.
      const cc = confChangeFromEntry(e);
      if (cc !== undefined) {
        const cs = n.rn.applyConfChange(cc);
        if (e.index > n.applied) n.confHistory.push([e.index, cs]);
      }
      if (e.index > n.applied) n.applied = e.index;
    }
    for (const m of rd.messages) this.messages.push(m);
    n.rn.advance(rd);
    return true;
  }

  /** deliver-msgs [drop] [type=MsgApp] [ids...]: delivers (or drops) queued messages to those nodes. */
  private deliverMsgs(c: TestCase): number {
    const targets = new Set(this.ids(c).map((n) => n.id));
    const drop = hasArg(c, 'drop');
    const type = argVals(c, 'type')?.[0];
    const keep: raftpb.Message[] = [];
    const take: raftpb.Message[] = [];
    for (const m of this.messages) {
      const typeOk = type === undefined || raftpb.MessageType_info.names[m.type] === type;
      if (targets.has(m.to) && typeOk) take.push(m);
      else keep.push(m);
    }
    this.messages = keep;
    for (const m of take) {
      if (drop) {
        this.out.push(`dropped: ${describeMessage(m)}`);
        continue;
      }
      this.out.push(describeMessage(m));
      const to = this.nodes[Number(m.to) - 1];
      if (to === undefined) continue;
      try {
        to.rn.step(m);
      } catch (e) {
        if (!isRaftError(e)) throw e;
        this.out.push(`  error: ${e.code}`);
      }
    }
    return take.length;
  }

  private stabilize(nodes: Node[]): void {
    for (let round = 0; round < 1000; round++) {
      let progress = false;
      for (const n of nodes) if (this.processReady(n)) progress = true;
      for (const n of nodes) {
        if (!this.messages.some((m) => m.to === n.id)) continue;
        this.out.push(`> ${n.id} receiving messages`);
        const before = this.out.length;
        this.deliverMsgs({ line: 0, cmd: 'deliver-msgs', args: [{ key: String(n.id), vals: [] }], input: '', expected: '', before: [] });
        for (let i = before; i < this.out.length; i++) this.out[i] = indent(this.out[i] ?? '');
        progress = true;
      }
      // Messages to nodes outside the set stay queued.
      if (!progress) return;
    }
    throw new Error('stabilize did not converge in 1000 rounds');
  }

  private tickN(n: Node, count: number): void {
    for (let i = 0; i < count; i++) n.rn.tick();
  }

  private compact(n: Node, index: number): void {
    // A snapshot holds applied state only.
    if (index > n.applied) throw new Error(`compact ${index} is past applied index ${n.applied}`);
    let cs = raftpb.ConfState.create();
    for (const [i, s] of n.confHistory) if (i <= index) cs = s;
    n.storage.createSnapshot(index, cs, new TextEncoder().encode(`snap@${index}`));
    n.storage.compact(index);
    this.raftLog(n);
  }

  private raftLog(n: Node): void {
    const fi = n.storage.firstIndex();
    const li = n.storage.lastIndex();
    if (li < fi) {
      this.out.push(`log is empty: first index=${fi}, last index=${li}`);
      return;
    }
    this.out.push(describeEntries(n.storage.entries(fi, li + 1, Number.MAX_SAFE_INTEGER)));
  }

  private raftState(): void {
    for (const n of this.nodes) {
      const st = n.rn.status();
      const role = st.config.voters.includes(n.id) || st.config.votersOutgoing.includes(n.id) ? 'Voter' : 'Non-Voter';
      this.out.push(`${n.id}: ${st.raftState} (${role}) Term:${st.term} Lead:${st.lead}`);
    }
  }

  private status(n: Node): void {
    const st = n.rn.status();
    for (const [id, pr] of st.progress) {
      const p = n.rn.raft.trk.progress.get(id);
      this.out.push(`${id}: ${p?.toString() ?? pr.state}`);
    }
    if (st.progress.size === 0) this.out.push(`${n.id}: ${st.raftState} Term:${st.term} Lead:${st.lead} Commit:${st.commit} Applied:${st.applied}`);
  }

  private sendSnapshot(from: Node, to: bigint): void {
    const snap = from.storage.snapshot();
    const m = raftpb.Message.create({ type: raftpb.MessageType.MsgSnap, from: from.id, to, term: from.rn.raft.term, snapshot: snap });
    this.messages.push(m);
    this.out.push(describeMessage(m));
  }

  /** Crash and restart: the node keeps only what it persisted. */
  private restart(n: Node): void {
    n.rn = new RawNode(n.config);
    this.messages = this.messages.filter((m) => m.from !== n.id);
  }
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => '  ' + l)
    .join('\n');
}
