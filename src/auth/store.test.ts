import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock, Registry, fromUtf8, utf8 } from '../base/index.js';
import { authpb, etcdserverpb, serverpb } from '../pb/index.js';
import {
  AuthError,
  AuthStore,
  MemoryAuthBackend,
  SimpleTokenProvider,
  authErrorMessages,
  compareUtf8,
  encodeHashedPassword,
  type AuthErrorCode,
  type AuthInfo,
} from './index.js';

const R = authpb.Permission_Type;
// A syntactically valid bcrypt hash (cost 4); these tests never check it against a password.
const someHash = encodeHashedPassword('$2b$04$abcdefghijklmnopqrstuu5Q9l7wqfZ3cEbhT2mCyd2QcU7Q9q6W2');

function throwsCode(fn: () => unknown, code: AuthErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

function newStore(backend = new MemoryAuthBackend()): { store: AuthStore; backend: MemoryAuthBackend } {
  return { store: new AuthStore({ backend }), backend };
}

function addUser(store: AuthStore, name: string, opts: { noPassword?: boolean } = {}): void {
  store.userAdd(etcdserverpb.AuthUserAddRequest.create({
    name,
    hashedPassword: opts.noPassword === true ? '' : someHash,
    options: { noPassword: opts.noPassword === true },
  }));
}

function grant(store: AuthStore, role: string, permType: authpb.Permission_Type, key: string, rangeEnd = ''): void {
  store.roleGrantPermission(etcdserverpb.AuthRoleGrantPermissionRequest.create({
    name: role,
    perm: authpb.Permission.create({ permType, key: utf8(key), rangeEnd: utf8(rangeEnd) }),
  }));
}

function enableWithRoot(store: AuthStore): void {
  addUser(store, 'root');
  store.userGrantRole({ user: 'root', role: 'root' });
  store.authEnable();
}

test('a fresh store: revision 1, disabled, empty lists', () => {
  const { store } = newStore();
  assert.deepEqual(store.status(), { enabled: false, authRevision: 1 });
  assert.deepEqual(store.userList(), []);
  assert.deepEqual(store.roleList(), []);
});

test('errors carry etcd rpctypes names as codes and etcd messages (as seen from etcd 3.4.23)', () => {
  // Recorded from etcdctl 3.4.23 against etcd 3.4.23 (see the report): code -> message.
  const seen: Partial<Record<AuthErrorCode, string>> = {
    UserAlreadyExist: 'etcdserver: user name already exists',
    RoleAlreadyExist: 'etcdserver: role name already exists',
    RoleNotGranted: 'etcdserver: role is not granted to the user',
    UserNotFound: 'etcdserver: user name not found',
    RoleNotFound: 'etcdserver: role name not found',
    RootUserNotExist: 'etcdserver: root user does not exist',
    RootRoleNotExist: 'etcdserver: root user does not have root role',
    UserEmpty: 'etcdserver: user name is empty',
    InvalidAuthMgmt: 'etcdserver: invalid auth management',
    PermissionNotGranted: 'etcdserver: permission is not granted to the role',
    AuthFailed: 'etcdserver: authentication failed, invalid user ID or password',
    NoPasswordUser: 'auth: authentication failed, password was given for no password user',
    InvalidAuthToken: 'etcdserver: invalid auth token',
    AuthOldRevision: 'etcdserver: revision of auth store is old',
    AuthNotEnabled: 'etcdserver: authentication is not enabled',
    PermissionDenied: 'etcdserver: permission denied',
  };
  for (const [code, message] of Object.entries(seen)) {
    const err = new AuthError(code as AuthErrorCode);
    assert.equal(err.message, message);
    assert.equal(authErrorMessages[code as AuthErrorCode], message);
  }
});

test('user add: empty name, duplicate, no-password, hashed password stored as bytes', () => {
  const { store, backend } = newStore();
  throwsCode(() => addUser(store, ''), 'UserEmpty');
  addUser(store, 'alice');
  throwsCode(() => addUser(store, 'alice'), 'UserAlreadyExist');
  addUser(store, 'cn', { noPassword: true });
  assert.equal(store.revision(), 3);
  const users = backend.load().users.map((b) => authpb.User.decode(b));
  const alice = users.find((u) => fromUtf8(u.name) === 'alice');
  assert.equal(fromUtf8(alice?.password ?? new Uint8Array()), '$2b$04$abcdefghijklmnopqrstuu5Q9l7wqfZ3cEbhT2mCyd2QcU7Q9q6W2');
  const cn = users.find((u) => fromUtf8(u.name) === 'cn');
  assert.equal(cn?.password.length, 0);
  assert.equal(cn?.options?.noPassword, true);
});

test('apply refuses a plaintext password and malformed hashedPassword', () => {
  const { store, backend } = newStore();
  throwsCode(() => store.userAdd(etcdserverpb.AuthUserAddRequest.create({ name: 'a', password: 'secret' })), 'InvalidAuthMgmt');
  throwsCode(() => store.userAdd(etcdserverpb.AuthUserAddRequest.create({ name: 'a', hashedPassword: 'not base64!' })), 'NoPasswordUser');
  assert.equal(backend.writeCount, 0);
  assert.equal(store.revision(), 1);
  addUser(store, 'a');
  throwsCode(() => store.userChangePassword({ name: 'a', password: 'secret', hashedPassword: '' }), 'InvalidAuthMgmt');
  for (const v of backend.rawValues()) assert.ok(!Buffer.from(v).includes('secret'));
});

test('grant and revoke roles: etcd order of checks, idempotent grant, sorted roles', () => {
  const { store } = newStore();
  throwsCode(() => store.userGrantRole({ user: 'bob', role: 'r1' }), 'UserNotFound');
  addUser(store, 'alice');
  throwsCode(() => store.userGrantRole({ user: 'alice', role: 'nope' }), 'RoleNotFound');
  throwsCode(() => store.roleAdd({ name: '' }), 'RoleEmpty');
  for (const r of ['zeta', 'alpha', 'mid']) store.roleAdd({ name: r });
  throwsCode(() => store.roleAdd({ name: 'mid' }), 'RoleAlreadyExist');
  for (const r of ['zeta', 'alpha', 'mid']) store.userGrantRole({ user: 'alice', role: r });
  const rev = store.revision();
  store.userGrantRole({ user: 'alice', role: 'mid' });
  assert.equal(store.revision(), rev, 'a repeated grant changes nothing');
  // Role root may be granted before it exists as a role (etcd does the same).
  store.userGrantRole({ user: 'alice', role: 'root' });
  assert.deepEqual(store.userGet('alice'), ['alpha', 'mid', 'root', 'zeta']);
  throwsCode(() => store.userRevokeRole({ name: 'alice', role: 'other' }), 'RoleNotGranted');
  throwsCode(() => store.userRevokeRole({ name: 'bob', role: 'mid' }), 'UserNotFound');
  store.userRevokeRole({ name: 'alice', role: 'mid' });
  assert.deepEqual(store.userGet('alice'), ['alpha', 'root', 'zeta']);
  throwsCode(() => store.userGet('bob'), 'UserNotFound');
});

test('auth enable needs root with role root; enable does not bump the revision, disable does', () => {
  const { store } = newStore();
  throwsCode(() => store.authEnable(), 'RootUserNotExist');
  addUser(store, 'root');
  throwsCode(() => store.authEnable(), 'RootRoleNotExist');
  store.userGrantRole({ user: 'root', role: 'root' });
  const rev = store.revision();
  store.authEnable();
  assert.deepEqual(store.status(), { enabled: true, authRevision: rev });
  store.authEnable();
  assert.equal(store.revision(), rev, 'enabling twice is a no-op');
  store.authDisable();
  assert.deepEqual(store.status(), { enabled: false, authRevision: rev + 1 });
  store.authDisable();
  assert.equal(store.revision(), rev + 1, 'disabling twice is a no-op');
});

test('root is protected only while auth is enabled', () => {
  const { store } = newStore();
  enableWithRoot(store);
  store.roleAdd({ name: 'root' });
  throwsCode(() => store.userDelete({ name: 'root' }), 'InvalidAuthMgmt');
  throwsCode(() => store.userRevokeRole({ name: 'root', role: 'root' }), 'InvalidAuthMgmt');
  throwsCode(() => store.roleDelete({ role: 'root' }), 'InvalidAuthMgmt');
  store.authDisable();
  store.userRevokeRole({ name: 'root', role: 'root' });
  store.roleDelete({ role: 'root' });
  store.userDelete({ name: 'root' });
  assert.deepEqual(store.userList(), []);
  throwsCode(() => store.userDelete({ name: 'root' }), 'UserNotFound');
});

test('role permissions: sorted by key, same key+range updates the type, revoke needs an exact match', () => {
  const { store } = newStore();
  throwsCode(() => grant(store, 'r', R.READ, 'a'), 'RoleNotFound');
  store.roleAdd({ name: 'r' });
  grant(store, 'r', R.READ, 'm');
  grant(store, 'r', R.WRITE, 'c', 'f');
  grant(store, 'r', R.READ, 'a');
  grant(store, 'r', R.READ, 'c');
  grant(store, 'r', R.READWRITE, 'c', 'f');
  grant(store, 'r', R.READ, 'z', '\x00');
  const perms = store.roleGet('r').map((p) => [p.permType, fromUtf8(p.key), fromUtf8(p.rangeEnd)]);
  assert.deepEqual(perms, [[R.READ, 'a', ''], [R.READWRITE, 'c', 'f'], [R.READ, 'c', ''], [R.READ, 'm', ''], [R.READ, 'z', '\x00']]);
  throwsCode(() => store.roleRevokePermission({ role: 'r', key: utf8('c'), rangeEnd: utf8('g') }), 'PermissionNotGranted');
  throwsCode(() => store.roleRevokePermission({ role: 'x', key: utf8('c'), rangeEnd: utf8('f') }), 'RoleNotFound');
  store.roleRevokePermission({ role: 'r', key: utf8('c'), rangeEnd: utf8('f') });
  assert.deepEqual(store.roleGet('r').map((p) => fromUtf8(p.key)), ['a', 'c', 'm', 'z']);
  throwsCode(() => store.roleGet('x'), 'RoleNotFound');
});

test('grant permission: only the first grant of a key is updated, another with its range end is added again (as etcd)', () => {
  const { store } = newStore();
  store.roleAdd({ name: 'r' });
  grant(store, 'r', R.READ, 'b', '\x00');
  grant(store, 'r', R.READ, 'b', 'b\x00');
  grant(store, 'r', R.WRITE, 'b', 'b\x00');
  grant(store, 'r', R.READWRITE, 'b', '\x00');
  const perms = store.roleGet('r').map((p) => [p.permType, fromUtf8(p.rangeEnd)]);
  assert.deepEqual(perms, [[R.READWRITE, '\x00'], [R.READ, 'b\x00'], [R.WRITE, 'b\x00']]);
  store.roleRevokePermission({ role: 'r', key: utf8('b'), rangeEnd: utf8('b\x00') });
  assert.deepEqual(store.roleGet('r').map((p) => fromUtf8(p.rangeEnd)), ['\x00']);
});

test('grant permission: missing perm, empty key, empty or inverted range, unknown type', () => {
  const { store } = newStore();
  store.roleAdd({ name: 'r' });
  throwsCode(() => store.roleGrantPermission({ name: 'r', perm: undefined }), 'PermissionNotGiven');
  throwsCode(() => grant(store, 'r', R.READ, ''), 'InvalidAuthMgmt');
  throwsCode(() => grant(store, 'r', R.READ, '', '\x00'), 'InvalidAuthMgmt');
  throwsCode(() => grant(store, 'r', R.READ, 'b', 'a'), 'InvalidAuthMgmt');
  throwsCode(() => grant(store, 'r', R.READ, 'b', 'b'), 'InvalidAuthMgmt');
  throwsCode(() => grant(store, 'r', 7 as authpb.Permission_Type, 'b'), 'InvalidAuthMgmt');
  // The PermissionNotGiven check comes first, even for a missing role (etcd 3.5).
  throwsCode(() => store.roleGrantPermission({ name: 'missing', perm: undefined }), 'PermissionNotGiven');
  grant(store, 'r', R.READ, '\x00', '\x00');
  assert.equal(store.roleGet('r').length, 1);
});

test('role delete removes the role from every user', () => {
  const { store } = newStore();
  for (const u of ['u1', 'u2', 'u3']) addUser(store, u);
  store.roleAdd({ name: 'r' });
  store.roleAdd({ name: 's' });
  store.userGrantRole({ user: 'u1', role: 'r' });
  store.userGrantRole({ user: 'u3', role: 'r' });
  store.userGrantRole({ user: 'u3', role: 's' });
  throwsCode(() => store.roleDelete({ role: 'nope' }), 'RoleNotFound');
  store.roleDelete({ role: 'r' });
  assert.deepEqual(store.roleList(), ['s']);
  assert.deepEqual(store.userGet('u1'), []);
  assert.deepEqual(store.userGet('u3'), ['s']);
});

test('lists are in UTF-8 byte order, not UTF-16 order', () => {
  const { store } = newStore();
  const names = ['b', 'a', '\u{1F600}', '\uFF21', 'B', 'é'];
  for (const n of names) addUser(store, n);
  const byBytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual(store.userList(), byBytes);
  assert.ok(compareUtf8('\u{1F600}', '\uFF21') > 0, 'U+1F600 sorts after U+FF21 in UTF-8');
});

test('change password keeps roles and options; no-password users stay without password', () => {
  const { store, backend } = newStore();
  addUser(store, 'a');
  addUser(store, 'n', { noPassword: true });
  store.roleAdd({ name: 'r' });
  store.userGrantRole({ user: 'a', role: 'r' });
  const other = encodeHashedPassword('$2b$04$zzzzzzzzzzzzzzzzzzzzzuQ9l7wqfZ3cEbhT2mCyd2QcU7Q9q6W2');
  store.userChangePassword({ name: 'a', password: '', hashedPassword: other });
  store.userChangePassword({ name: 'n', password: '', hashedPassword: other });
  throwsCode(() => store.userChangePassword({ name: 'zz', password: '', hashedPassword: other }), 'UserNotFound');
  const users = new Map(backend.load().users.map((b) => authpb.User.decode(b)).map((u) => [fromUtf8(u.name), u]));
  assert.deepEqual(users.get('a')?.roles, ['r']);
  assert.ok(fromUtf8(users.get('a')?.password ?? new Uint8Array()).startsWith('$2b$04$zzz'));
  assert.equal(users.get('n')?.password.length, 0);
});

test('every change is persisted; recover() rebuilds the same state and permissions', () => {
  const backend = new MemoryAuthBackend();
  const { store } = newStore(backend);
  addUser(store, 'u');
  store.roleAdd({ name: 'r' });
  grant(store, 'r', R.READ, 'k', 'l');
  store.userGrantRole({ user: 'u', role: 'r' });
  enableWithRoot(store);
  const again = new AuthStore({ backend });
  assert.deepEqual(again.status(), store.status());
  assert.deepEqual(again.userList(), store.userList());
  assert.deepEqual(again.roleGet('r'), store.roleGet('r'));
  const ai: AuthInfo = { username: 'u', revision: again.revision() };
  assert.equal(again.isRangePermitted(ai, utf8('k1'), new Uint8Array()), undefined);
  assert.equal(again.isRangePermitted(ai, utf8('m'), new Uint8Array())?.code, 'PermissionDenied');
  // A snapshot install: the backend changes underneath, recover() picks it up (etcd #14571).
  const other = new MemoryAuthBackend();
  const donor = new AuthStore({ backend: other });
  addUser(donor, 'u');
  donor.roleAdd({ name: 'r' });
  grant(donor, 'r', R.READ, 'm');
  donor.userGrantRole({ user: 'u', role: 'r' });
  for (const b of other.load().users) backend.putUser(authpb.User.decode(b).name, b);
  for (const b of other.load().roles) backend.putRole(authpb.Role.decode(b).name, b);
  backend.setRevision(100);
  again.recover();
  assert.equal(again.revision(), 100);
  const ai2: AuthInfo = { username: 'u', revision: 100 };
  assert.equal(again.isRangePermitted(ai2, utf8('m'), new Uint8Array()), undefined, 'the permission cache was rebuilt');
});

test('permission checks: disabled, no user, old revision, unknown user, root, grants', () => {
  const { store } = newStore();
  const k = utf8('k');
  const none = new Uint8Array();
  assert.equal(store.isRangePermitted(undefined, k, none), undefined, 'auth disabled permits all');
  addUser(store, 'u');
  store.roleAdd({ name: 'r' });
  grant(store, 'r', R.READ, 'k');
  grant(store, 'r', R.WRITE, 'w', 'x');
  store.userGrantRole({ user: 'u', role: 'r' });
  enableWithRoot(store);
  const rev = store.revision();
  const u: AuthInfo = { username: 'u', revision: rev };
  assert.equal(store.isRangePermitted(undefined, k, none)?.code, 'UserEmpty');
  assert.equal(store.isRangePermitted({ username: 'u', revision: 0 }, k, none)?.code, 'UserEmpty');
  assert.equal(store.isRangePermitted({ username: 'u', revision: rev - 1 }, k, none)?.code, 'AuthOldRevision');
  assert.equal(store.isRangePermitted({ username: 'ghost', revision: rev }, k, none)?.code, 'PermissionDenied');
  assert.equal(store.isRangePermitted(u, k, none), undefined);
  assert.equal(store.isPutPermitted(u, k)?.code, 'PermissionDenied');
  assert.equal(store.isPutPermitted(u, utf8('wa')), undefined);
  assert.equal(store.isDeleteRangePermitted(u, utf8('w'), utf8('x')), undefined);
  assert.equal(store.isDeleteRangePermitted(u, utf8('w'), utf8('y'))?.code, 'PermissionDenied');
  const root: AuthInfo = { username: 'root', revision: rev };
  assert.equal(store.isDeleteRangePermitted(root, utf8('\x00'), utf8('\x00')), undefined);
  assert.equal(store.isAdminPermitted(root), undefined);
  assert.equal(store.isAdminPermitted(u)?.code, 'PermissionDenied');
  assert.equal(store.isAdminPermitted(undefined)?.code, 'UserEmpty');
  assert.equal(store.isAdminPermitted({ username: 'ghost', revision: rev })?.code, 'UserNotFound');
  assert.equal(store.isAdminPermitted({ username: 'root', revision: 1 }), undefined, 'admin check ignores the revision');
  // A change drops the cache: the revoked grant is gone at once.
  store.roleRevokePermission({ role: 'r', key: k, rangeEnd: none });
  assert.equal(store.isRangePermitted({ username: 'u', revision: store.revision() }, k, none)?.code, 'PermissionDenied');
});

test('authenticate in apply: enabled, known user with a password; token recorded on the member', () => {
  const clock = new ManualClock();
  const tokens = new SimpleTokenProvider({ clock, ttlMs: 1000 });
  const store = new AuthStore({ backend: new MemoryAuthBackend(), tokenProvider: tokens });
  const req = (name: string): serverpb.InternalAuthenticateRequest =>
    serverpb.InternalAuthenticateRequest.create({ name, simpleToken: 'abcdefghijklmnop' });
  throwsCode(() => store.authenticate(req('root'), 5), 'AuthNotEnabled');
  enableWithRoot(store);
  addUser(store, 'cn', { noPassword: true });
  throwsCode(() => store.authenticate(req('ghost'), 6), 'AuthFailed');
  throwsCode(() => store.authenticate(req('cn'), 7), 'AuthFailed');
  const token = store.authenticate(req('root'), 8);
  assert.equal(token, 'abcdefghijklmnop.8');
  assert.equal(store.tokenWaitIndex(token), 8);
  assert.deepEqual(store.authInfoFromToken(token), { username: 'root', revision: store.revision() });
  throwsCode(() => store.authInfoFromToken('abcdefghijklmnop.9'), 'InvalidAuthToken');
  // Deleting or re-passwording a user drops their tokens; disabling drops all.
  const t2 = store.authenticate(req('root'), 9);
  store.userChangePassword({ name: 'root', password: '', hashedPassword: someHash });
  throwsCode(() => store.authInfoFromToken(t2), 'InvalidAuthToken');
  const t3 = store.authenticate(req('root'), 10);
  store.authDisable();
  throwsCode(() => store.authInfoFromToken(t3), 'InvalidAuthToken');
});

test('TLS common name is the user unless the request came through the gateway', () => {
  const { store } = newStore();
  assert.deepEqual(store.authInfoFromTls('alice', false), { username: 'alice', revision: 1 });
  assert.equal(store.authInfoFromTls('alice', true), undefined);
  // A certificate without a CN: the user "", refused as one without grants (etcd: permission denied).
  assert.deepEqual(store.authInfoFromTls('', false), { username: '', revision: 1 });
  assert.equal(store.authInfoFromTls(undefined, false), undefined);
});

test('etcd_debugging_auth_revision follows the revision', () => {
  const metrics = new Registry();
  const store = new AuthStore({ backend: new MemoryAuthBackend(), metrics });
  addUser(store, 'a');
  assert.match(metrics.render(), /^etcd_debugging_auth_revision 2$/m);
});

test('hasRole, isAdmin, userMay', () => {
  const { store } = newStore();
  addUser(store, 'a');
  store.roleAdd({ name: 'r' });
  grant(store, 'r', R.READWRITE, 'p', 'q');
  store.userGrantRole({ user: 'a', role: 'r' });
  assert.equal(store.hasRole('a', 'r'), true);
  assert.equal(store.hasRole('a', 's'), false);
  assert.equal(store.hasRole('zz', 'r'), false);
  assert.equal(store.isAdmin('a'), false);
  assert.equal(store.userMay('a', true, utf8('p1'), new Uint8Array()), true);
  assert.equal(store.userMay('a', false, utf8('p'), utf8('q')), true);
  assert.equal(store.userMay('a', false, utf8('p'), utf8('r')), false);
});
