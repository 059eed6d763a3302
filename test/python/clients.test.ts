// Debian's Python clients of etcd v3 (python3-etcd3 over grpcio, gRPC's C
// core; python3-etcd3gw over the JSON gateway) against etcd-ts and etcd
// 3.4.23: clients.py walks each library's calls and prints one line per
// step, and both servers must give the same lines. A third walk logs in with
// a user and password over TLS: that client sends its token twice on each
// call (as call credentials and as metadata), which etcd reads as one token.
// A fourth walk is Patroni's etcd3 store (two nodes race for a PostgreSQL
// cluster's leader key over the gateway, one waiting on its watch stream).
// Skipped when the packages are not installed (.ci/run installs them).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { haveOpenssl, makeTestCerts } from '../../src/grpc/test-kit.js';
import { etcdMissing, useWorkspace, type Cluster, type MemberKind } from '../harness/index.js';
import { track } from '../harness/reaper.js';

const script = resolve(import.meta.dirname, '../../../test/python/clients.py');
/** Debian's interpreter: the packages live in its dist-packages, not in another python3 on the PATH. */
const python = '/usr/bin/python3';
const runTimeoutMs = 120_000;

function pythonMissing(): string | false {
  const r = spawnSync(python, ['-c', 'import etcd3, etcd3gw, grpc'], { encoding: 'utf8' });
  if (r.status !== 0) return `Debian's Python clients are not installed (apt-get install python3-etcd3 python3-grpcio python3-etcd3gw): ${(r.stderr || r.error?.message || '').trim().split('\n').pop() ?? ''}`;
  return etcdMissing();
}

const skip = pythonMissing();

/** The lines clients.py prints in mode against the cluster's member; fails the test if it does not finish. */
function walk(mode: string, c: Cluster, extra: readonly string[] = []): Promise<string[]> {
  const [host, port] = c.member(0).endpoint.split(':') as [string, string];
  const child = spawn(python, [script, mode, host, port, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs);
  return new Promise((done, fail) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l !== '');
      if (lines.at(-1) !== 'done') fail(new Error(`${c.kind}: clients.py ${mode} ended with ${String(code)} before its last step:\n${out}\n${err}`));
      else done(lines);
    }),
  );
}

/** Runs mode against one member of each kind, at once, and compares the lines. */
async function same(mode: string, start: (kind: MemberKind) => Promise<Cluster>, extra: readonly string[] = []): Promise<string[]> {
  const [theirs, ours] = await Promise.all([start('etcd'), start('etcd-ts')]);
  const [expected, actual] = await Promise.all([walk(mode, theirs, extra), walk(mode, ours, extra)]);
  assert.deepEqual(actual, expected);
  return actual;
}

describe('Debian python clients', { skip }, () => {
  const ws = useWorkspace('python-clients');

  test('python3-etcd3 (gRPC C core): KV, txn, leases, locks, watches, compaction, maintenance, large values', async () => {
    const lines = await same('grpc', (kind) => ws.startCluster({ kind }));
    // Not the same failure on both sides: the steps that must succeed did.
    for (const step of ['put OK', 'get 1.4 MiB OK 1433600', 'lock again OK true', 'snapshot OK']) assert.ok(lines.some((l) => l.startsWith(step)), step);
    assert.ok(lines.includes('watch callbacks OK [["PutEvent", "/w", "1"], ["PutEvent", "/wp/a", "2"], ["DeleteEvent", "/w", ""]]'));
  });

  test('python3-etcd3gw (JSON gateway, /v3beta and /v3)', async () => {
    const lines = await same('gateway', (kind) => ws.startCluster({ kind }));
    for (const api of ['v3beta', 'v3']) {
      for (const step of ['put OK true', 'create OK true', 'lock OK true', 'lease refresh OK 5']) assert.ok(lines.includes(`${api}/${step}`), `${api}/${step}`);
    }
  });

  const patroniMissing = spawnSync(python, ['-c', 'import patroni.dcs.etcd3']).status === 0 ? false : 'patroni is not installed (apt-get install patroni)';
  test("Patroni's etcd3 store (JSON gateway and its watch stream)", { skip: patroniMissing }, async () => {
    const lines = await same('patroni', (kind) => ws.startCluster({ kind }));
    for (const step of ['initialize OK true', 'initialize taken OK false', 'acquire leader OK true', 'delete leader OK true', 'watch woke OK [true, true]']) assert.ok(lines.includes(step), step);
  });

  test('python3-etcd3 with a user and password over TLS', { skip: haveOpenssl() ? false : 'openssl is not installed' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'python-clients-certs-'));
    try {
      const certs = makeTestCerts(dir);
      const flags = ['--cert-file', certs.serverCertFile, '--key-file', certs.serverKeyFile];
      const tls = { client: true, ca: certs.ca };
      const lines = await same('auth', (kind) => ws.startCluster({ kind, extraFlags: flags, tls }), [certs.caFile]);
      for (const step of ['root put OK true', 'root get OK y', 'bob put EXC']) assert.ok(lines.some((l) => l.startsWith(step)), step);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
