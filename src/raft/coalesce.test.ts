import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRand } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { MemoryStorage, RawNode, coalesceMessages } from './index.js';

const MT = raftpb.MessageType;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function ent(index: number, term: number, data = 'v'): raftpb.Entry {
  return raftpb.Entry.create({ index, term, data: enc(data) });
}

function app(to: bigint, index: number, logTerm: number, entries: raftpb.Entry[], commit: number, term = 2): raftpb.Message {
  return raftpb.Message.create({ type: MT.MsgApp, from: 1n, to, term, index, logTerm, entries, commit });
}

const big = 1 << 20;

test('appends to one peer that continue each other become one, per peer, in order', () => {
  const msgs = [
    app(2n, 5, 2, [ent(6, 2)], 5),
    app(3n, 5, 2, [ent(6, 2)], 5),
    app(2n, 6, 2, [ent(7, 2)], 5),
    raftpb.Message.create({ type: MT.MsgHeartbeat, from: 1n, to: 4n, term: 2 }),
    app(3n, 6, 2, [ent(7, 2)], 6),
    app(2n, 7, 2, [ent(8, 2), ent(9, 2)], 6),
  ];
  const out = coalesceMessages(msgs, big);
  assert.deepEqual(
    out.map((m) => [m.type, m.to, m.index, m.logTerm, m.entries.map((e) => e.index), m.commit]),
    [
      [MT.MsgApp, 2n, 5, 2, [6, 7, 8, 9], 6],
      [MT.MsgApp, 3n, 5, 2, [6, 7], 6],
      [MT.MsgHeartbeat, 4n, 0, 0, [], 0],
    ],
  );
  assert.equal(msgs[0]?.entries.length, 1, 'the input is left alone');
});

test('an empty append is absorbed by the one that follows it', () => {
  const out = coalesceMessages([app(2n, 5, 2, [], 4), app(2n, 5, 2, [ent(6, 2)], 5)], big);
  assert.equal(out.length, 1);
  assert.deepEqual([out[0]?.index, out[0]?.entries.map((e) => e.index), out[0]?.commit], [5, [6], 5]);
});

test('appends that do not continue each other, or would grow past the bound, stay apart', () => {
  const cases: Array<[string, raftpb.Message[], number]> = [
    ['a gap', [app(2n, 5, 2, [ent(6, 2)], 5), app(2n, 7, 2, [ent(8, 2)], 5)], big],
    ['another log term', [app(2n, 5, 2, [ent(6, 2)], 5), app(2n, 6, 1, [ent(7, 2)], 5)], big],
    ['another message term', [app(2n, 5, 2, [ent(6, 2)], 5, 2), app(2n, 6, 2, [ent(7, 3)], 5, 3)], big],
    [
      'a heartbeat to the same peer between them',
      [app(2n, 5, 2, [ent(6, 2)], 5), raftpb.Message.create({ type: MT.MsgHeartbeat, from: 1n, to: 2n, term: 2 }), app(2n, 6, 2, [ent(7, 2)], 5)],
      big,
    ],
    ['the byte bound', [app(2n, 5, 2, [ent(6, 2, 'x'.repeat(100))], 5), app(2n, 6, 2, [ent(7, 2, 'y'.repeat(100))], 5)], 150],
  ];
  for (const [what, msgs, bound] of cases) {
    assert.equal(coalesceMessages(msgs, bound).length, msgs.length, what);
  }
});

test('acceptances to one peer reduce to the last; rejections are all kept', () => {
  const resp = (index: number, reject = false): raftpb.Message =>
    raftpb.Message.create({ type: MT.MsgAppResp, from: 2n, to: 1n, term: 2, index, reject, rejectHint: reject ? index - 1 : 0 });
  assert.deepEqual(
    coalesceMessages([resp(6), resp(7), resp(9)], big).map((m) => m.index),
    [9],
  );
  assert.deepEqual(
    coalesceMessages([resp(6), resp(7, true), resp(8)], big).map((m) => [m.index, m.reject]),
    [
      [6, false],
      [7, true],
      [8, false],
    ],
  );
});

test('a leader taking many proposals in one turn replicates them with one append and one ack per follower', () => {
  const nodes = [1n, 2n, 3n].map((id) => {
    const storage = new MemoryStorage();
    const rn = new RawNode({ id, storage, rand: new SeededRand(Number(id)), electionTicks: 10, heartbeatTicks: 1 });
    rn.bootstrap([{ id: 1n }, { id: 2n }, { id: 3n }]);
    return { id, storage, rn };
  });
  let sent = 0;
  const pump = (): void => {
    for (let round = 0; round < 50; round++) {
      const wire: raftpb.Message[] = [];
      for (const n of nodes) {
        if (!n.rn.hasReady()) continue;
        const rd = n.rn.ready();
        n.storage.append(rd.entries);
        if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
        wire.push(...coalesceMessages(rd.messages, big));
        n.rn.advance(rd);
      }
      if (wire.length === 0) return;
      sent += wire.length;
      for (const m of wire) nodes.find((n) => n.id === m.to)?.rn.step(m);
    }
    assert.fail('the cluster did not settle');
  };
  pump();
  nodes[0]?.rn.campaign();
  pump();
  const leader = nodes[0] as (typeof nodes)[number];
  assert.equal(leader.rn.status().raftState, 'StateLeader');
  const last = leader.storage.lastIndex();

  sent = 0;
  for (let i = 0; i < 20; i++) leader.rn.propose(enc(`p${i}`));
  const rd = leader.rn.ready();
  const apps = rd.messages.filter((m) => m.type === MT.MsgApp);
  assert.equal(apps.length, 40, 'raft itself sends one append per proposal and follower');
  const merged = coalesceMessages(rd.messages, big);
  assert.deepEqual(
    merged.filter((m) => m.type === MT.MsgApp).map((m) => [m.to, m.entries.length]),
    [
      [2n, 20],
      [3n, 20],
    ],
  );
  leader.storage.append(rd.entries);
  leader.rn.advance(rd);
  for (const m of merged) nodes.find((n) => n.id === m.to)?.rn.step(m);
  pump();
  for (const n of nodes) {
    assert.equal(n.storage.lastIndex(), last + 20, `member ${n.id} has every entry`);
    assert.equal(n.rn.status().commit, last + 20, `member ${n.id} knows they are committed`);
  }
  for (const id of [2n, 3n]) {
    const pr = leader.rn.status().progress.get(id);
    assert.equal(pr?.match, last + 20);
    assert.equal(pr?.inflightCount, 0, 'the merged append freed every message counted in flight');
  }
  assert.ok(sent <= 8, `a handful of messages after the merged appends, not one per proposal (${sent})`);
});
