/**
 * quorum: pure quorum arithmetic. A majority config commits the largest index
 * a majority has acknowledged and wins a vote when a majority grants it; a
 * joint config (incoming, outgoing) needs both halves. An empty half commits
 * everything and wins every vote, so a joint config with an empty outgoing
 * half is exactly its incoming half.
 */
export {
  VoteResult,
  indexMax,
  majorityCommittedIndex,
  majorityVoteResult,
  describeMajority,
  cmpId,
} from './majority.js';
export type { AckedIndexer, MajorityConfig } from './majority.js';
export { jointCommittedIndex, jointVoteResult, jointIds, describeJoint } from './joint.js';
export type { JointConfig } from './joint.js';
