import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ManualTimers } from '../backend/index.js';
import { nopLogger } from '../base/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import { Schema } from '../schema/index.js';
import { EntryApplier, type EntryApplierHost } from './apply-entries.js';
import type { ApplyOutcome } from './apply.js';
import { RaftCluster, memberToRecord, type Member } from './membership.js';

const T = raftpb.ConfChangeType;

function member(id: bigint): Member {
  return { id, name: `n${id}`, peerUrls: [`http://n${id}:2380`], clientUrls: [], isLearner: false };
}

function confEntry(index: number, type: raftpb.ConfChangeType, id: bigint, withMember = true): raftpb.Entry {
  const cc = raftpb.ConfChange.create({ type, nodeId: id, id: BigInt(1000 + index), context: withMember ? serverpb.MemberRecord.encode(memberToRecord(member(id))) : new Uint8Array() });
  return raftpb.Entry.create({ type: raftpb.EntryType.EntryConfChange, index, term: 1, data: raftpb.ConfChange.encode(cc) });
}

/** A host whose raft is a list of the configurations it was given, as raft would compute them (voters only). */
function fixture(schema: Schema): { host: EntryApplierHost; raftVoters: bigint[][]; answers: Map<bigint, ApplyOutcome>; applied: number[] } {
  let voters = new Set<bigint>();
  const raftVoters: bigint[][] = [];
  const answers = new Map<bigint, ApplyOutcome>();
  const applied: number[] = [];
  const host: EntryApplierHost = {
    memberId: 1n,
    cluster: new RaftCluster('t', 7n),
    logger: nopLogger,
    schema: () => schema,
    applyConfChangeToRaft: (cc) => {
      if (cc.type === T.ConfChangeAddNode && cc.nodeId !== 0n) voters.add(cc.nodeId);
      if (cc.type === T.ConfChangeRemoveNode) voters.delete(cc.nodeId);
      voters = new Set([...voters].sort());
      raftVoters.push([...voters]);
      return raftpb.ConfState.create({ voters: [...voters] });
    },
    applyNormal: () => undefined,
    noteCommitted: () => undefined,
    advanceApplied: (e) => void applied.push(e.index),
    answer: (id, outcome) => void answers.set(id, outcome),
    peers: { add: () => undefined, remove: () => undefined, update: () => undefined },
    removedSelf: () => undefined,
  };
  return { host, raftVoters, answers, applied };
}

async function withSchema(fn: (schema: Schema) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'apply-entries-test-'));
  const schema = Schema.open({ path: join(dir, 'db'), timers: new ManualTimers() });
  try {
    fn(schema);
  } finally {
    await schema.backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('new conf changes change the membership, its storage and raft; a refused one reaches raft with no node and is recorded', () =>
  withSchema((schema) => {
    const { host, raftVoters, answers } = fixture(schema);
    const a = new EntryApplier(host, 0, raftpb.ConfState.create());
    a.applyEntries([confEntry(1, T.ConfChangeAddNode, 1n), confEntry(2, T.ConfChangeAddNode, 2n), confEntry(3, T.ConfChangeAddNode, 2n)]);
    assert.deepEqual([...host.cluster.members.keys()].sort(), [1n, 2n]);
    assert.deepEqual(a.confState.voters, [1n, 2n]);
    assert.deepEqual(raftVoters.at(-1), [1n, 2n], 'the refused add reached raft as a change of no node');
    assert.equal(answers.get(1003n)?.ok, false, 'adding a member twice is refused');
    assert.equal(schema.confChangeRefused(3), true);
    assert.equal(schema.confChangeRefused(2), false);
    assert.deepEqual(schema.consistentIndex().index, 3);
    assert.deepEqual(schema.confState()?.voters, [1n, 2n]);
  }));

test('entries at or below the applied index rebuild raft only; confState stays the applied one while they come in over several turns', () =>
  withSchema((schema) => {
    // Applied up to 5 before a crash: 1..3 added nodes 1, 2, 3, 4 removed node 3, 5 added node 3 again (refused: removed ids stay removed).
    const first = fixture(schema);
    const before = new EntryApplier(first.host, 0, raftpb.ConfState.create());
    before.applyEntries([confEntry(1, T.ConfChangeAddNode, 1n), confEntry(2, T.ConfChangeAddNode, 2n), confEntry(3, T.ConfChangeAddNode, 3n), confEntry(4, T.ConfChangeRemoveNode, 3n, false), confEntry(5, T.ConfChangeAddNode, 3n)]);
    assert.deepEqual(schema.confState()?.voters, [1n, 2n]);
    assert.equal(schema.confChangeRefused(5), true);

    // The restart: raft hands the entries out again, its commit index behind, in two turns.
    const { host, raftVoters } = fixture(schema);
    const a = new EntryApplier(host, schema.consistentIndex().index, schema.confState() as raftpb.ConfState);
    a.applyEntries([confEntry(1, T.ConfChangeAddNode, 1n), confEntry(2, T.ConfChangeAddNode, 2n), confEntry(3, T.ConfChangeAddNode, 3n)]);
    assert.deepEqual(raftVoters.at(-1), [1n, 2n, 3n], 'raft is rebuilt step by step');
    assert.deepEqual(a.confState.voters, [1n, 2n], 'a snapshot at the applied index now records the applied configuration');
    a.applyEntries([confEntry(4, T.ConfChangeRemoveNode, 3n, false), confEntry(5, T.ConfChangeAddNode, 3n)]);
    assert.deepEqual(raftVoters.at(-1), [1n, 2n], 'the change refused the first time is replayed as refused');
    assert.deepEqual(a.confState.voters, [1n, 2n]);
    assert.equal(host.cluster.members.size, 0, 'replayed entries leave the membership to the backend');
  }));
