/** Auth: enable/disable, status, and the user and role RPCs. */
import { authpb, etcdserverpb } from '../pb/index.js';
import type { CallOptions, Connection } from './connection.js';
import { keyRange, type Bytes, type RangeOptions } from './kv.js';

const m = etcdserverpb.AuthService.methods;

export type PermissionType = 'READ' | 'WRITE' | 'READWRITE';

export class Auth {
  constructor(private readonly conn: Connection) {}

  enable(o: CallOptions = {}): Promise<etcdserverpb.AuthEnableResponse> {
    return this.conn.unary(m.AuthEnable, {}, 'nonRepeatable', o);
  }

  disable(o: CallOptions = {}): Promise<etcdserverpb.AuthDisableResponse> {
    return this.conn.unary(m.AuthDisable, {}, 'nonRepeatable', o);
  }

  status(o: CallOptions = {}): Promise<etcdserverpb.AuthStatusResponse> {
    return this.conn.unary(m.AuthStatus, {}, 'repeatable', o);
  }

  authenticate(name: string, password: string, o: CallOptions = {}): Promise<etcdserverpb.AuthenticateResponse> {
    return this.conn.unary(m.Authenticate, { name, password }, 'repeatable', o);
  }

  userAdd(name: string, password: string, o: CallOptions & { noPassword?: boolean } = {}): Promise<etcdserverpb.AuthUserAddResponse> {
    const req = { name, password, options: { noPassword: o.noPassword ?? false }, hashedPassword: '' };
    return this.conn.unary(m.UserAdd, req, 'nonRepeatable', o);
  }

  userGet(name: string, o: CallOptions = {}): Promise<etcdserverpb.AuthUserGetResponse> {
    return this.conn.unary(m.UserGet, { name }, 'repeatable', o);
  }

  userList(o: CallOptions = {}): Promise<etcdserverpb.AuthUserListResponse> {
    return this.conn.unary(m.UserList, {}, 'repeatable', o);
  }

  userDelete(name: string, o: CallOptions = {}): Promise<etcdserverpb.AuthUserDeleteResponse> {
    return this.conn.unary(m.UserDelete, { name }, 'nonRepeatable', o);
  }

  userChangePassword(name: string, password: string, o: CallOptions = {}): Promise<etcdserverpb.AuthUserChangePasswordResponse> {
    return this.conn.unary(m.UserChangePassword, { name, password, hashedPassword: '' }, 'nonRepeatable', o);
  }

  userGrantRole(user: string, role: string, o: CallOptions = {}): Promise<etcdserverpb.AuthUserGrantRoleResponse> {
    return this.conn.unary(m.UserGrantRole, { user, role }, 'nonRepeatable', o);
  }

  userRevokeRole(name: string, role: string, o: CallOptions = {}): Promise<etcdserverpb.AuthUserRevokeRoleResponse> {
    return this.conn.unary(m.UserRevokeRole, { name, role }, 'nonRepeatable', o);
  }

  roleAdd(name: string, o: CallOptions = {}): Promise<etcdserverpb.AuthRoleAddResponse> {
    return this.conn.unary(m.RoleAdd, { name }, 'nonRepeatable', o);
  }

  roleGet(role: string, o: CallOptions = {}): Promise<etcdserverpb.AuthRoleGetResponse> {
    return this.conn.unary(m.RoleGet, { role }, 'repeatable', o);
  }

  roleList(o: CallOptions = {}): Promise<etcdserverpb.AuthRoleListResponse> {
    return this.conn.unary(m.RoleList, {}, 'repeatable', o);
  }

  roleDelete(role: string, o: CallOptions = {}): Promise<etcdserverpb.AuthRoleDeleteResponse> {
    return this.conn.unary(m.RoleDelete, { role }, 'nonRepeatable', o);
  }

  roleGrantPermission(
    name: string,
    type: PermissionType,
    key: Bytes,
    range: RangeOptions = {},
    o: CallOptions = {},
  ): Promise<etcdserverpb.AuthRoleGrantPermissionResponse> {
    const r = keyRange(key, range);
    const perm = { permType: authpb.Permission_Type[type], key: r.key, rangeEnd: r.rangeEnd };
    return this.conn.unary(m.RoleGrantPermission, { name, perm }, 'nonRepeatable', o);
  }

  roleRevokePermission(role: string, key: Bytes, range: RangeOptions = {}, o: CallOptions = {}): Promise<etcdserverpb.AuthRoleRevokePermissionResponse> {
    const r = keyRange(key, range);
    return this.conn.unary(m.RoleRevokePermission, { role, key: r.key, rangeEnd: r.rangeEnd }, 'nonRepeatable', o);
  }
}
