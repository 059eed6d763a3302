// MsgSnap with a multi-MiB db body: success, the receiver failing part way,
// a sender whose source fails part way (the receiver must not take what came
// for the db), a peer that is down, and raft streams that keep flowing during
// a transfer. A member's db pulled for a repair: whole, and cut by a failing
// source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Registry } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import type { SnapshotCallbacks } from './options.js';
import { connectAll, freePort, heartbeat, patternChunk, patternStream, startMember, waitFor, waitMesh, type Member } from './testing.js';

const mib = 1024 * 1024;

function msgSnap(from: bigint, to: bigint, index: number): raftpb.Message {
  return raftpb.Message.create({
    type: raftpb.MessageType.MsgSnap, from, to, term: 2,
    snapshot: raftpb.Snapshot.create({
      data: new TextEncoder().encode('membership'),
      metadata: raftpb.SnapshotMetadata.create({ index, term: 2, confState: raftpb.ConfState.create({ voters: [1n, 2n] }) }),
    }),
  });
}

interface Received {
  index: number;
  bytes: number;
  sha: string;
}

/** Pattern bytes, then a failure of the source. */
async function* failingAfter(bytes: number): AsyncGenerator<Uint8Array> {
  yield* patternStream(bytes, 64 * 1024, 5);
  throw new Error('the source broke');
}

/**
 * Sender side yields `size` pattern bytes (or breaks after `breakAfter`), and serves them to a pull;
 * receiver hashes, or fails after failAfter bytes.
 */
function snapshots(size: number, opts: { breakAfter?: number; failAfter?: number; got?: Received[]; processedBefore?: () => number }): SnapshotCallbacks {
  const source = (): AsyncIterable<Uint8Array> => (opts.breakAfter === undefined ? patternStream(size, 64 * 1024, 5) : failingAfter(opts.breakAfter));
  return {
    open: () => Promise.resolve(source()),
    serveDb: () => Promise.resolve(source()),
    receive: async (m, body) => {
      const h = createHash('sha256');
      let bytes = 0;
      for await (const c of body) {
        bytes += c.length;
        if (opts.failAfter !== undefined && bytes > opts.failAfter) throw new Error('disk full');
        h.update(c);
      }
      opts.got?.push({ index: m.snapshot?.metadata?.index ?? 0, bytes, sha: h.digest('hex') });
    },
  };
}

function patternSha(size: number): string {
  const h = createHash('sha256');
  for (let at = 0; at < size; at += mib) h.update(patternChunk(at, Math.min(mib, size - at), 5));
  return h.digest('hex');
}

async function pair(a: SnapshotCallbacks, b: SnapshotCallbacks, regA?: Registry, regB?: Registry): Promise<[Member, Member]> {
  const m1 = await startMember(1n, { snapshots: a, ...(regA === undefined ? {} : { metrics: regA }) });
  const m2 = await startMember(2n, { snapshots: b, ...(regB === undefined ? {} : { metrics: regB }) });
  connectAll([m1, m2]);
  await waitMesh([m1, m2]);
  return [m1, m2];
}

test('a 24 MiB snapshot streams through, then raft steps MsgSnap and the sender hears ok', async (t) => {
  const size = 24 * mib;
  const got: Received[] = [];
  const regA = new Registry();
  const regB = new Registry();
  const [a, b] = await pair(snapshots(size, {}), snapshots(size, { got }), regA, regB);
  try {
    const started = performance.now();
    a.t.send([msgSnap(1n, 2n, 42)]);
    // Heartbeats keep flowing on their own stream while the db streams.
    for (let i = 1; i <= 20; i++) {
      a.t.send([heartbeat(1n, 2n, i)]);
      await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor(() => a.snapshotReports.length === 1, 'snapshot report', 20_000);
    const ms = performance.now() - started;
    assert.deepEqual(a.snapshotReports, [{ id: 2n, ok: true }]);
    assert.deepEqual(got, [{ index: 42, bytes: size, sha: patternSha(size) }]);
    const snapAt = b.received.findIndex((m) => m.type === raftpb.MessageType.MsgSnap);
    assert.ok(snapAt >= 0, 'MsgSnap stepped');
    assert.equal(b.received[snapAt]?.snapshot?.metadata?.index, 42);
    await waitFor(() => b.received.filter((m) => m.type === raftpb.MessageType.MsgHeartbeat).length === 20, 'heartbeats');
    assert.deepEqual(a.unreachable, []);
    assert.match(regA.render(), /etcd_network_snapshot_send_success\{To="2"\} 1/);
    assert.match(regA.render(), /etcd_network_snapshot_send_total_duration_seconds_count\{To="2"\} 1/);
    assert.match(regB.render(), /etcd_network_snapshot_receive_success\{From="1"\} 1/);
    assert.match(regB.render(), /etcd_network_snapshot_receive_inflights_total\{From="1"\} 0/);
    t.diagnostic(`snapshot of ${size / mib} MiB in ${ms.toFixed(0)} ms (${((size / mib) / (ms / 1000)).toFixed(0)} MiB/s)`);
  } finally {
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
});

test('the receiver failing mid-way fails the send: reportSnapshot(false) and unreachable', async () => {
  const size = 16 * mib;
  const regA = new Registry();
  const regB = new Registry();
  const [a, b] = await pair(snapshots(size, {}), snapshots(size, { failAfter: 3 * mib }), regA, regB);
  try {
    a.t.send([msgSnap(1n, 2n, 7)]);
    await waitFor(() => a.snapshotReports.length === 1, 'snapshot report', 20_000);
    assert.deepEqual(a.snapshotReports, [{ id: 2n, ok: false }]);
    assert.ok(a.unreachable.includes(2n));
    assert.ok(!b.received.some((m) => m.type === raftpb.MessageType.MsgSnap), 'raft never saw it');
    assert.match(regA.render(), /etcd_network_snapshot_send_failures\{To="2"\} 1/);
    assert.match(regB.render(), /etcd_network_snapshot_receive_failures\{From="1"\} 1/);
    // The link survives a failed transfer: raft messages still flow.
    a.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => b.received.length === 1, 'heartbeat after the failure');
  } finally {
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
});

test('a source that breaks part way resets the request: the receiver fails, not a short db', async () => {
  const size = 4 * mib;
  const got: Received[] = [];
  const regB = new Registry();
  const [a, b] = await pair(snapshots(size, { breakAfter: 3 * mib }), snapshots(size, { got }), undefined, regB);
  try {
    a.t.send([msgSnap(1n, 2n, 9)]);
    await waitFor(() => a.snapshotReports.length === 1, 'snapshot report', 20_000);
    assert.deepEqual(a.snapshotReports, [{ id: 2n, ok: false }]);
    await waitFor(() => /etcd_network_snapshot_receive_failures\{From="1"\} 1/.test(regB.render()), 'the receiver counts a failure');
    assert.deepEqual(got, []);
    assert.ok(!b.received.some((m) => m.type === raftpb.MessageType.MsgSnap));
  } finally {
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
});

/** A pull's bytes, hashed; the error if the body threw. */
async function pulled(body: AsyncIterable<Uint8Array>): Promise<{ bytes: number; sha: string } | Error> {
  const h = createHash('sha256');
  let bytes = 0;
  try {
    for await (const c of body) {
      bytes += c.length;
      h.update(c);
    }
  } catch (e) {
    return e as Error;
  }
  return { bytes, sha: h.digest('hex') };
}

test("a member's db pulled for a repair comes whole to the end of the answer; one whose source breaks is cut, and the pull throws", async () => {
  const size = 5 * mib;
  const [a, b] = await pair(snapshots(size, {}), snapshots(size, { breakAfter: 2 * mib }));
  try {
    assert.deepEqual(await pulled((await b.t.fetchDb(1n, 0, 5000)).body), { bytes: size, sha: patternSha(size) });
    const cut = await pulled((await a.t.fetchDb(2n, 0, 5000)).body);
    assert.ok(cut instanceof Error, `a cut pull read as a db of ${JSON.stringify(cut)}`);
    assert.match(cut.message, /database pull cut after/);
  } finally {
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
});

test('a snapshot to a peer that is down fails within the dial timeout', async () => {
  const a = await startMember(1n, { snapshots: snapshots(mib, {}), tuning: { dialTimeoutMs: 300 } });
  try {
    a.t.addPeer(2n, [`http://127.0.0.1:${await freePort()}`]);
    a.t.send([msgSnap(1n, 2n, 3)]);
    await waitFor(() => a.snapshotReports.length === 1, 'snapshot report');
    assert.deepEqual(a.snapshotReports, [{ id: 2n, ok: false }]);
    assert.ok(a.unreachable.includes(2n));
  } finally {
    await a.t.stop();
  }
});
