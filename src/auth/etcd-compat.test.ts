/**
 * The same sequence of auth operations against the real etcd 3.4.23 (through
 * etcdctl) and against AuthStore: every outcome and error message, and the
 * order of every list, must agree. Skipped when etcd is not installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromUtf8, utf8 } from '../base/index.js';
import { authpb, etcdserverpb } from '../pb/index.js';
import { AuthError, AuthStore, BcryptPool, MemoryAuthBackend, prepareUserAdd, type AuthInfo } from './index.js';

const etcdBin = '/usr/bin/etcd';
const etcdctlBin = '/usr/bin/etcdctl';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

type Outcome = { ok: true; out: string } | { ok: false; message: string };

function etcdctl(endpoint: string, args: readonly string[], user?: string): Promise<Outcome> {
  const full = ['--endpoints', endpoint, '--dial-timeout', '5s', '--command-timeout', '5s', ...(user === undefined ? [] : ['--user', user]), ...args];
  return new Promise((resolve) => {
    execFile(etcdctlBin, full, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ ok: true, out: stdout });
        return;
      }
      const line = stderr.split('\n').filter((l) => l.startsWith('Error: ')).pop() ?? stderr;
      resolve({ ok: false, message: line.replace(/^Error: /, '').replace(/^rpc error: code = \w+ desc = /, '') });
    });
  });
}

async function ours(fn: () => unknown): Promise<Outcome> {
  try {
    const v = await fn();
    return { ok: true, out: JSON.stringify(v ?? null) };
  } catch (err) {
    assert.ok(err instanceof AuthError, `not an AuthError: ${String(err)}`);
    return { ok: false, message: err.message };
  }
}

async function startEtcd(dir: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const proc = spawn(etcdBin, [
    '--data-dir', join(dir, 'data'), '--name', 'auth-test',
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `auth-test=http://127.0.0.1:${peer}`,
  ], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    proc.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await etcdctl(endpoint, ['endpoint', 'health']);
    if (r.ok) return { endpoint, stop };
    if (Date.now() > deadline || proc.exitCode !== null) {
      await stop();
      throw new Error('etcd did not become healthy');
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

interface Step {
  readonly args: readonly string[];
  readonly user?: string;
  readonly ours: () => unknown;
  /** Turns etcdctl's `-w json` output into what ours returns. */
  readonly json?: (parsed: Record<string, unknown>) => unknown;
}

function steps(store: AuthStore, pool: BcryptPool): Step[] {
  const add = (name: string, password: string, noPassword = false) => async () =>
    store.userAdd(await prepareUserAdd(pool, etcdserverpb.AuthUserAddRequest.create({ name, password, options: { noPassword } }), 4));
  const grant = (name: string, permType: authpb.Permission_Type, key: string, rangeEnd = '') => () =>
    store.roleGrantPermission({ name, perm: authpb.Permission.create({ permType, key: utf8(key), rangeEnd: utf8(rangeEnd) }) });
  const asUser = (username: string, fn: () => unknown) => () => {
    const ai: AuthInfo | undefined = username === '' ? undefined : { username, revision: store.revision() };
    const err = store.isAdminPermitted(ai);
    if (err !== undefined) throw err;
    return fn();
  };
  const perms = (p: Record<string, unknown>): unknown =>
    ((p['perm'] ?? []) as { permType?: number; key?: string; range_end?: string }[]).map((x) => [
      x.permType ?? 0, Buffer.from(x.key ?? '', 'base64').toString(), Buffer.from(x.range_end ?? '', 'base64').toString(),
    ]);
  const ourPerms = (role: string) => () => store.roleGet(role).map((x) => [x.permType, fromUtf8(x.key), fromUtf8(x.rangeEnd)]);
  return [
    { args: ['user', 'add', 'alice:pw'], ours: add('alice', 'pw') },
    { args: ['user', 'add', 'alice:pw'], ours: add('alice', 'pw') },
    { args: ['role', 'add', 'r1'], ours: () => store.roleAdd({ name: 'r1' }) },
    { args: ['role', 'add', 'r1'], ours: () => store.roleAdd({ name: 'r1' }) },
    { args: ['role', 'add', 'a0'], ours: () => store.roleAdd({ name: 'a0' }) },
    { args: ['user', 'revoke-role', 'alice', 'r1'], ours: () => store.userRevokeRole({ name: 'alice', role: 'r1' }) },
    { args: ['user', 'grant-role', 'alice', 'nope'], ours: () => store.userGrantRole({ user: 'alice', role: 'nope' }) },
    { args: ['user', 'grant-role', 'bob', 'r1'], ours: () => store.userGrantRole({ user: 'bob', role: 'r1' }) },
    { args: ['user', 'delete', 'bob'], ours: () => store.userDelete({ name: 'bob' }) },
    { args: ['role', 'delete', 'nope'], ours: () => store.roleDelete({ role: 'nope' }) },
    { args: ['auth', 'enable'], ours: () => store.authEnable() },
    { args: ['role', 'grant-permission', 'r1', 'read', 'm'], ours: grant('r1', 0, 'm') },
    { args: ['role', 'grant-permission', 'r1', 'readwrite', 'b', 'c'], ours: grant('r1', 2, 'b', 'c') },
    { args: ['role', 'grant-permission', 'r1', 'write', '--prefix', 'p'], ours: grant('r1', 1, 'p', 'q') },
    { args: ['role', 'grant-permission', 'r1', 'read', '--from-key', 'z'], ours: grant('r1', 0, 'z', '\x00') },
    { args: ['role', 'grant-permission', 'r1', 'write', 'b', 'c'], ours: grant('r1', 1, 'b', 'c') },
    { args: ['role', 'grant-permission', 'nope', 'write', 'b'], ours: grant('nope', 1, 'b') },
    { args: ['role', 'revoke-permission', 'r1', 'q'], ours: () => store.roleRevokePermission({ role: 'r1', key: utf8('q'), rangeEnd: new Uint8Array() }) },
    { args: ['role', 'revoke-permission', 'r1', 'm'], ours: () => store.roleRevokePermission({ role: 'r1', key: utf8('m'), rangeEnd: new Uint8Array() }) },
    { args: ['role', 'get', 'r1', '-w', 'json'], ours: ourPerms('r1'), json: perms },
    { args: ['user', 'grant-role', 'alice', 'r1'], ours: () => store.userGrantRole({ user: 'alice', role: 'r1' }) },
    { args: ['user', 'grant-role', 'alice', 'a0'], ours: () => store.userGrantRole({ user: 'alice', role: 'a0' }) },
    { args: ['user', 'grant-role', 'alice', 'r1'], ours: () => store.userGrantRole({ user: 'alice', role: 'r1' }) },
    { args: ['user', 'get', 'alice', '-w', 'json'], ours: () => store.userGet('alice'), json: (p) => p['roles'] },
    { args: ['user', 'add', 'Zed:pw'], ours: add('Zed', 'pw') },
    { args: ['user', 'add', '--no-password', 'cn'], ours: add('cn', '', true) },
    { args: ['user', 'list', '-w', 'json'], ours: () => store.userList(), json: (p) => p['users'] },
    { args: ['role', 'list', '-w', 'json'], ours: () => store.roleList(), json: (p) => p['roles'] },
    { args: ['user', 'add', 'root:rootpw'], ours: add('root', 'rootpw') },
    { args: ['user', 'grant-role', 'root', 'root'], ours: () => store.userGrantRole({ user: 'root', role: 'root' }) },
    { args: ['auth', 'enable'], ours: () => store.authEnable() },
    { args: ['user', 'delete', 'root'], user: 'root:rootpw', ours: () => store.userDelete({ name: 'root' }) },
    { args: ['user', 'revoke-role', 'root', 'root'], user: 'root:rootpw', ours: () => store.userRevokeRole({ name: 'root', role: 'root' }) },
    { args: ['role', 'delete', 'root'], user: 'root:rootpw', ours: () => store.roleDelete({ role: 'root' }) },
    { args: ['role', 'list'], ours: asUser('', () => store.roleList()) },
    { args: ['role', 'list'], user: 'alice:pw', ours: asUser('alice', () => store.roleList()) },
    { args: ['get', 'a'], user: 'root:bad', ours: () => store.checkPassword('root', 'bad') },
    { args: ['get', 'a'], user: 'ghost:x', ours: () => store.checkPassword('ghost', 'x') },
    { args: ['get', 'a'], user: 'cn:x', ours: () => store.checkPassword('cn', 'x') },
    { args: ['user', 'delete', 'alice'], user: 'root:rootpw', ours: () => store.userDelete({ name: 'alice' }) },
    { args: ['auth', 'disable'], user: 'root:rootpw', ours: () => store.authDisable() },
    { args: ['role', 'delete', 'root'], ours: () => store.roleDelete({ role: 'root' }) },
    { args: ['user', 'delete', 'root'], ours: () => store.userDelete({ name: 'root' }) },
  ];
}

test('auth operations agree with etcd 3.4.23', { skip: !existsSync(etcdBin) || !existsSync(etcdctlBin) }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-etcd-'));
  const pool = new BcryptPool({ size: 1 });
  const etcd = await startEtcd(dir);
  try {
    const store = new AuthStore({ backend: new MemoryAuthBackend(), bcrypt: pool });
    for (const step of steps(store, pool)) {
      const label = `${step.user === undefined ? '' : `--user ${step.user.split(':')[0] ?? ''} `}${step.args.join(' ')}`;
      const theirs = await etcdctl(etcd.endpoint, step.args, step.user);
      const mine = await ours(step.ours);
      assert.equal(mine.ok, theirs.ok, `${label}: etcd ${JSON.stringify(theirs)}, ours ${JSON.stringify(mine)}`);
      if (!mine.ok && !theirs.ok) assert.equal(mine.message, theirs.message, label);
      if (mine.ok && theirs.ok && step.json !== undefined) {
        assert.deepEqual(JSON.parse(mine.out), step.json(JSON.parse(theirs.out) as Record<string, unknown>), label);
      }
    }
  } finally {
    await etcd.stop();
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
