// Every incoming request is admitted only with the right cluster id, protocol
// version, recipient and a sender that is not removed; malformed streams are
// cut off and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { Registry } from '../base/index.js';
import { ClusterIdMismatchError, MemberRemovedError } from './errors.js';
import { headers, paths, protocolVersion } from './protocol.js';
import { dialRaw, jsonLine, readJsonLine, responseOf } from './raw-stream.js';
import { ManualTimers, connectAll, heartbeat, recordingLogger, startMember, testClusterId, waitFor, waitMesh, type LogLine } from './testing.js';

/** A peer URL nothing listens on (port 1): a peer added only so that it is known. */
const unreachableUrl = 'http://127.0.0.1:1';

test('a member of another cluster is refused with 412 and the sender is told', async () => {
  const a = await startMember(1n);
  const d = await startMember(4n, { clusterId: 0x999n });
  try {
    a.t.addPeer(4n, [d.url]);
    await waitFor(() => a.rejected.length > 0, 'rejection');
    const first = a.rejected[0];
    assert.ok(first?.err instanceof ClusterIdMismatchError, String(first?.err));
    assert.equal(first.peer, 4n);
    assert.match(first.err.message, /cluster ID mismatch: got 1234abcd, want 999/);
    a.t.send([heartbeat(1n, 4n, 1)]);
    await waitFor(() => a.unreachable.includes(4n), 'unreachable');
    assert.equal(a.t.activeSince(4n), undefined);
    assert.deepEqual(d.received, []);
  } finally {
    await Promise.all([a.t.stop(), d.t.stop()]);
  }
});

test('a removed member is refused with 410, also when removed while connected', async () => {
  const a = await startMember(1n);
  const b = await startMember(2n);
  try {
    connectAll([a, b]);
    await waitMesh([a, b]);
    a.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => b.received.length === 1, 'message before the removal');

    b.removed.add(1n);
    b.t.removePeer(1n); // closes the streams member 1 had opened to us
    await waitFor(() => a.rejected.some((r) => r.err instanceof MemberRemovedError), 'member-removed rejection');
    assert.equal(a.rejected.find((r) => r.err instanceof MemberRemovedError)?.peer, 2n);
    assert.equal(a.t.activeSince(2n), undefined);
    a.t.send([heartbeat(1n, 2n, 2)]);
    await waitFor(() => a.unreachable.includes(2n), 'unreachable');
    assert.equal(b.received.length, 1, 'nothing delivered after the removal');
  } finally {
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
});

interface Answer {
  status: number;
  code: string | undefined;
  closed: boolean;
}

/** One raw request to a member; resolves with the answer and whether the server ended the stream. */
async function rawRequest(url: string, h: Record<string, string>, body?: Uint8Array): Promise<Answer> {
  const session = http2.connect(url);
  session.on('error', () => undefined);
  try {
    return await new Promise<Answer>((resolve) => {
      const req = session.request({ ':method': 'POST', ...h }, { endStream: false });
      let status = 0;
      let code: string | undefined;
      req.on('response', (rh) => {
        status = Number(rh[':status']);
        code = rh[headers.errorCode] as string | undefined;
        if (status !== 200) resolve({ status, code, closed: true });
      });
      req.on('error', () => undefined);
      req.on('close', () => resolve({ status, code, closed: true }));
      req.on('data', () => undefined);
      if (body !== undefined) req.write(body);
    });
  } finally {
    session.destroy();
  }
}

test('a connection that opens no stream is closed', async () => {
  const b = await startMember(2n, { tuning: { inboundFirstStreamTimeoutMs: 200 } });
  try {
    const sock = net.connect(Number(new URL(b.url).port), '127.0.0.1');
    sock.on('error', () => undefined);
    sock.resume();
    const started = performance.now();
    await new Promise((r) => sock.once('close', r));
    const ms = performance.now() - started;
    assert.ok(ms >= 150 && ms < 3000, `closed after ${ms} ms`);
  } finally {
    await b.t.stop();
  }
});

test("a peer's session that opens no stream but pings is kept, with the raft streams it goes with", async () => {
  // The raft streams are connections of their own: the HTTP/2 session beside
  // them only pings until a snapshot or an rpc comes. Closing it as idle
  // would tear the whole link down again and again, dropping raft messages.
  // Injected timers: a's ping, then b's first-stream timeout, fire when told.
  const aTimers = new ManualTimers();
  const bTimers = new ManualTimers();
  const reg = new Registry();
  const bLog: LogLine[] = [];
  const tuning = { pingIntervalMs: 100, inboundFirstStreamTimeoutMs: 10_000 };
  const a = await startMember(1n, { timers: aTimers, metrics: reg, tuning });
  const b = await startMember(2n, { timers: bTimers, logger: recordingLogger(bLog), tuning });
  try {
    // b knows a (it takes raft streams from members only) but does not dial it here; a dials b.
    b.t.addPeer(1n, [unreachableUrl]);
    a.t.addPeer(2n, [b.url]);
    await waitFor(() => a.t.activeSince(2n) !== undefined, 'link active');
    const since = a.t.activeSince(2n);
    aTimers.fire(tuning.pingIntervalMs);
    // The ping's answer is in: b has seen the ping.
    await waitFor(() => /etcd_network_peer_round_trip_time_seconds_count\{To="2"\} [1-9]/.test(reg.render()), 'ping answered');
    // (b's own timers for its link to a fire too: only the first-stream timeout must not be among them.)
    assert.ok(!bTimers.fire(tuning.inboundFirstStreamTimeoutMs).includes(tuning.inboundFirstStreamTimeoutMs), "b's first-stream timer was cleared by the ping");
    assert.deepEqual(bLog.filter((l) => l.level === 'warn' && l.msg !== 'failed to dial remote peer').map((l) => l.msg), []);
    a.t.send([heartbeat(1n, 2n, 7)]);
    await waitFor(() => b.received.some((m) => m.commit === 7), 'a message after the timeout');
    assert.equal(a.t.activeSince(2n), since, 'the link never reconnected');
    assert.deepEqual(a.unreachable, []);
  } finally {
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
});

test('wrong version, recipient, cluster or path are refused with etcd statuses; garbage frames cut the stream', async () => {
  const reg = new Registry();
  const b = await startMember(2n, { metrics: reg });
  try {
    const good = {
      [headers.clusterId]: testClusterId.toString(16), [headers.from]: '1', [headers.to]: '2', [headers.protocol]: protocolVersion,
    };
    const stream = { ':path': paths.streamMessage };
    assert.deepEqual(await rawRequest(b.url, { ...stream, ...good, [headers.protocol]: '0' }), { status: 412, code: 'incompatible-version', closed: true });
    assert.deepEqual(await rawRequest(b.url, { ...stream, ...good, [headers.to]: '3' }), { status: 412, code: 'to-mismatch', closed: true });
    assert.deepEqual(await rawRequest(b.url, { ...stream, ...good, [headers.clusterId]: 'beef' }), { status: 412, code: 'cluster-id-mismatch', closed: true });
    assert.deepEqual(await rawRequest(b.url, { ':path': '/nope', ...good }), { status: 404, code: 'bad-request', closed: true });
    // A sender b does not know (etcd: 404, sender not found); then b learns of member 1.
    assert.deepEqual(await rawRequest(b.url, { ...stream, ...good }), { status: 404, code: 'peer-not-found', closed: true });
    assert.deepEqual(await rawRequest(b.url, { ':path': paths.snapshot, ...good }), { status: 404, code: 'peer-not-found', closed: true });
    b.t.addPeer(1n, [unreachableUrl]);
    b.removed.add(1n);
    assert.deepEqual(await rawRequest(b.url, { ...stream, ...good }), { status: 410, code: 'member-removed', closed: true });
    b.removed.clear();
    // A frame claiming 200 MiB, over frameBytesMax: the stream is reset, nothing reaches raft.
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(200 * 1024 * 1024, 0);
    const a = await rawRequest(b.url, { ...stream, ...good }, huge);
    assert.equal(a.status, 200);
    assert.deepEqual(b.received, []);
    // A corrupt checksum on an otherwise valid frame.
    const bad = Buffer.from([0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 8, 8]);
    await rawRequest(b.url, { ...stream, ...good }, bad);
    assert.deepEqual(b.received, []);
    assert.match(reg.render(), /etcd_network_peer_received_failures_total\{From="1"\} 2/);
  } finally {
    await b.t.stop();
  }
});

/** The same request on a raw stream connection (raw-stream.ts): the answer line, and whether the server closed. */
async function rawStreamRequest(url: string, h: Record<string, string>, body?: Uint8Array): Promise<Answer> {
  const sock = dialRaw(url, undefined);
  sock.on('error', () => undefined);
  try {
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(jsonLine(h));
    const { value } = await readJsonLine(sock, Buffer.alloc(0), 3000);
    const res = responseOf(value);
    assert.ok(res !== undefined);
    const code = res.headers[headers.errorCode] as string | undefined;
    if (res.status !== 200) {
      await closed;
      return { status: res.status, code, closed: true };
    }
    sock.resume();
    if (body !== undefined) sock.write(body);
    await closed;
    return { status: res.status, code, closed: true };
  } finally {
    sock.destroy();
  }
}

test('raw streams: the same refusals and statuses; garbage frames cut the connection', async () => {
  const reg = new Registry();
  const b = await startMember(2n, { metrics: reg });
  try {
    const good = {
      [headers.clusterId]: testClusterId.toString(16), [headers.from]: '1', [headers.to]: '2', [headers.protocol]: protocolVersion,
    };
    const stream = { ':path': paths.streamMsgApp };
    assert.deepEqual(await rawStreamRequest(b.url, { ...stream, ...good, [headers.protocol]: '0' }), { status: 412, code: 'incompatible-version', closed: true });
    assert.deepEqual(await rawStreamRequest(b.url, { ...stream, ...good, [headers.to]: '3' }), { status: 412, code: 'to-mismatch', closed: true });
    assert.deepEqual(await rawStreamRequest(b.url, { ...stream, ...good, [headers.clusterId]: 'beef' }), { status: 412, code: 'cluster-id-mismatch', closed: true });
    assert.deepEqual(await rawStreamRequest(b.url, { ':path': paths.snapshot, ...good }), { status: 404, code: 'bad-request', closed: true });
    assert.deepEqual(await rawStreamRequest(b.url, { ...stream, ...good }), { status: 404, code: 'peer-not-found', closed: true });
    b.t.addPeer(1n, [unreachableUrl]);
    b.removed.add(1n);
    assert.deepEqual(await rawStreamRequest(b.url, { ...stream, ...good }), { status: 410, code: 'member-removed', closed: true });
    b.removed.clear();
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(200 * 1024 * 1024, 0);
    assert.equal((await rawStreamRequest(b.url, { ...stream, ...good }, huge)).status, 200);
    await rawStreamRequest(b.url, { ...stream, ...good }, Buffer.from([0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 8, 8]));
    assert.deepEqual(b.received, []);
    assert.match(reg.render(), /etcd_network_peer_received_failures_total\{From="1"\} 2/);
  } finally {
    await b.t.stop();
  }
});
