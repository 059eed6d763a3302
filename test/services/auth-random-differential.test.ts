// The Auth service and the permission checks against the real etcd 3.4.23,
// driven by a seeded PRNG: the same random requests go to both servers in
// lockstep, each with a caller's token (or none, or a bogus one). User and
// role management as root (adds with a password, without one, with the
// no_password option; empty names, duplicates, unknown users and roles, the
// root user and role, grants of read, write and readwrite over single keys,
// prefixes, ranges and from-key ranges, revokes that must match exactly),
// auth turned off and on (also with the root user missing or without the
// root role), the same calls as ordinary users (refused, but for a user's
// own UserGet and the RoleGet of its own roles), logins with right and wrong
// passwords and of unknown users, and KV requests (Range, Put, DeleteRange,
// Txn with compares and nested txns, Compact) and lease grants and revokes
// as random users, with fresh tokens, tokens made stale by an auth change,
// tokens of deleted users and tokens from before auth was turned off. Every
// answer must be equal: status, message, the response decoded and its bytes
// (the header's revision included), but for the header's cluster id, member
// id and raft term, and for simple tokens, which differ between any two
// servers (only whether one was given is compared; each server's own tokens
// are kept and sent back to it). A model of users, roles and grants, updated
// from etcd's answers, steers the draws (right passwords, grants that exist).
// At the end both servers' users, roles and keys must be the same.
//
// Kept out of the draws, where etcd-ts differs from 3.4.23 on purpose (see
// the README's list of differences; test/auth covers most of these):
// - grants of an empty key, of a range end at or before its key, of an
//   unknown permission type, or with no permission, which 3.4.23 stores and
//   etcd-ts refuses ("invalid auth management", "permission not given");
// - for a caller that is not a root-role holder with a fresh token while
//   auth is on ("privileged" below): txns nested in a txn, whose operations
//   3.4.23 does not check (GHSA-rfx7-8w68-q57q); puts with prev_kv inside a
//   txn, which 3.4.23 lets a caller who may only write the key read
//   (GHSA-x35m-3gp4-4fh5); puts with a lease inside a txn, which 3.4.23 (and
//   3.6) let attach a key to a lease whose keys the caller may not write,
//   where a put outside a txn is refused; and ranges, deletes and compares
//   whose range end is at or before their key (they select nothing): 3.4.23
//   checks them in its interval tree of grants, whose search assumes a start
//   before the end and skips subtrees, so the answer hangs on the tree's
//   shape; etcd-ts judges such a range as its key alone;
// - LeaseTimeToLive with keys and LeaseLeases, which 3.4.23 answers to
//   anyone (etcd PR #15815), watches (test/services/watch-auth-differential)
//   and AuthStatus, which 3.4.23 does not serve;
// - ignore_value and ignore_lease inside txns (a put after a from-key delete
//   of its key panics etcd 3.4, see kv-random-differential).
// 3.4.23's simple tokens carry no auth revision (a check reads the store's
// own), so only JWT tokens go stale ("revision of auth store is old"): the
// run is made once with each kind (AUTH_RANDOM_TOKENS=simple or jwt picks
// one). A JWT outlives an auth disable, a password change and its user.
// Both servers run with --bcrypt-cost 4 (3.4.23 has the flag): every UserAdd
// with a password, password change and login hashes or checks one.
//
// AUTH_RANDOM_SEED picks the sequence (the default is fixed), AUTH_RANDOM_OPS
// its length; a failure names the seed and the step. AUTH_RANDOM_TRACE=1
// writes every request and etcd's answer to stderr.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prefixEnd, SeededRand } from '../../src/base/index.js';
import { authpb, etcdserverpb } from '../../src/pb/index.js';
import type { MethodInfo } from '../../src/pb/runtime.js';
import { compared, etcdMissing, methods, plain, RawGrpc, useWorkspace, type RawAnswer } from '../harness/index.js';

const pb = etcdserverpb;
const seed = Number(process.env['AUTH_RANDOM_SEED'] ?? '20261208');
const opsCount = Number(process.env['AUTH_RANDOM_OPS'] ?? '200');
const callTimeoutMs = 5_000;
/** AUTH_RANDOM_TRACE=1 writes each request and etcd's status to stderr. */
const trace = process.env['AUTH_RANDOM_TRACE'] === '1';

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
/** The key space of requests and grants: near each other, a prefix's keys, the smallest and the largest. */
const keys = ['\x00', 'a', 'a1', 'ab', 'b', 'b/1', 'b/2', 'c', '\xff'];
/** User names: root, three others, the empty name; and one never added. */
const userNames = ['root', 'u1', 'u2', 'u3', ''];
const unknownUser = 'nobody';
/** Role names: root (never stored, always grantable), three others, the empty name, one never added. */
const roleNames = ['root', 'r1', 'r2', 'r3', '', 'nope'];
const passwords = ['pw', 'pw2', ''];
/** Leases granted by id (etcd and etcd-ts draw different random ones), and one never granted. */
const leaseIds = [0x11n, 0x12n, 0x13n];
const leaseUnknown = 0x99n;

const rangeOp = (value: etcdserverpb.RangeRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestRange', value } });
const putOp = (value: etcdserverpb.PutRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestPut', value } });
const deleteOp = (value: etcdserverpb.DeleteRangeRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestDeleteRange', value } });
const txnOp = (value: etcdserverpb.TxnRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestTxn', value } });

interface UserState {
  password: string;
  noPassword: boolean;
  roles: Set<string>;
}

/** A token each server gave for one login: [etcd's, etcd-ts's]. */
interface Login {
  readonly user: string;
  readonly tokens: readonly [string, string];
  /** Model.generation when it was given: a later auth change makes it stale. */
  readonly generation: number;
}

/** Who sends a request: its label, and the token header for each server (none if undefined). */
interface Caller {
  readonly what: string;
  readonly tokens: readonly [string, string] | undefined;
  /** Whether every permission check passes for it: auth is off, or a root-role holder with a fresh token. */
  readonly privileged: boolean;
}

/** What etcd holds, as its answers told: users, roles and grants, auth on or off, the logins given. */
class Model {
  enabled = false;
  readonly users = new Map<string, UserState>();
  readonly roles = new Map<string, { key: string; rangeEnd: string }[]>();
  /** Counts the auth changes that may have raised the auth revision (more than there were is harmless). */
  generation = 0;
  /** Every login, and each user's last one while it may still be valid. */
  readonly logins: Login[] = [];
  readonly lastLogin = new Map<string, Login>();
  rev = 1;
  compacted = 0;

  hasRootRole(user: string): boolean {
    return this.users.get(user)?.roles.has('root') ?? false;
  }

  /** Brings the model up to date with a request etcd answered with OK. */
  applied(method: string, req: unknown): void {
    const r = req as Record<string, unknown>;
    const field = (k: string): string => {
      const v = r[k];
      return typeof v === 'string' ? v : '';
    };
    const name = field('name');
    switch (method) {
      case 'UserAdd': {
        const options = r['options'] as authpb.UserAddOptions | undefined;
        this.users.set(name, { password: field('password'), noPassword: options?.noPassword ?? false, roles: new Set() });
        break;
      }
      case 'UserDelete':
        this.users.delete(name);
        this.lastLogin.delete(name);
        break;
      case 'UserChangePassword': {
        const u = this.users.get(name);
        if (u !== undefined) u.password = field('password');
        this.lastLogin.delete(name);
        break;
      }
      case 'UserGrantRole':
        this.users.get(field('user'))?.roles.add(field('role'));
        break;
      case 'UserRevokeRole':
        this.users.get(name)?.roles.delete(field('role'));
        break;
      case 'RoleAdd':
        this.roles.set(name, []);
        break;
      case 'RoleDelete': {
        const role = field('role');
        this.roles.delete(role);
        for (const u of this.users.values()) u.roles.delete(role);
        break;
      }
      case 'RoleGrantPermission': {
        const perm = r['perm'] as authpb.Permission;
        const perms = this.roles.get(name);
        const grant = { key: text(perm.key), rangeEnd: text(perm.rangeEnd) };
        if (perms !== undefined && !perms.some((p) => p.key === grant.key && p.rangeEnd === grant.rangeEnd)) perms.push(grant);
        break;
      }
      case 'RoleRevokePermission': {
        const perms = this.roles.get(field('role'));
        const [key, rangeEnd] = [text(r['key'] as Uint8Array), text(r['rangeEnd'] as Uint8Array)];
        if (perms !== undefined) this.roles.set(field('role'), perms.filter((p) => p.key !== key || p.rangeEnd !== rangeEnd));
        break;
      }
      case 'AuthEnable':
        this.enabled = true;
        break;
      case 'AuthDisable':
        // Every simple token is forgotten (a JWT is not: the old ones stay among the logins).
        this.enabled = false;
        this.lastLogin.clear();
        break;
      default:
        return;
    }
    this.generation++;
  }
}

/** Random requests, callers and grants, steered by the model. */
class Draws {
  constructor(
    private readonly rand: SeededRand,
    private readonly model: Model,
  ) {}

  chance(p: number): boolean {
    return this.rand.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.rand.intn(xs.length)] as T;
  }

  key(): Uint8Array {
    return this.chance(0.01) ? new Uint8Array() : bytes(this.pick(keys));
  }

  /**
   * Empty (one key) most often; "\0" (from key), a prefix's end, another key of the space, key +
   * "\0". Another key may be before key (or key itself) only for a privileged caller (see the header).
   */
  rangeEnd(key: Uint8Array, privileged: boolean): Uint8Array {
    switch (this.rand.intn(8)) {
      case 0:
        return bytes('\x00');
      case 1:
        return prefixEnd(key);
      case 2: {
        const end = bytes(this.pick(keys));
        return privileged || Buffer.compare(end, key) > 0 ? end : new Uint8Array();
      }
      case 3:
        return Buffer.concat([key, bytes('\x00')]);
      default:
        return new Uint8Array();
    }
  }

  /** A valid grant (see the header): one key, a prefix, from the key on, up to a later key of the space. */
  permission(): authpb.Permission {
    const key = this.pick(keys);
    const later = keys.filter((k) => k > key);
    const rangeEnd = this.pick(['', text(prefixEnd(bytes(key))), '\x00', `${key}\x00`, later.length > 0 ? this.pick(later) : '']);
    return authpb.Permission.create({ permType: this.rand.intn(3) as authpb.Permission_Type, key: bytes(key), rangeEnd: bytes(rangeEnd) });
  }

  userName(): string {
    return this.chance(0.05) ? unknownUser : this.pick(userNames);
  }

  /** The user's password most often, when the model knows it. */
  password(user: string): string {
    const known = this.model.users.get(user)?.password;
    return known !== undefined && this.chance(0.8) ? known : this.pick(passwords);
  }

  /** A token no server gave, one from any earlier login (maybe of a deleted user, maybe from before auth was off), or none. */
  strayCaller(): Caller {
    const old = this.model.logins.length > 0 && this.chance(0.6) ? this.pick(this.model.logins) : undefined;
    if (old !== undefined) return { what: `an old token of ${JSON.stringify(old.user)}`, tokens: old.tokens, privileged: !this.model.enabled };
    if (this.chance(0.5)) return { what: 'no token', tokens: undefined, privileged: !this.model.enabled };
    return { what: 'a bogus token', tokens: ['bogus.1', 'bogus.1'], privileged: !this.model.enabled };
  }

  /** The user's last login, or undefined when it needs a new one (none, or stale most of the time). */
  currentLogin(user: string): Login | undefined {
    const login = this.model.lastLogin.get(user);
    if (login === undefined || (login.generation !== this.model.generation && this.chance(0.6))) return undefined;
    return login;
  }

  loginCaller(login: Login): Caller {
    const fresh = login.generation === this.model.generation;
    return { what: `${JSON.stringify(login.user)}${fresh ? '' : ' (stale token)'}`, tokens: login.tokens, privileged: !this.model.enabled || (fresh && this.model.hasRootRole(login.user)) };
  }

  adminRequest(): [MethodInfo<object, object>, object] {
    const a = methods.auth;
    const m = <Req extends object, Res extends object>(x: MethodInfo<Req, Res>): MethodInfo<object, object> => x;
    const model = this.model;
    // With auth off: now and then the root user deleted or its role taken away (auth cannot be
    // turned on then), else mostly the way back (root, its role, auth on).
    if (!model.enabled) {
      const root = model.users.get('root');
      const n = this.rand.intn(10);
      if (n === 0 && root !== undefined) {
        return this.chance(0.5) ? [m(a.UserDelete), pb.AuthUserDeleteRequest.create({ name: 'root' })] : [m(a.UserRevokeRole), pb.AuthUserRevokeRoleRequest.create({ name: 'root', role: 'root' })];
      }
      if (n < 3 && root === undefined) return [m(a.UserAdd), pb.AuthUserAddRequest.create({ name: 'root', password: this.pick(passwords) })];
      if (n < 3 && !model.hasRootRole('root')) return [m(a.UserGrantRole), pb.AuthUserGrantRoleRequest.create({ user: 'root', role: 'root' })];
      if (n < 6) return [m(a.AuthEnable), pb.AuthEnableRequest.create({})];
    }
    const role = (): string => this.pick(roleNames);
    switch (this.rand.intn(16)) {
      case 0: {
        const options = this.chance(0.4) ? authpb.UserAddOptions.create({ noPassword: this.chance(0.7) }) : undefined;
        return [m(a.UserAdd), pb.AuthUserAddRequest.create({ name: this.userName(), password: this.pick(passwords), options })];
      }
      case 1:
        return [m(a.UserDelete), pb.AuthUserDeleteRequest.create({ name: this.userName() })];
      case 2:
        return [m(a.UserGet), pb.AuthUserGetRequest.create({ name: this.userName() })];
      case 3:
        return [m(a.UserChangePassword), pb.AuthUserChangePasswordRequest.create({ name: this.userName(), password: this.pick(passwords) })];
      case 4:
      case 5:
        return [m(a.UserGrantRole), pb.AuthUserGrantRoleRequest.create({ user: this.userName(), role: role() })];
      case 6:
        return [m(a.UserRevokeRole), pb.AuthUserRevokeRoleRequest.create({ name: this.userName(), role: role() })];
      case 7:
        return [m(a.RoleAdd), pb.AuthRoleAddRequest.create({ name: role() })];
      case 8:
        return [m(a.RoleDelete), pb.AuthRoleDeleteRequest.create({ role: role() })];
      case 9:
        return [m(a.RoleGet), pb.AuthRoleGetRequest.create({ role: role() })];
      case 10:
        return this.chance(0.5) ? [m(a.UserList), pb.AuthUserListRequest.create({})] : [m(a.RoleList), pb.AuthRoleListRequest.create({})];
      case 11:
      case 12:
        return [m(a.RoleGrantPermission), pb.AuthRoleGrantPermissionRequest.create({ name: role(), perm: this.permission() })];
      case 13: {
        // A grant the role has most often (the key and range end must match it exactly), else any.
        const name = role();
        const granted = model.roles.get(name) ?? [];
        const p = granted.length > 0 && this.chance(0.7) ? this.pick(granted) : { key: text(this.key()), rangeEnd: text(this.rangeEnd(this.key(), true)) };
        return [m(a.RoleRevokePermission), pb.AuthRoleRevokePermissionRequest.create({ role: name, key: bytes(p.key), rangeEnd: bytes(p.rangeEnd) })];
      }
      case 14:
        return [m(a.AuthEnable), pb.AuthEnableRequest.create({})];
      default:
        return this.chance(0.5) ? [m(a.AuthDisable), pb.AuthDisableRequest.create({})] : [m(a.UserGet), pb.AuthUserGetRequest.create({ name: this.userName() })];
    }
  }

  /** 0 (the current one) most often; past, current, future, compacted. */
  revision(): number {
    if (this.chance(0.8)) return 0;
    return this.pick([this.model.rev, this.model.rev + 1, this.model.compacted, 1 + this.rand.intn(this.model.rev)]);
  }

  range(privileged: boolean): etcdserverpb.RangeRequest {
    const key = this.key();
    return pb.RangeRequest.create({
      key,
      rangeEnd: this.rangeEnd(key, privileged),
      limit: this.chance(0.7) ? 0 : this.pick([1, 2]),
      revision: this.revision(),
      serializable: this.chance(0.3),
      keysOnly: this.chance(0.2),
      countOnly: this.chance(0.15),
    });
  }

  lease(): bigint {
    return this.chance(0.7) ? 0n : this.chance(0.9) ? this.pick(leaseIds) : leaseUnknown;
  }

  put(inTxn: boolean, privileged: boolean): etcdserverpb.PutRequest {
    const ignores = !inTxn && this.chance(0.1);
    return pb.PutRequest.create({
      key: this.key(),
      value: bytes(`v${this.rand.intn(100)}`),
      lease: !inTxn || privileged ? this.lease() : 0n,
      prevKv: (!inTxn || privileged) && this.chance(0.3),
      ignoreValue: ignores && this.chance(0.5),
      ignoreLease: ignores && this.chance(0.5),
    });
  }

  deleteRange(privileged: boolean): etcdserverpb.DeleteRangeRequest {
    const key = this.key();
    return pb.DeleteRangeRequest.create({ key, rangeEnd: this.rangeEnd(key, privileged), prevKv: this.chance(0.4) });
  }

  compare(privileged: boolean): etcdserverpb.Compare {
    const key = this.key();
    const target = this.rand.intn(4) as etcdserverpb.Compare_CompareTarget;
    const union: etcdserverpb.Compare_TargetUnion[] = [
      { case: 'version', value: this.rand.intn(3) },
      { case: 'createRevision', value: this.rand.intn(this.model.rev + 1) },
      { case: 'modRevision', value: this.rand.intn(this.model.rev + 1) },
      { case: 'value', value: bytes(`v${this.rand.intn(100)}`) },
    ];
    return pb.Compare.create({ key, rangeEnd: this.chance(0.7) ? new Uint8Array() : this.rangeEnd(key, privileged), target, result: this.rand.intn(4) as etcdserverpb.Compare_CompareResult, targetUnion: union[target] });
  }

  /** A txn; nested txns, puts with prev_kv or a lease, and ranges that end before they start only for a privileged caller (see the header). */
  txn(privileged: boolean, depth = 0): etcdserverpb.TxnRequest {
    const op = (): etcdserverpb.RequestOp => {
      const n = this.rand.intn(privileged && depth < 2 ? 10 : 9);
      if (n < 3) return rangeOp(this.range(privileged));
      if (n < 6) return putOp(this.put(true, privileged));
      if (n < 9) return deleteOp(this.deleteRange(privileged));
      return txnOp(this.txn(privileged, depth + 1));
    };
    const ops = (): etcdserverpb.RequestOp[] => Array.from({ length: this.rand.intn(depth === 0 ? 4 : 3) }, op);
    return pb.TxnRequest.create({ compare: Array.from({ length: this.rand.intn(3) }, () => this.compare(privileged)), success: ops(), failure: ops() });
  }

  compact(): etcdserverpb.CompactionRequest {
    const revision = this.pick([this.model.rev, this.model.rev - 1, this.model.rev + 1, this.model.compacted, this.model.compacted + 1, this.rand.intn(this.model.rev + 1)]);
    return pb.CompactionRequest.create({ revision, physical: this.chance(0.5) });
  }
}

type TokenKind = 'simple' | 'jwt';

/** The token flags of a kind: for JWT, a new key pair in dir (the same for both servers). */
function tokenFlags(kind: TokenKind, dir: string): string[] {
  if (kind === 'simple') return [];
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'jwt.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'jwt.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  return ['--auth-token', `jwt,pub-key=${join(dir, 'jwt.pub')},priv-key=${join(dir, 'jwt.key')},sign-method=ES256,ttl=1h`];
}

const tokenKinds = (process.env['AUTH_RANDOM_TOKENS'] ?? 'simple,jwt').split(',') as TokenKind[];

describe(`Auth at random against the real etcd, seed ${seed}`, { skip: etcdMissing(), timeout: 60_000 + opsCount * 200 }, () => {
  const ws = useWorkspace('auth-random-diff');
  const keyDir = mkdtempSync(join(tmpdir(), 'etcd-ts-auth-random-'));
  /** For each token kind, a connection to [the real etcd, etcd-ts]; the four servers start at once. */
  const pairs = new Map<TokenKind, RawGrpc[]>();
  before(async () => {
    await Promise.all(
      tokenKinds.map(async (kind) => {
        const extraFlags = ['--bcrypt-cost', '4', ...tokenFlags(kind, keyDir)];
        const clusters = await Promise.all([ws.startCluster({ kind: 'etcd', extraFlags }), ws.startCluster({ kind: 'etcd-ts', extraFlags })]);
        pairs.set(kind, clusters.map((c) => new RawGrpc(c.member(0).clientUrl)));
      }),
    );
  });
  after(() => {
    for (const conns of pairs.values()) for (const c of conns) c.close();
    rmSync(keyDir, { recursive: true, force: true });
  });
  for (const kind of tokenKinds) describe(`${kind} tokens`, () => suite(kind, () => pairs.get(kind) ?? assert.fail(`no servers for ${kind} tokens`)));
});

/** The run with one kind of token, on the servers conns gives once they are up. */
function suite(kind: TokenKind, conns: () => readonly RawGrpc[]): void {
  /** How many answers of each method, status and message. */
  const tally = new Map<string, number>();

  /**
   * The same request to both servers as caller; every answer must agree (after normalize, if
   * given). Returns etcd's status and response.
   */
  async function both<Req, Res>(m: MethodInfo<Req, Res>, req: Req, caller: Caller, what: string, normalize?: (res: Res) => void): Promise<{ status: string; res: Res | undefined }> {
    const body = m.requestType.encode(req);
    const answers = (await Promise.all(conns().map((r, i) => r.call(m.path, body, callTimeoutMs, caller.tokens === undefined ? {} : { token: caller.tokens[i] as string })))) as [RawAnswer, RawAnswer];
    const [t, o] = answers.map((a) => compared(a, m.responseType, normalize)) as [ReturnType<typeof compared>, ReturnType<typeof compared>];
    const asked = (): string => `${what}: ${m.name} as ${caller.what} ${JSON.stringify(plain(req))}`;
    assert.deepEqual({ ...o, bytes: [] }, { ...t, bytes: [] }, asked());
    assert.deepEqual(o.bytes, t.bytes, `${asked()}: the bytes`);
    if (trace) process.stderr.write(`${asked()}: ${t.status} ${t.message}\n`);
    const key = `${m.name}: ${t.status} ${t.message}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
    const first = answers[0].messages[0];
    return { status: t.status, res: first === undefined ? undefined : m.responseType.decode(first) };
  }

  const model = new Model();
  const anyone: Caller = { what: 'no token', tokens: undefined, privileged: true };
  /** Simple tokens differ between servers: only whether one was given is compared. */
  const sameToken = (res: etcdserverpb.AuthenticateResponse): void => {
    res.token = res.token === '' ? '' : 'a token';
  };

  /** A login of user with password (as caller); on success, each server's token is kept. */
  async function login(user: string, password: string, caller: Caller, what: string): Promise<Login | undefined> {
    const req = pb.AuthenticateRequest.create({ name: user, password });
    const answers: string[] = [];
    const tokenOf = (res: etcdserverpb.AuthenticateResponse): void => {
      answers.push(res.token);
      sameToken(res);
    };
    const { status } = await both(methods.auth.Authenticate, req, caller, what, tokenOf);
    if (status !== '0') return undefined;
    const login: Login = { user, tokens: [answers[0] ?? '', answers[1] ?? ''], generation: model.generation };
    model.logins.push(login);
    model.lastLogin.set(user, login);
    return login;
  }

  /** An admin request as caller; the model follows etcd's answer. */
  async function admin<Req extends object, Res>(m: MethodInfo<Req, Res>, req: Req, caller: Caller, what: string): Promise<void> {
    const { status } = await both(m, req, caller, what);
    if (status === '0') model.applied(m.name, req);
  }

  const rootCaller = async (what: string): Promise<Caller> => {
    if (!model.enabled) return anyone;
    const login = model.lastLogin.get('root') ?? (await loginAs('root', what));
    return login === undefined ? anyone : { what: '"root"', tokens: login.tokens, privileged: model.hasRootRole('root') && login.generation === model.generation };
  };
  const loginAs = (user: string, what: string): Promise<Login | undefined> => login(user, model.users.get(user)?.password ?? '', anyone, `${what} (login of ${user})`);

  test('root, two users with roles and grants, auth on', { timeout: 10_000 }, async () => {
    const setup: [MethodInfo<object, object>, object][] = [
      [methods.auth.UserAdd, pb.AuthUserAddRequest.create({ name: 'root', password: 'pw' })],
      [methods.auth.UserGrantRole, pb.AuthUserGrantRoleRequest.create({ user: 'root', role: 'root' })],
      [methods.auth.UserAdd, pb.AuthUserAddRequest.create({ name: 'u1', password: 'pw' })],
      [methods.auth.UserAdd, pb.AuthUserAddRequest.create({ name: 'u2', password: 'pw2' })],
      [methods.auth.RoleAdd, pb.AuthRoleAddRequest.create({ name: 'r1' })],
      [methods.auth.RoleAdd, pb.AuthRoleAddRequest.create({ name: 'r2' })],
      [methods.auth.RoleGrantPermission, pb.AuthRoleGrantPermissionRequest.create({ name: 'r1', perm: { permType: 2, key: bytes('a'), rangeEnd: bytes('b') } })],
      [methods.auth.RoleGrantPermission, pb.AuthRoleGrantPermissionRequest.create({ name: 'r2', perm: { permType: 0, key: bytes('b'), rangeEnd: bytes('\x00') } })],
      [methods.auth.RoleGrantPermission, pb.AuthRoleGrantPermissionRequest.create({ name: 'r2', perm: { permType: 1, key: bytes('b/'), rangeEnd: bytes('b0') } })],
      [methods.auth.UserGrantRole, pb.AuthUserGrantRoleRequest.create({ user: 'u1', role: 'r1' })],
      [methods.auth.UserGrantRole, pb.AuthUserGrantRoleRequest.create({ user: 'u2', role: 'r2' })],
      [methods.auth.AuthEnable, pb.AuthEnableRequest.create({})],
    ] as [MethodInfo<object, object>, object][];
    for (const [m, req] of setup) await admin(m, req, anyone, 'setup');
    for (const k of keys) await both(methods.kv.Put, pb.PutRequest.create({ key: bytes(k), value: bytes('0') }), await rootCaller('setup'), 'setup');
    assert.equal(model.enabled, true, 'auth is on');
  });

  test(`${opsCount} random requests (AUTH_RANDOM_SEED=${seed} AUTH_RANDOM_TOKENS=${kind})`, { timeout: 30_000 + opsCount * 100 }, async (t) => {
    const rand = new SeededRand(seed);
    const draws = new Draws(rand, model);
    /** A caller for a KV or lease request: a user (logged in again when needed), now and then a stray token. */
    const kvCaller = async (what: string): Promise<Caller> => {
      if (!model.enabled || draws.chance(0.08)) return draws.chance(0.7) && !model.enabled ? anyone : draws.strayCaller();
      // Mostly users that can log in: a user without a password, or gone, now and then.
      const canLogIn = [...model.users].filter(([name, u]) => name !== 'root' && !u.noPassword).map(([name]) => name);
      const user = draws.chance(0.15) ? 'root' : canLogIn.length > 0 && draws.chance(0.85) ? draws.pick(canLogIn) : draws.pick(userNames.slice(1, 4));
      const login = draws.currentLogin(user) ?? (await loginAs(user, what));
      return login === undefined ? draws.strayCaller() : draws.loginCaller(login);
    };
    const adminCaller = async (what: string): Promise<Caller> => (draws.chance(0.8) ? rootCaller(what) : kvCaller(what));
    for (let step = 0; step < opsCount; step++) {
      const what = `seed ${seed} (${kind} tokens) step ${step}`;
      const n = rand.intn(100);
      let header: etcdserverpb.ResponseHeader | undefined;
      if (n < 30) {
        const [m, req] = draws.adminRequest();
        await admin(m, req, await adminCaller(what), what);
      } else if (n < 38) {
        const user = draws.userName();
        await login(user, draws.password(user), draws.chance(0.9) ? anyone : draws.strayCaller(), what);
      } else if (n < 50) {
        const caller = await kvCaller(what);
        header = (await both(methods.kv.Range, draws.range(caller.privileged), caller, what)).res?.header;
      }
      else if (n < 64) {
        const caller = await kvCaller(what);
        header = (await both(methods.kv.Put, draws.put(false, caller.privileged), caller, what)).res?.header;
      } else if (n < 71) {
        const caller = await kvCaller(what);
        header = (await both(methods.kv.DeleteRange, draws.deleteRange(caller.privileged), caller, what)).res?.header;
      }
      else if (n < 92) {
        const caller = await kvCaller(what);
        header = (await both(methods.kv.Txn, draws.txn(caller.privileged), caller, what)).res?.header;
      } else if (n < 94) {
        const req = draws.compact();
        const { status } = await both(methods.kv.Compact, req, await kvCaller(what), what);
        if (status === '0') model.compacted = Math.max(model.compacted, req.revision);
      } else if (n < 97) {
        const ID = draws.pick([...leaseIds, leaseUnknown]);
        header = (await both(methods.lease.LeaseRevoke, pb.LeaseRevokeRequest.create({ ID }), await kvCaller(what), what)).res?.header;
      } else await both(methods.lease.LeaseGrant, pb.LeaseGrantRequest.create({ ID: draws.pick(leaseIds), TTL: 600 }), await kvCaller(what), what);
      if (header !== undefined) model.rev = Math.max(model.rev, header.revision);
    }
    for (const [k, n] of [...tally].sort()) t.diagnostic(`${n} ${k}`);
    // The draws must keep their reach: requests allowed and refused for their keys, logins, grants.
    const reach = [/^(Range|Put|DeleteRange|Txn): 0 /, /^(Range|Put|DeleteRange|Txn): 7 etcdserver: permission denied$/, /^Authenticate: 0 /, /^RoleGrantPermission: 0 /];
    if (opsCount >= 150) for (const re of reach) assert.ok([...tally.keys()].some((k) => re.test(k)), `seed ${seed} (${kind} tokens): no answer matches ${re}`);
  });

  test('the same users, roles and keys at the end', { timeout: 10_000 }, async () => {
    const what = `seed ${seed} (${kind} tokens): the end`;
    const caller = await rootCaller(what);
    // Turned off (root may be unable to log in): every list and key can be read.
    await admin(methods.auth.AuthDisable, pb.AuthDisableRequest.create({}), caller, what);
    await both(methods.auth.UserList, pb.AuthUserListRequest.create({}), anyone, what);
    await both(methods.auth.RoleList, pb.AuthRoleListRequest.create({}), anyone, what);
    for (const name of [...userNames, unknownUser]) await both(methods.auth.UserGet, pb.AuthUserGetRequest.create({ name }), anyone, what);
    for (const role of roleNames) await both(methods.auth.RoleGet, pb.AuthRoleGetRequest.create({ role }), anyone, what);
    await both(methods.kv.Range, pb.RangeRequest.create({ key: bytes('\x00'), rangeEnd: bytes('\x00') }), anyone, what);
  });
}
