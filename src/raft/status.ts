import type { raftpb } from '../pb/index.js';
import type { Raft, StateType } from './raft.js';
import type { ProgressState } from './tracker/index.js';

/** The leader's view of one member. */
export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  isLearner: boolean;
  recentActive: boolean;
  paused: boolean;
  inflightCount: number;
  pendingSnapshot: number;
}

/** A snapshot of a node's state, for the server and for tests. */
export interface Status {
  id: bigint;
  term: number;
  vote: bigint;
  commit: number;
  applied: number;
  lead: bigint;
  raftState: StateType;
  leadTransferee: bigint;
  /** The membership this node has applied. */
  config: raftpb.ConfState;
  /** Every member's progress; empty unless this node is the leader. */
  progress: Map<bigint, ProgressStatus>;
}

export function getStatus(r: Raft): Status {
  const progress = new Map<bigint, ProgressStatus>();
  if (r.state === 'StateLeader') {
    r.trk.visit((id, pr) => {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        isLearner: pr.isLearner,
        recentActive: pr.recentActive,
        paused: pr.isPaused(),
        inflightCount: pr.inflights.count(),
        pendingSnapshot: pr.pendingSnapshot,
      });
    });
  }
  return {
    id: r.id,
    term: r.term,
    vote: r.vote,
    commit: r.raftLog.committed,
    applied: r.raftLog.applied,
    lead: r.lead,
    raftState: r.state,
    leadTransferee: r.leadTransferee,
    config: r.trk.confState(),
    progress,
  };
}
