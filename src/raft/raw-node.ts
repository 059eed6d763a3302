import { assert, idNone } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { type AnyConfChange, confChangeToEntryData } from './confchange/index.js';
import type { Config } from './config.js';
import { RaftError, RaftErrorCode } from './errors.js';
import { Raft, type StateType, type StepResult, newMessage } from './raft.js';
import type { ReadState } from './read-only.js';
import { type Status, getStatus } from './status.js';
import { hardStateEqual, isEmptyHardState, isLocalMsg, isResponseMsg, payloadSizeBytes } from './util.js';

const MT = raftpb.MessageType;

/** Volatile state worth telling the application about: who leads, and our role. */
export interface SoftState {
  lead: bigint;
  raftState: StateType;
}

/**
 * One batch of work for the application; see index.ts for what it must do
 * with each field, and in which order.
 */
export interface Ready {
  /** Set when the leader or our role changed since the last Ready. */
  softState: SoftState | undefined;
  /** Set when term, vote or commit changed: persist it. */
  hardState: raftpb.HardState | undefined;
  /** Reads that may be served once applied >= index. */
  readStates: ReadState[];
  /** Entries to append to stable storage (they may overwrite a suffix of it). */
  entries: raftpb.Entry[];
  /** A snapshot to persist and install, if any. */
  snapshot: raftpb.Snapshot | undefined;
  /** Committed entries to apply, in order. */
  committedEntries: raftpb.Entry[];
  /** Messages to send (after persisting, unless sendBeforePersist). */
  messages: raftpb.Message[];
  /** entries, or a new term or vote: the writes must be synced to disk before the messages go. */
  mustSync: boolean;
  /**
   * True when every message may be sent before entries and hardState are
   * durable: a leader's appends and heartbeats in a term whose vote is
   * already durable (thesis §10.2.1).
   */
  sendBeforePersist: boolean;
}

/** A member of a brand-new cluster: its id and the opaque context of its ConfChange (member info). */
export interface Peer {
  id: bigint;
  context?: Uint8Array;
}

/** Messages a leader may send before persisting its own entries. */
const earlyTypes = new Set<raftpb.MessageType>([MT.MsgApp, MT.MsgHeartbeat, MT.MsgSnap, MT.MsgTimeoutNow, MT.MsgReadIndexResp]);

/**
 * The application's handle on a raft node: feed it ticks and messages, take
 * Ready batches out, acknowledge each with advance(). One Ready at a time.
 */
export class RawNode {
  readonly raft: Raft;
  private prevSoftSt: SoftState;
  private prevHardSt: raftpb.HardState;
  private outstanding: Ready | undefined = undefined;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftSt = this.softState();
    this.prevHardSt = this.raft.hardState();
  }

  /**
   * Initializes a brand-new member of a brand-new cluster: the log starts
   * with one ConfChangeAddNode per peer (term 1, committed), so every member
   * begins with the same configuration and the application sees the member
   * contexts when it applies them. Storage must be empty.
   */
  bootstrap(peers: readonly Peer[]): void {
    assert(peers.length > 0, 'must provide at least one peer to Bootstrap');
    const r = this.raft;
    assert(r.raftLog.storage.lastIndex() === 0, "can't bootstrap a nonempty Storage");
    r.becomeFollower(1, idNone);
    const ents = peers.map((p, i) => {
      const cc = raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeAddNode, nodeId: p.id, context: p.context ?? new Uint8Array(0) });
      const { type, data } = confChangeToEntryData(cc);
      return raftpb.Entry.create({ type, term: 1, index: i + 1, data });
    });
    r.raftLog.append(ents);
    // Committed by definition: every member starts with the same entries.
    r.raftLog.committed = ents.length;
    for (const p of peers) {
      r.applyConfChange(raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeAddNode, nodeId: p.id }));
    }
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (as if the election timeout had passed). */
  campaign(): void {
    this.raft.step(newMessage({ type: MT.MsgHup, from: this.raft.id }));
  }

  /** Proposes data to be appended; throws RaftError(ProposalDropped) when it cannot be. */
  propose(data: Uint8Array): void {
    this.stepLocal(newMessage({ type: MT.MsgProp, from: this.raft.id, entries: [raftpb.Entry.create({ data })] }));
  }

  /** Proposes a membership change; its context bytes travel untouched. Throws ProposalDropped. */
  proposeConfChange(cc: AnyConfChange): void {
    const { type, data } = confChangeToEntryData(cc);
    this.stepLocal(newMessage({ type: MT.MsgProp, from: this.raft.id, entries: [raftpb.Entry.create({ type, data })] }));
  }

  /** Applies a committed conf change (call it when applying its entry); returns the new membership. */
  applyConfChange(cc: AnyConfChange): raftpb.ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Steps a message from the network. Throws StepLocalMsg for message types
   * only a node generates for itself, StepPeerNotFound for a response from
   * a peer not in the configuration. Proposals forwarded by followers that
   * cannot be accepted are dropped silently (the follower's client retries).
   */
  step(m: raftpb.Message): void {
    if (isLocalMsg(m.type)) throw new RaftError(RaftErrorCode.StepLocalMsg, `type ${m.type}`);
    assert(
      Number.isSafeInteger(m.term) && Number.isSafeInteger(m.index) && Number.isSafeInteger(m.logTerm) &&
        Number.isSafeInteger(m.commit) && Number.isSafeInteger(m.rejectHint),
      'message counters must be safe integers',
    );
    if (isResponseMsg(m.type) && !this.raft.trk.progress.has(m.from)) {
      throw new RaftError(RaftErrorCode.StepPeerNotFound, `from ${m.from}`);
    }
    this.raft.step(m);
  }

  /** Asks the leader to hand leadership to `transferee` (a voter). */
  transferLeader(transferee: bigint): void {
    this.raft.step(newMessage({ type: MT.MsgTransferLeader, from: transferee }));
  }

  /**
   * Requests a linearizable read: a ReadState with this ctx appears in a
   * later Ready. ctx must be non-empty and unique among pending reads.
   * Throws ProposalDropped when there is no leader to ask.
   */
  readIndex(ctx: Uint8Array): void {
    assert(ctx.length > 0, 'readIndex needs a non-empty request context');
    this.stepLocal(newMessage({ type: MT.MsgReadIndex, from: this.raft.id, context: ctx }));
  }

  /**
   * The index readIndex() would be answered with at once, without a
   * heartbeat round, or undefined when a round is needed: known only to the
   * sole voter of the configuration while it leads (with an entry of its
   * term committed). A read may then be served once applied reaches it.
   */
  localReadIndex(): number | undefined {
    return this.raft.localReadIndex();
  }

  /** The transport could not reach id: stop pipelining to it. */
  reportUnreachable(id: bigint): void {
    this.raft.step(newMessage({ type: MT.MsgUnreachable, from: id }));
  }

  /** The snapshot sent to id was delivered (ok) or failed. */
  reportSnapshot(id: bigint, ok: boolean): void {
    this.raft.step(newMessage({ type: MT.MsgSnapStatus, from: id, reject: !ok }));
  }

  /**
   * Forget the current leader (a follower that knows the leader is gone),
   * so that it can vote at once instead of waiting out the lease.
   * Ignored with lease-based reads.
   */
  forgetLeader(): void {
    this.raft.step(newMessage({ type: MT.MsgForgetLeader }));
  }

  private stepLocal(m: raftpb.Message): void {
    const r: StepResult = this.raft.step(m);
    if (r !== undefined) throw new RaftError(r);
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, raftState: this.raft.state };
  }

  /** Whether ready() has something; false while a Ready awaits advance(). */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    const ss = this.softState();
    if (ss.lead !== this.prevSoftSt.lead || ss.raftState !== this.prevSoftSt.raftState) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardSt)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextCommittedEnts()) return true;
    return r.readStates.length > 0;
  }

  /** Takes the current batch of work. Call advance(rd) before the next ready(). */
  ready(): Ready {
    assert(this.outstanding === undefined, 'ready() called before advance() of the previous Ready');
    const r = this.raft;
    const ss = this.softState();
    const softChanged = ss.lead !== this.prevSoftSt.lead || ss.raftState !== this.prevSoftSt.raftState;
    const hs = r.hardState();
    const hardChanged = !isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardSt);
    const entries = r.raftLog.unstableEntries().slice();
    const messages = r.msgs;
    r.msgs = [];
    const rd: Ready = {
      softState: softChanged ? ss : undefined,
      hardState: hardChanged ? hs : undefined,
      readStates: r.readStates,
      entries,
      snapshot: r.raftLog.unstable.snapshot,
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages,
      mustSync: entries.length > 0 || hs.term !== this.prevHardSt.term || hs.vote !== this.prevHardSt.vote,
      sendBeforePersist: false,
    };
    r.readStates = [];
    rd.sendBeforePersist =
      r.state === 'StateLeader' &&
      hs.term === this.prevHardSt.term &&
      hs.vote === this.prevHardSt.vote &&
      messages.every((m) => earlyTypes.has(m.type));
    if (softChanged) this.prevSoftSt = ss;
    this.outstanding = rd;
    return rd;
  }

  /**
   * Acknowledges a Ready: its entries, hardState and snapshot are durable,
   * its messages handed to the transport, its committed entries applied.
   */
  advance(rd: Ready): void {
    assert(this.outstanding === rd, 'advance() of a Ready that is not the outstanding one');
    this.outstanding = undefined;
    const r = this.raft;
    if (rd.hardState !== undefined) this.prevHardSt = rd.hardState;
    if (rd.snapshot !== undefined) r.appliedSnapshot(rd.snapshot);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) {
      let bytes = 0;
      for (const e of rd.committedEntries) bytes += payloadSizeBytes(e);
      r.appliedTo(lastCommitted.index, bytes);
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) r.raftLog.stableTo(last.index, last.term);
    r.onPersisted();
  }

  status(): Status {
    return getStatus(this.raft);
  }
}
