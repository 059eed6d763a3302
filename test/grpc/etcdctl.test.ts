// The real Go client (Debian's etcdctl 3.4, grpc-go 1.26) against src/grpc
// serving a few etcd methods from tiny in-memory handlers: proves that Go's
// gRPC stack accepts our framing, trailers, statuses and flow control, plain
// and over TLS with a client certificate.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientPortServer, GrpcServer, serverStreaming, unary, type ClientPortTlsOptions } from '../../src/grpc/index.js';
import { haveOpenssl, makeTestCerts, type TestCerts } from '../../src/grpc/test-kit.js';
import { etcdserverpb, mvccpb } from '../../src/pb/index.js';

const etcdctl = '/usr/bin/etcdctl';
const skip = existsSync(etcdctl) ? false : `${etcdctl} is not installed (apt-get install etcd-client)`;
/**
 * A database file is whole pages: etcdctl's `snapshot save` refuses a stream
 * whose length is not 32 (the SHA-256) more than a multiple of 512.
 */
const snapshotBytes = 3 * 1024 * 1024 + 5 * 4096;

interface Store {
  readonly kv: Map<string, Buffer>;
  revision: number;
}

function header(store: Store): etcdserverpb.ResponseHeader {
  return etcdserverpb.ResponseHeader.create({ clusterId: 0x1234n, memberId: 0x42n, revision: store.revision, raftTerm: 2 });
}

/** A few etcd methods over a Map: enough for etcdctl status, put, get, snapshot. */
function makeServer(store: Store, snapshot: Buffer): GrpcServer {
  const grpc = new GrpcServer({ maxReceiveMessageBytes: 1.5 * 1024 * 1024 + 512 * 1024 });
  grpc.addService(etcdserverpb.MaintenanceService.methods, {
    Status: unary(() =>
      Promise.resolve(
        etcdserverpb.StatusResponse.create({
          header: header(store),
          version: '3.4.23',
          dbSize: 24576,
          leader: 0x42n,
          raftIndex: 7,
          raftTerm: 2,
          raftAppliedIndex: 7,
          dbSizeInUse: 16384,
        }),
      ),
    ),
    Snapshot: serverStreaming(async (_req, call) => {
      // As etcd: the database in 32 KiB chunks, then a message holding its SHA-256.
      for (let off = 0; off < snapshot.length && !call.closed; off += 32 * 1024) {
        const blob = snapshot.subarray(off, off + 32 * 1024);
        const msg = etcdserverpb.SnapshotResponse.create({ remainingBytes: snapshot.length - off - blob.length, blob });
        if (!call.write(msg)) await call.drained();
      }
      call.write(etcdserverpb.SnapshotResponse.create({ remainingBytes: 0, blob: createHash('sha256').update(snapshot).digest() }));
    }),
  });
  grpc.addService(etcdserverpb.KVService.methods, {
    Put: unary((req) => {
      store.kv.set(Buffer.from(req.key).toString('latin1'), Buffer.from(req.value));
      store.revision++;
      return Promise.resolve(etcdserverpb.PutResponse.create({ header: header(store) }));
    }),
    Range: unary((req) => {
      const key = Buffer.from(req.key).toString('latin1');
      const value = store.kv.get(key);
      const kvs =
        value === undefined
          ? []
          : [mvccpb.KeyValue.create({ key: req.key, value, createRevision: 2, modRevision: store.revision, version: 1 })];
      return Promise.resolve(etcdserverpb.RangeResponse.create({ header: header(store), kvs, count: kvs.length }));
    }),
  });
  return grpc;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(etcdctl, ['--dial-timeout', '3s', '--command-timeout', '10s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function serve(tls: ClientPortTlsOptions | undefined): Promise<{ port: ClientPortServer; endpoint: string; store: Store; snapshot: Buffer }> {
  const store: Store = { kv: new Map(), revision: 1 };
  const snapshot = Buffer.alloc(snapshotBytes);
  for (let i = 0; i < snapshot.length; i++) snapshot[i] = (i * 31 + (i >> 8)) & 0xff;
  const port = new ClientPortServer({ grpc: makeServer(store, snapshot), ...(tls === undefined ? {} : { tls }) });
  const addr = await port.listen({ host: '127.0.0.1', port: 0 });
  assert.ok(typeof addr !== 'string');
  const endpoint = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${addr.port}`;
  return { port, endpoint, store, snapshot };
}

describe('etcdctl 3.4 over h2c', { skip }, () => {
  let s: Awaited<ReturnType<typeof serve>>;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-etcdctl-'));
    s = await serve(undefined);
  });
  after(async () => {
    await s.port.close(200);
    rmSync(dir, { recursive: true, force: true });
  });

  test('endpoint status -w json parses our response', async () => {
    // Status dials the endpoint URL itself: grpc-go sends it whole as :authority, which
    // nghttp2 refuses; gRPC connections are the server's own, which take it as Go's do.
    const rewriting = s.port.rewritingConnections;
    const r = await run(['--endpoints', s.endpoint, 'endpoint', 'status', '-w', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.port.rewritingConnections, rewriting);
    const parsed = JSON.parse(r.stdout) as { Endpoint: string; Status: Record<string, unknown> }[];
    assert.equal(parsed[0]?.Endpoint, s.endpoint);
    const st = parsed[0].Status;
    assert.equal(st['version'], '3.4.23');
    assert.equal(st['dbSize'], 24576);
    assert.equal(st['leader'], 0x42);
    assert.deepEqual(st['header'], { cluster_id: 0x1234, member_id: 0x42, revision: 1, raft_term: 2 });
  });

  test('put, then get returns the value', async () => {
    // These dial host:port: no rewriting either.
    const rewriting = s.port.rewritingConnections;
    const put = await run(['--endpoints', s.endpoint, 'put', 'foo', 'bar baz']);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout, 'OK\n');
    const get = await run(['--endpoints', s.endpoint, 'get', 'foo']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'foo\nbar baz\n');
    const missing = await run(['--endpoints', s.endpoint, 'get', 'nope', '-w', 'json']);
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal((JSON.parse(missing.stdout) as { count?: number }).count, undefined);
    assert.equal(s.port.rewritingConnections, rewriting);
  });

  test('get of a 1.4 MiB value: grpc-go pings between the response frames, and the connection stays', async () => {
    // grpc-go's client pings to measure bandwidth while a large response
    // arrives; a server that counted those pings as abuse closed the
    // connection (GOAWAY too_many_pings) and etcdctl retried until it gave up.
    const value = Buffer.alloc(1400 * 1024);
    for (let i = 0; i < value.length; i++) value[i] = 0x61 + (i % 26);
    s.store.kv.set('big', value);
    const get = await run(['--endpoints', s.endpoint, 'get', 'big', '--print-value-only']);
    assert.equal(get.code, 0, get.stderr.slice(0, 2000));
    assert.equal(get.stdout.length, value.length + 1);
    assert.ok(get.stdout === `${value.toString('latin1')}\n`, 'the value, byte for byte');
  });

  test('an unimplemented method is reported with grpc-go text', async () => {
    const r = await run(['--endpoints', s.endpoint, 'del', 'foo']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error: rpc error: code = Unimplemented desc = unknown method DeleteRange for service etcdserverpb\.KV/);
  });

  test('snapshot save streams 3 MiB through Go flow control intact', async () => {
    const file = join(dir, 'snap.db');
    const r = await run(['--endpoints', s.endpoint, 'snapshot', 'save', file]);
    assert.equal(r.code, 0, r.stderr);
    const got = readFileSync(file);
    assert.equal(got.length, snapshotBytes + 32);
    assert.ok(got.subarray(0, snapshotBytes).equals(s.snapshot));
    assert.ok(got.subarray(snapshotBytes).equals(createHash('sha256').update(s.snapshot).digest()));
  });
});

describe('etcdctl 3.4 over TLS with a client certificate', {
  skip: skip !== false ? skip : haveOpenssl() ? false : 'openssl is not installed: cannot make test certificates',
}, () => {
  let s: Awaited<ReturnType<typeof serve>>;
  let certs: TestCerts;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-etcdctl-tls-'));
    certs = makeTestCerts(dir);
    s = await serve({ cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientCertAuth: true });
  });
  after(async () => {
    await s.port.close(200);
    rmSync(dir, { recursive: true, force: true });
  });

  test('endpoint status and put/get', async () => {
    const tlsArgs = ['--endpoints', s.endpoint, '--cacert', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile];
    const st = await run([...tlsArgs, 'endpoint', 'status', '-w', 'json']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal((JSON.parse(st.stdout) as { Status: { version: string } }[])[0]?.Status.version, '3.4.23');
    assert.equal((await run([...tlsArgs, 'put', 'k', 'v'])).code, 0);
    assert.equal((await run([...tlsArgs, 'get', 'k', '--print-value-only'])).stdout, 'v\n');
  });

  test('without a client certificate the handshake is refused', async () => {
    const r = await run(['--endpoints', s.endpoint, '--cacert', certs.caFile, '--dial-timeout', '1s', '--command-timeout', '2s', 'endpoint', 'status']);
    assert.notEqual(r.code, 0);
  });
});
