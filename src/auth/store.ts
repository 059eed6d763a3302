/**
 * The auth store: users, roles, their permissions, the enabled flag and the
 * auth revision. Every change runs in apply, in log order, on every member,
 * and is written through AuthBackend inside the caller's apply transaction;
 * given the same log, members hold the same state (Maps are only iterated in
 * sorted order before anything is written).
 *
 * Rules are etcd 3.4.23's with the later fixes (features.md §1.8,
 * reliability.md §6.3): the revision starts at 1 and goes up by one with
 * every change that writes (auth enable does not bump it, auth disable does);
 * AuthEnable needs user root holding role root; while enabled, user root and
 * role root cannot be deleted nor root revoked from root; the role named root
 * grants everything and can be granted before it exists as a role; a grant
 * needs a non-empty key and a non-empty range (PR #15619); passwords arrive
 * hashed (hashedPassword, base64 of the bcrypt hash) and a plaintext
 * password is refused in apply.
 */
import { compareBytes, equalBytes, fromUtf8, goSort, nopLogger, utf8, type Logger, type Registry } from '../base/index.js';
import { authpb, etcdserverpb, serverpb } from '../pb/index.js';
import type { AuthBackend } from './backend.js';
import type { BcryptPool } from './bcrypt-pool.js';
import { AuthError } from './errors.js';
import { isValidPermissionRange, UserPermissions } from './range-perms.js';
import { NopTokenProvider, type AuthInfo, type TokenProvider } from './tokens.js';
import { compareUtf8, insertSorted } from './utf8-order.js';

export const rootUser = 'root';
export const rootRole = 'root';

export interface AuthStoreOptions {
  readonly backend: AuthBackend;
  /** From newTokenProvider(`--auth-token`); none by default. */
  readonly tokenProvider?: TokenProvider;
  /** Needed only by checkPassword (the API side). */
  readonly bcrypt?: BcryptPool;
  readonly logger?: Logger;
  /** Registers etcd_debugging_auth_revision when given. */
  readonly metrics?: Registry;
}

export interface AuthStatus {
  readonly enabled: boolean;
  readonly authRevision: number;
}

const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** etcd 3.5's hashedPassword: strict standard base64 of the bcrypt hash. */
function decodeHashedPassword(hashed: string): Uint8Array {
  if (!base64Re.test(hashed)) throw new AuthError('NoPasswordUser');
  return new Uint8Array(Buffer.from(hashed, 'base64'));
}

function hasRootRole(user: authpb.User): boolean {
  return user.roles.includes(rootRole);
}

function copyUser(u: authpb.User): authpb.User {
  return authpb.User.create({
    name: new Uint8Array(u.name),
    password: new Uint8Array(u.password),
    roles: [...u.roles],
    options: u.options === undefined ? undefined : { noPassword: u.options.noPassword },
  });
}

function copyPermission(p: authpb.Permission): authpb.Permission {
  return authpb.Permission.create({ permType: p.permType, key: new Uint8Array(p.key), rangeEnd: new Uint8Array(p.rangeEnd) });
}

export class AuthStore {
  private enabled = false;
  private rev = 1;
  private readonly users = new Map<string, authpb.User>();
  private readonly roles = new Map<string, authpb.Role>();
  /** Merged permissions per user, built on first use; emptied by every change. */
  private readonly permCache = new Map<string, UserPermissions>();
  private readonly backend: AuthBackend;
  readonly tokens: TokenProvider;
  private readonly bcrypt: BcryptPool | undefined;
  private readonly logger: Logger;

  constructor(opts: AuthStoreOptions) {
    this.backend = opts.backend;
    this.tokens = opts.tokenProvider ?? new NopTokenProvider();
    this.bcrypt = opts.bcrypt;
    this.logger = opts.logger ?? nopLogger;
    this.recover();
    opts.metrics
      ?.gauge('etcd_debugging_auth_revision', 'The current revision of auth store.')
      .collectWith(() => this.rev);
  }

  /** Reloads everything from the backend: at start and after a snapshot is installed (etcd #14571). */
  recover(): void {
    const state = this.backend.load();
    this.users.clear();
    this.roles.clear();
    for (const bytes of state.users) {
      const u = copyUser(authpb.User.decode(bytes));
      this.users.set(fromUtf8(u.name), u);
    }
    for (const bytes of state.roles) {
      const r = authpb.Role.decode(bytes);
      this.roles.set(fromUtf8(r.name), authpb.Role.create({ name: new Uint8Array(r.name), keyPermission: r.keyPermission.map(copyPermission) }));
    }
    // A store never written starts at revision 1, as etcd's; it is persisted with the first change.
    this.rev = Math.max(state.revision, 1);
    this.permCache.clear();
    this.enabled = state.enabled;
    if (this.enabled) this.tokens.enable();
    else this.tokens.disable();
  }

  isEnabled(): boolean {
    return this.enabled;
  }

  revision(): number {
    return this.rev;
  }

  status(): AuthStatus {
    return { enabled: this.enabled, authRevision: this.rev };
  }

  // ---- changes, in apply ----

  authEnable(): void {
    if (this.enabled) {
      this.logger.info('authentication is already enabled; ignored auth enable request');
      return;
    }
    const root = this.users.get(rootUser);
    if (root === undefined) throw new AuthError('RootUserNotExist');
    if (!hasRootRole(root)) throw new AuthError('RootRoleNotExist');
    this.backend.setEnabled(true);
    this.enabled = true;
    this.tokens.enable();
    this.permCache.clear();
    this.logger.info('enabled authentication');
  }

  authDisable(): void {
    if (!this.enabled) return;
    this.backend.setEnabled(false);
    this.enabled = false;
    this.bump();
    this.tokens.disable();
    this.logger.info('disabled authentication');
  }

  /**
   * The Authenticate entry: the password was checked by the proposer
   * (checkPassword); here the token is minted. Returns the token.
   */
  authenticate(r: serverpb.InternalAuthenticateRequest, index: number): string {
    if (!this.enabled) throw new AuthError('AuthNotEnabled');
    const user = this.users.get(r.name);
    if (user === undefined || user.options?.noPassword === true) throw new AuthError('AuthFailed');
    const token = this.tokens.assign(r.name, this.rev, { index, simpleTokenPrefix: r.simpleToken });
    this.logger.debug('authenticated a user', { 'user-name': r.name });
    return token;
  }

  userAdd(r: etcdserverpb.AuthUserAddRequest): void {
    if (r.name === '') throw new AuthError('UserEmpty');
    if (this.users.has(r.name)) throw new AuthError('UserAlreadyExist');
    const noPassword = r.options?.noPassword === true;
    const password = noPassword ? new Uint8Array(0) : this.passwordHashOf(r.password, r.hashedPassword, r.name);
    this.putUser(authpb.User.create({ name: utf8(r.name), password, roles: [], options: { noPassword } }));
    this.bump();
    this.logger.info('added a user', { 'user-name': r.name });
  }

  userDelete(r: etcdserverpb.AuthUserDeleteRequest): void {
    if (this.enabled && r.name === rootUser) throw new AuthError('InvalidAuthMgmt');
    const user = this.users.get(r.name);
    if (user === undefined) throw new AuthError('UserNotFound');
    this.users.delete(r.name);
    this.backend.deleteUser(user.name);
    this.bump();
    this.tokens.invalidateUser(r.name);
    this.logger.info('deleted a user', { 'user-name': r.name, 'user-roles': user.roles });
  }

  userChangePassword(r: etcdserverpb.AuthUserChangePasswordRequest): void {
    const user = this.users.get(r.name);
    if (user === undefined) throw new AuthError('UserNotFound');
    // A no-password user stays one (etcd 3.5): the new password is ignored.
    const password = user.options?.noPassword === true ? new Uint8Array(0) : this.passwordHashOf(r.password, r.hashedPassword, r.name);
    this.putUser(authpb.User.create({ ...copyUser(user), password }));
    this.bump();
    this.tokens.invalidateUser(r.name);
    this.logger.info('changed a password of a user', { 'user-name': r.name });
  }

  userGrantRole(r: etcdserverpb.AuthUserGrantRoleRequest): void {
    const user = this.users.get(r.user);
    if (user === undefined) throw new AuthError('UserNotFound');
    if (r.role !== rootRole && !this.roles.has(r.role)) throw new AuthError('RoleNotFound');
    if (user.roles.includes(r.role)) {
      this.logger.warn('ignored grant role request to a user', { 'user-name': r.user, 'duplicate-role-name': r.role });
      return;
    }
    const updated = copyUser(user);
    insertSorted(updated.roles, r.role);
    this.putUser(updated);
    this.bump();
    this.logger.info('granted a role to a user', { 'user-name': r.user, 'added-role-name': r.role });
  }

  userRevokeRole(r: etcdserverpb.AuthUserRevokeRoleRequest): void {
    if (this.enabled && r.name === rootUser && r.role === rootRole) throw new AuthError('InvalidAuthMgmt');
    const user = this.users.get(r.name);
    if (user === undefined) throw new AuthError('UserNotFound');
    if (!user.roles.includes(r.role)) throw new AuthError('RoleNotGranted');
    const updated = copyUser(user);
    updated.roles = updated.roles.filter((role) => role !== r.role);
    this.putUser(updated);
    this.bump();
    this.logger.info('revoked a role from a user', { 'user-name': r.name, 'revoked-role-name': r.role });
  }

  roleAdd(r: etcdserverpb.AuthRoleAddRequest): void {
    if (r.name === '') throw new AuthError('RoleEmpty');
    if (this.roles.has(r.name)) throw new AuthError('RoleAlreadyExist');
    this.putRole(authpb.Role.create({ name: utf8(r.name), keyPermission: [] }));
    this.bump();
    this.logger.info('created a role', { 'role-name': r.name });
  }

  roleDelete(r: etcdserverpb.AuthRoleDeleteRequest): void {
    if (this.enabled && r.role === rootRole) throw new AuthError('InvalidAuthMgmt');
    const role = this.roles.get(r.role);
    if (role === undefined) throw new AuthError('RoleNotFound');
    this.roles.delete(r.role);
    this.backend.deleteRole(role.name);
    // Users in name order, so every member writes the same sequence.
    for (const name of this.sortedNames(this.users)) {
      const user = this.users.get(name) as authpb.User;
      if (!user.roles.includes(r.role)) continue;
      const updated = copyUser(user);
      updated.roles = updated.roles.filter((x) => x !== r.role);
      this.putUser(updated);
    }
    this.bump();
    this.logger.info('deleted a role', { 'role-name': r.role });
  }

  roleGrantPermission(r: etcdserverpb.AuthRoleGrantPermissionRequest): void {
    const perm = r.perm;
    if (perm === undefined) throw new AuthError('PermissionNotGiven');
    const validType = perm.permType === authpb.Permission_Type.READ || perm.permType === authpb.Permission_Type.WRITE
      || perm.permType === authpb.Permission_Type.READWRITE;
    if (!validType || !isValidPermissionRange(perm.key, perm.rangeEnd)) throw new AuthError('InvalidAuthMgmt');
    const role = this.roles.get(r.name);
    if (role === undefined) throw new AuthError('RoleNotFound');
    const perms = role.keyPermission.map(copyPermission);
    // As etcd (3.4 to 3.6): only the first grant of the key (the list is sorted by key) is
    // updated when its range end is the same; otherwise the grant is appended, even one already
    // there further on, and the list sorted by key with Go's sort.Sort, which is not stable
    // past 12 grants.
    const first = perms.find((p) => compareBytes(p.key, perm.key) >= 0);
    if (first !== undefined && equalBytes(first.key, perm.key) && equalBytes(first.rangeEnd, perm.rangeEnd)) {
      first.permType = perm.permType;
    } else {
      perms.push(copyPermission(perm));
      goSort(perms, (a, b) => compareBytes(a.key, b.key) < 0);
    }
    this.putRole(authpb.Role.create({ name: role.name, keyPermission: perms }));
    this.bump();
    this.logger.info('granted/updated a permission to a role', { 'role-name': r.name, 'permission-type': perm.permType });
  }

  roleRevokePermission(r: etcdserverpb.AuthRoleRevokePermissionRequest): void {
    const role = this.roles.get(r.role);
    if (role === undefined) throw new AuthError('RoleNotFound');
    const kept = role.keyPermission.filter((p) => !(equalBytes(p.key, r.key) && equalBytes(p.rangeEnd, r.rangeEnd)));
    if (kept.length === role.keyPermission.length) throw new AuthError('PermissionNotGranted');
    this.putRole(authpb.Role.create({ name: role.name, keyPermission: kept.map(copyPermission) }));
    this.bump();
    this.logger.info('revoked a permission on range', { 'role-name': r.role });
  }

  // ---- reads ----

  /** The user's roles, sorted. */
  userGet(name: string): string[] {
    const user = this.users.get(name);
    if (user === undefined) throw new AuthError('UserNotFound');
    return [...user.roles];
  }

  /** Every user name, in byte order as etcd lists them. */
  userList(): string[] {
    return this.sortedNames(this.users);
  }

  /** The role's permissions, sorted by key (role root: none stored, as etcd 3.4 shows). */
  roleGet(name: string): authpb.Permission[] {
    const role = this.roles.get(name);
    if (role === undefined) throw new AuthError('RoleNotFound');
    return role.keyPermission.map(copyPermission);
  }

  roleList(): string[] {
    return this.sortedNames(this.roles);
  }

  hasRole(username: string, role: string): boolean {
    return this.users.get(username)?.roles.includes(role) === true;
  }

  userExists(username: string): boolean {
    return this.users.has(username);
  }

  // ---- permission checks: undefined when permitted, else the error to report ----

  /** Read access to [key, rangeEnd) (etcd's conventions: empty = one key, "\x00" = from key). */
  isRangePermitted(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): AuthError | undefined {
    return this.isOpPermitted(ai, key, rangeEnd, false);
  }

  isPutPermitted(ai: AuthInfo | undefined, key: Uint8Array): AuthError | undefined {
    return this.isOpPermitted(ai, key, emptyRangeEnd, true);
  }

  isDeleteRangePermitted(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): AuthError | undefined {
    return this.isOpPermitted(ai, key, rangeEnd, true);
  }

  /** Root-role check for auth management and other admin RPCs (no revision check, as etcd). */
  isAdminPermitted(ai: AuthInfo | undefined): AuthError | undefined {
    if (!this.enabled) return undefined;
    if (ai === undefined || ai.username === '') return new AuthError('UserEmpty');
    const user = this.users.get(ai.username);
    if (user === undefined) return new AuthError('UserNotFound');
    return hasRootRole(user) ? undefined : new AuthError('PermissionDenied');
  }

  /** Whether the user holds role root (regardless of whether auth is enabled). */
  isAdmin(username: string): boolean {
    const user = this.users.get(username);
    return user !== undefined && hasRootRole(user);
  }

  /** The pure grant check, without revision or enabled flag: may this user read / write the range? */
  userMay(username: string, write: boolean, key: Uint8Array, rangeEnd: Uint8Array): boolean {
    const user = this.users.get(username);
    if (user === undefined) return false;
    if (hasRootRole(user)) return true;
    const perms = this.permissionsOf(username, user);
    return (write ? perms.write : perms.read).covers(key, rangeEnd);
  }

  private isOpPermitted(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array, write: boolean): AuthError | undefined {
    if (!this.enabled) return undefined;
    // Revision 0 only comes from a request that named no user.
    if (ai === undefined || ai.revision === 0) return new AuthError('UserEmpty');
    if (ai.revision < this.rev) return new AuthError('AuthOldRevision');
    return this.userMay(ai.username, write, key, rangeEnd) ? undefined : new AuthError('PermissionDenied');
  }

  private permissionsOf(username: string, user: authpb.User): UserPermissions {
    let perms = this.permCache.get(username);
    if (perms === undefined) {
      const roles: authpb.Role[] = [];
      for (const name of user.roles) {
        const role = this.roles.get(name);
        if (role !== undefined) roles.push(role);
      }
      perms = UserPermissions.fromRoles(roles);
      this.permCache.set(username, perms);
    }
    return perms;
  }

  // ---- identity ----

  /** A fresh prefix for InternalAuthenticateRequest.simple_token ('' unless simple tokens). */
  genTokenPrefix(): string {
    return this.tokens.genTokenPrefix();
  }

  /** For a simple token, the raft index to wait for before authInfoFromToken can know it. */
  tokenWaitIndex(token: string): number | undefined {
    return this.tokens.waitIndex(token);
  }

  /** The user behind a token; throws InvalidAuthToken (also when auth is disabled, as etcd). */
  authInfoFromToken(token: string): AuthInfo {
    const info = this.tokens.info(token, this.rev);
    if (info === undefined) {
      this.logger.warn('invalid auth token');
      throw new AuthError('InvalidAuthToken');
    }
    return info;
  }

  /**
   * With --client-cert-auth and no token: the verified client certificate's
   * CN is the user. A request through the grpc-gateway carries the gateway's
   * own certificate, so its CN is never used (etcd ignores it too).
   */
  authInfoFromTls(commonName: string | undefined, viaGateway: boolean): AuthInfo | undefined {
    // A certificate without a CN is the user "" (who has no grant), as etcd takes it.
    if (commonName === undefined || viaGateway) return undefined;
    return { username: commonName, revision: this.rev };
  }

  /**
   * The Authenticate RPC's password check, on the proposer before it
   * proposes: bcrypt runs on a worker thread. Returns the auth revision the
   * check saw; the caller proposes InternalAuthenticateRequest and, once it
   * is applied, retries the whole Authenticate if revision() moved on
   * (the password may have changed meanwhile), as etcd does.
   */
  async checkPassword(name: string, password: string): Promise<number> {
    if (!this.enabled) throw new AuthError('AuthNotEnabled');
    const user = this.users.get(name);
    if (user === undefined) throw new AuthError('AuthFailed');
    if (user.options?.noPassword === true) throw new AuthError('NoPasswordUser');
    const revision = this.rev;
    const hash = fromUtf8(user.password);
    if (this.bcrypt === undefined) throw new Error('AuthStore.checkPassword needs a BcryptPool');
    if (!(await this.bcrypt.compare(password, hash))) {
      this.logger.info('invalid password', { 'user-name': name });
      throw new AuthError('AuthFailed');
    }
    return revision;
  }

  // ---- internals ----

  private passwordHashOf(password: string, hashedPassword: string, name: string): Uint8Array {
    if (password !== '') {
      // The API layer hashes before proposing; a password here would sit in the WAL.
      this.logger.error('plaintext password reached apply; refused', { 'user-name': name });
      throw new AuthError('InvalidAuthMgmt');
    }
    return decodeHashedPassword(hashedPassword);
  }

  private putUser(user: authpb.User): void {
    this.users.set(fromUtf8(user.name), user);
    this.backend.putUser(user.name, authpb.User.encode(user));
  }

  private putRole(role: authpb.Role): void {
    this.roles.set(fromUtf8(role.name), role);
    this.backend.putRole(role.name, authpb.Role.encode(role));
  }

  private bump(): void {
    this.rev++;
    this.backend.setRevision(this.rev);
    this.permCache.clear();
  }

  private sortedNames(m: ReadonlyMap<string, unknown>): string[] {
    return [...m.keys()].sort(compareUtf8);
  }
}

const emptyRangeEnd = new Uint8Array(0);
