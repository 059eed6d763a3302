// The :authority shim: its idea of what nghttp2 refuses, checked against
// nghttp2 itself; the frame rewriter on hand-built frames and arbitrary
// splits; and whole connections through ClientPortServer from node:http2's
// client (which sends any authority, pads frames, and spreads large header
// blocks over CONTINUATION frames) and from a raw socket.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2, { type IncomingHttpHeaders } from 'node:http2';
import net from 'node:net';
import fc from 'fast-check';
import { acceptableAuthority, clientPreface, FrameRewriter, isAcceptedAuthority } from './authority-shim.js';
import { ClientPortServer } from './client-port.js';
import { encodeInteger, encodeRawString, HpackDecoder, type HeaderField } from './hpack.js';
import { GrpcServer } from './server.js';

const type = { DATA: 0x0, HEADERS: 0x1, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;

function frame(t: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = t;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

function parseFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = buf.readUIntBE(at, 3);
    out.push({ type: buf[at + 3] ?? 0, flags: buf[at + 4] ?? 0, streamId: buf.readUInt32BE(at + 5), payload: buf.subarray(at + 9, at + 9 + len) });
    at += 9 + len;
  }
  assert.equal(at, buf.length, 'whole frames');
  return out;
}

/** Literal with incremental indexing, new name. */
const indexed = (name: string, value: string): Buffer => Buffer.concat([Buffer.of(0x40), encodeRawString(name), encodeRawString(value)]);
/** Literal without indexing, name from the static table (1 is :authority). */
const plainNamed = (nameIndex: number, value: string): Buffer => Buffer.concat([encodeInteger(nameIndex, 4), encodeRawString(value)]);
const f = (name: string, value: string): HeaderField => ({ name, value });

describe('what nghttp2 refuses', () => {
  test('isAcceptedAuthority agrees with nghttp2 on every octet', async () => {
    const server = http2.createServer();
    server.on('stream', (s) => s.respond({ ':status': 200 }, { endStream: true }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    assert.ok(addr !== null && typeof addr !== 'string');
    const client = http2.connect(`http://127.0.0.1:${addr.port}`);
    client.on('error', () => undefined);
    try {
      for (let octet = 0; octet < 256; octet++) {
        const value = `a${String.fromCharCode(octet)}b`;
        const accepted = await new Promise<boolean>((resolve) => {
          const req = client.request({ ':authority': value }, { endStream: true });
          req.on('response', () => resolve(true));
          req.on('error', () => resolve(false));
          req.on('close', () => resolve(false));
          req.resume();
        });
        assert.equal(isAcceptedAuthority(value), accepted, `octet ${octet}`);
        const fixed = acceptableAuthority(value);
        assert.equal(fixed.length, value.length);
        assert.ok(isAcceptedAuthority(fixed));
        if (accepted) assert.equal(fixed, value);
      }
    } finally {
      client.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('FrameRewriter', () => {
  const bad = 'http://127.0.0.1:2379';
  const good = acceptableAuthority(bad);

  test('padded, prioritized HEADERS and its CONTINUATIONs become one rewritten block; other frames pass as they are', () => {
    const block = Buffer.concat([Buffer.of(0x82, 0x86, 0x84), indexed(':authority', bad), indexed('x-big', 'v'.repeat(300))]);
    const priority = Buffer.of(0x80, 0, 0, 3, 41);
    const padding = 7;
    const headers = frame(type.HEADERS, 0x08 | 0x20 | 0x01, 1, Buffer.concat([Buffer.of(padding), priority, block.subarray(0, 20), Buffer.alloc(padding)]));
    const cont1 = frame(type.CONTINUATION, 0, 1, block.subarray(20, 100));
    const cont2 = frame(type.CONTINUATION, 0x04, 1, block.subarray(100));
    const data = frame(type.DATA, 0x01, 3, Buffer.from('hello'));
    const ping = frame(type.PING, 0, 0, Buffer.alloc(8, 1));
    // Stream 3 refers to the rewritten entry by index (62) only.
    const second = frame(type.HEADERS, 0x04, 3, Buffer.of(0x83, 0x86, 0x84, 0xbf));

    const r = new FrameRewriter();
    const out = parseFrames(Buffer.concat(r.feed(Buffer.concat([headers, cont1, cont2, data, ping, second]))));
    assert.equal(r.rewrites, 1);
    assert.deepEqual(
      out.map((x) => [x.type, x.flags, x.streamId]),
      [
        [type.HEADERS, 0x20 | 0x04 | 0x01, 1],
        [type.DATA, 0x01, 3],
        [type.PING, 0, 0],
        [type.HEADERS, 0x04, 3],
      ],
    );
    const [h1, d, p, h3] = out;
    assert.ok(h1 !== undefined && d !== undefined && p !== undefined && h3 !== undefined);
    assert.deepEqual(h1.payload.subarray(0, 5), priority);
    assert.deepEqual(d.payload, Buffer.from('hello'));
    assert.deepEqual(p.payload, Buffer.alloc(8, 1));
    // What nghttp2's decoder would make of the output.
    const far = new HpackDecoder();
    assert.deepEqual(far.decode(h1.payload.subarray(5)).fields, [f(':method', 'GET'), f(':scheme', 'http'), f(':path', '/'), f(':authority', good), f('x-big', 'v'.repeat(300))]);
    assert.deepEqual(far.decode(h3.payload).fields, [f(':method', 'POST'), f(':scheme', 'http'), f(':path', '/'), f(':authority', good)]);
  });

  test('a rewritten block too long for one frame is split at 16 KiB', () => {
    const block = Buffer.concat([Buffer.of(0x83), plainNamed(1, bad), indexed('x-big', 'w'.repeat(40_000))]);
    const r = new FrameRewriter();
    const input = [frame(type.HEADERS, 0, 5, block.subarray(0, 16_000)), frame(type.CONTINUATION, 0, 5, block.subarray(16_000, 32_000)), frame(type.CONTINUATION, 0x04, 5, block.subarray(32_000))];
    const out = parseFrames(Buffer.concat(r.feed(Buffer.concat(input))));
    assert.deepEqual(out.map((x) => [x.type, x.flags, x.payload.length]), [
      [type.HEADERS, 0, 16_384],
      [type.CONTINUATION, 0, 16_384],
      [type.CONTINUATION, 0x04, block.length - 2 * 16_384],
    ]);
    const fields = new HpackDecoder().decode(Buffer.concat(out.map((x) => x.payload))).fields;
    assert.deepEqual(fields[1], f(':authority', good));
  });

  test('blocks with acceptable authorities go out byte for byte, padding and all', () => {
    const block = Buffer.concat([Buffer.of(0x82), indexed(':authority', '127.0.0.1:2379')]);
    const input = Buffer.concat([frame(type.HEADERS, 0x08 | 0x04, 1, Buffer.concat([Buffer.of(3), block, Buffer.alloc(3)])), frame(type.HEADERS, 0x04, 3, Buffer.of(0x82, 0xbe))]);
    const r = new FrameRewriter();
    assert.deepEqual(Buffer.concat(r.feed(input)), input);
    assert.equal(r.rewrites, 0);
  });

  test('any split of the input gives the same output', () => {
    const block = (i: number): Buffer => Buffer.concat([Buffer.of(0x82), i % 2 === 0 ? indexed(':authority', `${bad}/${i}`) : Buffer.of(0xbe), indexed('x-n', String(i))]);
    const input = Buffer.concat(
      Array.from({ length: 6 }, (_, i) => [
        frame(type.HEADERS, 0x08, 2 * i + 1, Buffer.concat([Buffer.of(2), block(i).subarray(0, 10), Buffer.alloc(2)])),
        frame(type.CONTINUATION, 0x04, 2 * i + 1, block(i).subarray(10)),
        frame(type.DATA, 0x01, 2 * i + 1, Buffer.alloc(i * 100, i)),
        frame(type.WINDOW_UPDATE, 0, 0, Buffer.of(0, 0, 1, 0)),
      ]).flat(),
    );
    const whole = Buffer.concat(new FrameRewriter().feed(input));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: input.length }), { maxLength: 30 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const r = new FrameRewriter();
        const out: Buffer[] = [];
        let prev = 0;
        for (const p of [...points, input.length]) {
          out.push(...r.feed(input.subarray(prev, p)));
          prev = p;
        }
        assert.deepEqual(Buffer.concat(out), whole);
        assert.equal(r.rewrites, 3);
      }),
    );
  });

  test('a frame inside a header block, or a malformed block, turns it into a pass-through', () => {
    const block = Buffer.concat([Buffer.of(0x82), indexed(':authority', bad)]);
    const interleaved = Buffer.concat([
      frame(type.HEADERS, 0, 1, block.subarray(0, 5)),
      frame(type.PING, 0, 0, Buffer.alloc(8)),
      frame(type.CONTINUATION, 0x04, 1, block.subarray(5)),
      frame(type.HEADERS, 0x04, 3, block),
    ]);
    const r1 = new FrameRewriter();
    assert.deepEqual(Buffer.concat(r1.feed(interleaved)), interleaved);
    assert.equal(r1.rewrites, 0);
    // Index 70 does not exist: nghttp2 answers that with COMPRESSION_ERROR, so it must see it.
    const broken = Buffer.concat([frame(type.HEADERS, 0x04, 1, Buffer.of(0x82, 0xc6)), frame(type.HEADERS, 0x04, 3, block)]);
    const r2 = new FrameRewriter();
    assert.deepEqual(Buffer.concat(r2.feed(broken)), broken);
    // Padding longer than the frame.
    const padded = frame(type.HEADERS, 0x08 | 0x04, 1, Buffer.concat([Buffer.of(200), block]));
    assert.deepEqual(Buffer.concat(new FrameRewriter().feed(padded)), padded);
  });
});

interface Seen {
  readonly headers: IncomingHttpHeaders;
}

async function startPort(handshakeTimeoutMs = 10_000): Promise<{ port: ClientPortServer; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const port = new ClientPortServer({
    grpc: new GrpcServer(),
    handshakeTimeoutMs,
    http: (req, res) => {
      seen.push({ headers: req.headers });
      res.end(JSON.stringify(req.headers));
    },
  });
  const addr = await port.listen({ host: '127.0.0.1', port: 0 });
  assert.ok(typeof addr !== 'string');
  return { port, url: `http://127.0.0.1:${addr.port}`, seen };
}

function get(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, opts: http2.ClientSessionRequestOptions = {}): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':path': '/echo', ...headers }, { endStream: true, ...opts });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve(JSON.parse(body) as IncomingHttpHeaders));
    req.on('error', reject);
    req.on('close', () => reject(new Error(`stream closed with code ${req.rstCode}`)));
  });
}

describe('ClientPortServer connections', () => {
  test('refused authorities are rewritten on every stream of the connection; good ones are left alone', async () => {
    const { port, url } = await startPort();
    const client = http2.connect(url, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
    client.on('error', () => undefined);
    try {
      const authorities = ['http://127.0.0.1:2379', 'https://[::1]:2379/', 'host with spaces', 'ünïcödé'];
      for (let i = 0; i < 40; i++) {
        const authority = authorities[i % authorities.length] ?? '';
        const extra = { 'x-seq': String(i), 'x-fill': 'z'.repeat((i * 97) % 900) };
        // Every tenth request carries a header block longer than a frame: HEADERS + CONTINUATION.
        if (i % 10 === 9) extra['x-fill'] = 'y'.repeat(40_000);
        const got = await get(client, { ':authority': Buffer.from(authority).toString('latin1'), ...extra }, { weight: 1 + i });
        assert.equal(got[':authority'], acceptableAuthority(Buffer.from(authority).toString('latin1')));
        assert.equal(got['x-seq'], extra['x-seq']);
        assert.equal(got['x-fill'], extra['x-fill']);
      }
      assert.equal(port.rewritingConnections, 1);

      const plain = http2.connect(url);
      plain.on('error', () => undefined);
      try {
        for (let i = 0; i < 3; i++) assert.equal((await get(plain, { ':authority': '127.0.0.1:2379' }))[':authority'], '127.0.0.1:2379');
      } finally {
        plain.close();
      }
      assert.equal(port.rewritingConnections, 1, 'an acceptable first authority: no rewriter');
    } finally {
      client.close();
      await port.close(200);
    }
  });

  test('before the first request: PINGs are answered, and a client that never acknowledges SETTINGS is dropped', async () => {
    const { port, url } = await startPort(300);
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    let received = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.write(Buffer.concat([clientPreface, frame(type.SETTINGS, 0, 0, Buffer.alloc(0)), frame(type.PING, 0, 0, Buffer.from('12345678'))]));
    await closed;
    const frames = parseFrames(received);
    assert.deepEqual(frames.map((x) => [x.type, x.flags]), [
      [type.SETTINGS, 0],
      [type.PING, 0x01],
    ]);
    assert.deepEqual(frames[1]?.payload, Buffer.from('12345678'));
    await port.close(200);
  });

  test('closing the server sends GOAWAY to a connection that has not made a request', async () => {
    const { port, url } = await startPort();
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    let received = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    const ended = new Promise<void>((r) => socket.on('end', () => r()));
    socket.write(Buffer.concat([clientPreface, frame(type.SETTINGS, 0, 0, Buffer.alloc(0)), frame(type.SETTINGS, 0x01, 0, Buffer.alloc(0))]));
    while (received.length < 9) await new Promise((r) => setTimeout(r, 5));
    await port.close(2000);
    await ended;
    socket.destroy();
    const frames = parseFrames(received);
    assert.deepEqual(frames.map((x) => x.type), [type.SETTINGS, type.GOAWAY]);
    assert.deepEqual(frames[1]?.payload, Buffer.alloc(8), 'last stream 0, NO_ERROR');
  });
});
