// The client port multiplexer: gRPC and HTTP on one port, plain, TLS and a
// unix socket; client certificates; handshake timeouts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GrpcChannel } from './channel.js';
import { ClientPortServer, type ClientPortOptions } from './client-port.js';
import type { MethodDef } from './framing.js';
import { GrpcServer, unary } from './server.js';
import { GrpcError, GrpcStatus } from './status.js';
import { addEchoService, echoMethods, haveOpenssl, makeTestCerts, textCodec, type TestCerts } from './test-kit.js';

const whoMethods = {
  Who: { name: 'Who', path: '/test.Peer/Who', requestType: textCodec, responseType: textCodec, requestStream: false, responseStream: false },
} as const satisfies Record<string, MethodDef<string, string>>;

/** Answers "<version> <method> <path> <body>" so a test sees which way a request went. */
function httpHandler(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.httpVersion} ${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`);
  });
}

function makePort(extra: Partial<ClientPortOptions> = {}): ClientPortServer {
  const grpc = new GrpcServer();
  addEchoService(grpc);
  grpc.addService(whoMethods, {
    Who: unary((_req, call) => Promise.resolve(`${call.peer.address} ${call.peer.commonName ?? '-'}`)),
  });
  return new ClientPortServer({ grpc, http: httpHandler, ...extra });
}

function portOf(addr: net.AddressInfo | string): number {
  assert.ok(typeof addr !== 'string');
  return addr.port;
}

function get(options: http.RequestOptions | https.RequestOptions, secure = false, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request({ method: body === undefined ? 'GET' : 'POST', ...options }, (res) => {
      let d = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (d += c));
      res.on('end', () => resolve(d));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function h2Get(url: string, options: http2.SecureClientSessionOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, options);
    session.on('error', reject);
    const st = session.request({ ':path': '/health' });
    let d = '';
    st.setEncoding('utf8');
    st.on('data', (c: string) => (d += c));
    st.on('end', () => {
      session.close();
      resolve(d);
    });
    st.on('error', reject);
  });
}

/** Resolves with how long the server took to close a connection that says nothing. */
function silentConnectionLifetimeMs(port: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('close', () => resolve(Date.now() - t0));
  });
}

describe('plain TCP: preface sniffing', () => {
  let port: ClientPortServer;
  let p: number;
  before(async () => {
    port = makePort({ handshakeTimeoutMs: 300 });
    p = portOf(await port.listen({ host: '127.0.0.1', port: 0 }));
  });
  after(() => port.close(200));

  test('HTTP/1.1, h2c HTTP and gRPC share the port', async () => {
    assert.equal(await get({ host: '127.0.0.1', port: p, path: '/health' }), '1.1 GET /health ');
    assert.equal(await get({ host: '127.0.0.1', port: p, path: '/v3/kv/range' }, false, '{"key":"Zm9v"}'), '1.1 POST /v3/kv/range {"key":"Zm9v"}');
    assert.equal(await h2Get(`http://127.0.0.1:${p}`), '2.0 GET /health ');
    const ch = new GrpcChannel({ address: `127.0.0.1:${p}` });
    try {
      assert.equal(await ch.unary(echoMethods.Unary, 'grpc too'), 'grpc too');
      assert.equal(await ch.unary(whoMethods.Who, ''), '127.0.0.1 -');
    } finally {
      ch.close();
    }
  });

  test("an HTTP/1.1 request that cannot be parsed, or has no Host, gets Go's plain 400", async () => {
    const exchange = (request: string): Promise<string> =>
      new Promise<string>((resolve) => {
        const s = net.connect(p, '127.0.0.1');
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        s.on('close', () => resolve(got));
        s.on('error', () => undefined);
        s.write(request);
      });
    const plain = (why: string): string => `HTTP/1.1 ${why}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${why}`;
    assert.equal(await exchange('POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'), plain('400 Bad Request'));
    assert.equal(await exchange('GET /health HTTP/1.1\r\nConnection: close\r\n\r\n'), plain('400 Bad Request: missing required Host header'));
  });

  test('a connection that sends nothing is closed after the handshake timeout', async () => {
    const ms = await silentConnectionLifetimeMs(p);
    assert.ok(ms >= 250 && ms < 5000, `closed after ${ms} ms`);
  });
});

describe('unix socket', () => {
  test('gRPC and HTTP/1.1 over a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'grpc-unix-'));
    const path = join(dir, 'etcd.sock');
    const port = makePort();
    try {
      assert.equal(await port.listen({ path }), path);
      assert.equal(await get({ socketPath: path, path: '/version' }), '1.1 GET /version ');
      const ch = new GrpcChannel({ address: `unix:${path}` });
      try {
        assert.equal(await ch.unary(echoMethods.Unary, 'via unix'), 'via unix');
      } finally {
        ch.close();
      }
    } finally {
      await port.close(200);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TLS: ALPN', { skip: haveOpenssl() ? false : 'openssl is not installed: cannot make test certificates' }, () => {
  let dir: string;
  let certs: TestCerts;
  let port: ClientPortServer;
  let p: number;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-tls-'));
    certs = makeTestCerts(dir);
    port = makePort({
      handshakeTimeoutMs: 300,
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientCertAuth: true },
    });
    p = portOf(await port.listen({ host: '127.0.0.1', port: 0 }));
  });
  after(async () => {
    await port.close(200);
    rmSync(dir, { recursive: true, force: true });
  });

  test('https, h2 HTTP and gRPC share the port; the handler sees the client CN', async () => {
    const tlsOpts = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    assert.equal(await get({ host: '127.0.0.1', port: p, path: '/health', ...tlsOpts }, true), '1.1 GET /health ');
    assert.equal(await h2Get(`https://127.0.0.1:${p}`, tlsOpts), '2.0 GET /health ');
    const ch = new GrpcChannel({ address: `127.0.0.1:${p}`, tls: tlsOpts });
    try {
      assert.equal(await ch.unary(echoMethods.Unary, 'secret'), 'secret');
      assert.equal(await ch.unary(whoMethods.Who, ''), '127.0.0.1 root');
    } finally {
      ch.close();
    }
  });

  test('client-cert auth: no certificate, no call', async () => {
    const ch = new GrpcChannel({ address: `127.0.0.1:${p}`, tls: { ca: certs.ca } });
    try {
      const err = await ch.unary(echoMethods.Unary, 'x').then(
        () => assert.fail('a client without a certificate got through'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof GrpcError);
      assert.equal(err.code, GrpcStatus.UNAVAILABLE);
    } finally {
      ch.close();
    }
  });

  test('a stalled TLS handshake is cut off', async () => {
    const ms = await silentConnectionLifetimeMs(p);
    assert.ok(ms >= 250 && ms < 5000, `closed after ${ms} ms`);
  });

  test('server name verification: a wrong name fails, insecureSkipVerify passes', async () => {
    const wrong = new GrpcChannel({
      address: `127.0.0.1:${p}`,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey, servername: 'other.example' },
    });
    const skip = new GrpcChannel({
      address: `127.0.0.1:${p}`,
      tls: { cert: certs.clientCert, key: certs.clientKey, insecureSkipVerify: true },
    });
    try {
      const err = await wrong.unary(echoMethods.Unary, 'x').then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof GrpcError && err.code === GrpcStatus.UNAVAILABLE, String(err));
      assert.equal(await skip.unary(echoMethods.Unary, 'ok'), 'ok');
    } finally {
      wrong.close();
      skip.close();
    }
  });
});

test('close() stops the listener', async () => {
  const port = makePort();
  const p = portOf(await port.listen({ host: '127.0.0.1', port: 0 }));
  await port.close(200);
  const err = await new Promise<Error | undefined>((resolve) => {
    const s = net.connect(p, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.on('error', resolve);
  });
  assert.ok(err !== undefined && (err as NodeJS.ErrnoException).code === 'ECONNREFUSED');
});
