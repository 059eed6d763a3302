/**
 * The apply loop of a member: committed raft entries, in order, into its
 * state. Normal entries go to the member (the apply dispatch of apply.ts and
 * what the member does around it); conf changes are validated against the
 * applied membership and applied here, to the membership, its storage, the
 * peers and raft's configuration.
 *
 * Promises:
 * - Entries at or below the backend's applied (consistent) index are in the
 *   state already (replayed after a restart or a snapshot install): only
 *   raft's configuration is rebuilt from their conf changes, a change
 *   refused the first time again as refused (no node), whatever the
 *   membership is now. confState, what snapshots record, is meanwhile the
 *   one the backend holds, as of that applied index: raft may hand the
 *   replayed entries out over several turns (its commit index can be
 *   behind the backend's after a crash), and a snapshot taken in between
 *   at the applied index must not carry the configuration of an older one.
 * - The new entries of one call are applied in ONE backend write scope, with
 *   the applied index written once at its end: a crash keeps their effects
 *   and the index together or neither.
 * - A refused conf change still reaches raft (with no node), so that raft's
 *   pending-change bookkeeping moves on, and is recorded as refused.
 * - Raft is given each conf change once, though a backend repair hands the
 *   loop again entries it had begun to apply (server.ts): a change raft has
 *   seen goes to it again with no node.
 *
 * Used by EtcdServer and by the deterministic simulation's members
 * (test/sim-members), so that both apply the same way.
 */
import { assert, idToHex, type Logger } from '../base/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import type { Schema } from '../schema/index.js';
import { MembershipStorage } from '../schema/index.js';
import type { ApplyOutcome } from './apply.js';
import { ServerError } from './errors.js';
import { memberFromRecord, memberToRecord, type Member, type RaftCluster } from './membership.js';
import { slowApplyMs } from './metrics.js';

/** What the apply loop needs from its member. */
export interface EntryApplierHost {
  readonly memberId: bigint;
  readonly cluster: RaftCluster;
  readonly logger: Logger;
  /** The member's schema now (a snapshot install replaces it). */
  schema(): Schema;
  /** Raft's configuration after the change (RawNode.applyConfChange). */
  applyConfChangeToRaft(cc: raftpb.ConfChange): raftpb.ConfState;
  /** Applies a normal entry (inside the write scope). */
  applyNormal(e: raftpb.Entry): void;
  /** Every entry handed to the loop, replayed or new, before anything else. */
  noteCommitted(e: raftpb.Entry): void;
  /** Every entry handed to the loop, once applied (or found applied). */
  advanceApplied(e: raftpb.Entry): void;
  /** The answer to a conf change's proposal (its id is the change's). */
  answer(id: bigint, outcome: ApplyOutcome): void;
  /** Keeps the member's peer links in step with the membership. */
  readonly peers: {
    add(id: bigint, urls: readonly string[]): void;
    remove(id: bigint): void;
    update(id: bigint, urls: readonly string[]): void;
  };
  /** This member's own removal has applied. */
  removedSelf(): void;
  /** Called when one entry's apply took longer than slowApplyMs. */
  slowApply?(): void;
}

export class EntryApplier {
  /** The backend's applied index, mirrored: entries at or below it are already in the state. */
  consistentIndex: number;
  confState: raftpb.ConfState;
  /** The last entry whose conf change raft was given. */
  private raftConfIndex = 0;

  constructor(
    private readonly host: EntryApplierHost,
    consistentIndex: number,
    confState: raftpb.ConfState,
  ) {
    this.consistentIndex = consistentIndex;
    this.confState = confState;
  }

  /**
   * A leader's database was installed: the applied index and configuration
   * are its (it may be newer than the snapshot, whose configuration is the
   * fallback).
   */
  installed(schema: Schema, snapshotConfState: raftpb.ConfState | undefined): void {
    this.consistentIndex = schema.consistentIndex().index;
    this.confState = schema.confState() ?? snapshotConfState ?? this.confState;
  }

  applyEntries(entries: readonly raftpb.Entry[]): void {
    const h = this.host;
    let i = 0;
    for (; i < entries.length; i++) {
      const e = entries[i] as raftpb.Entry;
      if (e.index > this.consistentIndex) break;
      h.noteCommitted(e);
      if (e.type !== raftpb.EntryType.EntryNormal) {
        // Raft's configuration is rebuilt; confState stays the backend's, which is as of the
        // applied index already (a snapshot taken now must not pair that index with an older one).
        const { cc } = decodeConfChange(e);
        this.toRaft(e, h.schema().confChangeRefused(e.index) ? raftpb.ConfChange.create({ ...cc, nodeId: 0n }) : cc);
      }
      h.advanceApplied(e);
    }
    if (i === entries.length) return;
    const schema = h.schema();
    schema.backend.write(() => {
      for (; i < entries.length; i++) {
        const e = entries[i] as raftpb.Entry;
        h.noteCommitted(e);
        const startedMs = performance.now();
        this.applyEntry(e);
        if (performance.now() - startedMs > slowApplyMs) h.slowApply?.();
        h.advanceApplied(e);
      }
      const last = entries[entries.length - 1] as raftpb.Entry;
      schema.setConsistentIndex({ index: last.index, term: last.term });
    });
  }

  /** Gives raft the change of entry e, or a change with no node if raft had it already; raft's configuration after. */
  private toRaft(e: raftpb.Entry, cc: raftpb.ConfChange): raftpb.ConfState {
    const once = e.index > this.raftConfIndex ? cc : raftpb.ConfChange.create({ ...cc, nodeId: 0n });
    this.raftConfIndex = Math.max(this.raftConfIndex, e.index);
    return this.host.applyConfChangeToRaft(once);
  }

  private applyEntry(e: raftpb.Entry): void {
    switch (e.type) {
      case raftpb.EntryType.EntryNormal:
        this.host.applyNormal(e);
        break;
      case raftpb.EntryType.EntryConfChange:
      case raftpb.EntryType.EntryConfChangeV2:
        this.applyConfChange(e);
        break;
      default:
        this.host.logger.warn('unknown entry type', { type: e.type, index: e.index });
    }
    // The backend's copy is written once per run (applyEntries).
    this.consistentIndex = e.index;
  }

  private applyConfChange(e: raftpb.Entry): void {
    const h = this.host;
    const { cc, member, promote } = decodeConfChange(e);
    const err = validateConfChange(h.cluster, cc, member, promote);
    if (err !== undefined) {
      this.confState = this.toRaft(e, raftpb.ConfChange.create({ ...cc, nodeId: 0n }));
      h.schema().addRefusedConfChange(e.index);
      h.answer(cc.id, { ok: false, error: err });
      return;
    }
    const membership = new MembershipStorage(h.schema());
    const T = raftpb.ConfChangeType;
    switch (cc.type) {
      case T.ConfChangeAddNode:
      case T.ConfChangeAddLearnerNode: {
        assert(member !== undefined, 'an add carries the member');
        if (promote) h.cluster.promote(cc.nodeId);
        else h.cluster.add({ ...member, isLearner: cc.type === T.ConfChangeAddLearnerNode });
        const m = h.cluster.members.get(cc.nodeId);
        if (m !== undefined) membership.putMember(memberToRecord(m));
        if (cc.nodeId !== h.memberId && m !== undefined) h.peers.add(cc.nodeId, m.peerUrls);
        h.logger.info('added member', { member: idToHex(cc.nodeId), 'peer-urls': m?.peerUrls ?? [] });
        break;
      }
      case T.ConfChangeRemoveNode:
        h.cluster.remove(cc.nodeId);
        membership.removeMember(cc.nodeId);
        if (cc.nodeId !== h.memberId) h.peers.remove(cc.nodeId);
        h.logger.info('removed member', { member: idToHex(cc.nodeId) });
        break;
      case T.ConfChangeUpdateNode:
        if (member !== undefined) {
          h.cluster.updatePeerUrls(cc.nodeId, member.peerUrls);
          const m = h.cluster.members.get(cc.nodeId);
          if (m !== undefined) membership.putMember(memberToRecord(m));
          if (cc.nodeId !== h.memberId) h.peers.update(cc.nodeId, member.peerUrls);
        }
        break;
      default:
        break;
    }
    this.confState = this.toRaft(e, cc);
    h.schema().setConfState(this.confState);
    h.answer(cc.id, { ok: true, response: { members: h.cluster.memberList() } });
    if (cc.type === T.ConfChangeRemoveNode && cc.nodeId === h.memberId) h.removedSelf();
  }
}

/** The change, the member its context carries, and whether it is a promotion (which carries only the id). */
function decodeConfChange(e: raftpb.Entry): { cc: raftpb.ConfChange; member: Member | undefined; promote: boolean } {
  assert(e.type === raftpb.EntryType.EntryConfChange, 'members propose only v1 conf changes');
  const cc = raftpb.ConfChange.decode(e.data);
  const record = cc.context.length > 0 ? serverpb.MemberRecord.decode(cc.context) : undefined;
  return { cc, member: record === undefined ? undefined : memberFromRecord(record), promote: record?.isPromote === true };
}

/**
 * etcd's ValidateConfigurationChange, against the applied membership. The
 * API proposes adds, removes and updates without checking them first, as
 * etcd does: a refused change still takes its raft entry.
 */
function validateConfChange(c: RaftCluster, cc: raftpb.ConfChange, member: Member | undefined, promote: boolean): Error | undefined {
  const T = raftpb.ConfChangeType;
  if (c.removed.has(cc.nodeId)) return new ServerError('IDRemoved');
  try {
    switch (cc.type) {
      case T.ConfChangeAddNode:
      case T.ConfChangeAddLearnerNode:
        if (promote) {
          c.checkPromote(cc.nodeId);
          return undefined;
        }
        if (c.members.has(cc.nodeId)) return new ServerError('MemberExist');
        if (member !== undefined) c.checkAdd({ ...member, id: cc.nodeId, isLearner: cc.type === T.ConfChangeAddLearnerNode });
        return undefined;
      case T.ConfChangeRemoveNode:
        c.checkRemove(cc.nodeId);
        return undefined;
      case T.ConfChangeUpdateNode:
        c.checkUpdate(cc.nodeId, member?.peerUrls ?? []);
        return undefined;
      default:
        return undefined;
    }
  } catch (e) {
    if (e instanceof ServerError) return e;
    throw e;
  }
}
