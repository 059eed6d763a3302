// Our client (GrpcChannel) against @grpc/grpc-js's server, against our own
// server, and against raw HTTP/2 servers that misbehave in specific ways.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { GrpcChannel, ConnectivityState } from './channel.js';
import { frameMessage } from './framing.js';
import { GrpcError, GrpcStatus } from './status.js';
import { echoMethods, startEchoServer, startFrameCountingProxy, startJsEchoServer } from './test-kit.js';

const mib = 1024 * 1024;

async function eventually(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rejection(p: Promise<unknown>): Promise<GrpcError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GrpcError, `not a GrpcError: ${String(err)}`);
    return err;
  }
  return assert.fail('expected the call to fail');
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  assert.ok(addr !== null && typeof addr !== 'string');
  return addr.port;
}

/**
 * A raw HTTP/2 server whose every stream gets `onStream`; `sockets` are its
 * connections' own sockets (a test may end one, as a dying server would).
 */
async function rawServer(onStream: (s: http2.ServerHttp2Stream) => void): Promise<{ port: number; sockets: net.Socket[]; close(): void }> {
  const server = http2.createServer();
  const sockets: net.Socket[] = [];
  server.on('connection', (sock: net.Socket) => sockets.push(sock));
  server.on('stream', (s: http2.ServerHttp2Stream) => {
    s.on('error', () => undefined);
    onStream(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  assert.ok(addr !== null && typeof addr !== 'string');
  return {
    port: addr.port,
    sockets,
    close: () => {
      for (const sock of sockets) sock.destroy();
      server.close();
    },
  };
}

describe('our client -> grpc-js server', () => {
  let js: Awaited<ReturnType<typeof startJsEchoServer>>;
  let ch: GrpcChannel;

  before(async () => {
    js = await startJsEchoServer({ 'grpc.max_receive_message_length': 8 * mib, 'grpc.max_send_message_length': 8 * mib });
    ch = new GrpcChannel({ address: `127.0.0.1:${js.port}`, maxReceiveMessageBytes: 6 * mib });
  });
  after(async () => {
    ch.close();
    await js.close();
  });

  test('unary, server stream, client stream, bidi', async () => {
    assert.equal(await ch.unary(echoMethods.Unary, 'héllo'), 'héllo');
    let n = 0;
    for await (const m of ch.serverStream(echoMethods.Stream, '50:100')) {
      assert.equal(m.length, 100);
      n++;
    }
    assert.equal(n, 50);
    const cs = ch.clientStream(echoMethods.Collect);
    cs.write('x');
    cs.write('y');
    cs.end();
    assert.equal(await cs.response, 'x,y');
    const bidi = ch.bidi(echoMethods.Chat);
    const replies: string[] = [];
    bidi.write('a');
    for await (const m of bidi) {
      replies.push(m);
      if (replies.length < 3) bidi.write(`b${replies.length}`);
      else bidi.end();
    }
    assert.deepEqual(replies, ['A', 'B1', 'B2']);
  });

  test('statuses from trailers-only responses, percent-decoded', async () => {
    const msg = 'etcdserver: user name not found — ünïcode 50% off';
    const e = await rejection(ch.unary(echoMethods.Unary, `fail:${GrpcStatus.FAILED_PRECONDITION}:${msg}`));
    assert.equal(e.code, GrpcStatus.FAILED_PRECONDITION);
    assert.equal(e.details, msg);
    assert.equal(e.message, msg);
    const missing = await rejection(ch.unary({ ...echoMethods.Unary, path: '/test.Echo/Nope' }, 'x'));
    assert.equal(missing.code, GrpcStatus.UNIMPLEMENTED);
  });

  test('metadata arrives, -bin values as bytes', async () => {
    const got = JSON.parse(
      await ch.unary(echoMethods.Meta, 'x', { metadata: { 'x-token': 'abc', 'x-raw-bin': new Uint8Array([9, 8, 255]) } }),
    ) as Record<string, string>;
    assert.equal(got['x-token'], 'abc');
    assert.equal(got['x-raw-bin'], `bin:${Buffer.from([9, 8, 255]).toString('base64')}`);
  });

  test("per-call credentials: the channel's callMetadata is asked at every call; a call's own metadata wins", async () => {
    let n = 0;
    const creds = new GrpcChannel({ address: `127.0.0.1:${js.port}`, callMetadata: () => ({ token: `t${++n}`, 'x-token': 'channel' }) });
    try {
      const first = JSON.parse(await creds.unary(echoMethods.Meta, 'x')) as Record<string, string>;
      const second = JSON.parse(await creds.unary(echoMethods.Meta, 'x', { metadata: { 'x-token': 'call' } })) as Record<string, string>;
      assert.deepEqual([first['token'], first['x-token'], second['token'], second['x-token']], ['t1', 'channel', 't2', 'call']);
    } finally {
      creds.close();
    }
  });

  test('deadline and abort', async () => {
    const t0 = Date.now();
    const e = await rejection(ch.unary(echoMethods.Hang, 'x', { timeoutMs: 100 }));
    assert.equal(e.code, GrpcStatus.DEADLINE_EXCEEDED);
    assert.equal(e.details, 'context deadline exceeded');
    assert.ok(Date.now() - t0 >= 90);
    const ac = new AbortController();
    const p = ch.unary(echoMethods.Hang, 'x', { signal: ac.signal });
    ac.abort();
    const c = await rejection(p);
    assert.equal(c.code, GrpcStatus.CANCELLED);
    assert.equal(c.details, 'context canceled');
    const past = await rejection(ch.unary(echoMethods.Unary, 'x', { deadlineMs: Date.now() - 1 }));
    assert.equal(past.code, GrpcStatus.DEADLINE_EXCEEDED);
  });

  test('4 MiB both ways; limits on both sides with grpc-go texts', async () => {
    const big = Buffer.alloc(4 * mib, 3);
    const back = await ch.unary(echoMethods.Bytes, big);
    assert.equal(Buffer.compare(Buffer.from(back), big), 0);
    const tooBig = await rejection(ch.unary(echoMethods.Bytes, Buffer.alloc(6 * mib + 1)));
    assert.equal(tooBig.code, GrpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(tooBig.details, `grpc: received message larger than max (${6 * mib + 1} vs. ${6 * mib})`);
    const small = new GrpcChannel({ address: `127.0.0.1:${js.port}`, maxSendMessageBytes: 1000 });
    try {
      const e = await rejection(small.unary(echoMethods.Bytes, Buffer.alloc(1001)));
      assert.equal(e.code, GrpcStatus.RESOURCE_EXHAUSTED);
      assert.equal(e.details, 'trying to send message larger than max (1001 vs. 1000)');
    } finally {
      small.close();
    }
  });

  test('unaryRaw sends pre-framed bytes and returns the payload', async () => {
    const framed = frameMessage(Buffer.from('raw!'));
    const out = await Promise.all([1, 2, 3].map(() => ch.unaryRaw(echoMethods.Unary.path, framed)));
    assert.deepEqual(out.map((b) => b.toString()), ['raw!', 'raw!', 'raw!']);
  });
});

describe('our client -> our server', () => {
  test('the server sees deadlines and cancels', async () => {
    const srv = await startEchoServer();
    const ch = new GrpcChannel({ address: `127.0.0.1:${srv.port}` });
    try {
      await rejection(ch.unary(echoMethods.Hang, 'x', { timeoutMs: 50 }));
      const ac = new AbortController();
      const p = ch.unary(echoMethods.Hang, 'x', { signal: ac.signal });
      await eventually(() => srv.state.hanging === 2, 'the second call to reach its handler');
      ac.abort();
      await rejection(p);
      await eventually(() => srv.state.aborts.length === 2, 'both aborts seen by the handler');
      assert.match(srv.state.aborts[0] ?? '', /^(4:context deadline exceeded|1:context canceled)$/);
      assert.equal(srv.state.aborts[1], '1:context canceled');
    } finally {
      ch.close();
      await srv.close();
    }
  });

  test('a finished call is not reset; a cancelled one is', async () => {
    // nghttp2 servers (ours included) answer a burst of ~1000 RST_STREAMs with GOAWAY INTERNAL_ERROR.
    const srv = await startEchoServer();
    const proxy = await startFrameCountingProxy(srv.port);
    const ch = new GrpcChannel({ address: `127.0.0.1:${proxy.port}` });
    const rstStream = (code: number): number => proxy.counts.toServer.get(`3:${code}`) ?? 0;
    try {
      for (let i = 0; i < 50; i++) assert.equal(await ch.unary(echoMethods.Unary, `n${i}`), `n${i}`);
      const ac = new AbortController();
      const p = ch.unary(echoMethods.Hang, 'x', { signal: ac.signal });
      await eventually(() => srv.state.hanging === 1, 'the call to reach its handler');
      ac.abort();
      await rejection(p);
      await eventually(() => rstStream(8) === 1, 'RST_STREAM CANCEL to reach the server');
      assert.equal(proxy.counts.toServer.get('1'), 51, 'HEADERS, one per call');
      assert.equal(rstStream(0), 0);
    } finally {
      ch.close();
      await proxy.close();
      await srv.close();
    }
  });

  test('connection refused is UNAVAILABLE and fails fast; the channel reconnects after backoff', async () => {
    const port = await freePort();
    const ch = new GrpcChannel({ address: `127.0.0.1:${port}`, backoffInitialMs: 50, backoffMaxMs: 100 });
    const states: string[] = [];
    ch.onStateChange((s) => states.push(s));
    try {
      const e = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(e.code, GrpcStatus.UNAVAILABLE);
      assert.match(e.details, /^connection error: desc = "transport: Error while dialing .*ECONNREFUSED/);
      assert.equal(ch.state, ConnectivityState.TRANSIENT_FAILURE);
      const fast = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(fast.code, GrpcStatus.UNAVAILABLE);
      const srv = await startEchoServer({}, {}, port);
      try {
        await eventually(async () => {
          try {
            return (await ch.unary(echoMethods.Unary, 'back')) === 'back';
          } catch {
            return false;
          }
        }, 'a call to succeed after the server started');
        assert.equal(ch.state, ConnectivityState.READY);
        assert.deepEqual(states.slice(0, 2), ['CONNECTING', 'TRANSIENT_FAILURE']);
        assert.equal(states[states.length - 1], 'READY');
      } finally {
        await srv.close();
      }
      await eventually(() => ch.state === ConnectivityState.IDLE, 'IDLE after the server went away');
    } finally {
      ch.close();
    }
  });

  test('graceful server close: a call in flight completes, new calls go elsewhere', async () => {
    const srv = await startEchoServer();
    const ch = new GrpcChannel({ address: `127.0.0.1:${srv.port}` });
    try {
      const inFlight = ch.unary(echoMethods.Unary, 'wait');
      await eventually(() => srv.state.waiting === 1, 'the call to reach the handler');
      const closing = srv.clientPort.close(5000);
      await eventually(() => ch.state === ConnectivityState.IDLE, 'the GOAWAY to reach the client');
      srv.state.openGate();
      assert.equal(await inFlight, 'opened');
      await closing;
      const e = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(e.code, GrpcStatus.UNAVAILABLE);
    } finally {
      ch.close();
      await srv.close();
    }
  });
});

describe('our client -> misbehaving HTTP/2 servers', () => {
  test('a non-gRPC answer maps its HTTP status, with grpc-go text', async () => {
    const raw = await rawServer((s) => {
      s.respond({ ':status': 404, 'content-type': 'text/plain' });
      s.end('nope');
    });
    const ch = new GrpcChannel({ address: `127.0.0.1:${raw.port}` });
    try {
      const e = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(e.code, GrpcStatus.UNIMPLEMENTED);
      assert.equal(e.details, 'Not Found: HTTP status code 404; transport: received the unexpected content-type "text/plain"');
    } finally {
      ch.close();
      raw.close();
    }
  });

  test('RST_STREAM codes and missing trailers', async () => {
    let mode = 'refuse';
    const raw = await rawServer((s) => {
      if (mode === 'refuse') {
        s.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.end(frameMessage(Buffer.from('no trailers')));
    });
    const ch = new GrpcChannel({ address: `127.0.0.1:${raw.port}` });
    try {
      const e = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(e.code, GrpcStatus.UNAVAILABLE);
      assert.equal(e.details, 'stream terminated by RST_STREAM with error code: REFUSED_STREAM');
      mode = 'no-trailers';
      const t = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(t.code, GrpcStatus.INTERNAL);
      assert.equal(t.details, 'server closed the stream without sending trailers');
    } finally {
      ch.close();
      raw.close();
    }
  });

  test('a server gone mid-call is UNAVAILABLE "transport is closing"; its RST_STREAM(CANCEL) stays CANCELLED', async () => {
    let mode = 'vanish';
    const raw = await rawServer((s) => {
      // As a killed process: no RST_STREAM, no GOAWAY, the connection just ends.
      if (mode === 'vanish') setTimeout(() => raw.sockets.at(-1)?.end(), 20);
      else s.close(http2.constants.NGHTTP2_CANCEL);
    });
    const ch = new GrpcChannel({ address: `127.0.0.1:${raw.port}` });
    try {
      const e = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(e.code, GrpcStatus.UNAVAILABLE);
      assert.equal(e.details, 'transport is closing');
      mode = 'cancel';
      const c = await rejection(ch.unary(echoMethods.Unary, 'x'));
      assert.equal(c.code, GrpcStatus.CANCELLED);
      assert.equal(c.details, 'stream terminated by RST_STREAM with error code: CANCEL');
    } finally {
      ch.close();
      raw.close();
    }
  });
});
