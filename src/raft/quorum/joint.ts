import type { Index } from '../../base/index.js';
import {
  type AckedIndexer,
  type MajorityConfig,
  VoteResult,
  describeMajority,
  majorityCommittedIndex,
  majorityVoteResult,
} from './majority.js';

/**
 * Two majority configs: the incoming (or only) one first, the outgoing one
 * second. During a joint change every decision needs a majority of both.
 */
export type JointConfig = readonly [incoming: MajorityConfig, outgoing: MajorityConfig];

export function jointCommittedIndex(c: JointConfig, acked: AckedIndexer): Index {
  return Math.min(majorityCommittedIndex(c[0], acked), majorityCommittedIndex(c[1], acked));
}

export function jointVoteResult(c: JointConfig, votes: ReadonlyMap<bigint, boolean>): VoteResult {
  const r1 = majorityVoteResult(c[0], votes);
  const r2 = majorityVoteResult(c[1], votes);
  if (r1 === r2) return r1;
  if (r1 === VoteResult.VoteLost || r2 === VoteResult.VoteLost) return VoteResult.VoteLost;
  return VoteResult.VotePending;
}

/** Every voter of either half, once. */
export function jointIds(c: JointConfig): Set<bigint> {
  const s = new Set<bigint>(c[0]);
  for (const id of c[1]) s.add(id);
  return s;
}

export function describeJoint(c: JointConfig): string {
  const a = describeMajority(c[0]);
  return c[1].size === 0 ? a : `${a}&&${describeMajority(c[1])}`;
}
