import type { Index } from '../../base/index.js';

/** The result of counting votes in a configuration. */
export const VoteResult = {
  /** Not decided yet: the missing votes could still go either way. */
  VotePending: 1,
  /** A quorum rejected. */
  VoteLost: 2,
  /** A quorum granted. */
  VoteWon: 3,
} as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/**
 * The committed index of an empty configuration: larger than any real index,
 * so that min() over the two halves of a joint config ignores an empty half.
 */
export const indexMax: Index = Number.MAX_SAFE_INTEGER;

/** Looks up the acknowledged (durably matched) index of a voter; undefined if unknown. */
export type AckedIndexer = (id: bigint) => Index | undefined;

/** A set of voters deciding by simple majority. */
export type MajorityConfig = ReadonlySet<bigint>;

/** Reused scratch space: committedIndex runs on every append response. */
let scratch = new Float64Array(8);

/**
 * The largest index acknowledged by a majority of the voters: sort the acked
 * indexes descending and take the one at position n/2 (a missing ack is 0).
 */
export function majorityCommittedIndex(voters: MajorityConfig, acked: AckedIndexer): Index {
  const n = voters.size;
  if (n === 0) return indexMax;
  if (n === 1) {
    for (const id of voters) return acked(id) ?? 0;
  }
  if (scratch.length < n) scratch = new Float64Array(n * 2);
  const srt = scratch.subarray(0, n);
  let i = 0;
  for (const id of voters) srt[i++] = acked(id) ?? 0;
  srt.sort(); // ascending
  // With ascending order the quorum's smallest ack sits at n - (n/2+1).
  return srt[n - (Math.floor(n / 2) + 1)] ?? 0;
}

/** Tallies votes (true = granted) of a majority config. */
export function majorityVoteResult(voters: MajorityConfig, votes: ReadonlyMap<bigint, boolean>): VoteResult {
  // An empty config wins every vote, so that a joint config with an empty
  // outgoing half behaves like its incoming half alone.
  if (voters.size === 0) return VoteResult.VoteWon;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (granted >= q) return VoteResult.VoteWon;
  if (granted + missing >= q) return VoteResult.VotePending;
  return VoteResult.VoteLost;
}

export function describeMajority(voters: MajorityConfig): string {
  return '(' + [...voters].sort(cmpId).join(' ') + ')';
}

export function cmpId(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
