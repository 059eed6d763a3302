// Watches with auth on, against the real etcd 3.4.23, step for step: the
// same scripts of logins, watch creates on one stream, writes and auth
// changes run on both servers, and every answer must be equal, cluster and
// member ids aside: which creates are refused and with which cancel reason
// (permission denied, user name is empty, invalid auth token), and which
// events an open watch still gets once its user lost the permission, lost
// its role, was deleted, had its password changed, lost its role to a
// deletion, once auth was disabled and enabled again, and once
// the token it was created with expired (simple tokens, --auth-token-ttl 5).
// Each script runs on both servers at once.
// etcd checks a watch's permission once, when it is created: the watches
// already open keep their events.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, etcdMissing, methods, useEtcdPair, type RawGrpc, type RawStream } from '../harness/index.js';

const P = etcdserverpb;
const te = new TextEncoder();
const b = (s: string): Uint8Array => te.encode(s);
const tokenTtlS = 5;

/** A stream opened as a user (logged in then), with a token as it is, or with none. */
type Caller = { readonly user: string } | { readonly token: string } | undefined;

type Step =
  | readonly ['open', string, Caller]
  | readonly ['create', string, Partial<etcdserverpb.WatchCreateRequest>]
  /** A put of key as user (none if undefined); the value is the user's name. */
  | readonly ['put', string, string | undefined]
  | readonly ['admin', string, Uint8Array]
  | readonly ['sleep', number];

/** An Auth call (by name) as root, or without a token while auth is off. */
const admin = <T>(method: keyof typeof methods.auth, type: { encode(m: T): Uint8Array; create(init?: Partial<T>): T }, init: Partial<T>): Step => [
  'admin',
  method,
  type.encode(type.create(init)),
];
const watchKey = (key: string, more: Partial<etcdserverpb.WatchCreateRequest> = {}): Partial<etcdserverpb.WatchCreateRequest> => ({ key: b(key), ...more });
const grantReadA = admin('RoleGrantPermission', P.AuthRoleGrantPermissionRequest, { name: 'r', perm: { permType: 0, key: b('a'), rangeEnd: b('b') } });
const grantAliceR = admin('UserGrantRole', P.AuthUserGrantRoleRequest, { user: 'alice', role: 'r' });
/** Role r (read [a, b), read and write c), granted to alice. */
const roleR: Step[] = [
  admin('RoleAdd', P.AuthRoleAddRequest, { name: 'r' }),
  grantReadA,
  admin('RoleGrantPermission', P.AuthRoleGrantPermissionRequest, { name: 'r', perm: { permType: 2, key: b('c'), rangeEnd: b('') } }),
  grantAliceR,
];

const scripts: Record<string, Step[]> = {
  'permitted, partly permitted and refused ranges; prev_kv; a write by the watcher': [
    ['open', 's', { user: 'alice' }],
    ['create', 's', watchKey('a', { prevKv: true })],
    ['create', 's', watchKey('a', { rangeEnd: b('z') })],
    ['create', 's', watchKey('c')],
    ['create', 's', watchKey('d')],
    ['put', 'a', 'root'],
    ['put', 'c', 'alice'],
  ],
  'the permission revoked while a watch is open, then granted again': [
    ['open', 's', { user: 'alice' }],
    ['create', 's', watchKey('a', { prevKv: true })],
    admin('RoleRevokePermission', P.AuthRoleRevokePermissionRequest, { role: 'r', key: b('a'), rangeEnd: b('b') }),
    ['put', 'a', 'root'],
    ['create', 's', watchKey('a')],
    grantReadA,
    ['create', 's', watchKey('a')],
    ['put', 'a', 'root'],
  ],
  'the role revoked, granted again; the user deleted and added again': [
    ['open', 's', { user: 'alice' }],
    ['create', 's', watchKey('c')],
    admin('UserRevokeRole', P.AuthUserRevokeRoleRequest, { name: 'alice', role: 'r' }),
    ['create', 's', watchKey('c')],
    ['put', 'c', 'root'],
    grantAliceR,
    ['create', 's', watchKey('c')],
    admin('UserDelete', P.AuthUserDeleteRequest, { name: 'alice' }),
    ['put', 'c', 'root'],
    ['create', 's', watchKey('c')],
    admin('UserAdd', P.AuthUserAddRequest, { name: 'alice', password: 'pw' }),
    grantAliceR,
    // The token of the deleted user stays invalid; a new login is another matter.
    ['create', 's', watchKey('c')],
    ['open', 't', { user: 'alice' }],
    ['create', 't', watchKey('c')],
    ['put', 'c', 'root'],
  ],
  'the password changed, the role deleted': [
    ['open', 's', { user: 'alice' }],
    ['create', 's', watchKey('a')],
    admin('UserChangePassword', P.AuthUserChangePasswordRequest, { name: 'alice', password: 'pw' }),
    ['create', 's', watchKey('a')],
    ['put', 'a', 'root'],
    admin('RoleDelete', P.AuthRoleDeleteRequest, { role: 'r' }),
    ['open', 't', { user: 'alice' }],
    ['create', 't', watchKey('a')],
    ['put', 'a', 'root'],
    ...roleR,
    ['create', 't', watchKey('a')],
  ],
  'no token, a bogus token, root': [
    ['open', 'none', undefined],
    ['create', 'none', watchKey('a')],
    ['open', 'bogus', { token: 'bogus.1' }],
    ['create', 'bogus', watchKey('a')],
    ['open', 'root', { user: 'root' }],
    ['create', 'root', watchKey('', { rangeEnd: b('\0') })],
    ['create', 'root', watchKey('a', { rangeEnd: b('\0') })],
    ['put', 'x', 'root'],
  ],
  'auth disabled and enabled again while watches are open': [
    ['open', 's', { user: 'alice' }],
    ['create', 's', watchKey('a')],
    admin('AuthDisable', P.AuthDisableRequest, {}),
    ['create', 's', watchKey('a')],
    ['put', 'a', undefined],
    ['open', 'plain', undefined],
    ['create', 'plain', watchKey('a')],
    admin('AuthEnable', P.AuthEnableRequest, {}),
    ['create', 'plain', watchKey('a')],
    ['put', 'a', 'root'],
  ],
  'a token that expires while its stream is open': [
    ['open', 's', { user: 'alice' }],
    ['create', 's', watchKey('a')],
    ['sleep', tokenTtlS * 1000 + 1500],
    ['create', 's', watchKey('a')],
    ['put', 'a', 'root'],
  ],
};

/** A response as comparable JSON: bytes as text, bigints as strings, the member's ids left out. */
function comparable(bytes: Buffer): unknown {
  const r = P.WatchResponse.decode(bytes);
  if (r.header !== undefined) r.header = { ...r.header, clusterId: 0n, memberId: 0n };
  return JSON.parse(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString() : v)));
}

/** Waits until a stream has had no new response for a while (bounded). */
async function settle(streams: Iterable<RawStream>): Promise<void> {
  let last = -1;
  for (const deadline = Date.now() + 3_000; Date.now() < deadline; ) {
    const n = [...streams].reduce((sum, s) => sum + s.messages.length, 0);
    if (n === last) return;
    last = n;
    await delay(150);
  }
}

/** One unary call with a token (or none); its status and message, or its response's bytes as hex. */
async function unary(raw: RawGrpc, path: string, body: Uint8Array, token: string | undefined): Promise<{ status: string; message: string; body: Buffer | undefined }> {
  const s = raw.open(path, token === undefined ? {} : { token });
  s.send(body);
  const a = await s.end();
  return { status: a.status, message: a.message, body: a.messages[0] };
}

async function login(raw: RawGrpc, name: string): Promise<string | undefined> {
  const a = await unary(raw, methods.auth.Authenticate.path, P.AuthenticateRequest.encode(P.AuthenticateRequest.create({ name, password: name === 'root' ? 'rootpw' : 'pw' })), undefined);
  return a.body === undefined ? undefined : P.AuthenticateResponse.decode(a.body).token;
}

/** Runs a script on one server: the transcript of its unary answers, then each watch's responses by stream and watch id. */
async function run(raw: RawGrpc, steps: readonly Step[]): Promise<unknown> {
  const streams = new Map<string, RawStream>();
  const log: string[] = [];
  for (const step of steps) {
    switch (step[0]) {
      case 'open': {
        const who = step[2];
        const token = who === undefined ? undefined : 'token' in who ? who.token : await login(raw, who.user);
        streams.set(step[1], raw.open(methods.watch.Watch.path, token === undefined ? {} : { token }));
        break;
      }
      case 'create':
        streams.get(step[1])?.send(P.WatchRequest.encode(P.WatchRequest.create({ requestUnion: { case: 'createRequest', value: P.WatchCreateRequest.create(step[2]) } })));
        await settle(streams.values());
        break;
      case 'put': {
        const user = step[2];
        const token = user === undefined ? undefined : await login(raw, user);
        const a = await unary(raw, methods.kv.Put.path, P.PutRequest.encode(P.PutRequest.create({ key: b(step[1]), value: b(user ?? 'nobody') })), token);
        log.push(`put ${step[1]} as ${user ?? 'nobody'}: ${a.status} ${a.message}`);
        await settle(streams.values());
        break;
      }
      case 'admin': {
        const method = methods.auth[step[1] as keyof typeof methods.auth];
        const a = await unary(raw, method.path, step[2], await login(raw, 'root'));
        log.push(`${step[1]}: ${a.status} ${a.message}`);
        break;
      }
      case 'sleep':
        await delay(step[1]);
        break;
    }
  }
  await settle(streams.values());
  const responses: Record<string, unknown[]> = {};
  for (const [name, s] of streams) {
    const answer = await s.cancel();
    // Between watchers of one stream etcd's order is Go's map order: each watcher's own order is compared.
    for (const m of answer.messages) {
      const r = comparable(m) as { watchId: number };
      (responses[`${name} ${r.watchId}`] ??= []).push(r);
    }
  }
  return { log, responses };
}

describe('watches with auth on against the real etcd', { skip: etcdMissing() }, () => {
  const { raw } = useEtcdPair('watch-auth-diff', ['--auth-token-ttl', String(tokenTtlS)]);

  before(async () => {
    const setup: Step[] = [
      admin('UserAdd', P.AuthUserAddRequest, { name: 'root', password: 'rootpw' }),
      admin('UserGrantRole', P.AuthUserGrantRoleRequest, { user: 'root', role: 'root' }),
      admin('UserAdd', P.AuthUserAddRequest, { name: 'alice', password: 'pw' }),
      ...roleR,
      admin('AuthEnable', P.AuthEnableRequest, {}),
    ];
    const logs = await Promise.all(raw.map((r) => run(r, setup)));
    assert.deepEqual(logs[1], logs[0]);
    assert.doesNotMatch(JSON.stringify(logs[0]), /: [1-9]\d* /, 'setup');
  });

  for (const [name, steps] of Object.entries(scripts)) {
    test(name, async () => {
      const [theirs, ours] = await Promise.all(raw.map((r) => run(r, steps)));
      assert.deepEqual(ours, theirs);
    });
  }
});
