import { assert } from '../../base/index.js';
import { raftpb } from '../../pb/index.js';
import {
  VoteResult,
  cmpId,
  describeJoint,
  jointCommittedIndex,
  jointIds,
  jointVoteResult,
} from '../quorum/index.js';
import type { Progress } from './progress.js';

/** A membership configuration as raft tracks it. */
export interface TrackerConfig {
  /** [incoming, outgoing]; outgoing is empty unless in a joint config. */
  voters: [Set<bigint>, Set<bigint>];
  /** Leave the joint config automatically once it is applied (set by enterJoint). */
  autoLeave: boolean;
  /** Non-voting members. Never also voters (of either half). */
  learners: Set<bigint>;
  /** Outgoing voters that become learners when the joint config is left. */
  learnersNext: Set<bigint>;
}

export function emptyTrackerConfig(): TrackerConfig {
  return { voters: [new Set(), new Set()], autoLeave: false, learners: new Set(), learnersNext: new Set() };
}

export function cloneTrackerConfig(c: TrackerConfig): TrackerConfig {
  return {
    voters: [new Set(c.voters[0]), new Set(c.voters[1])],
    autoLeave: c.autoLeave,
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
  };
}

export function isJoint(c: TrackerConfig): boolean {
  return c.voters[1].size > 0;
}

export function describeTrackerConfig(c: TrackerConfig): string {
  let s = `voters=${describeJoint(c.voters)}`;
  if (c.learners.size > 0) s += ` learners=(${sortedIds(c.learners).join(' ')})`;
  if (c.learnersNext.size > 0) s += ` learners_next=(${sortedIds(c.learnersNext).join(' ')})`;
  if (c.autoLeave) s += ' autoleave';
  return s;
}

export function sortedIds(ids: Iterable<bigint>): bigint[] {
  return [...ids].sort(cmpId);
}

export type ProgressMap = Map<bigint, Progress>;

/** The leader's bookkeeping: the configuration, each member's progress, and the votes of an election. */
export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress: ProgressMap = new Map();
  votes = new Map<bigint, boolean>();
  private readonly ackedIndexer = (id: bigint): number | undefined => this.progress.get(id)?.match;

  constructor(
    readonly inflightCountMax: number,
    readonly inflightBytesMax: number,
  ) {}

  confState(): raftpb.ConfState {
    return raftpb.ConfState.create({
      voters: sortedIds(this.config.voters[0]),
      votersOutgoing: sortedIds(this.config.voters[1]),
      learners: sortedIds(this.config.learners),
      learnersNext: sortedIds(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    });
  }

  /** Exactly one voter (and not joint): such a node commits alone. */
  isSingleton(): boolean {
    return this.config.voters[0].size === 1 && this.config.voters[1].size === 0;
  }

  /** The largest index a quorum has durably acknowledged. */
  committed(): number {
    return jointCommittedIndex(this.config.voters, this.ackedIndexer);
  }

  /** Calls f for each tracked member in id order (deterministic message order). */
  visit(f: (id: bigint, pr: Progress) => void): void {
    const ids = sortedIds(this.progress.keys());
    for (const id of ids) {
      const pr = this.progress.get(id);
      assert(pr !== undefined);
      f(id, pr);
    }
  }

  /** Whether a quorum has been recently active (heard from). The caller counts itself as active. */
  quorumActive(): boolean {
    const votes = new Map<bigint, boolean>();
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    }
    return jointVoteResult(this.config.voters, votes) === VoteResult.VoteWon;
  }

  voterIds(): Set<bigint> {
    return jointIds(this.config.voters);
  }

  isVoter(id: bigint): boolean {
    return this.config.voters[0].has(id) || this.config.voters[1].has(id);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records a vote from id; the first vote from a node counts, later ones are ignored. */
  recordVote(id: bigint, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.config.voters, this.votes) };
  }
}
