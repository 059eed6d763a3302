// Flow control and connection policy: a slow reader holds a writer back (both
// directions), the server enforces grpc-go's ping policy, and the server's
// keepalive pings close a connection that stopped answering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { GrpcChannel } from './channel.js';
import { encodeInteger, encodeRawString } from './hpack.js';
import { echoMethods, startEchoServer } from './test-kit.js';

async function eventually(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a server stream to a client that does not read stops at the flow-control window, then resumes', async () => {
  const srv = await startEchoServer();
  const ch = new GrpcChannel({ address: `127.0.0.1:${srv.port}` });
  try {
    const messages = 20_000;
    const call = ch.serverStream(echoMethods.Stream, `${messages}:1024`);
    await eventually(() => srv.state.streamBlocked, 'the handler to block on drained()');
    const writtenAtStall = srv.state.streamWritten;
    // In flight: the client's stream window (64 KiB) and Node's read buffer, the
    // server's write buffer (16 KiB high-water mark): a few hundred KiB at most,
    // out of the 20 MiB the handler wants to send.
    assert.ok(writtenAtStall * 1029 < 512 * 1024, `${writtenAtStall} messages written before the stall`);
    assert.ok(srv.state.streamMaxBuffered < 64 * 1024, `server buffered ${srv.state.streamMaxBuffered} bytes`);
    assert.ok(!srv.state.streamDone);
    let n = 0;
    for await (const m of call) {
      assert.equal(m.length, 1024);
      n++;
    }
    assert.equal(n, messages);
    assert.ok(srv.state.streamDone);
    assert.ok(srv.state.streamMaxBuffered < 64 * 1024, `server buffered ${srv.state.streamMaxBuffered} bytes`);
  } finally {
    ch.close();
    await srv.close();
  }
});

test('a client stream to a handler that does not read makes write() return false', async () => {
  const srv = await startEchoServer();
  const ch = new GrpcChannel({ address: `127.0.0.1:${srv.port}` });
  try {
    const call = ch.clientStream(echoMethods.Sink);
    const chunk = Buffer.alloc(1024, 1);
    const total = 20_000;
    let written = 0;
    let stalledAt = -1;
    // Writes as fast as backpressure allows; a drain that does not come within
    // the stall window means the writer is held back (flow control works).
    const stallMs = 300;
    while (written < total) {
      if (call.write(chunk)) {
        written++;
        continue;
      }
      written++;
      if (stalledAt < 0) {
        const drained = await Promise.race([
          call.drained().then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), stallMs)),
        ]);
        if (drained) continue;
        stalledAt = written;
        assert.ok(call.bufferedBytes <= 64 * 1024, `buffered ${call.bufferedBytes}`);
        srv.state.openGate();
      }
      await call.drained();
    }
    assert.ok(stalledAt > 0 && stalledAt * 1029 < 1024 * 1024, `the writer stalled after ${stalledAt} messages`);
    call.end();
    assert.equal(await call.response, String(written));
  } finally {
    ch.close();
    await srv.close();
  }
});

test('pings: too many get GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; pings between responses are fine', async () => {
  const srv = await startEchoServer({ keepaliveMinTimeMs: 5000 });
  const session = http2.connect(`http://127.0.0.1:${srv.port}`);
  // A GOAWAY with an error code ends the session with an 'error' event too.
  session.on('error', () => undefined);
  try {
    await new Promise<void>((r) => session.once('connect', () => r()));
    const ping = (): Promise<void> =>
      new Promise((resolve, reject) => {
        session.ping((err) => (err === null ? resolve() : reject(err)));
      });
    const call = async (): Promise<void> => {
      const st = session.request({ ':method': 'POST', ':path': echoMethods.Unary.path, 'content-type': 'application/grpc', te: 'trailers' });
      st.end(Buffer.from([0, 0, 0, 0, 1, 0x61]));
      st.resume();
      await new Promise((r) => st.once('close', r));
    };
    for (let i = 0; i < 6; i++) {
      await call();
      await ping();
    }
    const goaway = new Promise<{ code: number; data: string }>((resolve) =>
      session.once('goaway', (code: number, _last: number, data?: Buffer) => resolve({ code, data: data?.toString() ?? '' })),
    );
    // An open call, and nothing sent by the server between pings: each ping is a strike.
    const hang = session.request({ ':method': 'POST', ':path': echoMethods.Hang.path, 'content-type': 'application/grpc', te: 'trailers' });
    hang.on('error', () => undefined);
    hang.write(Buffer.from([0, 0, 0, 0, 1, 0x61]));
    for (let i = 0; i < 4; i++) await ping().catch(() => undefined);
    const g = await goaway;
    assert.equal(g.code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(g.data, 'too_many_pings');
  } finally {
    session.destroy();
    await srv.close();
  }
});

test('pings: a client pinging between the DATA frames of one large response, as grpc-go measures bandwidth, gets no strike', async () => {
  const srv = await startEchoServer({ keepaliveMinTimeMs: 5000 });
  const session = http2.connect(`http://127.0.0.1:${srv.port}`);
  session.on('error', () => undefined);
  let goaway: number | undefined;
  session.on('goaway', (code: number) => (goaway = code));
  try {
    await new Promise<void>((r) => session.once('connect', () => r()));
    // 1 MiB echoed back: it leaves in many DATA frames, as the client's 64 KiB
    // stream window is credited back, and a ping follows the frames the
    // client received (one outstanding at a time, like grpc-go's estimator).
    const size = 1024 * 1024;
    const request = Buffer.alloc(5 + size, 0x62);
    request[0] = 0;
    request.writeUInt32BE(size, 1);
    const st = session.request({ ':method': 'POST', ':path': echoMethods.Unary.path, 'content-type': 'application/grpc', te: 'trailers' });
    st.on('error', () => undefined);
    let received = 0;
    let pings = 0;
    let pinging = false;
    st.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (pinging) return;
      pinging = true;
      session.ping(() => {
        pings++;
        pinging = false;
      });
    });
    let status: string | undefined;
    st.on('trailers', (t) => (status = String(t['grpc-status'])));
    st.end(request);
    await new Promise((r) => st.once('close', r));
    assert.equal(goaway, undefined, 'no GOAWAY');
    assert.equal(status, '0');
    assert.equal(received, 5 + size);
    assert.ok(pings > 3, `${pings} pings answered during the response`);
  } finally {
    session.destroy();
    await srv.close();
  }
});

test('keepalive: the server pings, and closes a connection whose peer stops answering', async () => {
  const srv = await startEchoServer({ keepaliveIntervalMs: 100, keepaliveTimeoutMs: 100 });
  try {
    const frameTypes: number[] = [];
    // A call to Hang (POST, http, the path and content-type as literals), its stream left open.
    const request = Buffer.concat([
      Buffer.of(0x83, 0x86),
      encodeInteger(4, 4),
      encodeRawString(echoMethods.Hang.path),
      encodeInteger(31, 4),
      encodeRawString('application/grpc'),
    ]);
    const frame = (type: number, flags: number, streamId: number, payload: Buffer): Buffer =>
      Buffer.concat([Buffer.of(0, payload.length >> 8, payload.length & 0xff, type, flags, 0, 0, 0, streamId), payload]);
    const closed = new Promise<void>((resolve) => {
      const s = net.connect(srv.port, '127.0.0.1', () => {
        // The client preface and an empty SETTINGS frame.
        s.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))]));
      });
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 9) {
          const len = buf.readUIntBE(0, 3);
          if (buf.length < 9 + len) break;
          frameTypes.push(buf[3] ?? -1);
          buf = buf.subarray(9 + len);
          // The server's first SETTINGS: acknowledge it, make one call, then fall silent.
          if (frameTypes.length === 1) s.write(Buffer.concat([frame(4, 1, 0, Buffer.alloc(0)), frame(1, 4, 1, request)]));
        }
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    await closed;
    assert.ok(frameTypes.includes(6), `a PING frame was sent (frame types ${frameTypes.join(',')})`);
  } finally {
    await srv.close();
  }
});
