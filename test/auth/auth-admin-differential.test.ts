// User and role management against the real etcd 3.4.23, request for
// request: a seeded random sequence of adds, deletes, gets, grants, revokes,
// permission grants and revokes, password changes and lists over a few names
// (empty, root, non-ASCII, 300 bytes, a NUL, longer than LMDB's keys) sent to both servers (auth stays
// off). Every answer must be equal: status, message and response, so the
// order of checks (user before role, existing grants, root's rules) and the
// sorting of lists are etcd's. Permissions are valid ones: etcd-ts refuses
// the invalid ranges 3.4.23 stores (see the README).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRand } from '../../src/base/index.js';
import { authpb, etcdserverpb, type MethodInfo } from '../../src/pb/index.js';
import { etcdMissing, methods, useEtcdPair, type RawAnswer } from '../harness/index.js';

const seed = Number(process.env['AUTH_ADMIN_SEED'] ?? 20261205);
const te = new TextEncoder();
const names = ['', 'u1', 'u2', 'root', 'r1', 'r2', 'é', 'a b', 'x'.repeat(300), '\u0000', 'U1', 'y'.repeat(2100), 'y'.repeat(3000)];
const keys = ['a', 'b', 'ab', 'z'];

type AnyMethod = MethodInfo<object, object>;
const m = <Req extends object, Res extends object>(x: MethodInfo<Req, Res>): AnyMethod => x;

function randomRequest(rand: SeededRand): [AnyMethod, object] {
  const pick = <T>(xs: readonly T[]): T => xs[rand.intn(xs.length)] as T;
  const a = methods.auth;
  switch (rand.intn(12)) {
    case 0: {
      const options = rand.intn(3) === 0 ? authpb.UserAddOptions.create({ noPassword: rand.intn(2) === 0 }) : undefined;
      return [m(a.UserAdd), etcdserverpb.AuthUserAddRequest.create({ name: pick(names), password: pick(['', 'p', 'pw']), options })];
    }
    case 1:
      return [m(a.UserDelete), etcdserverpb.AuthUserDeleteRequest.create({ name: pick(names) })];
    case 2:
      return [m(a.UserGet), etcdserverpb.AuthUserGetRequest.create({ name: pick(names) })];
    case 3:
      return [m(a.UserGrantRole), etcdserverpb.AuthUserGrantRoleRequest.create({ user: pick(names), role: pick(names) })];
    case 4:
      return [m(a.UserRevokeRole), etcdserverpb.AuthUserRevokeRoleRequest.create({ name: pick(names), role: pick(names) })];
    case 5:
      return [m(a.RoleAdd), etcdserverpb.AuthRoleAddRequest.create({ name: pick(names) })];
    case 6:
      return [m(a.RoleDelete), etcdserverpb.AuthRoleDeleteRequest.create({ role: pick(names) })];
    case 7:
      return [m(a.RoleGet), etcdserverpb.AuthRoleGetRequest.create({ role: pick(names) })];
    case 8: {
      const key = pick(keys);
      const end = pick(['', '\0', `${key}z`]);
      const perm = authpb.Permission.create({ permType: rand.intn(3) as authpb.Permission_Type, key: te.encode(key), rangeEnd: te.encode(end) });
      return [m(a.RoleGrantPermission), etcdserverpb.AuthRoleGrantPermissionRequest.create({ name: pick(names), perm })];
    }
    case 9:
      return [m(a.RoleRevokePermission), etcdserverpb.AuthRoleRevokePermissionRequest.create({ role: pick(names), key: te.encode(pick([...keys, '\0'])), rangeEnd: te.encode(pick(['', '\0', 'zz'])) })];
    case 10:
      return [m(a.UserChangePassword), etcdserverpb.AuthUserChangePasswordRequest.create({ name: pick(names), password: pick(['', 'p2']) })];
    default:
      return rand.intn(2) === 0 ? [m(a.UserList), etcdserverpb.AuthUserListRequest.create({})] : [m(a.RoleList), etcdserverpb.AuthRoleListRequest.create({})];
  }
}

/** An answer as text, the ids and term of the cluster left out. */
function shown(method: AnyMethod, a: RawAnswer): string {
  const body = a.messages[0];
  const res = body === undefined ? '' : JSON.stringify(method.responseType.decode(body), (k, v: unknown) =>
    k === 'clusterId' || k === 'memberId' || k === 'raftTerm' ? '-' : typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
  return `${a.status} ${a.message} ${res}`;
}

describe('user and role management against the real etcd', { skip: etcdMissing() }, () => {
  const { raw } = useEtcdPair('auth-admin');

  test(`200 random requests, the same answers (seed ${seed})`, { timeout: 120_000 }, async () => {
    const rand = new SeededRand(seed);
    const mismatches: string[] = [];
    for (let i = 0; i < 200 && mismatches.length < 5; i++) {
      const [method, req] = randomRequest(rand);
      const body = method.requestType.encode(req);
      const [theirs, ours] = (await Promise.all(raw.map((r) => r.call(method.path, body)))) as [RawAnswer, RawAnswer];
      const [t, o] = [shown(method, theirs), shown(method, ours)];
      if (t !== o) mismatches.push(`#${i} ${method.name} ${Buffer.from(body).toString('hex')}\n  etcd:    ${t}\n  etcd-ts: ${o}`);
    }
    assert.deepEqual(mismatches, []);
  });

  test('grants of one key with other range ends: the same list, duplicates and order of equal keys included', { timeout: 60_000 }, async () => {
    // etcd updates a grant only when the first one with its key has its range end; otherwise it
    // appends it (again, maybe) and sorts by key with Go's unstable sort.Sort (past 12 grants).
    const role = 'perm-order';
    const a = methods.auth;
    const grant = (key: string, rangeEnd: string, permType = 0): [AnyMethod, object] => [
      m(a.RoleGrantPermission),
      etcdserverpb.AuthRoleGrantPermissionRequest.create({ name: role, perm: authpb.Permission.create({ permType: permType as authpb.Permission_Type, key: te.encode(key), rangeEnd: te.encode(rangeEnd) }) }),
    ];
    const get: [AnyMethod, object] = [m(a.RoleGet), etcdserverpb.AuthRoleGetRequest.create({ role })];
    const steps: [AnyMethod, object][] = [
      [m(a.RoleAdd), etcdserverpb.AuthRoleAddRequest.create({ name: role })],
      grant('b', '\0'),
      grant('b', 'b\0'),
      grant('b', 'b\0', 2),
      get,
      [m(a.RoleRevokePermission), etcdserverpb.AuthRoleRevokePermissionRequest.create({ role, key: te.encode('b'), rangeEnd: te.encode('b\0') })],
      get,
      ...Array.from({ length: 14 }, (_, i) => grant('k', `k${String.fromCharCode(0x61 + ((i * 5) % 14))}`, i % 3)),
      get,
      grant('k', 'ka', 1),
      grant('k', 'kc', 2),
      grant('a', ''),
      get,
    ];
    const answers: string[][] = [[], []];
    for (const [method, req] of steps) {
      const body = method.requestType.encode(req);
      const both = await Promise.all(raw.map((r) => r.call(method.path, body)));
      both.forEach((answer, i) => answers[i]?.push(`${method.name}: ${shown(method, answer)}`));
    }
    assert.deepEqual(answers[1], answers[0]);
  });
});
