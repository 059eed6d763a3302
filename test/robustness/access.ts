/**
 * How a run reaches its members: plain, or with auth on (P20). With auth,
 * the traffic (KV, leases, locks, watches) runs as an ordinary user whose
 * role may read and write every key, and the run's own maintenance
 * (compaction, defrag, member changes, HashKV) as root. Tokens are JWT
 * (`--auth-token jwt`), good on every member, so a client that moves to
 * another member keeps its token; a token goes stale when the auth store
 * changes ("revision of auth store is old") and is then fetched again, as
 * clientv3 does.
 *
 * The auth fault (faults.ts) changes the auth store under traffic: it bumps
 * its revision, takes the user's permission away for a moment, or turns
 * auth off for a moment. Requests
 * refused meanwhile must have no effect on any member (HashKV at the end,
 * and the linearizability check, see to it: etcd #14571).
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { utf8 } from '../../src/base/index.js';
import { GrpcChannel, GrpcError } from '../../src/grpc/index.js';
import { authpb, etcdserverpb } from '../../src/pb/index.js';
import { delay, methods, openChannel } from '../harness/index.js';
import { firstKey } from './history.js';

export type Principal = 'traffic' | 'admin';

/** Channels to members, as one principal or the other, and what to do after a failed call. */
export interface Access {
  channel(endpoint: string, who: Principal, connectTimeoutMs?: number): GrpcChannel;
  /** A call to endpoint failed, or a watch there was refused (its cancel reason): fetch a new token if the one sent may be no longer good. */
  noteError(who: Principal, e: unknown, endpoint: string): void;
}

export const noAuth: Access = {
  channel: (endpoint, _who, connectTimeoutMs = 2_000) => openChannel(endpoint, connectTimeoutMs),
  noteError: () => undefined,
};

const users: Readonly<Record<Principal, { readonly name: string; readonly password: string }>> = {
  traffic: { name: 'robust', password: 'robust-pw' },
  admin: { name: 'root', password: 'root-pw' },
};
/** The traffic user's role: read and write on every key the traffic uses. */
export const trafficRole = 'robust-rw';
/**
 * Errors after which a new token helps. etcd 3.4's Maintenance service
 * (alarms, HashKV, defragment) returns the auth package's own texts.
 */
const staleTokenErrors: readonly string[] = [
  'etcdserver: revision of auth store is old',
  'etcdserver: invalid auth token',
  'etcdserver: user name is empty',
  'auth: invalid auth token',
  'auth: user name is empty',
];
const permissionDenied = ['etcdserver: permission denied', 'auth: permission denied'];

/**
 * Whether an error text (a call's error, a watch's cancel reason) is auth
 * refusing the request: a token that is no longer good, or no permission.
 */
export function isAuthRefusal(text: string): boolean {
  return [...permissionDenied, ...staleTokenErrors].some((m) => text.includes(m));
}

/**
 * 'jwt': one token per principal, good on every member. 'simple': etcd's
 * default tokens, which only the member that issued them knows (and
 * forgets when it restarts or auth is turned off): one per principal and
 * member.
 */
export type TokenKind = 'jwt' | 'simple';

/** The member flags for the kind of token (JWT: with a key pair written under dir). */
export function tokenFlags(kind: TokenKind, dir: string): string[] {
  if (kind === 'simple') return [];
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const priv = join(dir, 'jwt.key');
  const pub = join(dir, 'jwt.pub');
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return ['--auth-token', `jwt,pub-key=${pub},priv-key=${priv},sign-method=ES256,ttl=1h`];
}

export class RunAuth implements Access {
  /** Tokens by slot: the principal (JWT), or the principal and the member (simple). */
  private readonly tokens = new Map<string, string>();
  private readonly refreshing = new Map<string, Promise<void>>();

  private constructor(
    private readonly endpoints: () => readonly string[],
    readonly kind: TokenKind,
  ) {}

  /** Creates root and the traffic user with its role, enables auth and fetches the admin token. */
  static async enable(endpoints: () => readonly string[], kind: TokenKind): Promise<RunAuth> {
    const a = new RunAuth(endpoints, kind);
    await a.adminCall(async (ch) => {
      const ok = async <T>(p: Promise<T>): Promise<void> => {
        try {
          await p;
        } catch (e) {
          // Retried after a fault of the setup: what the first attempt did stays done.
          if (!(e instanceof GrpcError && /already exists|already granted/.test(e.details))) throw e;
        }
      };
      const t = { timeoutMs: 5_000 };
      await ok(ch.unary(methods.auth.UserAdd, etcdserverpb.AuthUserAddRequest.create({ name: users.admin.name, password: users.admin.password }), t));
      await ch.unary(methods.auth.UserGrantRole, etcdserverpb.AuthUserGrantRoleRequest.create({ user: users.admin.name, role: 'root' }), t);
      await ok(ch.unary(methods.auth.RoleAdd, etcdserverpb.AuthRoleAddRequest.create({ name: trafficRole }), t));
      await ch.unary(methods.auth.RoleGrantPermission, everyKey(trafficRole), t);
      await ok(ch.unary(methods.auth.UserAdd, etcdserverpb.AuthUserAddRequest.create({ name: users.traffic.name, password: users.traffic.password }), t));
      await ch.unary(methods.auth.UserGrantRole, etcdserverpb.AuthUserGrantRoleRequest.create({ user: users.traffic.name, role: trafficRole }), t);
      await ch.unary(methods.auth.AuthEnable, etcdserverpb.AuthEnableRequest.create({}), t);
    }, false);
    for (const endpoint of kind === 'jwt' ? [''] : endpoints()) {
      await a.refresh('traffic', endpoint);
      await a.refresh('admin', endpoint);
    }
    return a;
  }

  private slot(who: Principal, endpoint: string): string {
    return this.kind === 'jwt' ? who : `${who} ${endpoint}`;
  }

  channel(endpoint: string, who: Principal, connectTimeoutMs = 2_000): GrpcChannel {
    const slot = this.slot(who, endpoint);
    return openChannel(endpoint, connectTimeoutMs, () => {
      const token = this.tokens.get(slot);
      return token === undefined ? undefined : { token };
    });
  }

  noteError(who: Principal, e: unknown, endpoint: string): void {
    // A watch refused for its token's revision is told "permission denied": for a cancel reason, either calls for a new token.
    const stale = e instanceof GrpcError ? staleTokenErrors.includes(e.details) : typeof e === 'string' && isAuthRefusal(e);
    if (stale) void this.refresh(who, endpoint).catch(() => undefined);
  }

  /** Authenticates again (one attempt at a time per slot): a simple token at that member, a JWT at any. */
  refresh(who: Principal, endpoint: string): Promise<void> {
    const slot = this.slot(who, endpoint);
    let p = this.refreshing.get(slot);
    if (p === undefined) {
      p = this.authenticate(who, slot, this.kind === 'jwt' ? undefined : endpoint).finally(() => this.refreshing.delete(slot));
      this.refreshing.set(slot, p);
    }
    return p;
  }

  private async authenticate(who: Principal, slot: string, only: string | undefined): Promise<void> {
    const u = users[who];
    let last: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      for (const endpoint of only === undefined ? this.endpoints() : [only]) {
        const ch = openChannel(endpoint);
        try {
          const r = await ch.unary(methods.auth.Authenticate, etcdserverpb.AuthenticateRequest.create({ name: u.name, password: u.password }), { timeoutMs: 3_000 });
          this.tokens.set(slot, r.token);
          return;
        } catch (e) {
          if (!(e instanceof GrpcError)) throw e;
          if (e.details === 'etcdserver: authentication is not enabled') {
            // Auth is off for now: no token (etcd refuses a token it no longer knows even then).
            this.tokens.delete(slot);
            return;
          }
          last = e;
        } finally {
          ch.close();
        }
      }
      await delay(250);
    }
    throw new Error(`authenticate ${u.name}: ${(last as Error | undefined)?.message ?? 'no member answered'}`);
  }

  /** Runs fn as root on a member that answers (tokenless before auth is on). */
  private async adminCall(fn: (ch: GrpcChannel) => Promise<void>, withToken = true): Promise<void> {
    let last: unknown;
    for (let attempt = 0; attempt < 10; attempt++) {
      for (const endpoint of this.endpoints()) {
        if (withToken && !this.tokens.has(this.slot('admin', endpoint))) await this.refresh('admin', endpoint).catch(() => undefined);
        const ch = withToken ? this.channel(endpoint, 'admin') : openChannel(endpoint);
        try {
          await fn(ch);
          return;
        } catch (e) {
          if (!(e instanceof GrpcError)) throw e;
          last = e;
          this.noteError('admin', e, endpoint);
        } finally {
          ch.close();
        }
      }
      await delay(250);
    }
    throw new Error(`auth setup: ${(last as Error | undefined)?.message ?? 'no member answered'}`);
  }

  /**
   * The auth fault's change: one time in four auth disabled for holdMs and
   * enabled again; one in two a permission on a key range the traffic never
   * touches granted or taken back (the store's revision moves on, every
   * token goes stale); otherwise the traffic user's permission taken away
   * for holdMs and given back. Returns what it did.
   */
  async churn(rand: { intn(n: number): number }, holdMs: number): Promise<string> {
    const dummy = etcdserverpb.AuthRoleGrantPermissionRequest.create({
      name: trafficRole,
      perm: authpb.Permission.create({ permType: authpb.Permission_Type.READ, key: utf8('unused/'), rangeEnd: utf8('unused0') }),
    });
    const what = rand.intn(4);
    if (what === 0) {
      // Auth off and on again (P20): meanwhile tokens are not needed; afterwards every old one is stale.
      await this.adminCall(async (ch) => void (await ch.unary(methods.auth.AuthDisable, etcdserverpb.AuthDisableRequest.create({}), { timeoutMs: 3_000 })));
      await delay(holdMs);
      await this.adminCall(async (ch) => void (await ch.unary(methods.auth.AuthEnable, etcdserverpb.AuthEnableRequest.create({}), { timeoutMs: 3_000 })));
      return `auth disabled for ${holdMs} ms`;
    }
    if (what < 3) {
      const grant = rand.intn(2) === 0;
      await this.adminCall(async (ch) => {
        if (grant) await ch.unary(methods.auth.RoleGrantPermission, dummy, { timeoutMs: 3_000 });
        else await revokeIgnoringMissing(ch, trafficRole, 'unused/', 'unused0');
      });
      return grant ? 'granted an unused permission' : 'revoked an unused permission';
    }
    await this.adminCall((ch) => revokeIgnoringMissing(ch, trafficRole, trafficKeysFrom, '\0'));
    await delay(holdMs);
    await this.adminCall(async (ch) => void (await ch.unary(methods.auth.RoleGrantPermission, everyKey(trafficRole), { timeoutMs: 3_000 })));
    return `took the traffic's permission away for ${holdMs} ms`;
  }
}

/** Every key: from \x00 on (a permission for the empty key is refused). */
const trafficKeysFrom = firstKey;

function everyKey(role: string): etcdserverpb.AuthRoleGrantPermissionRequest {
  return etcdserverpb.AuthRoleGrantPermissionRequest.create({
    name: role,
    perm: authpb.Permission.create({ permType: authpb.Permission_Type.READWRITE, key: utf8(trafficKeysFrom), rangeEnd: new Uint8Array([0]) }),
  });
}

async function revokeIgnoringMissing(ch: GrpcChannel, role: string, key: string, end: string): Promise<void> {
  const req = etcdserverpb.AuthRoleRevokePermissionRequest.create({ role, key: utf8(key), rangeEnd: end === '\0' ? new Uint8Array([0]) : utf8(end) });
  try {
    await ch.unary(methods.auth.RoleRevokePermission, req, { timeoutMs: 3_000 });
  } catch (e) {
    if (!(e instanceof GrpcError && e.details === 'etcdserver: permission is not granted to the role')) throw e;
  }
}
