/** Auth state in the backend: the enabled flag, the auth revision, users and roles. */
import { copyBytes, fromUtf8, utf8 } from '../base/index.js';
import { authpb } from '../pb/index.js';
import type { Schema } from './meta.js';
import { authKeys, readUint64, uint64Bytes } from './schema.js';

const enabledByte = new Uint8Array([1]);
const disabledByte = new Uint8Array([0]);
const allNames = new Uint8Array([0]);

export class AuthStorage {
  constructor(private readonly schema: Schema) {}

  enabled(): boolean {
    const v = this.schema.backend.get(this.schema.buckets.auth, authKeys.enabled);
    return v !== undefined && v.length === 1 && v[0] === 1;
  }

  setEnabled(enabled: boolean): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.auth, authKeys.enabled, enabled ? enabledByte : disabledByte));
  }

  /** The auth revision (0 when never written). */
  revision(): number {
    const v = this.schema.backend.get(this.schema.buckets.auth, authKeys.revision);
    return v === undefined ? 0 : readUint64(v, 0);
  }

  setRevision(rev: number): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.auth, authKeys.revision, uint64Bytes(rev)));
  }

  user(name: string): authpb.User | undefined {
    const v = this.schema.backend.get(this.schema.buckets.authUsers, utf8(name));
    return v === undefined ? undefined : authpb.User.decode(v);
  }

  putUser(user: authpb.User): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.authUsers, copyBytes(user.name), authpb.User.encode(user)));
  }

  deleteUser(name: string): void {
    this.schema.backend.write((tx) => tx.delete(this.schema.buckets.authUsers, utf8(name)));
  }

  /** Every user, in name order. */
  users(): authpb.User[] {
    return this.schema.backend.range(this.schema.buckets.authUsers, allNames, undefined).map((e) => authpb.User.decode(e.value));
  }

  role(name: string): authpb.Role | undefined {
    const v = this.schema.backend.get(this.schema.buckets.authRoles, utf8(name));
    return v === undefined ? undefined : authpb.Role.decode(v);
  }

  putRole(role: authpb.Role): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.authRoles, copyBytes(role.name), authpb.Role.encode(role)));
  }

  deleteRole(name: string): void {
    this.schema.backend.write((tx) => tx.delete(this.schema.buckets.authRoles, utf8(name)));
  }

  /** Every role, in name order. */
  roles(): authpb.Role[] {
    return this.schema.backend.range(this.schema.buckets.authRoles, allNames, undefined).map((e) => authpb.Role.decode(e.value));
  }

  /** Names as etcd lists them (sorted byte-wise). */
  userNames(): string[] {
    return this.users().map((u) => fromUtf8(u.name));
  }
}
