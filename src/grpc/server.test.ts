// Our server, called by @grpc/grpc-js (the library under the npm etcd3
// client) and by a raw node:http2 client for the protocol corners.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import * as grpcJs from '@grpc/grpc-js';
import { frameMessage } from './framing.js';
import type { CallStats } from './server-call.js';
import { GrpcStatus } from './status.js';
import {
  echoMethods,
  jsBidi,
  jsClientStream,
  jsServerStream,
  jsUnary,
  startEchoServer,
  type EchoServer,
} from './test-kit.js';

const mib = 1024 * 1024;

/** Polls cond every few ms until it holds or timeoutMs passes. */
async function eventually(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('grpc-js client -> our server', () => {
  let srv: EchoServer;
  let client: grpcJs.Client;
  const handled: CallStats[] = [];
  const started: string[] = [];

  before(async () => {
    srv = await startEchoServer({
      maxReceiveMessageBytes: 5 * mib,
      onCall: { started: (i) => started.push(i.path), handled: (s) => handled.push(s) },
    });
    client = new grpcJs.Client(`127.0.0.1:${srv.port}`, grpcJs.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 8 * mib,
      'grpc.max_send_message_length': 8 * mib,
    });
  });
  after(async () => {
    client.close();
    await srv.close();
  });

  test('unary echo, with text and binary metadata both ways', async () => {
    const md = new grpcJs.Metadata();
    md.set('x-echo', 'hi there');
    md.set('x-data-bin', Buffer.from([0, 1, 2, 255]));
    const r = await jsUnary(client, echoMethods.Meta, 'x', { metadata: md });
    assert.equal(r.error, undefined);
    const got = JSON.parse(r.response ?? '{}') as Record<string, string>;
    assert.equal(got['x-echo'], 'hi there');
    assert.equal(got['x-data-bin'], `bin:${Buffer.from([0, 1, 2, 255]).toString('base64')}`);
    assert.deepEqual(r.headers?.get('x-echo'), ['hi there']);
    assert.deepEqual(r.status?.metadata.get('x-echo-trailer'), ['hi there']);
    assert.equal((await jsUnary(client, echoMethods.Unary, 'héllo')).response, 'héllo');
  });

  test('errors keep their code and exact (unicode, percent) message', async () => {
    const msg = 'etcdserver: key not found — ünïcödé 100% \t tab';
    const r = await jsUnary(client, echoMethods.Unary, `fail:${GrpcStatus.NOT_FOUND}:${msg}`);
    assert.equal(r.error?.code, GrpcStatus.NOT_FOUND);
    assert.equal(r.error?.details, msg);
    const thrown = await jsUnary(client, echoMethods.Unary, 'throw:boom');
    assert.equal(thrown.error?.code, GrpcStatus.UNKNOWN);
    assert.equal(thrown.error?.details, 'boom');
    const missing = await jsUnary(client, echoMethods.Missing, 'x');
    assert.equal(missing.error?.code, GrpcStatus.UNIMPLEMENTED);
    assert.equal(missing.error?.details, 'unknown method Missing for service test.Echo');
    const noService = await jsUnary(client, { ...echoMethods.Unary, path: '/etcdserverpb.Nope/Range' }, 'x');
    assert.equal(noService.error?.code, GrpcStatus.UNIMPLEMENTED);
    assert.equal(noService.error?.details, 'unknown service etcdserverpb.Nope');
  });

  test('server streaming, client streaming and bidi', async () => {
    const got: number[] = [];
    for await (const m of jsServerStream(client, echoMethods.Stream, '100:10')) got.push((m as Uint8Array).length);
    assert.equal(got.length, 100);
    assert.ok(got.every((n) => n === 10));

    const cs = jsClientStream(client, echoMethods.Collect);
    for (const s of ['a', 'b', 'c']) cs.call.write(s);
    cs.call.end();
    assert.equal(await cs.response, 'a,b,c');

    const bidi = jsBidi(client, echoMethods.Chat);
    const replies: string[] = [];
    bidi.on('data', (m: string) => {
      replies.push(m);
      if (replies.length < 3) bidi.write(`m${replies.length}`);
      else bidi.end();
    });
    const status = new Promise<grpcJs.StatusObject>((resolve) => bidi.on('status', resolve));
    bidi.write('m0');
    assert.equal((await status).code, GrpcStatus.OK);
    assert.deepEqual(replies, ['M0', 'M1', 'M2']);
  });

  test('deadline: the client gets DEADLINE_EXCEEDED and the handler its abort signal', async () => {
    const before = srv.state.aborts.length;
    const r = await jsUnary(client, echoMethods.Hang, 'x', { deadlineMs: Date.now() + 100 });
    assert.equal(r.error?.code, GrpcStatus.DEADLINE_EXCEEDED);
    await eventually(() => srv.state.aborts.length > before, 'the handler to see the abort');
    // Whichever came first: our deadline timer, or the client's RST_STREAM(CANCEL).
    assert.match(srv.state.aborts[before] ?? '', /^(4:context deadline exceeded|1:context canceled)$/);
    // call.onAbort saw the same reason, once; the hook unregistered at once never ran.
    assert.deepEqual(srv.state.hookAborts, srv.state.aborts);
  });

  test('cancel mid-stream stops the server handler', async () => {
    const stream = jsServerStream(client, echoMethods.Stream, '1000000:1024');
    let n = 0;
    await new Promise<void>((resolve) => {
      stream.on('data', () => {
        if (++n === 10) {
          stream.cancel();
          resolve();
        }
      });
      stream.on('error', () => undefined);
    });
    await eventually(() => srv.state.streamDone, 'the stream handler to stop');
    assert.ok(srv.state.streamWritten < 1_000_000, `wrote ${srv.state.streamWritten}`);
    await eventually(() => handled.some((h) => h.method === 'Stream' && h.code === GrpcStatus.CANCELLED), 'CANCELLED stats');
  });

  test('4 MiB messages pass; one byte over the limit is RESOURCE_EXHAUSTED with grpc-go text', async () => {
    // A pattern that does not repeat at frame boundaries: frames out of order would show.
    const big = Buffer.alloc(4 * mib);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >>> 14)) & 0xff;
    const r = await jsUnary(client, echoMethods.Bytes, big);
    assert.equal(r.error, undefined);
    assert.equal(Buffer.compare(Buffer.from(r.response ?? []), big), 0);
    const over = await jsUnary(client, echoMethods.Bytes, Buffer.alloc(5 * mib + 1));
    assert.equal(over.error?.code, GrpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(over.error?.details, `grpc: received message larger than max (${5 * mib + 1} vs. ${5 * mib})`);
  });

  test('gzip-compressed requests are accepted', async () => {
    const gz = new grpcJs.Client(`127.0.0.1:${srv.port}`, grpcJs.credentials.createInsecure(), {
      'grpc.default_compression_algorithm': 2,
    });
    try {
      const text = 'squeeze me '.repeat(500);
      const r = await jsUnary(gz, echoMethods.Unary, text);
      assert.equal(r.error, undefined);
      assert.equal(r.response, text);
      // The request really travelled compressed.
      await eventually(() => handled.some((h) => h.messagesIn === 1 && h.bytesIn < 200 && h.bytesOut > text.length), 'stats');
    } finally {
      gz.close();
    }
  });

  test('the observer sees every call start and end with its code and sizes', async () => {
    const before = handled.length;
    await jsUnary(client, echoMethods.Unary, 'count me');
    await eventually(() => handled.length > before, 'handled stats');
    const s = handled[handled.length - 1];
    assert.equal(s?.service, 'test.Echo');
    assert.equal(s.method, 'Unary');
    assert.equal(s.type, 'unary');
    assert.equal(s.code, GrpcStatus.OK);
    assert.equal(s.messagesIn, 1);
    assert.equal(s.bytesIn, 5 + 'count me'.length);
    assert.equal(s.bytesOut, 5 + 'count me'.length);
    assert.ok(started.length >= handled.length);
  });
});

describe('raw HTTP/2 client -> our server: protocol corners', () => {
  let srv: EchoServer;
  let session: http2.ClientHttp2Session;

  before(async () => {
    srv = await startEchoServer();
    session = http2.connect(`http://127.0.0.1:${srv.port}`);
  });
  after(async () => {
    session.close();
    await srv.close();
  });

  interface RawResult {
    headers: http2.IncomingHttpHeaders;
    headersEndStream: boolean;
    trailers: http2.IncomingHttpHeaders | undefined;
    body: Buffer;
    /** The RST_STREAM code the stream ended with (NO_ERROR after a whole answer). */
    rstCode: number | undefined;
  }

  function rawCall(headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<RawResult> {
    return new Promise((resolve) => {
      const st = session.request({ ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', ...headers });
      const chunks: Buffer[] = [];
      let res: http2.IncomingHttpHeaders = {};
      let endStream = false;
      let trailers: http2.IncomingHttpHeaders | undefined;
      st.on('response', (h, flags) => {
        res = h;
        endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      });
      st.on('data', (c: Buffer) => chunks.push(c));
      st.on('trailers', (t) => (trailers = t));
      st.on('close', () => resolve({ headers: res, headersEndStream: endStream, trailers, body: Buffer.concat(chunks), rstCode: st.rstCode }));
      // A reset by the server ends the stream with an error here; its code is in rstCode.
      st.on('error', () => undefined);
      st.end(body);
    });
  }

  /** The fields of a header block in order (Node adds a symbol for sensitive headers; not a field). */
  const fields = (h: http2.IncomingHttpHeaders | undefined): [string, unknown][] => Object.entries(h ?? {});

  // The exact blocks below are what etcd 3.4.23 (grpc-go) sends: no date
  // header, grpc-message always present, empty on success.
  test('an immediate error is one trailers-only HEADERS frame', async () => {
    const r = await rawCall({ ':path': '/test.Echo/Missing' }, frameMessage(Buffer.from('x')));
    assert.equal(r.headersEndStream, true);
    assert.equal(r.trailers, undefined);
    assert.deepEqual(fields(r.headers), [
      [':status', 200],
      ['content-type', 'application/grpc'],
      ['grpc-status', String(GrpcStatus.UNIMPLEMENTED)],
      ['grpc-message', 'unknown method Missing for service test.Echo'],
    ]);
    const failed = await rawCall({ ':path': '/test.Echo/Unary' }, frameMessage(Buffer.from('fail:3:bad%thing')));
    assert.deepEqual(fields(failed.headers), [
      [':status', 200],
      ['content-type', 'application/grpc'],
      ['grpc-status', String(GrpcStatus.INVALID_ARGUMENT)],
      ['grpc-message', 'bad%25thing'],
    ]);
  });

  test('a metadata key sent twice keeps both values, the first read first (as grpc-go)', async () => {
    // Node's client sends an array as one header field per value.
    const r = await rawCall({ ':path': '/test.Echo/Meta', token: ['t1.5', 't1.5'], 'x-two': ['a', 'b, c'], 'x-one': 'd, e' }, frameMessage(Buffer.from('x')));
    const got = JSON.parse(r.body.subarray(5).toString()) as Record<string, string>;
    assert.equal(got['token'], 't1.5');
    assert.equal(got['token[]'], JSON.stringify(['t1.5', 't1.5']));
    assert.equal(got['x-two'], 'a');
    assert.equal(got['x-two[]'], JSON.stringify(['a', 'b, c']));
    // One field whose value holds a comma stays one value.
    assert.equal(got['x-one'], 'd, e');
    assert.equal(got['x-one[]'], undefined);
  });

  test('a success is headers, one message, then grpc-status 0 in trailers', async () => {
    const r = await rawCall({ ':path': '/test.Echo/Unary', 'content-type': 'application/grpc+proto' }, frameMessage(Buffer.from('hey')));
    assert.equal(r.headersEndStream, false);
    assert.deepEqual(fields(r.headers), [
      [':status', 200],
      ['content-type', 'application/grpc+proto'],
    ]);
    assert.deepEqual([...r.body], [...frameMessage(Buffer.from('hey'))]);
    assert.deepEqual(fields(r.trailers), [
      ['grpc-status', '0'],
      ['grpc-message', ''],
    ]);
    const plain = await rawCall({ ':path': '/test.Echo/Unary' }, frameMessage(Buffer.from('hey')));
    assert.deepEqual(fields(plain.headers), [
      [':status', 200],
      ['content-type', 'application/grpc'],
    ]);
  });

  test('unsupported grpc-encoding is UNIMPLEMENTED and advertises what is accepted', async () => {
    const r = await rawCall({ ':path': '/test.Echo/Unary', 'grpc-encoding': 'snappy' }, frameMessage(Buffer.from('x')));
    assert.equal(r.headers['grpc-status'], String(GrpcStatus.UNIMPLEMENTED));
    assert.equal(r.headers['grpc-message'], 'grpc: Decompressor is not installed for grpc-encoding "snappy"');
    assert.equal(r.headers['grpc-accept-encoding'], 'identity,gzip');
  });

  test('a malformed grpc-timeout resets the stream; a request without one whole message is UNKNOWN', async () => {
    const r = await rawCall({ ':path': '/test.Echo/Unary', 'grpc-timeout': '12x' }, frameMessage(Buffer.from('x')));
    assert.equal(r.headers['grpc-status'], undefined);
    assert.equal(r.rstCode, http2.constants.NGHTTP2_PROTOCOL_ERROR);
    // grpc-go hands Go's io errors up: UNKNOWN for a unary call.
    const none = await rawCall({ ':path': '/test.Echo/Unary' }, Buffer.alloc(0));
    assert.deepEqual([none.headers['grpc-status'], none.headers['grpc-message']], [String(GrpcStatus.UNKNOWN), 'EOF']);
    const partial = await rawCall({ ':path': '/test.Echo/Unary' }, Buffer.from([0, 0, 0, 0, 9, 1]));
    assert.deepEqual([partial.headers['grpc-status'], partial.headers['grpc-message']], [String(GrpcStatus.UNKNOWN), 'unexpected EOF']);
  });
});
