// Auth end to end, against the real etcd: an `etcdctl --user` session (users,
// roles, permissions, auth enable/disable, reads and writes with and without
// rights, wrong passwords) prints the same on both; simple tokens expire
// after --auth-token-ttl with "invalid auth token" and clients that
// re-authenticate carry on; no password reaches the WAL, snapshots or db in
// plaintext.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay } from '../harness/member.js';
import { etcdctl, etcdctlMissing, etcdMissing, methods, openChannel, outcome, useWorkspace, type Cluster } from '../harness/index.js';

const rootPw = 'root-Plaintext-7781';
const alicePw = 'alice-Plaintext-3312';
const tokenTtlSeconds = 2;

/** The session: each step's args (and stdin). */
const session: readonly (readonly string[] | { args: readonly string[]; stdin: string })[] = [
  ['user', 'add', `root:${rootPw}`],
  ['role', 'add', 'r1'],
  ['role', 'grant-permission', 'r1', 'readwrite', 'foo'],
  ['role', 'grant-permission', '--prefix=true', 'r1', 'read', 'pre/'],
  ['role', 'grant-permission', 'r1', 'write', 'a', 'c'],
  ['user', 'add', `alice:${alicePw}`],
  ['user', 'grant-role', 'alice', 'r1'],
  ['role', 'get', 'r1'],
  ['user', 'get', 'alice'],
  ['auth', 'enable'],
  ['user', 'list'],
  ['get', 'foo'],
  ['--user', `alice:${alicePw}`, 'put', 'foo', 'bar'],
  ['--user', `alice:${alicePw}`, 'get', 'foo'],
  ['--user', `alice:${alicePw}`, 'put', 'b', 'x'],
  ['--user', `alice:${alicePw}`, 'get', 'b'],
  ['--user', `alice:${alicePw}`, 'put', 'other', 'x'],
  ['--user', `alice:${alicePw}`, 'get', 'pre/x'],
  ['--user', `alice:${alicePw}`, 'put', 'pre/x', 'y'],
  ['--user', `alice:${alicePw}`, 'del', 'foo', '--prev-kv'],
  { args: ['--user', `alice:${alicePw}`, 'txn'], stdin: 'value("foo") = "bar"\n\nput foo b2\n\nget other\n\n' },
  ['--user', 'alice:wrong', 'get', 'foo'],
  ['--user', 'nobody:x', 'get', 'foo'],
  ['--user', `alice:${alicePw}`, 'user', 'list'],
  ['--user', `alice:${alicePw}`, 'user', 'get', 'alice'],
  ['--user', `alice:${alicePw}`, 'role', 'get', 'r1'],
  ['--user', `alice:${alicePw}`, 'auth', 'disable'],
  ['--user', `root:${rootPw}`, 'get', 'foo'],
  ['--user', `root:${rootPw}`, 'user', 'list'],
  ['--user', `root:${rootPw}`, 'role', 'list'],
  ['--user', `root:${rootPw}`, 'role', 'revoke-permission', 'r1', 'foo'],
  ['--user', `alice:${alicePw}`, 'get', 'foo'],
  ['--user', `root:${rootPw}`, 'user', 'passwd', 'alice', '--interactive=false'],
  ['--user', `root:${rootPw}`, 'user', 'revoke-role', 'alice', 'r1'],
  ['--user', `root:${rootPw}`, 'role', 'delete', 'r1'],
  ['--user', `root:${rootPw}`, 'user', 'delete', 'alice'],
  ['--user', `root:${rootPw}`, 'auth', 'disable'],
  ['get', 'foo'],
];

/** etcdctl's client logs carry a time and a random target: mask them. */
function maskLog(text: string): string {
  return text.replace(/"ts":"[^"]+"/g, '"ts":"T"').replace(/"target":"[^"]+"/g, '"target":"X"');
}

async function runSession(c: Cluster): Promise<string[]> {
  const out: string[] = [];
  for (const step of session) {
    const { args, stdin } = 'args' in step ? step : { args: step, stdin: undefined };
    // user passwd reads the new password from stdin.
    const input = args.includes('passwd') ? `${alicePw}-2\n` : stdin;
    const r = await etcdctl(args, { endpoints: c.endpoints, ...(input !== undefined ? { stdin: input } : {}) });
    out.push(`$ ${args.join(' ')}\n${r.stdout}${maskLog(r.stderr)}[exit ${String(r.code)}]`);
  }
  return out;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('auth end to end against the real etcd', { skip: etcdMissing() || etcdctlMissing() }, () => {
  const ws = useWorkspace('auth-e2e');
  let theirs: Cluster;
  let ours: Cluster;
  before(async () => {
    const extraFlags = ['--auth-token-ttl', String(tokenTtlSeconds)];
    [theirs, ours] = await Promise.all([ws.startCluster({ kind: 'etcd', extraFlags }), ws.startCluster({ kind: 'etcd-ts', extraFlags })]);
  });

  test('an etcdctl --user session prints the same on both', async () => {
    const expected = await runSession(theirs);
    const actual = await runSession(ours);
    for (let i = 0; i < expected.length; i++) assert.equal(actual[i], expected[i]);
  });

  test('no password is stored in plaintext: WAL, snapshots and the db hold only hashes', async () => {
    const m = ours.member(0);
    await m.stop();
    try {
      const files = filesUnder(m.dataDir);
      assert.ok(files.some((f) => f.includes('wal')), `no WAL under ${m.dataDir}`);
      for (const f of files) {
        const data = readFileSync(f);
        for (const pw of [rootPw, alicePw, `${alicePw}-2`]) assert.equal(data.includes(pw), false, `${f} contains a plaintext password`);
      }
    } finally {
      await m.start();
    }
  });

  test('a simple token expires after --auth-token-ttl ("invalid auth token"); a re-authenticating client carries on', async () => {
    const outcomes = [];
    for (const c of [theirs, ours]) {
      await etcdctl(['user', 'add', `root:${rootPw}`], { endpoints: c.endpoints });
      await etcdctl(['auth', 'enable'], { endpoints: c.endpoints });
      const ch = openChannel(c.member(0).endpoint);
      const client = new Etcd3({ hosts: c.clientUrls, auth: { username: 'root', password: rootPw } });
      try {
        const { token } = await ch.unary(methods.auth.Authenticate, etcdserverpb.AuthenticateRequest.create({ name: 'root', password: rootPw }), { timeoutMs: 10_000 });
        const range = (): Promise<unknown> =>
          ch.unary(methods.kv.Range, etcdserverpb.RangeRequest.create({ key: new TextEncoder().encode('foo') }), { timeoutMs: 10_000, metadata: { token } });
        const fresh = await outcome(range());
        await client.put('ttl').value('1');
        await delay((tokenTtlSeconds + 2) * 1000);
        const stale = await outcome(range());
        await client.put('ttl').value('2');
        outcomes.push([fresh.ok, stale, await client.get('ttl').string()]);
      } finally {
        client.close();
        ch.close();
        await etcdctl(['--user', `root:${rootPw}`, 'auth', 'disable'], { endpoints: c.endpoints });
      }
    }
    assert.deepEqual(outcomes[1], outcomes[0]);
    assert.deepEqual(outcomes[0], [true, { ok: false, code: 16, message: 'etcdserver: invalid auth token' }, '2']);
  });
});
