/**
 * The Auth service. Passwords are checked (bcrypt, off the main thread) and
 * hashed here, before anything is proposed, so no plaintext password enters
 * the raft log, the WAL or a snapshot; Authenticate then proposes only the
 * user name and the token prefix. Reads (UserGet, UserList, RoleGet,
 * RoleList) are served after a linearizable read barrier.
 */
import { unary, type ServerCall, type ServiceHandlers } from '../grpc/index.js';
import { etcdserverpb, serverpb } from '../pb/index.js';
import { authPasswords, type EtcdServer, type RequestContext } from '../server/index.js';
import { check, checkCall, guard, requestContext } from './call-context.js';

type AuthMethods = typeof etcdserverpb.AuthService.methods;

/** Authenticate retries when the auth store changed between the password check and the apply. */
const authenticateAttemptsMax = 3;

export function authService(s: EtcdServer): ServiceHandlers<AuthMethods> {
  const header = (): etcdserverpb.ResponseHeader => s.header();
  const write = async <T extends object>(
    call: ServerCall,
    request: serverpb.InternalRaftRequest['request'],
    make: (h: etcdserverpb.ResponseHeader) => T,
  ): Promise<T> => {
    checkCall(s, call, false);
    const ctx = await requestContext(s, call);
    await s.propose(request, ctx);
    return make(header());
  };
  const read = async (call: ServerCall, allowed: (ctx: RequestContext) => boolean): Promise<void> => {
    checkCall(s, call, false);
    const ctx = await requestContext(s, call);
    await s.linearizableRead();
    if (s.auth.isEnabled() && !allowed(ctx)) check(s.auth.isAdminPermitted(ctx.user));
  };
  const cost = authPasswords.normalizeBcryptCost(s.cfg.bcryptCost);
  return {
    AuthEnable: unary((r, call) => guard(() => write(call, { case: 'authEnable', value: r }, (h) => etcdserverpb.AuthEnableResponse.create({ header: h })))),
    AuthDisable: unary((r, call) => guard(() => write(call, { case: 'authDisable', value: r }, (h) => etcdserverpb.AuthDisableResponse.create({ header: h })))),
    AuthStatus: unary((_r, call) =>
      guard(() => {
        checkCall(s, call, false);
        const st = s.auth.status();
        return Promise.resolve(etcdserverpb.AuthStatusResponse.create({ header: header(), enabled: st.enabled, authRevision: st.authRevision }));
      }),
    ),
    Authenticate: unary((r, call) =>
      guard(async () => {
        checkCall(s, call, false);
        for (let attempt = 1; ; attempt++) {
          const rev = await s.auth.checkPassword(r.name, r.password);
          // As etcd's, whose proposals all read the caller's token first: the password is checked
          // before, but a token that does not check (garbage, stale, empty) fails the call.
          await requestContext(s, call);
          const resp = (await s.propose({
            case: 'authenticate',
            value: serverpb.InternalAuthenticateRequest.create({ name: r.name, simpleToken: s.auth.genTokenPrefix() }),
          })) as etcdserverpb.AuthenticateResponse;
          // The user's password or roles changed meanwhile: check again against the new store.
          if (s.auth.revision() !== rev && attempt < authenticateAttemptsMax) continue;
          return etcdserverpb.AuthenticateResponse.create({ header: header(), token: resp.token });
        }
      }),
    ),
    UserAdd: unary((r, call) =>
      guard(async () => {
        // An empty name is refused when applied, after the caller's token and admin rights (as
        // etcd does): proposed as it is, with no password to hash.
        const req = r.name === '' ? etcdserverpb.AuthUserAddRequest.create({ name: '' }) : await authPasswords.prepareUserAdd(s.bcrypt, r, cost);
        return write(call, { case: 'authUserAdd', value: req }, (h) => etcdserverpb.AuthUserAddResponse.create({ header: h }));
      }),
    ),
    UserGet: unary((r, call) =>
      guard(async () => {
        let self = '';
        await read(call, (ctx) => {
          self = ctx.user?.username ?? '';
          return self === r.name;
        });
        return etcdserverpb.AuthUserGetResponse.create({ header: header(), roles: s.auth.userGet(r.name) });
      }),
    ),
    UserList: unary((_r, call) =>
      guard(async () => {
        await read(call, () => false);
        return etcdserverpb.AuthUserListResponse.create({ header: header(), users: s.auth.userList() });
      }),
    ),
    UserDelete: unary((r, call) => guard(() => write(call, { case: 'authUserDelete', value: r }, (h) => etcdserverpb.AuthUserDeleteResponse.create({ header: h })))),
    UserChangePassword: unary((r, call) =>
      guard(async () => {
        const req = await authPasswords.prepareUserChangePassword(s.bcrypt, r, cost);
        return write(call, { case: 'authUserChangePassword', value: req }, (h) => etcdserverpb.AuthUserChangePasswordResponse.create({ header: h }));
      }),
    ),
    UserGrantRole: unary((r, call) => guard(() => write(call, { case: 'authUserGrantRole', value: r }, (h) => etcdserverpb.AuthUserGrantRoleResponse.create({ header: h })))),
    UserRevokeRole: unary((r, call) => guard(() => write(call, { case: 'authUserRevokeRole', value: r }, (h) => etcdserverpb.AuthUserRevokeRoleResponse.create({ header: h })))),
    RoleAdd: unary((r, call) => guard(() => write(call, { case: 'authRoleAdd', value: r }, (h) => etcdserverpb.AuthRoleAddResponse.create({ header: h })))),
    RoleGet: unary((r, call) =>
      guard(async () => {
        await read(call, (ctx) => ctx.user !== undefined && s.auth.hasRole(ctx.user.username, r.role));
        return etcdserverpb.AuthRoleGetResponse.create({ header: header(), perm: s.auth.roleGet(r.role) });
      }),
    ),
    RoleList: unary((_r, call) =>
      guard(async () => {
        await read(call, () => false);
        return etcdserverpb.AuthRoleListResponse.create({ header: header(), roles: s.auth.roleList() });
      }),
    ),
    RoleDelete: unary((r, call) => guard(() => write(call, { case: 'authRoleDelete', value: r }, (h) => etcdserverpb.AuthRoleDeleteResponse.create({ header: h })))),
    RoleGrantPermission: unary((r, call) =>
      guard(() => write(call, { case: 'authRoleGrantPermission', value: r }, (h) => etcdserverpb.AuthRoleGrantPermissionResponse.create({ header: h }))),
    ),
    RoleRevokePermission: unary((r, call) =>
      guard(() => write(call, { case: 'authRoleRevokePermission', value: r }, (h) => etcdserverpb.AuthRoleRevokePermissionResponse.create({ header: h }))),
    ),
  };
}
