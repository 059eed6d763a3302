/**
 * What the auth store needs from storage, declared here so that auth imports
 * neither backend nor schema (DESIGN.md §2). schema implements AuthBackend
 * over LMDB; every write is made inside the apply transaction the caller has
 * open, so an auth change commits atomically with the applied index. The
 * store never begins or commits a transaction itself.
 *
 * Format (etcd's, so a dump reads the same): users and roles are keyed by
 * their name's UTF-8 bytes and stored as encoded authpb.User / authpb.Role
 * (etcd buckets `authUsers` / `authRoles`). A user's password field is the
 * bcrypt hash ("$2a$10$..."), never a password. The enabled flag (etcd:
 * bucket `auth`, key `authEnabled`, one byte 1/0) and the auth revision
 * (bucket `auth`, key `authRevision`, uint64 big-endian) complete the state.
 */
import { assert, compareBytes, toHex } from '../base/index.js';

export interface AuthState {
  readonly enabled: boolean;
  /** 0 when never written (a fresh store); the store then starts at 1 as etcd does. */
  readonly revision: number;
  /** Encoded authpb.User values, in any order. */
  readonly users: readonly Uint8Array[];
  /** Encoded authpb.Role values, in any order. */
  readonly roles: readonly Uint8Array[];
}

export interface AuthBackend {
  /** Everything persisted; read when the store starts and after a snapshot is installed. */
  load(): AuthState;
  putUser(name: Uint8Array, encodedUser: Uint8Array): void;
  /** A missing name is not an error. */
  deleteUser(name: Uint8Array): void;
  putRole(name: Uint8Array, encodedRole: Uint8Array): void;
  /** A missing name is not an error. */
  deleteRole(name: Uint8Array): void;
  setEnabled(enabled: boolean): void;
  setRevision(revision: number): void;
}

interface Entry {
  readonly name: Uint8Array;
  readonly value: Uint8Array;
}

function sortedValues(m: Map<string, Entry>): Uint8Array[] {
  return [...m.values()].sort((a, b) => compareBytes(a.name, b.name)).map((e) => new Uint8Array(e.value));
}

/** An AuthBackend in memory, for tests and for a member without a backend. */
export class MemoryAuthBackend implements AuthBackend {
  private readonly users = new Map<string, Entry>();
  private readonly roles = new Map<string, Entry>();
  private enabled = false;
  private revision = 0;
  /** Writes seen, for tests that check what reached storage. */
  writeCount = 0;

  load(): AuthState {
    return { enabled: this.enabled, revision: this.revision, users: sortedValues(this.users), roles: sortedValues(this.roles) };
  }

  putUser(name: Uint8Array, encodedUser: Uint8Array): void {
    assert(name.length > 0, 'user name must not be empty');
    this.users.set(toHex(name), { name: new Uint8Array(name), value: new Uint8Array(encodedUser) });
    this.writeCount++;
  }

  deleteUser(name: Uint8Array): void {
    this.users.delete(toHex(name));
    this.writeCount++;
  }

  putRole(name: Uint8Array, encodedRole: Uint8Array): void {
    assert(name.length > 0, 'role name must not be empty');
    this.roles.set(toHex(name), { name: new Uint8Array(name), value: new Uint8Array(encodedRole) });
    this.writeCount++;
  }

  deleteRole(name: Uint8Array): void {
    this.roles.delete(toHex(name));
    this.writeCount++;
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.writeCount++;
  }

  setRevision(revision: number): void {
    assert(Number.isSafeInteger(revision) && revision >= this.revision, `auth revision must not go back: ${revision}`);
    this.revision = revision;
    this.writeCount++;
  }

  /** Every stored value (users, then roles), for tests that scan for secrets. */
  rawValues(): Uint8Array[] {
    return [...sortedValues(this.users), ...sortedValues(this.roles)];
  }
}
