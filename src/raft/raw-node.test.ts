import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRand } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import {
  Config,
  MemoryStorage,
  RaftErrorCode,
  RawNode,
  type Ready,
  ReadOnlyOption,
  confChangeFromEntry,
  isRaftError,
  validateConfig,
} from './index.js';
import { parseFile, rewrite } from './rafttest/datadriven.js';

const MT = raftpb.MessageType;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function config(id: bigint, storage: MemoryStorage, extra: Partial<Config> = {}): Config {
  return { id, storage, rand: new SeededRand(Number(id)), electionTicks: 10, heartbeatTicks: 1, ...extra };
}

/** Persists and applies one Ready the way the contract says; returns it. */
function handle(rn: RawNode, storage: MemoryStorage, out: raftpb.Message[]): Ready {
  const rd = rn.ready();
  if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  out.push(...rd.messages);
  for (const e of rd.committedEntries) {
    const cc = confChangeFromEntry(e);
    if (cc !== undefined) rn.applyConfChange(cc);
  }
  rn.advance(rd);
  return rd;
}

function throwsCode(f: () => unknown, code: RaftErrorCode): void {
  assert.throws(f, (e: unknown) => isRaftError(e, code));
}

test('bootstrap: every member starts with the same conf changes, contexts untouched', () => {
  const s = new MemoryStorage();
  const rn = new RawNode(config(1n, s));
  const ctx = new Uint8Array([0, 255, 7, 1, 2]);
  rn.bootstrap([{ id: 1n, context: ctx }, { id: 2n }, { id: 3n }]);
  const rd = rn.ready();
  assert.equal(rd.entries.length, 3);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3]);
  assert.deepEqual(rd.hardState, raftpb.HardState.create({ term: 1, commit: 3 }));
  assert.equal(rd.mustSync, true);
  const first = confChangeFromEntry(rd.committedEntries[0]!);
  assert.ok(first !== undefined && !('changes' in first));
  assert.deepEqual(first.context, ctx);
  assert.deepEqual(rn.status().config.voters, [1n, 2n, 3n]);
  assert.throws(() => rn.ready(), /before advance/);
  assert.equal(rn.hasReady(), false, 'nothing more while a Ready is outstanding');
  s.append(rd.entries);
  s.setHardState(rd.hardState);
  rn.advance(rd);
  assert.equal(rn.status().applied, 3);
  assert.throws(() => new RawNode(config(2n, s)).bootstrap([{ id: 2n }]), /nonempty Storage/);
});

test('a single-voter cluster commits after persisting, and restarts from storage', () => {
  const s = new MemoryStorage();
  let rn = new RawNode(config(1n, s));
  rn.bootstrap([{ id: 1n }]);
  const msgs: raftpb.Message[] = [];
  handle(rn, s, msgs);
  rn.campaign();
  handle(rn, s, msgs);
  assert.equal(rn.status().raftState, 'StateLeader');
  rn.propose(enc('hello'));
  const rd = handle(rn, s, msgs);
  // Not committed in the Ready that carries it: the leader counts itself
  // only once the entry is durable.
  assert.deepEqual(rd.entries.map((e) => dec(e.data)), ['hello']);
  assert.equal(rd.committedEntries.some((e) => dec(e.data) === 'hello'), false);
  const rd2 = handle(rn, s, msgs);
  assert.deepEqual(rd2.committedEntries.map((e) => dec(e.data)), ['hello']);
  const st = rn.status();
  assert.equal(st.commit, 3);
  // Restart: hard state and log come back; committed entries after the
  // (empty) snapshot are delivered again, so conf changes can be re-applied.
  rn = new RawNode(config(1n, s));
  assert.equal(rn.status().term, st.term);
  assert.equal(rn.status().vote, 1n);
  assert.equal(rn.status().commit, 3);
  const again = handle(rn, s, msgs);
  assert.deepEqual(again.committedEntries.map((e) => e.index), [1, 2, 3]);
  assert.deepEqual(rn.status().config.voters, [1n]);
});

test('expected failures carry stable codes', () => {
  const s = new MemoryStorage();
  s.applySnapshot(raftpb.Snapshot.create({ metadata: raftpb.SnapshotMetadata.create({ index: 5, term: 1, confState: raftpb.ConfState.create({ voters: [1n, 2n] }) }) }));
  const rn = new RawNode(config(1n, s));
  throwsCode(() => rn.propose(enc('x')), RaftErrorCode.ProposalDropped);
  throwsCode(() => rn.readIndex(enc('r')), RaftErrorCode.ProposalDropped);
  throwsCode(() => rn.step(raftpb.Message.create({ type: MT.MsgHup, from: 2n, to: 1n })), RaftErrorCode.StepLocalMsg);
  throwsCode(() => rn.step(raftpb.Message.create({ type: MT.MsgAppResp, from: 9n, to: 1n, term: 1 })), RaftErrorCode.StepPeerNotFound);
  throwsCode(() => s.term(4), RaftErrorCode.Compacted);
  throwsCode(() => s.term(6), RaftErrorCode.Unavailable);
  throwsCode(() => s.entries(3, 6, 100), RaftErrorCode.Compacted);
  throwsCode(() => s.applySnapshot(raftpb.Snapshot.create({ metadata: raftpb.SnapshotMetadata.create({ index: 5, term: 1 }) })), RaftErrorCode.SnapshotOutOfDate);
  throwsCode(() => s.createSnapshot(5, undefined, enc('')), RaftErrorCode.SnapshotOutOfDate);
  throwsCode(() => s.compact(5), RaftErrorCode.Compacted);
});

test('Config.validate applies etcd-io/raft rules and defaults', () => {
  const s = new MemoryStorage();
  const rand = new SeededRand(1);
  const v = Config.validate({ id: 1n, storage: s, rand });
  assert.equal(v.electionTicks, 10);
  assert.equal(v.heartbeatTicks, 1);
  assert.equal(v.msgAppBytesMax, 1024 * 1024);
  assert.equal(v.readyCommittedBytesMax, v.msgAppBytesMax);
  assert.equal(v.inflightMsgsMax, 256);
  assert.equal(v.uncommittedBytesMax, 0);
  assert.equal(v.readOnlyOption, ReadOnlyOption.ReadOnlySafe);
  throwsCode(() => validateConfig({ id: 0n, storage: s, rand }), RaftErrorCode.ConfigInvalid);
  throwsCode(() => validateConfig({ id: 1n, storage: s, rand, heartbeatTicks: 0 }), RaftErrorCode.ConfigInvalid);
  throwsCode(() => validateConfig({ id: 1n, storage: s, rand, electionTicks: 1, heartbeatTicks: 1 }), RaftErrorCode.ConfigInvalid);
  throwsCode(() => validateConfig({ id: 1n, storage: s, rand, inflightMsgsMax: 0 }), RaftErrorCode.ConfigInvalid);
  throwsCode(() => validateConfig({ id: 1n, storage: s, rand, msgAppBytesMax: 100, inflightBytesMax: 50 }), RaftErrorCode.ConfigInvalid);
  throwsCode(() => validateConfig({ id: 1n, storage: s, rand, readOnlyOption: ReadOnlyOption.ReadOnlyLeaseBased }), RaftErrorCode.ConfigInvalid);
});

test('Ready contract: a leader may send before persisting, a candidate and followers may not', () => {
  const nodes = [1n, 2n, 3n].map((id) => {
    const storage = new MemoryStorage();
    const rn = new RawNode(config(id, storage));
    rn.bootstrap([{ id: 1n }, { id: 2n }, { id: 3n }]);
    return { id, storage, rn };
  });
  const wire: raftpb.Message[] = [];
  const flags: Array<[bigint, string, boolean]> = [];
  const pump = (): void => {
    for (let round = 0; round < 50; round++) {
      let moved = false;
      for (const n of nodes) {
        if (!n.rn.hasReady()) continue;
        const rd = handle(n.rn, n.storage, wire);
        if (rd.messages.length > 0) flags.push([n.id, n.rn.status().raftState, rd.sendBeforePersist]);
        moved = true;
      }
      for (const m of wire.splice(0)) {
        nodes.find((n) => n.id === m.to)?.rn.step(m);
        moved = true;
      }
      if (!moved) return;
    }
  };
  pump();
  nodes[0]!.rn.campaign();
  pump();
  nodes[0]!.rn.propose(enc('x'));
  pump();
  // The candidate's vote requests wait for its vote to be durable; the
  // leader's first Ready (new term) waits too; later leader Readys may go early.
  assert.deepEqual(flags[0], [1n, 'StateCandidate', false]);
  assert.ok(flags.some(([id, st, early]) => id === 1n && st === 'StateLeader' && early));
  assert.ok(flags.every(([id, , early]) => id === 1n || !early), 'followers never send early');
  const st = nodes[0]!.rn.status();
  assert.equal(st.progress.get(2n)?.match, 5);
  assert.equal(st.progress.get(3n)?.state, 'StateReplicate');
  assert.equal(nodes[1]!.rn.status().progress.size, 0);
});

test('datadriven files round-trip through rewrite', () => {
  const text = '# c\n\ncmd a=1 b=(x, y) flag\nin\n----\nout\n\nother\n----\n----\nx\n\ny\n----\n----\n';
  const f = parseFile(text);
  assert.equal(f.cases.length, 2);
  assert.deepEqual(f.cases[0]!.args, [{ key: 'a', vals: ['1'] }, { key: 'b', vals: ['x', 'y'] }, { key: 'flag', vals: [] }]);
  assert.equal(f.cases[0]!.input, 'in');
  assert.equal(f.cases[1]!.expected, 'x\n\ny');
  assert.equal(rewrite(text, f.cases.map((c) => c.expected)), text);
  assert.equal(rewrite(text, ['new', 'p\n\nq']), text.replace('out', 'new').replace('x\n\ny', 'p\n\nq'));
});

test('ReadIndex on a sole voter: answered at once, but only once an entry of its term is committed', () => {
  // A restarted single member whose persisted commit (2) lags an entry it had
  // acknowledged (3): reads must wait for the new term's entry, which commits 3.
  const s = new MemoryStorage();
  s.applySnapshot(raftpb.Snapshot.create({ metadata: raftpb.SnapshotMetadata.create({ index: 1, term: 1, confState: raftpb.ConfState.create({ voters: [1n] }) }) }));
  s.append([2, 3].map((index) => raftpb.Entry.create({ index, term: 1 })));
  s.setHardState(raftpb.HardState.create({ term: 1, vote: 1n, commit: 2 }));
  const rn = new RawNode(config(1n, s));
  assert.equal(rn.localReadIndex(), undefined, 'a follower asks the leader');
  rn.campaign();
  assert.equal(rn.status().raftState, 'StateLeader');
  assert.equal(rn.localReadIndex(), undefined, 'no entry of the new term is committed yet');
  rn.readIndex(enc('early'));
  const out: raftpb.Message[] = [];
  const first = handle(rn, s, out);
  assert.deepEqual(first.readStates, [], 'the early read waits');
  // The leader counts its own (now durable) entry on advance: commit 4, and the read is answered with it.
  const second = handle(rn, s, out);
  assert.deepEqual(second.committedEntries.map((e) => e.index), [3, 4]);
  assert.deepEqual(second.readStates.map((r) => [dec(r.requestCtx), r.index]), [['early', 4]]);
  assert.equal(rn.localReadIndex(), 4);
  rn.readIndex(enc('late'));
  assert.deepEqual(handle(rn, s, out).readStates.map((r) => [dec(r.requestCtx), r.index]), [['late', 4]]);
});
