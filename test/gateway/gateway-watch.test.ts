// Watch through the /v3 JSON gateway against the real etcd 3.4.23, over raw
// HTTP/1.1 sockets so that what is on the wire (status line, headers, chunk
// framing, {"result":…} lines) is compared byte for byte, once the Date
// header, the member's ids and the chunk sizes and lengths (which count
// those ids) are masked.
//
// - Over HTTP/1, a stream answers nothing while its request body is still
//   open: Go's server, about to send a response's head, reads the rest of the
//   body first. A watch and a keepalive whose chunked body stays open get
//   their head and first results only once the body ends.
// - Filters as jsonpb reads them: one name where a list belongs, a null in
//   the list (the zero value: NOPUT), and a negative number, which gogoproto's
//   encoder writes short, so that etcd's own gRPC server refuses the message
//   and the stream fails (500, code 13).
// - A client that half-closes right after its request ends the call's
//   context at that EOF: a stream cancelled before its first response (its
//   response headers) is answered as a failed unary call (408, one JSON
//   object with a length), not with a stream's error chunk.
// - A chunked request body that breaks off (a bad chunk size, one too large,
//   the client's EOF mid-chunk) is an error of the body's reader, in Go's
//   words: the request is refused as one that does not decode (a watch's
//   first request: 500, code 2; a unary call: 400, code 3), the EOF as the
//   context it cancels (408), or a watch's later request ends its sending;
//   the answer says "Connection: close" and the connection closes after it.
// - Bytes after a request that the parser refuses (a pipelined request
//   that is not one) are refused only once the request before them is
//   answered: never, behind a watch, which goes on.
// - Chunk framing: each result and its newline are one chunk, unless the
//   result fills Go's 2 KiB response buffer: then it is a chunk of its own
//   and the newline another.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { delay, etcdMissing, useServerPair } from '../harness/index.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** What differs by nature between the two servers' answers (lengths count the ids). */
function mask(text: string): string {
  return text
    .replace(/^Date: .*$/m, 'Date: D')
    .replace(/^Content-Length: \d+\r$/gm, (h) => (text.includes('"member_id"') ? 'Content-Length: N\r' : h))
    .replace(/"cluster_id":"\d+","member_id":"\d+"/g, 'IDS')
    .replace(/"ID":"\d+"/g, '"ID":"L"')
    .replace(/(^|\r\n)[0-9a-f]+\r\n(?=\{)/g, '$1SIZE\r\n');
}

/** One HTTP/1.1 connection written and read by hand. */
class RawHttp {
  private text = '';
  private closed = false;
  private readonly socket: net.Socket;
  readonly ready: Promise<void>;

  constructor(url: string) {
    const { hostname, port } = new URL(url);
    this.socket = net.connect(Number(port), hostname);
    this.socket.setEncoding('latin1');
    this.socket.on('data', (c: string) => (this.text += c));
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('error', () => undefined);
    this.ready = new Promise((resolve) => this.socket.once('connect', () => resolve()));
  }

  write(bytes: string): void {
    this.socket.write(bytes);
  }

  /** One chunk of a chunked body. */
  chunk(data: string): void {
    this.socket.write(`${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`);
  }

  /** What was received, and whether the server closed the connection. */
  received(): string {
    return mask(this.text) + (this.closed ? '<closed>' : '');
  }

  /** Waits (bounded) until pred holds for what was received, or the connection closed. */
  async until(pred: (text: string) => boolean, timeoutMs = 5_000): Promise<string> {
    for (const deadline = Date.now() + timeoutMs; !pred(this.text) && !this.closed && Date.now() < deadline; ) await delay(25);
    return this.received();
  }

  /** Half-closes: the client's EOF. */
  end(): void {
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** At least n JSON lines, each the end of its chunk (the head's blank line is not one). */
const lines = (n: number) => (text: string): boolean => (text.match(/\}\n\r\n/g) ?? []).length >= n;

function post(url: string, path: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', agent: false, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer in time`)));
    req.on('error', reject);
    req.end(body);
  });
}

const chunkedHead = (path: string): string => `POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`;
const plainRequest = (path: string, body: string): string => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('watch through the JSON gateway against the real etcd', { skip: etcdMissing() }, () => {
  const clusters = useServerPair('gateway-watch');
  const urls = (): string[] => clusters.map((c) => c.member(0).clientUrl);

  test('over HTTP/1.1, a watch and a keepalive answer nothing until their request body ends', async () => {
    const [theirs, ours] = await Promise.all(
      urls().map(async (url) => {
        const lease = (JSON.parse(await post(url, '/v3/lease/grant', '{"TTL":"60"}')) as { ID: string }).ID;
        const watch = new RawHttp(url);
        const keepalive = new RawHttp(url);
        await Promise.all([watch.ready, keepalive.ready]);
        watch.write(chunkedHead('/v3/watch'));
        watch.chunk(JSON.stringify({ create_request: { key: b64('held'), prev_kv: true } }));
        keepalive.write(chunkedHead('/v3/lease/keepalive'));
        keepalive.chunk(JSON.stringify({ ID: lease }));
        // The watch exists (etcd made it, the head is what waits): a put shows up once the body ends.
        await delay(700);
        const whileOpen = [watch.received(), keepalive.received()];
        await post(url, '/v3/kv/put', JSON.stringify({ key: b64('held'), value: b64('v') }));
        watch.write('0\r\n\r\n');
        keepalive.write('0\r\n\r\n');
        const afterEnd = [await watch.until(lines(2)), await keepalive.until((t) => t.endsWith('0\r\n\r\n'))];
        watch.close();
        keepalive.close();
        return { whileOpen, afterEnd };
      }),
    );
    assert.deepEqual(theirs?.whileOpen, ['', '']);
    assert.deepEqual(ours, theirs);
  });

  test('filters as jsonpb reads them: a name for the list, null in it, a negative number', async () => {
    const bodies: Record<string, string> = {
      'one name for the list': '{"create_request":{"key":"Zg==","filters":"NOPUT"}}',
      'an unknown name for the list': '{"create_request":{"key":"Zg==","filters":"BAD"}}',
      'a number in quotes for the list': '{"create_request":{"key":"Zg==","filters":"0"}}',
      'a negative filter': '{"create_request":{"key":"Zg==","filters":[-1]}}',
      'a negative filter after a good one': '{"create_request":{"key":"Zg==","filters":[1,-300]}}',
    };
    for (const [label, body] of Object.entries(bodies)) {
      const [theirs, ours] = await Promise.all(
        urls().map(async (url) => {
          const c = new RawHttp(url);
          await c.ready;
          c.write(plainRequest('/v3/watch', body));
          const text = await c.until((t) => /"error"/.test(t) || lines(1)(t), 3_000);
          c.close();
          return text;
        }),
      );
      assert.equal(ours, theirs, label);
    }
    // null in the list is the zero value, NOPUT: of a put and a delete, only the delete is seen.
    const [theirs, ours] = await Promise.all(
      urls().map(async (url) => {
        const c = new RawHttp(url);
        await c.ready;
        c.write(plainRequest('/v3/watch', '{"create_request":{"key":"Zg==","filters":[null]}}'));
        await c.until(lines(1));
        await post(url, '/v3/kv/put', JSON.stringify({ key: b64('f'), value: b64('v') }));
        await post(url, '/v3/kv/deleterange', JSON.stringify({ key: b64('f') }));
        const text = await c.until(lines(2));
        c.close();
        return text;
      }),
    );
    assert.match(theirs ?? '', /"type":"DELETE"/, JSON.stringify(theirs));
    assert.equal(ours, theirs, 'null in the list');
  });

  test('a client that half-closes right after its request: a stream cancelled before its first response is a failed unary call', async () => {
    const halfClosed = async (url: string, path: string, body: string): Promise<string> => {
      const c = new RawHttp(url);
      await c.ready;
      c.write(plainRequest(path, body));
      c.end();
      const text = await c.until(() => false, 3_000);
      c.close();
      return text;
    };
    const unaryCancel = /^HTTP\/1\.1 408 Request Timeout\r\n(.*\r\n)*Content-Length: 66\r\n\r\n\{"error":"context canceled","message":"context canceled","code":1\}<closed>$/;
    // No leader to observe: nothing comes before the EOF, on either side.
    const [theirs, ours] = await Promise.all(urls().map((url) => halfClosed(url, '/v3/election/observe', JSON.stringify({ name: b64('nobody') }))));
    assert.match(theirs ?? '', unaryCancel);
    assert.equal(ours, theirs, 'observe');
    // A watch: etcd's created response races the EOF. Cancelled first, both answer alike; created
    // first, etcd sends it and then the stream's error chunk, or (the cancel read before the created
    // response, as grpc-go may) that chunk alone.
    const watch = JSON.stringify({ create_request: { key: b64('hc') } });
    const [theirsWatch, oursWatch] = await Promise.all(urls().map((url) => halfClosed(url, '/v3/watch', watch)));
    const canceledChunk = 'SIZE\\r\\n\\{"error":\\{"grpc_code":1,"http_code":408,"message":"context canceled","http_status":"Request Timeout"\\}\\}\\r\\n0\\r\\n\\r\\n<closed>$';
    const createdThenCanceled = new RegExp(`^HTTP/1\\.1 200 OK\\r\\n(.*\\r\\n)*\\r\\nSIZE\\r\\n\\{"result":\\{[^\\n]*"created":true\\}\\}\\n\\r\\n${canceledChunk}`);
    const streamCanceled = new RegExp(`^HTTP/1\\.1 408 Request Timeout\\r\\n(.*\\r\\n)*\\r\\n${canceledChunk}`);
    for (const text of [theirsWatch, oursWatch]) assert.ok([unaryCancel, createdThenCanceled, streamCanceled].some((re) => re.test(text ?? '')), text);
    if (unaryCancel.test(theirsWatch ?? '') && unaryCancel.test(oursWatch ?? '')) assert.equal(oursWatch, theirsWatch);
  });

  test("a chunked request body that breaks off: refused in Go's words, then the connection closes", async () => {
    const create = JSON.stringify({ create_request: { key: b64('broken') } });
    const cases: Record<string, { readonly path: string; readonly chunks: readonly string[]; readonly end?: true; readonly streams?: true }> = {
      'a watch whose first chunk size is bad': { path: '/v3/watch', chunks: ['zz\r\n{}\r\n'] },
      'a watch whose second chunk size is bad': { path: '/v3/watch', chunks: [`${Buffer.byteLength(create).toString(16)}\r\n${create}\r\n`, 'zz\r\n{}\r\n'], streams: true },
      'a keepalive whose chunk size is bad': { path: '/v3/lease/keepalive', chunks: ['zz\r\n{}\r\n'] },
      'a range whose chunk size is bad': { path: '/v3/kv/range', chunks: ['zz\r\n{}\r\n'] },
      'a range whose chunk is too large': { path: '/v3/kv/range', chunks: ['fffffffffffffffffff\r\n'] },
      "a range whose chunk the client's EOF cuts": { path: '/v3/kv/range', chunks: ['9\r\n{}'], end: true },
    };
    for (const [label, { path, chunks, end, streams }] of Object.entries(cases)) {
      const [theirs, ours] = await Promise.all(
        urls().map(async (url) => {
          const c = new RawHttp(url);
          await c.ready;
          c.write(chunkedHead(path));
          for (const chunk of chunks) {
            c.write(chunk);
            await delay(100);
          }
          if (end === true) c.end();
          const text = await c.until(streams === true ? lines(1) : () => false, 3_000);
          c.close();
          return text;
        }),
      );
      assert.match(theirs ?? '', /Connection: close\r\n/, label);
      assert.equal(ours, theirs, label);
    }
  });

  test('chunk framing: a result that fills 2 KiB is its own chunk, its newline another', async () => {
    const [theirs, ours] = await Promise.all(
      urls().map(async (url) => {
        const c = new RawHttp(url);
        await c.ready;
        c.write(plainRequest('/v3/watch', JSON.stringify({ create_request: { key: b64('framed') } })));
        await c.until(lines(1));
        // Base64 makes 4 of 3 bytes: results of about 4,200, 2,200 and 1,500 bytes.
        for (const size of [3_000, 1_500, 1_000]) await post(url, '/v3/kv/put', JSON.stringify({ key: b64('framed'), value: b64('x'.repeat(size)) }));
        const text = await c.until((t) => /"version":"3"[^\n]*\n\r\n/.test(t));
        c.close();
        return text;
      }),
    );
    assert.match(theirs ?? '', /\}\r\n1\r\n\n\r\n/);
    assert.equal(ours, theirs);
  });

  test('bytes after a request that are no request: refused after its answer, never behind a watch', async () => {
    const requests: Record<string, { readonly text: string; readonly until: (t: string) => boolean }> = {
      'after a range': { text: plainRequest('/v3/kv/range', JSON.stringify({ key: b64('framed') })), until: () => false },
      'after a watch': { text: plainRequest('/v3/watch', JSON.stringify({ create_request: { key: b64('framed') } })), until: lines(1) },
    };
    for (const [label, { text, until }] of Object.entries(requests)) {
      const [theirs, ours] = await Promise.all(
        urls().map(async (url) => {
          const c = new RawHttp(url);
          await c.ready;
          c.write(`${text}xx\r\n\r\n`);
          const answer = await c.until(until, 3_000);
          c.close();
          return answer;
        }),
      );
      assert.match(theirs ?? '', /^HTTP\/1\.1 200 OK/, label);
      assert.equal(ours, theirs, label);
    }
  });
});
