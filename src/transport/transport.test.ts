// Three transports on 127.0.0.1 exchanging raft messages: ordering per stream,
// batching, large MsgApp, heartbeats not stuck behind appends, bounded queues,
// peers that are down, stalled or restarted, and metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Registry, SeededRand } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import {
  BlackHole, connectAll, FreezableProxy, ManualTimers, freePort, heartbeat, msgApp, startMember, waitFor, waitMesh, type Member,
} from './testing.js';
import { rawMagic } from './raw-stream.js';

const { MsgApp, MsgHeartbeat } = raftpb.MessageType;

async function stopAll(members: readonly Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.t.stop()));
}

test('three members exchange messages in order per stream, batched', async () => {
  const ms = await Promise.all([1n, 2n, 3n].map((id) => startMember(id)));
  try {
    connectAll(ms);
    await waitMesh(ms);
    const n = 1000;
    for (const a of ms) {
      const out: raftpb.Message[] = [];
      for (const b of ms) {
        if (a === b) continue;
        for (let i = 1; i <= n; i++) out.push(msgApp(a.id, b.id, i), heartbeat(a.id, b.id, i));
      }
      a.t.send(out); // one turn: a few writes per stream, not thousands
    }
    await waitFor(() => ms.every((m) => m.received.length === 2 * n * 2), 'all messages');
    for (const b of ms) {
      for (const a of ms) {
        if (a === b) continue;
        const from = b.received.filter((m) => m.from === a.id);
        const apps = from.filter((m) => m.type === MsgApp).map((m) => m.index);
        const beats = from.filter((m) => m.type === MsgHeartbeat).map((m) => m.commit);
        assert.deepEqual(apps, Array.from({ length: n }, (_, i) => i + 1), `MsgApp order ${a.id}→${b.id}`);
        assert.deepEqual(beats, Array.from({ length: n }, (_, i) => i + 1), `heartbeat order ${a.id}→${b.id}`);
        const stats = a.t.peerStats(b.id);
        assert.ok(stats !== undefined);
        assert.equal(stats.sentMessages, 2 * n);
        assert.ok(stats.sentBatches <= 8, `2000 messages in ${stats.sentBatches} writes`);
      }
    }
    for (const m of ms) assert.deepEqual(m.unreachable, []);
  } finally {
    await stopAll(ms);
  }
});

test('a 4 MiB MsgApp arrives intact; heartbeats overtake a backlog of big appends', async () => {
  const ms = await Promise.all([1n, 2n].map((id) => startMember(id)));
  const [a, b] = ms as [Member, Member];
  try {
    connectAll(ms);
    await waitFor(() => a.t.activeSince(b.id) !== undefined, 'link 1→2 active');
    const big = randomBytes(4 * 1024 * 1024);
    a.t.send([msgApp(a.id, b.id, 1, big)]);
    await waitFor(() => b.received.length === 1, 'big MsgApp');
    assert.deepEqual(Buffer.from(b.received[0]?.entries[0]?.data ?? []), big);

    // Eight 2 MiB appends, then a heartbeat in the same turn.
    const apps = Array.from({ length: 8 }, (_, i) => msgApp(a.id, b.id, 10 + i, randomBytes(2 * 1024 * 1024)));
    a.t.send([...apps, heartbeat(a.id, b.id, 99)]);
    await waitFor(() => b.received.length === 10, 'backlog');
    const order = b.received.slice(1).map((m) => (m.type === MsgHeartbeat ? 'hb' : `app${m.index}`));
    assert.ok(order.indexOf('hb') < order.indexOf('app17'), `heartbeat waited for every append: ${order.join(',')}`);
  } finally {
    await stopAll(ms);
  }
});

test('queues are bounded: a full queue drops and reports unreachable once per turn', async () => {
  const ms = await Promise.all([1n, 2n].map((id) => startMember(id, { tuning: { streamQueueMax: 100, pendingQueueMax: 10 } })));
  const [a, b] = ms as [Member, Member];
  const reg = new Registry();
  const hole = new BlackHole();
  const c = await startMember(1n, { metrics: reg, tuning: { pendingQueueMax: 10 } });
  try {
    connectAll(ms);
    await waitFor(() => a.t.activeSince(b.id) !== undefined, 'link active');
    a.t.send(Array.from({ length: 1000 }, (_, i) => heartbeat(a.id, b.id, i + 1)));
    await waitFor(() => b.received.length === 100, 'the first 100');
    assert.deepEqual(b.received.map((m) => m.commit), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.deepEqual(a.unreachable, [b.id], 'one report for 900 drops');

    // A peer that accepts TCP but never answers: at most pendingQueueMax wait for it.
    c.t.addPeer(9n, [await hole.start()]);
    c.t.send(Array.from({ length: 50 }, (_, i) => heartbeat(1n, 9n, i)));
    await waitFor(() => c.unreachable.length > 0, 'unreachable report for the black hole');
    assert.equal(c.t.peerStats(9n)?.queued, 10);
    assert.match(reg.render(), /etcd_network_peer_sent_failures_total\{To="9"\} 40/);
  } finally {
    await stopAll([...ms, c]);
    await hole.stop();
  }
});

test('a message over the frame limit is dropped at the sender; the stream lives on', async () => {
  const ms = await Promise.all([1n, 2n].map((id) => startMember(id, { tuning: { frameBytesMax: 64 * 1024 } })));
  const [a, b] = ms as [Member, Member];
  try {
    connectAll(ms);
    await waitMesh(ms);
    a.t.send([msgApp(1n, 2n, 1, randomBytes(100 * 1024)), msgApp(1n, 2n, 2, randomBytes(1000))]);
    await waitFor(() => b.received.length === 1, 'the small one');
    assert.equal(b.received[0]?.index, 2);
    assert.deepEqual(a.unreachable, [2n]);
    assert.ok(a.t.activeSince(2n) !== undefined);
  } finally {
    await stopAll(ms);
  }
});

test('a dead peer does not slow sends to a live one', async () => {
  const hole = new BlackHole();
  const ms = await Promise.all([1n, 2n].map((id) => startMember(id)));
  const [a, b] = ms as [Member, Member];
  try {
    connectAll(ms);
    a.t.addPeer(3n, [await hole.start()]);
    a.t.addPeer(4n, [`http://127.0.0.1:${await freePort()}`]);
    await waitFor(() => a.t.activeSince(b.id) !== undefined, 'link active');
    const rounds = 200;
    const started = performance.now();
    for (let r = 0; r < rounds; r++) {
      const batch: raftpb.Message[] = [];
      for (let i = 0; i < 20; i++) {
        const commit = r * 20 + i + 1;
        batch.push(heartbeat(a.id, b.id, commit), heartbeat(a.id, 3n, commit), heartbeat(a.id, 4n, commit));
      }
      a.t.send(batch);
      await new Promise((res) => setImmediate(res));
    }
    await waitFor(() => b.received.length === rounds * 20, 'all messages to the live peer');
    const elapsedMs = performance.now() - started;
    assert.deepEqual(b.received.map((m) => m.commit), Array.from({ length: rounds * 20 }, (_, i) => i + 1));
    assert.ok(elapsedMs < 3000, `took ${elapsedMs} ms`);
    assert.ok(a.unreachable.includes(3n) && a.unreachable.includes(4n));
    assert.ok(!a.unreachable.includes(b.id));
  } finally {
    await stopAll(ms);
    await hole.stop();
  }
});

test('a peer that is down comes up, goes down and comes back: reconnect and reports', async (t) => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const a = await startMember(1n);
  let b: Member | undefined;
  try {
    a.t.addPeer(2n, [url]);
    a.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => a.unreachable.includes(2n), 'unreachable while down');
    assert.equal(a.t.activeSince(2n), undefined);

    b = await startMember(2n, { listenUrl: url });
    b.t.addPeer(1n, [a.url]);
    await waitFor(() => a.t.activeSince(2n) !== undefined, 'link up after the peer started');
    a.t.send([heartbeat(1n, 2n, 2)]);
    await waitFor(() => b?.received.some((m) => m.commit === 2) === true, 'message after reconnect');

    a.unreachable.length = 0;
    await b.t.stop();
    await waitFor(() => a.t.activeSince(2n) === undefined, 'link down after the peer stopped');
    a.t.send([heartbeat(1n, 2n, 3)]);
    await waitFor(() => a.unreachable.includes(2n), 'unreachable after the peer stopped');

    const restartedAt = performance.now();
    b = await startMember(2n, { listenUrl: url });
    b.t.addPeer(1n, [a.url]);
    await waitFor(() => a.t.activeSince(2n) !== undefined, 'link up after restart');
    const resumeMs = performance.now() - restartedAt;
    a.t.send([heartbeat(1n, 2n, 4)]);
    await waitFor(() => b?.received.some((m) => m.commit === 4) === true, 'message after restart');
    assert.ok(resumeMs < 2000, `resumed after ${resumeMs} ms`);
    t.diagnostic(`link active again ${resumeMs.toFixed(0)} ms after the peer restarted`);
  } finally {
    await a.t.stop();
    await b?.t.stop();
  }
});

test('reconnect delays back off exponentially with jitter up to the cap (injected timers)', async () => {
  const timers = new ManualTimers();
  const backoff = { initialMs: 20, maxMs: 160, factor: 2 };
  const a = await startMember(1n, { timers, rand: new SeededRand(3), tuning: { backoff, dialTimeoutMs: 60_000, pingIntervalMs: 60_000 } });
  try {
    a.t.addPeer(2n, [`http://127.0.0.1:${await freePort()}`]);
    const delays: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      // The dial is refused on the real event loop; then exactly one retry timer waits.
      await waitFor(() => [...timers.pending.values()].some((t) => t.ms <= backoff.maxMs), `retry timer ${attempt}`);
      delays.push(...timers.fire(backoff.maxMs));
    }
    const nominal = [20, 40, 80, 160, 160, 160, 160];
    assert.equal(delays.length, nominal.length, `delays ${delays.join(',')}`);
    delays.forEach((d, i) => assert.ok(d >= (nominal[i] as number) / 2 && d <= (nominal[i] as number), `retry ${i}: ${d} ms`));
    assert.ok(new Set(delays.slice(3)).size > 1, 'jittered');
  } finally {
    await a.t.stop();
  }
  assert.equal(timers.pending.size, 0, 'stop() cleared every timer');
});

test('a stalled connection is detected by ping and the link recovers when it thaws', async (t) => {
  const b = await startMember(2n);
  const proxy = new FreezableProxy(Number(new URL(b.url).port));
  const proxyUrl = await proxy.start();
  const reg = new Registry();
  const a = await startMember(1n, { metrics: reg, tuning: { pingIntervalMs: 100, pingTimeoutMs: 600 } });
  try {
    a.t.addPeer(2n, [proxyUrl]);
    b.t.addPeer(1n, [a.url]);
    await waitFor(() => a.t.activeSince(2n) !== undefined, 'link active through the proxy');
    await waitFor(() => /etcd_network_peer_round_trip_time_seconds_count\{To="2"\} [1-9]/.test(reg.render()), 'an RTT sample');
    proxy.frozen = true;
    const frozenAt = performance.now();
    a.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => a.t.activeSince(2n) === undefined, 'ping timeout');
    const detectMs = performance.now() - frozenAt;
    await waitFor(() => a.unreachable.includes(2n), 'unreachable report');
    // Not before the timeout; the upper bound allows for a loaded machine.
    assert.ok(detectMs >= 500 && detectMs < 10_000, `detected after ${detectMs} ms`);
    t.diagnostic(`stall detected after ${detectMs.toFixed(0)} ms (ping every 100 ms, timeout 600 ms)`);
    proxy.frozen = false;
    await waitFor(() => a.t.activeSince(2n) !== undefined, 'link back after the thaw');
    a.t.send([heartbeat(1n, 2n, 2)]);
    await waitFor(() => b.received.some((m) => m.commit === 2), 'message after the thaw');
    const text = reg.render();
    assert.match(text, /etcd_network_disconnected_peers_total\{Local="1",Remote="2"\} 1/);
    assert.match(text, /etcd_network_active_peers\{Local="1",Remote="2"\} 1/);
    assert.match(text, /etcd_network_peer_sent_bytes_total\{To="2"\} [1-9]/);
  } finally {
    await a.t.stop();
    await b.t.stop();
    await proxy.stop();
  }
});

test('a raft stream whose connection alone goes silent is closed and redialed; keepalives hold an idle one', async (t) => {
  const tuning = { pingIntervalMs: 100, pingTimeoutMs: 600 };
  const b = await startMember(2n, { tuning });
  // Only the raw raft stream connections freeze: the HTTP/2 session's pings still get through.
  const proxy = new FreezableProxy(Number(new URL(b.url).port), (first) => first.subarray(0, rawMagic.length).equals(rawMagic));
  const proxyUrl = await proxy.start();
  const a = await startMember(1n, { tuning });
  try {
    a.t.addPeer(2n, [proxyUrl]);
    b.t.addPeer(1n, [a.url]);
    await waitFor(() => a.t.activeSince(2n) !== undefined, 'link active through the proxy');
    const since = a.t.activeSince(2n);
    // Idle for many timeouts: the keepalives in both directions hold the link.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(a.t.activeSince(2n), since, 'an idle link stays up');
    a.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => b.received.some((m) => m.commit === 1), 'message over the idle link');

    proxy.frozen = true;
    const frozenAt = performance.now();
    a.t.send([heartbeat(1n, 2n, 2)]);
    await waitFor(() => a.t.activeSince(2n) !== since, 'the silent stream closed');
    const detectMs = performance.now() - frozenAt;
    assert.ok(detectMs >= 500 && detectMs < 10_000, `detected after ${detectMs} ms`);
    t.diagnostic(`silent raft stream detected after ${detectMs.toFixed(0)} ms (keepalive every 100 ms, timeout 600 ms)`);
    proxy.frozen = false;
    await waitFor(() => a.t.activeSince(2n) !== undefined, 'link back after the thaw');
    a.t.send([heartbeat(1n, 2n, 3)]);
    await waitFor(() => b.received.some((m) => m.commit === 3), 'message after the thaw');
    assert.ok(b.received.every((m) => m.to === 2n && m.from === 1n), 'keepalives are not delivered as messages');
  } finally {
    await a.t.stop();
    await b.t.stop();
    await proxy.stop();
  }
});

test('the filter drops and delays messages per peer', async () => {
  const ms = await Promise.all([1n, 2n, 3n].map((id) => startMember(id)));
  const [a, b, c] = ms as [Member, Member, Member];
  try {
    connectAll(ms);
    a.t.setFilter((m, to) => (to === 2n ? 'drop' : m.commit % 2 === 0 ? { delayMs: 50 } : 'pass'));
    a.t.send([heartbeat(1n, 2n, 1), heartbeat(1n, 3n, 1), heartbeat(1n, 3n, 2), heartbeat(1n, 3n, 3)]);
    await waitFor(() => c.received.length === 3, 'messages to 3');
    assert.deepEqual(c.received.map((m) => m.commit), [1, 3, 2], 'the delayed one comes last');
    a.t.send([raftpb.Message.create({ type: raftpb.MessageType.MsgSnap, from: 1n, to: 2n })]);
    await waitFor(() => a.snapshotReports.length === 1, 'a dropped MsgSnap still ends raft\'s wait');
    assert.deepEqual(a.snapshotReports, [{ id: 2n, ok: false }]);
    assert.deepEqual(a.unreachable, [2n]);
    a.unreachable.length = 0;
    a.t.setFilter(undefined);
    a.t.send([heartbeat(1n, 2n, 5)]);
    await waitFor(() => b.received.length === 1, 'message to 2 after the filter is lifted');
    assert.equal(b.received[0]?.commit, 5);
    assert.deepEqual(a.unreachable, [], 'a filtered drop is silent');
  } finally {
    await stopAll(ms);
  }
});

test('stop() leaves no handles behind', async () => {
  const before = new Set(process.getActiveResourcesInfo());
  const ms = await Promise.all([1n, 2n, 3n].map((id) => startMember(id)));
  connectAll(ms);
  await waitMesh(ms);
  ms[0]?.t.addPeer(7n, [`http://127.0.0.1:${await freePort()}`]);
  await stopAll(ms);
  await new Promise((r) => setImmediate(r));
  const leaked = process.getActiveResourcesInfo().filter((r) => /TCP|Timeout|Immediate|Http2/.test(r));
  const baseline = [...before].filter((r) => /TCP|Timeout|Immediate|Http2/.test(r));
  assert.ok(leaked.length <= baseline.length, `left: ${leaked.join(', ')}`);
});

test('a proposal or read index a follower forwards keeps its originator as sender and is stepped; a removed originator is not', async () => {
  // Raft forwards a MsgProp or MsgReadIndex it got from a peer to its leader
  // with the peer's id still in `from` (etcd's rafthttp and Process accept
  // it, refusing only a removed sender): 1 asked 3, which learned that 2 leads.
  const ms = await Promise.all([2n, 3n].map((id) => startMember(id)));
  const [leader, relay] = ms as [Member, Member];
  try {
    connectAll(ms);
    await waitFor(() => relay.t.activeSince(leader.id) !== undefined, 'link 3→2 active');
    const { MsgProp, MsgReadIndex } = raftpb.MessageType;
    const prop = raftpb.Message.create({ type: MsgProp, from: 1n, to: leader.id, entries: [raftpb.Entry.create({ data: new Uint8Array([1]) })] });
    const read = raftpb.Message.create({ type: MsgReadIndex, from: 1n, to: leader.id, entries: [raftpb.Entry.create({ data: new Uint8Array([2]) })] });
    relay.t.send([prop, read, heartbeat(relay.id, leader.id, 1)]);
    await waitFor(() => leader.received.some((m) => m.type === MsgHeartbeat), 'the heartbeat');
    assert.deepEqual(leader.received.map((m) => [m.type, m.from]), [[MsgProp, 1n], [MsgReadIndex, 1n], [MsgHeartbeat, relay.id]]);

    // Any other message must come from the stream's sender.
    leader.removed.add(1n);
    relay.t.send([prop, heartbeat(1n, leader.id, 7), heartbeat(relay.id, leader.id, 2)]);
    await waitFor(() => leader.received.filter((m) => m.type === MsgHeartbeat).length === 2, 'the second heartbeat');
    assert.deepEqual(leader.received.slice(3).map((m) => [m.type, m.from]), [[MsgHeartbeat, relay.id]]);
  } finally {
    await stopAll(ms);
  }
});
