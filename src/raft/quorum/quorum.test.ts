import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  VoteResult,
  indexMax,
  jointCommittedIndex,
  jointVoteResult,
  majorityCommittedIndex,
  majorityVoteResult,
} from './index.js';

/** The naive model: sort every voter's ack (0 when missing) and read off the quorum's smallest. */
function naiveCommitted(voters: Set<bigint>, acks: Map<bigint, number>): number {
  if (voters.size === 0) return indexMax;
  const xs = [...voters].map((id) => acks.get(id) ?? 0).sort((a, b) => b - a);
  const q = Math.floor(voters.size / 2) + 1;
  // The q-th largest ack is held by at least q voters.
  return xs[q - 1]!;
}

function naiveVote(voters: Set<bigint>, votes: Map<bigint, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.VoteWon;
  let yes = 0;
  let no = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) yes++;
    if (v === false) no++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (yes >= q) return VoteResult.VoteWon;
  if (voters.size - no < q) return VoteResult.VoteLost;
  return VoteResult.VotePending;
}

const idArb = fc.bigInt({ min: 1n, max: 9n });
const votersArb = fc.uniqueArray(idArb, { maxLength: 7 }).map((a) => new Set(a));
const acksArb = fc.array(fc.tuple(idArb, fc.nat({ max: 20 })), { maxLength: 9 }).map((a) => new Map(a));
const votesArb = fc.array(fc.tuple(idArb, fc.boolean()), { maxLength: 9 }).map((a) => new Map(a));

const propertyRuns = 2000;

test('majority committed index matches the sort-based model', () => {
  fc.assert(
    fc.property(votersArb, acksArb, (voters, acks) => {
      assert.equal(majorityCommittedIndex(voters, (id) => acks.get(id)), naiveCommitted(voters, acks));
    }),
    { numRuns: propertyRuns },
  );
});

test('joint committed index is the min of both halves, and an empty half is ignored', () => {
  fc.assert(
    fc.property(votersArb, votersArb, acksArb, (a, b, acks) => {
      const got = jointCommittedIndex([a, b], (id) => acks.get(id));
      assert.equal(got, Math.min(naiveCommitted(a, acks), naiveCommitted(b, acks)));
      assert.equal(jointCommittedIndex([a, new Set()], (id) => acks.get(id)), naiveCommitted(a, acks));
      // Committing in a joint config never exceeds what either half commits alone.
      assert.ok(got <= majorityCommittedIndex(a, (id) => acks.get(id)));
    }),
    { numRuns: propertyRuns },
  );
});

test('majority and joint vote results match the counting model', () => {
  fc.assert(
    fc.property(votersArb, votersArb, votesArb, (a, b, votes) => {
      assert.equal(majorityVoteResult(a, votes), naiveVote(a, votes));
      const ra = naiveVote(a, votes);
      const rb = naiveVote(b, votes);
      let want: VoteResult = VoteResult.VotePending;
      if (ra === VoteResult.VoteWon && rb === VoteResult.VoteWon) want = VoteResult.VoteWon;
      else if (ra === VoteResult.VoteLost || rb === VoteResult.VoteLost) want = VoteResult.VoteLost;
      assert.equal(jointVoteResult([a, b], votes), want);
    }),
    { numRuns: propertyRuns },
  );
});

test('examples', () => {
  const v = new Set([1n, 2n, 3n]);
  assert.equal(majorityCommittedIndex(v, (id) => ({ 1: 5, 2: 3 })[Number(id)]), 3);
  assert.equal(majorityCommittedIndex(new Set(), () => 0), indexMax);
  assert.equal(majorityVoteResult(v, new Map([[1n, true], [2n, false]])), VoteResult.VotePending);
  assert.equal(majorityVoteResult(v, new Map([[1n, false], [2n, false]])), VoteResult.VoteLost);
});
