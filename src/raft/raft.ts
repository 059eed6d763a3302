import { type Logger, type Rand, assert, idNone } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import {
  type AnyConfChange,
  type ChangeResult,
  Changer,
  asV2,
  confChangeFromEntry,
  enterJoint,
  leaveJoint,
  restoreConfState,
} from './confchange/index.js';
import { type Config, ReadOnlyOption, validateConfig } from './config.js';
import { RaftErrorCode } from './errors.js';
import { RaftLog, termCompacted } from './log.js';
import { VoteResult, jointVoteResult } from './quorum/index.js';
import { type ReadState, ReadOnly, pendingReadsMax } from './read-only.js';
import { type Progress, ProgressState, ProgressTracker, isJoint, sortedIds } from './tracker/index.js';
import {
  entriesSizeBytes,
  isEmptyHardState,
  isEmptySnapshot,
  payloadSizeBytes,
  snapshotIndex,
  snapshotTerm,
  voteRespMsgType,
} from './util.js';

const MT = raftpb.MessageType;
type MessageType = raftpb.MessageType;

/** The role of a node. */
export const StateType = {
  StateFollower: 'StateFollower',
  StateCandidate: 'StateCandidate',
  StateLeader: 'StateLeader',
  StatePreCandidate: 'StatePreCandidate',
} as const;
export type StateType = (typeof StateType)[keyof typeof StateType];

/** Why a node campaigns. */
export const CampaignType = {
  /** The first (pre-vote) phase of an election, when preVote is on. */
  CampaignPreElection: 'CampaignPreElection',
  /** A normal election. */
  CampaignElection: 'CampaignElection',
  /** An election asked for by the leader (MsgTimeoutNow): voters ignore their lease. */
  CampaignTransfer: 'CampaignTransfer',
} as const;
export type CampaignType = (typeof CampaignType)[keyof typeof CampaignType];

/** The context a transfer election's MsgVote carries, so that voters ignore their leader lease. */
export const campaignTransferCtx = new TextEncoder().encode(CampaignType.CampaignTransfer);

/** The outcome of a step: undefined, or the code of an expected failure (a dropped proposal). */
export type StepResult = typeof RaftErrorCode.ProposalDropped | undefined;

const noCtx = new Uint8Array(0);

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A message with every field at its default, then the given ones. */
export function newMessage(init: Partial<raftpb.Message>): raftpb.Message {
  return raftpb.Message.create(init);
}

/**
 * The Raft state machine of one node (thesis chapter 3 and §4, §6, §9).
 * Deterministic: it changes only in tick() and step(), and its outputs are
 * the messages in `msgs`, the read states, and the log's unstable and
 * committed parts, which RawNode turns into Ready batches.
 */
export class Raft {
  readonly id: bigint;
  term = 0;
  vote: bigint = idNone;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  state: StateType = StateType.StateFollower;
  /** This node is a learner in the current configuration. */
  isLearner = false;
  /** Messages to send; RawNode takes them into the next Ready. */
  msgs: raftpb.Message[] = [];
  lead: bigint = idNone;
  /** The member a leadership transfer is handing over to, or none. */
  leadTransferee: bigint = idNone;
  /**
   * Only one conf change may be pending: this is the log index of the last
   * one the leader appended; a new one is refused until applied >= it.
   */
  pendingConfIndex = 0;
  /** The pending conf change leaves this node out of the (incoming) voters. */
  pendingConfRemovesSelf = false;
  /** Payload bytes appended by this leader and not yet applied (approximately). */
  uncommittedBytes = 0;
  readOnly: ReadOnly;
  /** Ticks since the last election timeout reset (or, at the leader, the last check-quorum). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  readonly msgAppBytesMax: number;
  readonly uncommittedBytesMax: number;
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  private pendingReadIndexMessages: raftpb.Message[] = [];
  private readonly rand: Rand;
  readonly logger: Logger;
  private tickFn: () => void = () => this.tickElection();
  private stepFn: (m: raftpb.Message) => StepResult = (m) => this.stepFollower(m);

  constructor(c: Config) {
    const cfg = validateConfig(c);
    this.id = cfg.id;
    this.raftLog = new RaftLog(cfg.storage, cfg.readyCommittedBytesMax);
    this.trk = new ProgressTracker(cfg.inflightMsgsMax, cfg.inflightBytesMax);
    this.readOnly = new ReadOnly(cfg.readOnlyOption);
    this.checkQuorum = cfg.checkQuorum;
    this.preVote = cfg.preVote;
    this.heartbeatTimeout = cfg.heartbeatTicks;
    this.electionTimeout = cfg.electionTicks;
    this.disableProposalForwarding = cfg.disableProposalForwarding;
    this.msgAppBytesMax = cfg.msgAppBytesMax;
    this.uncommittedBytesMax = cfg.uncommittedBytesMax;
    this.rand = cfg.rand;
    this.logger = cfg.logger;

    const { hardState, confState } = cfg.storage.initialState();
    const restored = restoreConfState(confState, this.raftLog.lastIndex(), cfg.inflightMsgsMax, cfg.inflightBytesMax);
    this.switchToConfig(restored);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (cfg.applied > 0) this.raftLog.appliedTo(cfg.applied);
    this.becomeFollower(this.term, idNone);
    this.logger.info('newRaft', {
      id: this.id,
      peers: this.trk.config.voters[0],
      term: this.term,
      commit: this.raftLog.committed,
      applied: this.raftLog.applied,
      lastIndex: this.raftLog.lastIndex(),
      lastTerm: this.raftLog.lastTerm(),
    });
  }

  hardState(): raftpb.HardState {
    return raftpb.HardState.create({ term: this.term, vote: this.vote, commit: this.raftLog.committed });
  }

  private loadState(hs: raftpb.HardState): void {
    assert(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---- sending ----

  private send(m: raftpb.Message): void {
    if (m.from === idNone) m.from = this.id;
    const t = m.type;
    if (t === MT.MsgVote || t === MT.MsgVoteResp || t === MT.MsgPreVote || t === MT.MsgPreVoteResp) {
      // Vote messages carry the term they are about, which for pre-votes is
      // not the node's own term.
      assert(m.term !== 0, `term should be set when sending ${t}`);
    } else {
      assert(m.term === 0, `term should not be set when sending ${t} (was ${m.term})`);
      // Proposals and read requests forwarded to the leader are local: they
      // carry no term, so that a term change does not invalidate them.
      if (t !== MT.MsgProp && t !== MT.MsgReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends an append (or a snapshot) to `to` even if it carries no entries. */
  sendAppend(to: bigint): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends an append with the entries `to` is missing, unless its progress is
   * paused or (without sendIfEmpty) there is nothing to send. Falls back to a
   * snapshot when the entries are compacted. Returns whether it sent.
   */
  maybeSendAppend(to: bigint, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.term(prevIndex);
    if (prevTerm === termCompacted) return this.maybeSendSnapshot(to, pr);
    assert(prevTerm >= 0, `${this.id}: no term for index ${prevIndex} (last ${this.raftLog.lastIndex()})`);
    // A replicating follower with a full pipeline gets an empty append: if
    // every message in flight was lost, its answer (ack or reject) is what
    // frees the pipeline again.
    const throttled = pr.state === ProgressState.StateReplicate && pr.inflights.full();
    const ents = throttled ? [] : this.raftLog.entries(pr.next, this.msgAppBytesMax);
    if (ents.length === 0 && !sendIfEmpty) return false;
    const last = ents[ents.length - 1];
    this.send(
      newMessage({
        type: MT.MsgApp,
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
    pr.sentEntries(ents.length, last?.index ?? 0, ents.length > 0 ? entriesSizeBytes(ents) : 0);
    return true;
  }

  private maybeSendSnapshot(to: bigint, pr: Progress): boolean {
    // A follower we have not heard from may be down: a snapshot is costly,
    // wait until it answers (heartbeat responses mark it active).
    if (!pr.recentActive) return false;
    let snap: raftpb.Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof Error && 'code' in e && e.code === RaftErrorCode.SnapshotTemporarilyUnavailable) return false;
      throw e;
    }
    assert(!isEmptySnapshot(snap), 'need non-empty snapshot');
    pr.becomeSnapshot(snapshotIndex(snap));
    this.send(newMessage({ type: MT.MsgSnap, to, snapshot: snap }));
    return true;
  }

  private sendHeartbeat(to: bigint, ctx: Uint8Array): void {
    // Never tell a follower to commit past what it is known to have: it
    // could not (its log may be shorter).
    const pr = this.trk.progress.get(to);
    const commit = Math.min(pr?.match ?? 0, this.raftLog.committed);
    this.send(newMessage({ type: MT.MsgHeartbeat, to, commit, context: ctx }));
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx() ?? noCtx);
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  private sendTimeoutNow(to: bigint): void {
    this.send(newMessage({ type: MT.MsgTimeoutNow, to }));
  }

  // ---- applying and committing ----

  /**
   * The application applied entries up to index (`bytes` of payload): shrinks
   * the uncommitted budget and, in an auto-leave joint config, proposes
   * leaving it once the joint config itself is applied.
   */
  appliedTo(index: number, bytes: number): void {
    const newApplied = Math.max(index, this.raftLog.applied);
    this.raftLog.appliedTo(newApplied);
    this.reduceUncommittedSize(bytes);
    this.maybeAutoLeave();
  }

  appliedSnapshot(snap: raftpb.Snapshot): void {
    const index = snapshotIndex(snap);
    this.raftLog.stableSnapTo(index);
    this.appliedTo(index, 0);
  }

  private maybeAutoLeave(): void {
    if (!this.trk.config.autoLeave || this.state !== StateType.StateLeader) return;
    if (this.raftLog.applied < this.pendingConfIndex) return;
    const e = raftpb.Entry.create({ type: raftpb.EntryType.EntryConfChangeV2, data: raftpb.ConfChangeV2.encode(raftpb.ConfChangeV2.create()) });
    const r = this.step(newMessage({ type: MT.MsgProp, from: this.id, entries: [e] }));
    // Dropped (a transfer in progress): the next heartbeat tick retries.
    if (r === undefined) this.logger.info('initiating automatic transition out of joint configuration', { id: this.id, config: this.trk.confState() });
  }

  /** Commits what a quorum has acknowledged, if it is of the current term. */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  /** Appends entries as the leader; false (dropped) when over the uncommitted limit. */
  private appendEntry(es: raftpb.Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      const e = es[i];
      assert(e !== undefined);
      e.term = this.term;
      e.index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) {
      this.logger.warn('appending new entries would exceed the uncommitted entry size limit; dropping proposal', { id: this.id });
      return false;
    }
    this.raftLog.append(es);
    // The leader does not count its own entries yet: they are not durable.
    // It may replicate them before its disk write ends (thesis §10.2.1), and
    // counts itself in onPersisted(). Counting at once would let a single
    // voter commit, and tell its learners, entries it then loses in a crash
    // (found by the simulation, seed 575).
    return true;
  }

  /** The last index that is durable and part of our log (unstable entries override the stored tail). */
  private durableIndex(): number {
    return Math.min(this.raftLog.lastIndex(), this.raftLog.unstable.offset - 1);
  }

  /**
   * The application made everything handed out so far durable (RawNode
   * calls this on advance): the leader now counts its own entries.
   */
  onPersisted(): void {
    if (this.state !== StateType.StateLeader) return;
    const pr = this.trk.progress.get(this.id);
    if (pr === undefined) return;
    if (pr.maybeUpdate(this.durableIndex()) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  private increaseUncommittedSize(ents: readonly raftpb.Entry[]): boolean {
    let s = 0;
    for (const e of ents) s += payloadSizeBytes(e);
    // A single proposal over the limit still goes through when nothing is
    // pending, or the node could never make progress with it.
    if (this.uncommittedBytesMax > 0 && this.uncommittedBytes > 0 && s > 0 && this.uncommittedBytes + s > this.uncommittedBytesMax) {
      return false;
    }
    this.uncommittedBytes += s;
    return true;
  }

  private reduceUncommittedSize(s: number): void {
    this.uncommittedBytes = s > this.uncommittedBytes ? 0 : this.uncommittedBytes - s;
  }

  // ---- roles ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = idNone;
    }
    this.lead = idNone;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    const durable = this.durableIndex();
    this.trk.visit((id, pr) => pr.resetForTerm(id === this.id ? durable : 0, last + 1));
    this.pendingConfIndex = 0;
    this.pendingConfRemovesSelf = false;
    this.uncommittedBytes = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rand.intn(this.electionTimeout);
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  becomeFollower(term: number, lead: bigint): void {
    this.stepFn = (m) => this.stepFollower(m);
    this.reset(term);
    this.tickFn = () => this.tickElection();
    this.lead = lead;
    this.state = StateType.StateFollower;
    this.logger.info('became follower', { id: this.id, term: this.term });
  }

  becomeCandidate(): void {
    assert(this.state !== StateType.StateLeader, 'invalid transition [leader -> candidate]');
    this.stepFn = (m) => this.stepCandidate(m);
    this.reset(this.term + 1);
    this.tickFn = () => this.tickElection();
    this.vote = this.id;
    this.state = StateType.StateCandidate;
    this.logger.info('became candidate', { id: this.id, term: this.term });
  }

  becomePreCandidate(): void {
    assert(this.state !== StateType.StateLeader, 'invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither term nor vote: it only asks.
    this.stepFn = (m) => this.stepCandidate(m);
    this.trk.resetVotes();
    this.tickFn = () => this.tickElection();
    this.lead = idNone;
    this.state = StateType.StatePreCandidate;
    this.logger.info('became pre-candidate', { id: this.id, term: this.term });
  }

  becomeLeader(): void {
    assert(this.state !== StateType.StateFollower, 'invalid transition [follower -> leader]');
    this.stepFn = (m) => this.stepLeader(m);
    this.reset(this.term);
    this.tickFn = () => this.tickHeartbeat();
    this.lead = this.id;
    this.state = StateType.StateLeader;
    const pr = this.trk.progress.get(this.id);
    if (pr !== undefined) {
      // The leader's own progress is always replicating and always active.
      pr.becomeReplicate();
      pr.recentActive = true;
    }
    // There may be an unapplied conf change in the log; refusing new ones
    // until everything up to here is applied is always safe.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An empty entry of the new term: committing it commits everything
    // before it (a leader only counts replicas for entries of its own term).
    const ok = this.appendEntry([raftpb.Entry.create()]);
    assert(ok, 'empty entry was dropped');
    this.logger.info('became leader', { id: this.id, term: this.term });
  }

  // ---- ticking ----

  tick(): void {
    this.tickFn();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: MT.MsgHup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage({ type: MT.MsgCheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is given up.
      if (this.state === StateType.StateLeader && this.leadTransferee !== idNone) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.StateLeader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: MT.MsgBeat, from: this.id }));
    }
    // Retry leaving a joint config if the proposal was dropped earlier.
    if (this.state === StateType.StateLeader) this.maybeAutoLeave();
  }

  // ---- elections ----

  /** Whether this node may become leader: a voter with no snapshot pending. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.StateLeader) return;
    if (!this.promotable()) {
      this.logger.warn('is unpromotable and can not campaign', { id: this.id });
      return;
    }
    // A conf change committed but not applied may change who votes: wait.
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn('cannot campaign since there are still pending configuration changes to apply', { id: this.id, term: this.term });
      return;
    }
    this.logger.info('is starting a new election', { id: this.id, term: this.term });
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    const log = this.raftLog;
    if (log.applied >= log.committed) return false;
    // Scan in pages so a long backlog does not load all at once.
    let lo = Math.max(log.applied + 1, log.firstIndex());
    const hi = log.committed + 1;
    const pageBytes = 1024 * 1024;
    for (let pages = 0; lo < hi; pages++) {
      assert(pages <= hi - lo + 1, 'conf change scan does not progress');
      const ents = log.slice(lo, hi, pageBytes);
      for (const e of ents) if (e.type !== raftpb.EntryType.EntryNormal) return true;
      lo += ents.length;
    }
    return false;
  }

  campaign(t: CampaignType): void {
    if (!this.promotable()) return;
    let voteMsg: MessageType;
    let term: number;
    if (t === CampaignType.CampaignPreElection) {
      this.becomePreCandidate();
      voteMsg = MT.MsgPreVote;
      // A pre-vote asks about the next term without entering it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MT.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, voteRespMsgType(voteMsg), true) === VoteResult.VoteWon) {
      // A single voter wins at once.
      if (t === CampaignType.CampaignPreElection) this.campaign(CampaignType.CampaignElection);
      else this.becomeLeader();
      return;
    }
    const ctx = t === CampaignType.CampaignTransfer ? campaignTransferCtx : noCtx;
    for (const id of sortedIds(this.trk.voterIds())) {
      if (id === this.id) continue;
      this.send(
        newMessage({
          type: voteMsg,
          to: id,
          term,
          index: this.raftLog.lastIndex(),
          logTerm: this.raftLog.lastTerm(),
          context: ctx,
        }),
      );
    }
  }

  private poll(id: bigint, _t: MessageType, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---- stepping ----

  /** Feeds a message into the state machine (the entry point for everything but ticks). */
  step(m: raftpb.Message): StepResult {
    if (!this.stepTerm(m)) return undefined;
    switch (m.type) {
      case MT.MsgHup:
        this.hup(this.preVote ? CampaignType.CampaignPreElection : CampaignType.CampaignElection);
        return undefined;
      case MT.MsgVote:
      case MT.MsgPreVote:
        this.handleVoteRequest(m);
        return undefined;
      case MT.MsgBeat:
      case MT.MsgProp:
      case MT.MsgApp:
      case MT.MsgAppResp:
      case MT.MsgVoteResp:
      case MT.MsgSnap:
      case MT.MsgHeartbeat:
      case MT.MsgHeartbeatResp:
      case MT.MsgUnreachable:
      case MT.MsgSnapStatus:
      case MT.MsgCheckQuorum:
      case MT.MsgTransferLeader:
      case MT.MsgTimeoutNow:
      case MT.MsgReadIndex:
      case MT.MsgReadIndexResp:
      case MT.MsgPreVoteResp:
      case MT.MsgForgetLeader:
      default:
        return this.stepFn(m);
    }
  }

  /** Handles the message's term; false when the message is done with (ignored or answered). */
  private stepTerm(m: raftpb.Message): boolean {
    if (m.term === 0) return true; // a local message
    if (m.term > this.term) {
      if (m.type === MT.MsgVote || m.type === MT.MsgPreVote) {
        const force = bytesEqual(m.context, campaignTransferCtx);
        const inLease = this.checkQuorum && this.lead !== idNone && this.electionElapsed < this.electionTimeout;
        // With check-quorum a follower that heard from its leader within an
        // election timeout does not help depose it (the leader lease).
        if (!force && inLease) return false;
      }
      if (m.type === MT.MsgPreVote) {
        // Never change term for a pre-vote.
      } else if (m.type === MT.MsgPreVoteResp && !m.reject) {
        // The pre-vote was granted for a future term we have not entered;
        // the term changes when the real election starts.
      } else if (m.type === MT.MsgApp || m.type === MT.MsgHeartbeat || m.type === MT.MsgSnap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, idNone);
      }
      return true;
    }
    if (m.term < this.term) {
      if (m.type === MT.MsgHeartbeat || m.type === MT.MsgApp) {
        // Tell a stale leader about the newer term, or it may never learn
        // it: with check-quorum or pre-vote nobody bumps its term by voting,
        // and a node whose (older) config lacks that leader never sends it a
        // vote request either (etcd-io/raft answers only with check-quorum
        // or pre-vote; the simulation found the stall without them, seed
        // 2410 with leader transfers).
        this.send(newMessage({ type: MT.MsgAppResp, to: m.from }));
      } else if (m.type === MT.MsgPreVote) {
        // Reject so that the pre-candidate learns the term and gives up.
        this.send(newMessage({ type: MT.MsgPreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return false;
    }
    return true;
  }

  private handleVoteRequest(m: raftpb.Message): void {
    // We can vote for the node we already voted for (a duplicate), or for
    // anyone when we have neither voted nor follow a leader this term; a
    // pre-vote for a future term does not bind us.
    const canVote =
      this.vote === m.from ||
      (this.vote === idNone && this.lead === idNone) ||
      (m.type === MT.MsgPreVote && m.term > this.term);
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      this.send(newMessage({ type: voteRespMsgType(m.type), to: m.from, term: m.term }));
      if (m.type === MT.MsgVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(newMessage({ type: voteRespMsgType(m.type), to: m.from, term: this.term, reject: true }));
    }
  }

  private stepLeader(m: raftpb.Message): StepResult {
    switch (m.type) {
      case MT.MsgBeat:
        this.bcastHeartbeat();
        return undefined;
      case MT.MsgCheckQuorum:
        if (!this.trk.quorumActive()) {
          this.logger.warn('stepped down to follower since quorum is not active', { id: this.id, term: this.term });
          this.becomeFollower(this.term, idNone);
        }
        // Mark everyone (but us) inactive until they are heard from again.
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return undefined;
      case MT.MsgProp:
        return this.stepLeaderProp(m);
      case MT.MsgReadIndex:
        this.stepLeaderReadIndex(m);
        return undefined;
      case MT.MsgForgetLeader:
        return undefined;
      case MT.MsgHup:
      case MT.MsgApp:
      case MT.MsgAppResp:
      case MT.MsgVote:
      case MT.MsgVoteResp:
      case MT.MsgSnap:
      case MT.MsgHeartbeat:
      case MT.MsgHeartbeatResp:
      case MT.MsgUnreachable:
      case MT.MsgSnapStatus:
      case MT.MsgTransferLeader:
      case MT.MsgTimeoutNow:
      case MT.MsgReadIndexResp:
      case MT.MsgPreVote:
      case MT.MsgPreVoteResp:
      default:
        break;
    }
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return undefined;
    switch (m.type) {
      case MT.MsgAppResp:
        this.handleAppendResponse(m, pr);
        break;
      case MT.MsgHeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        break;
      case MT.MsgSnapStatus:
        if (pr.state !== ProgressState.StateSnapshot) break;
        // Success or not, probe next: on success from the snapshot on, on
        // failure from the match. Wait for a heartbeat response first.
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        pr.msgAppFlowPaused = true;
        break;
      case MT.MsgUnreachable:
        // Optimistic appends to an unreachable follower are likely lost.
        if (pr.state === ProgressState.StateReplicate) pr.becomeProbe();
        break;
      case MT.MsgTransferLeader:
        this.handleTransferLeader(m, pr);
        break;
      case MT.MsgHup:
      case MT.MsgApp:
      case MT.MsgVote:
      case MT.MsgVoteResp:
      case MT.MsgSnap:
      case MT.MsgHeartbeat:
      case MT.MsgTimeoutNow:
      case MT.MsgReadIndexResp:
      case MT.MsgPreVote:
      case MT.MsgPreVoteResp:
      default:
        break;
    }
    return undefined;
  }

  private stepLeaderProp(m: raftpb.Message): StepResult {
    assert(m.entries.length > 0, `${this.id} stepped empty MsgProp`);
    // Removed or demoted: it only finishes replicating what it has.
    const self = this.trk.progress.get(this.id);
    if (self === undefined || self.isLearner) return RaftErrorCode.ProposalDropped;
    // Nothing may follow a pending change that takes us out of the voters:
    // the remaining voters must be able to have our whole log, or one that
    // missed our last entries could never win an election (their votes
    // would need us, who can no longer campaign). Found by the simulation
    // (seed 1332).
    // The same holds in a joint config we are only an outgoing voter of;
    // only the change that leaves it may still be proposed.
    const leaving =
      !this.trk.config.voters[0].has(this.id) ||
      (this.pendingConfRemovesSelf && this.pendingConfIndex > this.raftLog.applied);
    if (leaving && m.entries.some((e) => e.type === raftpb.EntryType.EntryNormal)) return RaftErrorCode.ProposalDropped;
    if (this.leadTransferee !== idNone) return RaftErrorCode.ProposalDropped;
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i];
      assert(e !== undefined);
      if (e.type === raftpb.EntryType.EntryNormal) continue;
      const cc = confChangeFromEntry(e);
      if (cc === undefined) continue;
      const next = this.confChangeAcceptable(cc);
      if (next === undefined) return RaftErrorCode.ProposalDropped;
      this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      this.pendingConfRemovesSelf = !next.config.voters[0].has(this.id);
    }
    if (!this.appendEntry(m.entries)) return RaftErrorCode.ProposalDropped;
    this.bcastAppend();
    return undefined;
  }

  /**
   * A conf change is accepted when no other is pending, it matches the
   * joint state (only a leave-joint change in a joint config), and it
   * applies cleanly to the current config. Every member applies the same
   * changes in the same order, so checking here means applying never fails.
   */
  private confChangeAcceptable(cc: AnyConfChange): ChangeResult | undefined {
    const v2 = asV2(cc);
    const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
    const alreadyJoint = isJoint(this.trk.config);
    const wantsLeaveJoint = leaveJoint(v2);
    let refused = '';
    let next: ChangeResult | undefined;
    if (alreadyPending) refused = `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
    else if (alreadyJoint && !wantsLeaveJoint) refused = 'must transition out of joint config first';
    else if (!alreadyJoint && wantsLeaveJoint) refused = 'not in joint state; refusing empty conf change';
    else {
      try {
        next = this.computeConfChange(v2);
      } catch (e) {
        refused = e instanceof Error ? e.message : String(e);
      }
    }
    if (refused !== '' || next === undefined) {
      this.logger.info('ignoring conf change', { id: this.id, reason: refused });
      return undefined;
    }
    return next;
  }

  private stepLeaderReadIndex(m: raftpb.Message): void {
    // Until the leader has committed an entry of its term it does not know
    // the commit index of the cluster (thesis §6.4 step 1): postpone. A
    // single voter too: after a restart its commit index may lag entries it
    // had committed (the commit is written without an fsync of its own).
    if (!this.committedEntryInCurrentTerm()) {
      if (this.pendingReadIndexMessages.length < pendingReadsMax) this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendMsgReadIndexResponse(m);
  }

  private handleAppendResponse(m: raftpb.Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // The follower hinted (rejectHint, logTerm): the largest index <= the
      // rejected one whose term is <= logTerm. Skip whole terms from there.
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === ProgressState.StateReplicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    // A probe acked at exactly the match (an empty append after a snapshot)
    // also shows the follower is in sync.
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === ProgressState.StateProbe)) return;
    switch (pr.state) {
      case ProgressState.StateProbe:
        pr.becomeReplicate();
        break;
      case ProgressState.StateSnapshot:
        // The follower caught up past the snapshot (or got it): replicate.
        if (pr.match + 1 >= this.raftLog.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.StateReplicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused && m.from !== this.id) {
      // It was paused and has room now: don't wait for the next heartbeat.
      this.sendAppend(m.from);
    }
    // Fill the pipeline: several size-limited appends may fit now.
    for (let n = 0; n < this.trk.inflightCountMax && m.from !== this.id; n++) {
      if (!this.maybeSendAppend(m.from, false)) break;
    }
    this.maybeStepDownRemoved();
    if (this.state === StateType.StateLeader && m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.logger.info('sent MsgTimeoutNow after received MsgAppResp', { id: this.id, to: m.from });
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: raftpb.Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.StateProbe) this.sendAppend(m.from);
    if (this.readOnly.option !== ReadOnlyOption.ReadOnlySafe || m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    const votes = new Map<bigint, boolean>();
    for (const id of acks) votes.set(id, true);
    if (jointVoteResult(this.trk.config.voters, votes) !== VoteResult.VoteWon) return;
    for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndexReq(rs.req, rs.index);
  }

  private handleTransferLeader(m: raftpb.Message, pr: Progress): void {
    if (pr.isLearner) return;
    const transferee = m.from;
    if (this.leadTransferee !== idNone) {
      if (this.leadTransferee === transferee) return; // already in progress
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    this.logger.info('starts to transfer leadership', { id: this.id, term: this.term, to: transferee });
    // The transfer must finish within an election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private stepCandidate(m: raftpb.Message): StepResult {
    // Only responses for the current phase count: a late MsgVoteResp must
    // not be mistaken for a pre-vote response or the other way around.
    const myVoteRespType = this.state === StateType.StatePreCandidate ? MT.MsgPreVoteResp : MT.MsgVoteResp;
    switch (m.type) {
      case MT.MsgProp:
        return RaftErrorCode.ProposalDropped;
      case MT.MsgApp:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return undefined;
      case MT.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return undefined;
      case MT.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return undefined;
      case MT.MsgReadIndex:
        return RaftErrorCode.ProposalDropped; // no leader to ask
      case MT.MsgTimeoutNow:
        return undefined;
      case MT.MsgHup:
      case MT.MsgBeat:
      case MT.MsgAppResp:
      case MT.MsgVote:
      case MT.MsgVoteResp:
      case MT.MsgHeartbeatResp:
      case MT.MsgUnreachable:
      case MT.MsgSnapStatus:
      case MT.MsgCheckQuorum:
      case MT.MsgTransferLeader:
      case MT.MsgReadIndexResp:
      case MT.MsgPreVote:
      case MT.MsgPreVoteResp:
      case MT.MsgForgetLeader:
      default:
        break;
    }
    if (m.type !== myVoteRespType) return undefined;
    const result = this.poll(m.from, m.type, !m.reject);
    if (result === VoteResult.VoteWon) {
      if (this.state === StateType.StatePreCandidate) {
        this.campaign(CampaignType.CampaignElection);
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === VoteResult.VoteLost) {
      // A pre-vote rejection carries the voter's term, and the candidate may
      // be behind: follow at our term; a newer term arrives with the leader.
      this.becomeFollower(this.term, idNone);
    }
    return undefined;
  }

  private stepFollower(m: raftpb.Message): StepResult {
    switch (m.type) {
      case MT.MsgProp:
        if (this.lead === idNone || this.disableProposalForwarding) return RaftErrorCode.ProposalDropped;
        m.to = this.lead;
        this.send(m);
        return undefined;
      case MT.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return undefined;
      case MT.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return undefined;
      case MT.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return undefined;
      case MT.MsgTransferLeader:
        if (this.lead === idNone) return undefined;
        m.to = this.lead;
        this.send(m);
        return undefined;
      case MT.MsgForgetLeader:
        // Forgetting the leader would void the lease that lease-based reads trust.
        if (this.readOnly.option === ReadOnlyOption.ReadOnlyLeaseBased) return undefined;
        if (this.lead !== idNone) this.lead = idNone;
        return undefined;
      case MT.MsgTimeoutNow:
        // A transfer never uses pre-vote: the leader asked for it.
        this.hup(CampaignType.CampaignTransfer);
        return undefined;
      case MT.MsgReadIndex:
        if (this.lead === idNone) return RaftErrorCode.ProposalDropped;
        m.to = this.lead;
        this.send(m);
        return undefined;
      case MT.MsgReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return undefined;
      case MT.MsgHup:
      case MT.MsgBeat:
      case MT.MsgAppResp:
      case MT.MsgVote:
      case MT.MsgVoteResp:
      case MT.MsgHeartbeatResp:
      case MT.MsgUnreachable:
      case MT.MsgSnapStatus:
      case MT.MsgCheckQuorum:
      case MT.MsgPreVote:
      case MT.MsgPreVoteResp:
      default:
        return undefined;
    }
  }

  // ---- follower handlers ----

  private handleAppendEntries(m: raftpb.Message): void {
    const committed = this.raftLog.committed;
    if (m.index < committed) {
      this.send(newMessage({ type: MT.MsgAppResp, to: m.from, index: committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(newMessage({ type: MT.MsgAppResp, to: m.from, index: lastNew }));
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <=
    // m.logTerm. Every entry after it is of a term the leader's entry at
    // m.index cannot match, so the leader may skip them all at once.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const [hi, ht] = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send(newMessage({ type: MT.MsgAppResp, to: m.from, index: m.index, reject: true, rejectHint: hi, logTerm: ht }));
  }

  private handleHeartbeat(m: raftpb.Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(newMessage({ type: MT.MsgHeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: raftpb.Message): void {
    const s = m.snapshot ?? raftpb.Snapshot.create();
    if (this.restore(s)) {
      this.logger.info('restored snapshot', { id: this.id, index: snapshotIndex(s), term: snapshotTerm(s) });
      this.send(newMessage({ type: MT.MsgAppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(newMessage({ type: MT.MsgAppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot into the log and the tracker; false when it is stale or already covered. */
  restore(s: raftpb.Snapshot): boolean {
    const sindex = snapshotIndex(s);
    const sterm = snapshotTerm(s);
    if (sindex <= this.raftLog.committed) return false;
    if (this.state !== StateType.StateFollower) {
      // Only a leader of a newer term sends snapshots; be defensive.
      this.logger.warn('attempted to restore snapshot as non-follower; stepping down', { id: this.id });
      this.becomeFollower(this.term + 1, idNone);
      return false;
    }
    const cs = s.metadata?.confState ?? raftpb.ConfState.create();
    const found = [cs.voters, cs.learners, cs.votersOutgoing].some((ids) => ids.includes(this.id));
    if (!found) {
      this.logger.warn('attempted to restore snapshot but it is not in the ConfState', { id: this.id });
      return false;
    }
    // Committed conf changes not yet applied would be applied on top of the
    // snapshot's membership: apply them first (they are in our log, so this
    // only delays the snapshot). Found by the simulation (seed 127).
    if (this.hasUnappliedConfChanges()) {
      this.logger.info('delaying snapshot until pending conf changes are applied', { id: this.id });
      return false;
    }
    // The log already has the snapshot's last entry: just commit up to it.
    if (this.raftLog.matchTerm(sindex, sterm)) {
      this.raftLog.commitTo(sindex);
      return false;
    }
    this.raftLog.restore(s);
    const res = restoreConfState(cs, this.raftLog.lastIndex(), this.trk.inflightCountMax, this.trk.inflightBytesMax);
    this.switchToConfig(res);
    return true;
  }

  // ---- membership ----

  private computeConfChange(cc: raftpb.ConfChangeV2): ChangeResult {
    const changer = new Changer(this.trk.config, this.trk.progress, this.raftLog.lastIndex(), this.trk.inflightCountMax, this.trk.inflightBytesMax);
    if (leaveJoint(cc)) return changer.leaveJoint();
    const { joint, autoLeave } = enterJoint(cc);
    if (joint) return changer.enterJoint(autoLeave, cc.changes);
    return changer.simple(cc.changes);
  }

  /** Applies a committed conf change to the tracker; returns the new ConfState. */
  applyConfChange(cc: AnyConfChange): raftpb.ConfState {
    return this.switchToConfig(this.computeConfChange(asV2(cc)));
  }

  private switchToConfig(res: ChangeResult): raftpb.ConfState {
    this.trk.config = res.config;
    this.trk.progress = res.progress;
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    if (this.state !== StateType.StateLeader || cs.voters.length === 0) return cs;
    // The quorum may have changed: something may commit now, and new
    // members need their first append.
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== idNone && !this.trk.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    this.maybeStepDownRemoved();
    return cs;
  }

  /**
   * A leader removed (or demoted) by a conf change keeps leading the new
   * configuration, without counting itself and without accepting proposals
   * (thesis §4.2.2), until every voter of it has the whole log; then it
   * hands over (MsgTimeoutNow to the first of them) and steps down. Stepping
   * down at once can strand the new voters: one that missed the last entries
   * cannot win votes from the rest (found by the simulation, seed 1723).
   */
  private maybeStepDownRemoved(): void {
    if (this.state !== StateType.StateLeader) return;
    const self = this.trk.progress.get(this.id);
    if (self !== undefined && !self.isLearner) return;
    const last = this.raftLog.lastIndex();
    const voters = sortedIds(this.trk.voterIds());
    if (!voters.every((id) => (this.trk.progress.get(id)?.match ?? 0) >= last)) return;
    this.logger.info('leader removed from the configuration hands over and steps down', { id: this.id, to: voters[0] });
    if (voters[0] !== undefined) this.sendTimeoutNow(voters[0]);
    this.becomeFollower(this.term, idNone);
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = idNone;
  }

  // ---- reads ----

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.term(this.raftLog.committed) === this.term;
  }

  private respondToReadIndexReq(req: raftpb.Message, readIndex: number): void {
    if (req.from === idNone || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context });
      return;
    }
    this.send(newMessage({ type: MT.MsgReadIndexResp, to: req.from, index: readIndex, context: req.context }));
  }

  /** The leader is the only voter: its own quorum. */
  private isSoleVoter(): boolean {
    // If the one voter is not us (a removed leader still leads), it must ask that voter.
    return this.trk.isSingleton() && this.trk.config.voters[0].has(this.id);
  }

  /**
   * The index a ReadIndex request would be answered with right now, when
   * this node needs nobody to confirm it: the sole voter, leading, with an
   * entry of its term committed. Undefined otherwise.
   */
  localReadIndex(): number | undefined {
    if (this.state !== StateType.StateLeader || !this.isSoleVoter() || !this.committedEntryInCurrentTerm()) return undefined;
    return this.raftLog.committed;
  }

  private sendMsgReadIndexResponse(m: raftpb.Message): void {
    if (this.isSoleVoter()) {
      this.respondToReadIndexReq(m, this.raftLog.committed);
      return;
    }
    switch (this.readOnly.option) {
      case ReadOnlyOption.ReadOnlySafe:
        if (this.requesterCompletesQuorum(m)) {
          this.respondToReadIndexReq(m, this.raftLog.committed);
          return;
        }
        // Record the commit index now; answer once a quorum acks a
        // heartbeat round sent after this point (we are still the leader).
        if (!this.readOnly.addRequest(this.raftLog.committed, m)) return;
        this.readOnly.recvAck(this.id, m.context);
        this.bcastHeartbeatWithCtx(m.context);
        break;
      case ReadOnlyOption.ReadOnlyLeaseBased:
        this.respondToReadIndexReq(m, this.raftLog.committed);
        break;
    }
  }

  /**
   * Whether a voter's ReadIndex request, with our own vote, already makes a
   * quorum that confirms our leadership for the reads it carries, so that
   * no heartbeat round is needed (three voters: the requester and us).
   *
   * The heartbeat round proves that a quorum did not know of a newer term
   * at some instant after the reads began; then every write that completed
   * before they began was committed in our term or an older one, and is
   * within our commit index. The request proves the same of its sender: it
   * is sent after the reads it carries arrived, and only to the member its
   * sender then took for the leader, so the sender's term was at most ours
   * (a term only grows). A newer leader needs a vote from that quorum, so
   * it was elected after the request left: whatever it completed is
   * concurrent with the reads, which may or may not see it. The sender's
   * request proves nothing for reads that other members asked earlier (they
   * may have begun after it was sent): it answers its own reads only,
   * before reads still waiting for their heartbeat round.
   */
  private requesterCompletesQuorum(m: raftpb.Message): boolean {
    if (m.from === idNone || m.from === this.id) return false;
    const votes = new Map<bigint, boolean>([
      [this.id, true],
      [m.from, true],
    ]);
    return jointVoteResult(this.trk.config.voters, votes) === VoteResult.VoteWon;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendMsgReadIndexResponse(m);
  }
}
