// Peer TLS with a CA made here by openssl: members with mutual TLS talk
// (raft streams, rpc, the join fetch); a certificate from another CA and one
// with a CN other than --peer-cert-allowed-cn are kept out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { etcdserverpb } from '../pb/index.js';
import { PeerUnreachableError } from './errors.js';
import { fetchClusterFromPeers, membersRpcMethod } from './rpc.js';
import { connectAll, heartbeat, recordingLogger, startMember, testClusterId, waitFor, waitMesh, type LogLine } from './testing.js';
import type { PeerTlsOptions } from './tls.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Pki {
  dir: string;
  ca: Buffer;
  cert(name: string): { cert: Buffer; key: Buffer };
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A CA and leaf certificates for 127.0.0.1 (serverAuth + clientAuth), EC P-256. */
function makePki(dir: string, caName: string, leaves: Readonly<Record<string, string>>): Pki {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', `${caName}.key`, '-out', `${caName}.crt`, '-subj', `/CN=${caName}`, '-days', '2']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  for (const [name, cn] of Object.entries(leaves)) {
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '2', '-extfile', 'ext.cnf']);
  }
  return {
    dir,
    ca: readFileSync(join(dir, `${caName}.crt`)),
    cert: (name) => ({ cert: readFileSync(join(dir, `${name}.crt`)), key: readFileSync(join(dir, `${name}.key`)) }),
  };
}

const skip = hasOpenssl() ? false : 'openssl is not installed: cannot make a test CA';

test('mutual peer TLS: members talk; foreign CA and wrong CN are refused', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-transport-tls-'));
  try {
    const pki = makePki(dir, 'ca', { m1: 'peer', m2: 'peer', m3: 'peer', other: 'intruder' });
    const rogue = makePki(dir, 'rogue-ca', { r: 'peer' });
    const tlsFor = (p: Pki, name: string, ca: Buffer): PeerTlsOptions => ({
      ...p.cert(name), ca, requestCert: true, rejectUnauthorized: true, allowedCn: 'peer',
    });
    const members = [];
    const logA: LogLine[] = [];
    for (const [i, name] of ['m1', 'm2', 'm3'].entries()) {
      members.push(await startMember(BigInt(i + 1), {
        ...(i === 0 ? { logger: recordingLogger(logA) } : {}),
        tls: tlsFor(pki, name, pki.ca),
        listenUrl: 'https://127.0.0.1:0',
        rpcHandlers: {
          [membersRpcMethod]: () => Promise.resolve(etcdserverpb.MemberListResponse.encode(etcdserverpb.MemberListResponse.create({ members: [] }))),
          echo: (_f, b) => Promise.resolve(b),
        },
      }));
    }
    const [a, b, c] = members as [typeof members[0], typeof members[0], typeof members[0]];
    const intruder = await startMember(4n, { tls: tlsFor(pki, 'other', pki.ca), listenUrl: 'https://127.0.0.1:0' });
    const stranger = await startMember(5n, { tls: tlsFor(rogue, 'r', pki.ca), listenUrl: 'https://127.0.0.1:0' });
    try {
      assert.match(a.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      connectAll(members);
      await waitMesh(members);
      a.t.send([heartbeat(1n, 2n, 1), heartbeat(1n, 3n, 1)]);
      await waitFor(() => b.received.length === 1 && c.received.length === 1, 'messages over TLS');
      assert.deepEqual(Buffer.from(await a.t.call(2n, 'echo', Buffer.from('tls'), 2000)).toString(), 'tls');
      const info = await fetchClusterFromPeers([c.url], 2000, tlsFor(pki, 'm1', pki.ca));
      assert.equal(info.clusterId, testClusterId);
      // A CA-signed certificate with a CN other than the allowed one is cut off too.
      await assert.rejects(fetchClusterFromPeers([c.url], 2000, { ...tlsFor(pki, 'other', pki.ca) }), PeerUnreachableError);

      intruder.t.addPeer(1n, [a.url]);
      stranger.t.addPeer(1n, [a.url]);
      a.t.addPeer(5n, [stranger.url]); // a does not trust the stranger's server certificate either
      intruder.t.send([heartbeat(4n, 1n, 1)]);
      stranger.t.send([heartbeat(5n, 1n, 1)]);
      await waitFor(() => intruder.unreachable.includes(1n) && stranger.unreachable.includes(1n), 'refused TLS peers report unreachable');
      a.t.send([heartbeat(1n, 5n, 1)]);
      await waitFor(() => a.unreachable.includes(5n), 'untrusted server certificate');
      assert.equal(intruder.t.activeSince(1n), undefined);
      assert.equal(stranger.t.activeSince(1n), undefined);
      assert.equal(a.t.activeSince(5n), undefined);
      assert.ok(!a.received.some((m) => m.from === 4n || m.from === 5n));
      assert.ok(logA.some((l) => l.msg === 'rejected peer connection' && /CN "intruder"\) is not the allowed CN "peer"/.test(String(l.fields['reason']))));
      assert.ok(logA.some((l) => l.msg === 'failed to dial remote peer' && /self-signed|unable to verify|certificate/i.test(String(l.fields['reason']))),
        logA.filter((l) => l.msg === 'failed to dial remote peer').map((l) => String(l.fields['reason'])).join('; '));
    } finally {
      await Promise.all([...members, intruder, stranger].map((m) => m.t.stop()));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--peer-cert-allowed-hostname: a certificate valid for the name is served; one that is not is cut off', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-transport-tls-host-'));
  try {
    // Every leaf is for IP 127.0.0.1 only (no DNS name): "127.0.0.1" matches, "peer.example" does not, whatever the CN.
    const pki = makePki(dir, 'ca', { m1: 'peer', m2: 'any-cn' });
    const logB: LogLine[] = [];
    const tlsFor = (name: string, allowedHostname: string): PeerTlsOptions => ({ ...pki.cert(name), ca: pki.ca, requestCert: true, rejectUnauthorized: true, allowedHostname });
    const rpcHandlers = {
      [membersRpcMethod]: () => Promise.resolve(etcdserverpb.MemberListResponse.encode(etcdserverpb.MemberListResponse.create({ members: [] }))),
    };
    const byIp = await startMember(1n, { tls: tlsFor('m1', '127.0.0.1'), listenUrl: 'https://127.0.0.1:0', rpcHandlers });
    const byName = await startMember(2n, { logger: recordingLogger(logB), tls: tlsFor('m2', 'peer.example'), listenUrl: 'https://127.0.0.1:0', rpcHandlers });
    try {
      const info = await fetchClusterFromPeers([byIp.url], 2000, tlsFor('m2', ''));
      assert.equal(info.clusterId, testClusterId);
      await assert.rejects(fetchClusterFromPeers([byName.url], 2000, tlsFor('m1', '')), PeerUnreachableError);
      assert.ok(logB.some((l) => l.msg === 'rejected peer connection' && /is not valid for "peer\.example"/.test(String(l.fields['reason']))));
    } finally {
      await Promise.all([byIp, byName].map((m) => m.t.stop()));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a peer connection that stalls or dies in its TLS handshake is closed; peers still connect', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-transport-tls-stall-'));
  try {
    const pki = makePki(dir, 'ca', { m1: 'peer', m2: 'peer' });
    const tlsFor = (name: string): PeerTlsOptions => ({ ...pki.cert(name), ca: pki.ca, requestCert: true, rejectUnauthorized: true });
    const tuning = { inboundFirstStreamTimeoutMs: 400 };
    const b = await startMember(2n, { tls: tlsFor('m2'), listenUrl: 'https://127.0.0.1:0', tuning });
    const a = await startMember(1n, { tls: tlsFor('m1'), listenUrl: 'https://127.0.0.1:0', tuning });
    try {
      const port = Number(new URL(b.url).port);
      // Stalled: connected, then silent or half a ClientHello. Dying: a partial ClientHello, then gone.
      const stalled = Array.from({ length: 50 }, (_, i) => {
        const s = net.connect(port, '127.0.0.1', () => {
          if (i % 2 === 1) s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        });
        s.on('error', () => undefined);
        return { started: performance.now(), closed: new Promise<number>((r) => s.once('close', () => r(performance.now()))) };
      });
      for (let i = 0; i < 50; i++) {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
          s.resetAndDestroy();
        });
        s.on('error', () => undefined);
      }
      connectAll([a, b]);
      await waitMesh([a, b]);
      a.t.send([heartbeat(1n, 2n, 7)]);
      await waitFor(() => b.received.some((m) => m.commit === 7), 'a message through the handshakes in progress');
      const closedAfter = await Promise.all(stalled.map(async (c) => (await c.closed) - c.started));
      assert.ok(closedAfter.every((ms) => ms >= 300 && ms < 3_000), `stalled handshakes closed after ${Math.min(...closedAfter).toFixed(0)}-${Math.max(...closedAfter).toFixed(0)} ms`);
    } finally {
      await Promise.all([a, b].map((m) => m.t.stop()));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
