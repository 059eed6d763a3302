/**
 * Auth state in the backend, in the shape src/auth's AuthBackend declares
 * (schema implements it structurally; auth does not import schema): the
 * enabled flag, the auth revision, users and roles as encoded authpb values
 * keyed by name. Writes join the caller's write scope (the apply's).
 */
import { copyBytes } from '../base/index.js';
import type { Schema } from './meta.js';
import { authKeys, readUint64, uint64Bytes } from './schema.js';

const enabledByte = new Uint8Array([1]);
const disabledByte = new Uint8Array([0]);
const firstKey = new Uint8Array(0);

export interface StoredAuthState {
  readonly enabled: boolean;
  /** 0 when never written. */
  readonly revision: number;
  /** Encoded authpb.User values, in name order. */
  readonly users: readonly Uint8Array[];
  /** Encoded authpb.Role values, in name order. */
  readonly roles: readonly Uint8Array[];
}

export class AuthStorage {
  constructor(private readonly schema: Schema) {}

  load(): StoredAuthState {
    const { backend, buckets } = this.schema;
    const flag = backend.get(buckets.auth, authKeys.enabled);
    const rev = backend.get(buckets.auth, authKeys.revision);
    return {
      enabled: flag !== undefined && flag.length === 1 && flag[0] === 1,
      revision: rev === undefined ? 0 : readUint64(rev, 0),
      users: backend.range(buckets.authUsers, firstKey, undefined).map((e) => e.value),
      roles: backend.range(buckets.authRoles, firstKey, undefined).map((e) => e.value),
    };
  }

  putUser(name: Uint8Array, encodedUser: Uint8Array): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.authUsers, copyBytes(name), copyBytes(encodedUser)));
  }

  deleteUser(name: Uint8Array): void {
    this.schema.backend.write((tx) => tx.delete(this.schema.buckets.authUsers, copyBytes(name)));
  }

  putRole(name: Uint8Array, encodedRole: Uint8Array): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.authRoles, copyBytes(name), copyBytes(encodedRole)));
  }

  deleteRole(name: Uint8Array): void {
    this.schema.backend.write((tx) => tx.delete(this.schema.buckets.authRoles, copyBytes(name)));
  }

  setEnabled(enabled: boolean): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.auth, authKeys.enabled, enabled ? enabledByte : disabledByte));
  }

  setRevision(revision: number): void {
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.auth, authKeys.revision, uint64Bytes(revision)));
  }
}

/**
 * The auth backend of a member whose backend is replaced when a snapshot is
 * installed: each call goes to the AuthStorage current() returns then.
 */
export function currentAuthStorage(current: () => AuthStorage): Pick<AuthStorage, 'load' | 'putUser' | 'deleteUser' | 'putRole' | 'deleteRole' | 'setEnabled' | 'setRevision'> {
  return {
    load: () => current().load(),
    putUser: (n, v) => current().putUser(n, v),
    deleteUser: (n) => current().deleteUser(n),
    putRole: (n, v) => current().putRole(n, v),
    deleteRole: (n) => current().deleteRole(n),
    setEnabled: (e) => current().setEnabled(e),
    setRevision: (r) => current().setRevision(r),
  };
}
