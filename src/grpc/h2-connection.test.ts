// The server's own HTTP/2 connection (h2-connection.ts): flow control both
// ways against node:http2's client (which fails the connection on any window
// overrun), backpressure of a server stream, and protocol corners driven
// frame by frame from a raw socket.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { frameMessage } from './framing.js';
import { encodeHeaderFields, HpackDecoder, type HeaderField } from './hpack.js';
import { startEchoServer, type EchoServer } from './test-kit.js';

interface Reply {
  status: string | undefined;
  message: string | undefined;
  body: Buffer;
}

function call(session: http2.ClientHttp2Session, path: string, body: Buffer, extra: http2.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const st = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message: string | undefined;
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) message = String(h['grpc-message']);
    };
    st.on('response', take);
    st.on('trailers', take);
    st.on('data', (c: Buffer) => chunks.push(c));
    st.on('error', reject);
    st.on('close', () => resolve({ status, message, body: Buffer.concat(chunks) }));
    st.end(body);
  });
}

function connect(port: number, settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

describe('H2Connection flow control', () => {
  let srv: EchoServer;
  before(async () => {
    srv = await startEchoServer();
  });
  after(() => srv.close());

  test('a response larger than the client windows waits for them; a request larger than ours is credited as read', async () => {
    // A 1000-byte stream window: nghttp2 fails the connection if the server sends past it.
    const session = await connect(srv.port, { initialWindowSize: 1000 });
    try {
      const payload = Buffer.alloc(300_000);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
      const r = await call(session, '/test.Echo/Bytes', frameMessage(payload));
      assert.equal(r.status, '0');
      assert.equal(r.body.length, 5 + payload.length);
      assert.ok(r.body.subarray(5).equals(payload));
      // Many calls at once share the connection window.
      const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => call(session, '/test.Echo/Bytes', frameMessage(Buffer.alloc(5000 + i, i)))));
      rs.forEach((x, i) => {
        assert.equal(x.status, '0');
        assert.equal(x.body.length, 5 + 5000 + i);
      });
    } finally {
      session.close();
    }
  });

  test('a server stream to a client that stops reading is held by backpressure, then finishes', async () => {
    const session = await connect(srv.port);
    try {
      const st = session.request({ ':method': 'POST', ':path': '/test.Echo/Stream', 'content-type': 'application/grpc', te: 'trailers' });
      st.end(frameMessage(Buffer.from('400:4096')));
      st.pause();
      const deadline = Date.now() + 5000;
      while (!srv.state.streamBlocked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(srv.state.streamBlocked, true, 'the handler waits for drain');
      assert.ok(srv.state.streamWritten < 400);
      let bytes = 0;
      let status: unknown;
      st.on('data', (c: Buffer) => (bytes += c.length));
      st.on('trailers', (t) => (status = t['grpc-status']));
      await new Promise<void>((resolve) => {
        st.on('close', () => resolve());
        st.resume();
      });
      assert.equal(status, '0');
      assert.equal(bytes, 400 * (5 + 4096));
      assert.equal(srv.state.streamDone, true);
      assert.ok(srv.state.streamMaxBuffered <= 128 * 1024, `buffered ${srv.state.streamMaxBuffered}`);
    } finally {
      session.close();
    }
  });
});

// ------------------------------------------------------------ raw frames

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function rawFrame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(id, 5);
  payload.copy(b, 9);
  return b;
}

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** A client speaking HTTP/2 frame by frame. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private readonly hpack = new HpackDecoder();
  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({ type: this.buf[3] ?? 0, flags: this.buf[4] ?? 0, id: this.buf.readUInt32BE(5), payload: this.buf.subarray(9, 9 + len) });
        this.buf = this.buf.subarray(9 + len);
      }
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => undefined);
  }

  static async open(port: number): Promise<RawClient> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const c = new RawClient(sock);
    c.send(preface, rawFrame(0x4, 0, 0));
    // The server's empty SETTINGS comes first; acknowledge it.
    await c.waitFor((f) => f.type === 0x4 && f.flags === 0);
    c.send(rawFrame(0x4, 0x1, 0));
    return c;
  }

  send(...bufs: Buffer[]): void {
    this.sock.write(Buffer.concat(bufs));
  }

  async waitFor(pred: (f: Frame) => boolean, ms = 3000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f !== undefined) return f;
      if (Date.now() > deadline) throw new Error(`no such frame; got ${JSON.stringify(this.frames.map((x) => [x.type, x.flags, x.id]))}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  decode(f: Frame): HeaderField[] {
    return this.hpack.decode(f.payload).fields;
  }

  close(): void {
    this.sock.destroy();
  }
}

function requestBlock(path: string, contentType = 'application/grpc'): Buffer {
  return encodeHeaderFields([
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: path },
    { name: ':authority', value: 'http://127.0.0.1:2379' },
    { name: 'content-type', value: contentType },
    { name: 'te', value: 'trailers' },
  ]);
}

describe('H2Connection protocol corners (raw frames)', () => {
  let srv: EchoServer;
  before(async () => {
    srv = await startEchoServer();
  });
  after(() => srv.close());

  test('a header block split over CONTINUATION frames, and any :authority (a URL, as grpc-go sends)', async () => {
    const c = await RawClient.open(srv.port);
    try {
      const block = requestBlock('/test.Echo/Unary');
      c.send(
        rawFrame(0x1, 0, 1, block.subarray(0, 10)),
        rawFrame(0x9, 0, 1, block.subarray(10, 20)),
        rawFrame(0x9, 0x4, 1, block.subarray(20)),
        rawFrame(0x0, 0x1, 1, frameMessage(Buffer.from('hello'))),
      );
      const head = await c.waitFor((f) => f.type === 0x1 && f.id === 1);
      assert.deepEqual(c.decode(head), [
        { name: ':status', value: '200' },
        { name: 'content-type', value: 'application/grpc' },
      ]);
      const data = await c.waitFor((f) => f.type === 0x0 && f.id === 1);
      assert.equal(data.payload.subarray(5).toString(), 'hello');
      const trailers = await c.waitFor((f) => f.type === 0x1 && f.id === 1 && (f.flags & 0x1) !== 0);
      assert.deepEqual(c.decode(trailers), [
        { name: 'grpc-status', value: '0' },
        { name: 'grpc-message', value: '' },
      ]);
      // A later stream that is not gRPC, on a connection that is: 415, as grpc-go's transport.
      c.send(rawFrame(0x1, 0x5, 3, requestBlock('/v3/kv/range', 'application/json')));
      const refused = await c.waitFor((f) => f.type === 0x1 && f.id === 3);
      assert.deepEqual(c.decode(refused).slice(0, 1), [{ name: ':status', value: '415' }]);
    } finally {
      c.close();
    }
  });

  test('a response to a client still sending ends with RST_STREAM(NO_ERROR); a client reset cancels the call', async () => {
    const c = await RawClient.open(srv.port);
    try {
      // The whole request, but no END_STREAM: the server answers, then tells the client to stop.
      c.send(rawFrame(0x1, 0x4, 1, requestBlock('/test.Echo/Unary')), rawFrame(0x0, 0, 1, frameMessage(Buffer.from('early'))));
      const trailers = await c.waitFor((f) => f.type === 0x1 && f.id === 1 && (f.flags & 0x1) !== 0);
      const rst = await c.waitFor((f) => f.type === 0x3 && f.id === 1);
      assert.ok(c.frames.indexOf(rst) > c.frames.indexOf(trailers));
      assert.equal(rst.payload.readUInt32BE(0), 0);
      // Hang until the client resets the stream.
      const before = srv.state.aborts.length;
      c.send(rawFrame(0x1, 0x4, 3, requestBlock('/test.Echo/Hang')), rawFrame(0x0, 0x1, 3, frameMessage(Buffer.from('x'))));
      const deadline = Date.now() + 3000;
      while (srv.state.hanging === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      c.send(rawFrame(0x3, 0, 3, Buffer.from([0, 0, 0, 8])));
      while (srv.state.aborts.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(srv.state.aborts.at(-1), '1:context canceled');
    } finally {
      c.close();
    }
  });

  test('PING is answered; a protocol error ends the connection with GOAWAY and its code', async () => {
    const c = await RawClient.open(srv.port);
    try {
      c.send(rawFrame(0x1, 0x5, 1, requestBlock('/test.Echo/Missing')));
      await c.waitFor((f) => f.type === 0x1 && f.id === 1);
      c.send(rawFrame(0x6, 0, 0, Buffer.from('12345678')));
      const pong = await c.waitFor((f) => f.type === 0x6);
      assert.equal(pong.flags, 0x1);
      assert.equal(pong.payload.toString(), '12345678');
      // DATA on stream 0 is a connection error of type PROTOCOL_ERROR.
      c.send(rawFrame(0x0, 0, 0, Buffer.from('x')));
      const goaway = await c.waitFor((f) => f.type === 0x7);
      assert.equal(goaway.payload.readUInt32BE(0), 1, 'last stream processed');
      assert.equal(goaway.payload.readUInt32BE(4), 0x1, 'PROTOCOL_ERROR');
      const deadline = Date.now() + 3000;
      while (!c.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(c.closed, true);
    } finally {
      c.close();
    }
  });

  test('a DATA frame past the stream window resets the stream with FLOW_CONTROL_ERROR', async () => {
    const c = await RawClient.open(srv.port);
    try {
      // Sink reads nothing until its gate opens, so nothing is credited back: the
      // stream window is 65,535 bytes and four 16,384-byte frames exceed it.
      c.send(rawFrame(0x1, 0x4, 1, requestBlock('/test.Echo/Sink')));
      for (let i = 0; i < 5; i++) c.send(rawFrame(0x0, 0, 1, Buffer.alloc(16_384)));
      const rst = await c.waitFor((f) => f.type === 0x3 && f.id === 1);
      assert.equal(rst.payload.readUInt32BE(0), 0x3);
    } finally {
      c.close();
    }
  });
});
