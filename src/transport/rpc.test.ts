// Generic peer RPCs: echo, remote failures, timeouts, unknown peers and
// methods, and the anonymous member-list fetch a joining member uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { etcdserverpb } from '../pb/index.js';
import {
  PeerNotFoundError, PeerUnreachableError, RpcFailedError, StoppedError, TimeoutError, UnknownMethodError,
} from './errors.js';
import type { RpcHandler } from './options.js';
import { senderHeaders } from './protocol.js';
import { callPeerUrls, fetchClusterFromPeers, membersRpcMethod, rpcPath } from './rpc.js';
import { connectAll, freePort, startMember, testClusterId, waitMesh } from './testing.js';

test('peer rpc: echo, caller id, large bodies, remote errors, timeouts', async () => {
  const calls: bigint[] = [];
  let release: () => void = () => undefined;
  const stuck = new Promise<void>((r) => (release = r));
  const handlers: Record<string, RpcHandler> = {
    echo: (from, body) => {
      calls.push(from);
      return Promise.resolve(body);
    },
    fail: () => Promise.reject(new Error('etcdserver: not leader')),
    slow: async (_from, body) => {
      await stuck;
      return body;
    },
  };
  const a = await startMember(1n);
  const b = await startMember(2n, { rpcHandlers: handlers });
  try {
    connectAll([a, b]);
    await waitMesh([a, b]);
    assert.deepEqual(Buffer.from(await a.t.call(2n, 'echo', Buffer.from('ping'), 1000)).toString(), 'ping');
    const big = randomBytes(3 * 1024 * 1024);
    assert.deepEqual(Buffer.from(await a.t.call(2n, 'echo', big, 5000)), big);
    assert.deepEqual(calls, [1n, 1n]);

    await assert.rejects(a.t.call(2n, 'fail', new Uint8Array(0), 1000), (e) => e instanceof RpcFailedError && e.message === 'etcdserver: not leader');
    await assert.rejects(a.t.call(2n, 'nope', new Uint8Array(0), 1000), UnknownMethodError);
    await assert.rejects(a.t.call(2n, 'constructor', new Uint8Array(0), 1000), UnknownMethodError);
    await assert.rejects(a.t.call(9n, 'echo', new Uint8Array(0), 1000), PeerNotFoundError);

    const started = performance.now();
    await assert.rejects(a.t.call(2n, 'slow', new Uint8Array(0), 200), TimeoutError);
    const waited = performance.now() - started;
    assert.ok(waited >= 190 && waited < 1000, `timed out after ${waited} ms`);
  } finally {
    release();
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
  await assert.rejects(a.t.call(2n, 'echo', new Uint8Array(0), 100), StoppedError);
});

test('a call to a peer that is down fails after its timeout', async () => {
  const a = await startMember(1n);
  try {
    a.t.addPeer(2n, [`http://127.0.0.1:${await freePort()}`]);
    await assert.rejects(a.t.call(2n, 'echo', new Uint8Array(0), 300), PeerUnreachableError);
  } finally {
    await a.t.stop();
  }
});

test('fetchClusterFromPeers: a joining member learns the cluster id and members from any live URL', async () => {
  const members = [
    etcdserverpb.Member.create({ ID: 1n, name: 'm1', peerURLs: ['http://127.0.0.1:1'], clientURLs: [], isLearner: false }),
    etcdserverpb.Member.create({ ID: 2n, name: 'm2', peerURLs: ['http://127.0.0.1:2'], clientURLs: [], isLearner: true }),
  ];
  const seen: bigint[] = [];
  const b = await startMember(2n, {
    rpcHandlers: {
      [membersRpcMethod]: (from) => {
        seen.push(from);
        return Promise.resolve(etcdserverpb.MemberListResponse.encode(etcdserverpb.MemberListResponse.create({ members })));
      },
      echo: (_from, body) => Promise.resolve(body),
    },
  });
  try {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const info = await fetchClusterFromPeers([dead, b.url], 1000);
    assert.equal(info.clusterId, testClusterId);
    assert.deepEqual(info.members, members);
    assert.deepEqual(seen, [0n], 'anonymous caller');
    // Only the listed methods may be called anonymously.
    await assert.rejects(callPeerUrls([b.url], 'echo', new Uint8Array(0), 1000), (e) => e instanceof PeerUnreachableError && /cluster ID mismatch/.test(e.message));
    await assert.rejects(fetchClusterFromPeers([dead], 500), PeerUnreachableError);
  } finally {
    await b.t.stop();
  }
});

test('a huge rpc body is refused (413) once past rpcBytesMax, not read to its end; the peer serves on', async () => {
  let handled = 0;
  const rpcBytesMax = 1024 * 1024;
  const b = await startMember(2n, { rpcHandlers: { echo: (_from, body) => ((handled += 1), Promise.resolve(body)) }, tuning: { rpcBytesMax } });
  const a = await startMember(1n);
  const session = http2.connect(b.url);
  session.on('error', () => undefined);
  try {
    connectAll([a, b]);
    await waitMesh([a, b]);
    // 256 MiB announced and offered, 1 MiB at a time, as fast as the stream takes it.
    const req = session.request({ ':method': 'POST', ':path': rpcPath('echo'), ...senderHeaders(testClusterId, 1n, 2n) });
    req.on('error', () => undefined);
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let offered = 0;
    const status = new Promise<number>((resolve) => req.once('response', (h) => resolve(Number(h[':status']))));
    const closed = new Promise<void>((resolve) => req.once('close', () => resolve()));
    // The refusal's headers and end come back while the upload is still under way.
    req.resume();
    const pump = (): void => {
      while (offered < 256 * 1024 * 1024 && !req.destroyed && !req.closed) {
        offered += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed && !req.closed) req.end();
    };
    pump();
    assert.equal(await status, 413);
    await closed;
    // The refusal came once the limit was passed: what was offered is bounded by the limit and the flow-control windows.
    assert.ok(offered < 128 * 1024 * 1024, `offered ${offered} bytes before the refusal`);
    assert.equal(handled, 0, 'the handler never saw the body');
    assert.deepEqual(Buffer.from(await a.t.call(2n, 'echo', Buffer.from('still here'), 2000)).toString(), 'still here');
  } finally {
    session.close();
    await Promise.all([a.t.stop(), b.t.stop()]);
  }
});
