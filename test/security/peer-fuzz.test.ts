// Junk on the peer port (reliability.md P19, P21): random bytes, HTTP/1
// requests, an HTTP/2 preface followed by random frames, the raw raft
// stream's magic followed by random header lines and frames, and HTTP/2
// requests to every peer path with missing, wrong or right admission headers
// and random bodies. The member must refuse or drop each one and go on
// serving: no crash, no stall, writes still committed, its peers still
// connected.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { SeededRand } from '../../src/base/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, memberStatus, methods, openChannel, useWorkspace, type Cluster, type Member } from '../harness/index.js';

const seed = Number(process.env['PEER_FUZZ_SEED'] ?? 20261205);
const rawMagic = 'ETCD-TS-RAFT/1\n';
const peerPaths = ['/raft/stream/msgapp', '/raft/stream/message', '/raft/snapshot', '/raft/rpc/memberAttributes', '/raft/rpc/x', '/raft', '/'];

function bytes(rand: SeededRand, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => rand.intn(256)));
}

/** Writes payload to the peer port and reads what comes back for a moment; the connection is then dropped. */
function tcp(port: number, payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(finish, 150);
    s.on('error', finish);
    s.on('close', finish);
    s.on('data', () => undefined);
    s.write(payload);
  });
}

/** One HTTP/2 request with any headers and body; its status, or the error that ended it. */
function h2(port: number, headers: Record<string, string>, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const done = (what: string): void => {
      clearTimeout(timer);
      session.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done('no answer'), 1_000);
    session.on('error', (e) => done(`session error ${e.message}`));
    const req = session.request({ ':method': 'POST', ...headers });
    req.on('response', (h) => done(String(h[':status'])));
    req.on('error', (e) => done(`stream error ${e.message}`));
    req.end(body);
  });
}

/** A frame of the raft streams' framing: a length, maybe a CRC, then bytes (any of them wrong). */
function junkFrame(rand: SeededRand): Buffer {
  const body = bytes(rand, rand.intn(64));
  const head = Buffer.alloc(8);
  head.writeUInt32BE(rand.intn(3) === 0 ? rand.uint32() : body.length, 0);
  head.writeUInt32BE(rand.uint32(), 4);
  return Buffer.concat([head, body]);
}

describe('junk on the peer port', () => {
  const ws = useWorkspace('peer-fuzz');
  let c: Cluster;
  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts', size: 3 });
    await c.leader();
  });
  after(async () => c?.close());

  async function put(m: Member, key: string): Promise<void> {
    const ch = openChannel(m.endpoint);
    try {
      await ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: new TextEncoder().encode(key), value: new Uint8Array([1]) }), { timeoutMs: 10_000 });
    } finally {
      ch.close();
    }
  }

  test(`every member refuses it and goes on (seed ${seed})`, { timeout: 180_000 }, async (t) => {
    const rand = new SeededRand(seed);
    const status = await memberStatus(c.member(0).endpoint);
    const clusterId = (status.header?.clusterId ?? 0n).toString(16);
    const ids = await Promise.all(c.members.map(async (m) => ((await memberStatus(m.endpoint)).header?.memberId ?? 0n).toString(16)));
    const outcomes = new Map<string, number>();
    for (let round = 0; round < 400; round++) {
      const i = rand.intn(c.members.length);
      const port = (c.members[i] as Member).spec.peerPort;
      const kind = rand.intn(6);
      if (kind === 0) {
        await tcp(port, bytes(rand, 1 + rand.intn(300)));
      } else if (kind === 1) {
        const path = peerPaths[rand.intn(peerPaths.length)] as string;
        await tcp(port, Buffer.from(`${['GET', 'POST', 'PRI', 'XYZ'][rand.intn(4)]} ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${rand.intn(100)}\r\n\r\n${bytes(rand, rand.intn(50)).toString('latin1')}`, 'latin1'));
      } else if (kind === 2) {
        await tcp(port, Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), bytes(rand, rand.intn(200))]));
      } else if (kind === 3) {
        const line = [
          bytes(rand, rand.intn(40)).toString('latin1'),
          '{}',
          `{"x-etcd-cluster-id":"${clusterId}","x-raft-to":"${ids[i] ?? ''}","x-server-from":"${rand.uint32().toString(16)}",":path":"${peerPaths[rand.intn(2)] ?? ''}"}`,
          '[1,2',
          `"${'a'.repeat(rand.intn(20_000))}"`,
        ][rand.intn(5)] as string;
        await tcp(port, Buffer.concat([Buffer.from(rawMagic + line + '\n', 'latin1'), junkFrame(rand), junkFrame(rand)]));
      } else {
        // HTTP/2 with admission headers that are missing, wrong, or right but from a stranger.
        const headers: Record<string, string> = { ':path': peerPaths[rand.intn(peerPaths.length)] as string };
        if (kind === 5 || rand.intn(2) === 0) {
          headers['x-etcd-cluster-id'] = rand.intn(4) === 0 ? 'zz' : clusterId;
          headers['x-raft-to'] = rand.intn(4) === 0 ? '1' : (ids[i] ?? '');
          headers['x-server-from'] = rand.intn(4) === 0 ? 'not-hex' : rand.uint32().toString(16);
          headers['x-etcd-ts-protocol'] = rand.intn(4) === 0 ? '999' : '1';
        }
        const body = Buffer.concat(Array.from({ length: rand.intn(4) }, () => junkFrame(rand)));
        const what = await h2(port, headers, body);
        const key = `${what} ${headers[":path"]} ${headers["x-server-from"] === undefined ? "" : "with headers"}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
      if (round % 100 === 99) {
        // Between batches every member must still commit a write and stay up.
        for (const [j, m] of c.members.entries()) {
          assert.ok(m.running, `member ${j} exited`);
          await put(m, `after-${round}-${j}`);
        }
      }
    }
    for (const m of c.members) assert.ok(m.running, `${m.name} exited`);
    // The cluster is still one: every member sees the same leader and applies the last write
    // (followers apply it a moment after the leader answered: waited for, 10 s at most).
    const deadline = Date.now() + 10_000;
    let statuses = await Promise.all(c.members.map((m) => memberStatus(m.endpoint)));
    const agree = (): boolean => new Set(statuses.map((s) => `${s.leader}/${s.header?.revision ?? 0}`)).size === 1;
    while (!agree() && Date.now() < deadline) {
      await delay(100);
      statuses = await Promise.all(c.members.map((m) => memberStatus(m.endpoint)));
    }
    assert.equal(new Set(statuses.map((s) => s.leader)).size, 1, 'members disagree on the leader');
    const revs = statuses.map((s) => s.header?.revision ?? 0);
    assert.ok(revs.every((r) => r === revs[0]), `revisions differ: ${revs.join(', ')}`);
    t.diagnostic(`HTTP/2 answers: ${JSON.stringify([...outcomes].sort())}`);
  });
});
