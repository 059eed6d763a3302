// The HTTP/2 windows of the client port and of the client library. A
// request or response of a few hundred KiB must flow without a window
// update's round trip per 32 KiB (HTTP/2's default window is 64 KiB): the
// server announces a 1 MiB stream window and a 2 MiB connection window, and
// a large put and a large range still come out whole through both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Client } from '../../src/client/index.js';
import { useWorkspace, type Cluster } from '../harness/index.js';

const mib = 1024 * 1024;

/**
 * The settings and connection window a plain HTTP/2 client sees from the
 * server once a gRPC call was made (the client port tells gRPC from its other
 * HTTP/2 traffic by the first request, then sends its own settings).
 */
async function serverWindows(url: string): Promise<{ stream: number | undefined; connection: number }> {
  const session = http2.connect(url);
  try {
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/grpc', te: 'trailers' });
      req.on('error', reject);
      req.on('data', () => undefined);
      req.on('close', () => resolve());
      // An empty RangeRequest, framed: not compressed, length 0.
      req.end(Buffer.alloc(5));
    });
    // The connection's window as granted: what is left plus the call's 5 bytes
    // (the server credits them back only in larger amounts).
    const granted = (): number => (session.state.remoteWindowSize ?? 0) + 5;
    // The connection-level WINDOW_UPDATE follows the SETTINGS frame: wait for it, bounded.
    for (let i = 0; i < 100 && granted() !== 2 * mib; i++) await new Promise((r) => setTimeout(r, 10));
    return { stream: session.remoteSettings.initialWindowSize, connection: granted() };
  } finally {
    session.destroy();
  }
}

describe('HTTP/2 windows for large requests and responses', () => {
  const ws = useWorkspace('flow-windows');
  let c: Cluster;
  let client: Client;
  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts' });
    client = await Client.connect({ endpoints: [c.member(0).endpoint] });
  });
  after(() => client?.close());

  test('the client port announces a 1 MiB stream window and a 2 MiB connection window', async () => {
    assert.deepEqual(await serverWindows(c.member(0).clientUrl), { stream: mib, connection: 2 * mib });
  });

  test('puts of 900 KiB and a range of 1.8 MiB come back byte for byte', async () => {
    const values = [0, 1].map((i) => Buffer.alloc(900 * 1024, 0x41 + i));
    for (const [i, v] of values.entries()) await client.kv.put(`big/${i}`, v);
    const r = await client.kv.get('big/', { prefix: true });
    assert.equal(r.kvs.length, 2);
    for (const [i, kv] of r.kvs.entries()) assert.ok(Buffer.from(kv.value).equals(values[i] as Buffer), `value ${i} intact`);
  });
});
