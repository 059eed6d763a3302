/**
 * Permission checks for whole requests, shared by every path that can read
 * or write keys (reliability.md §6.3: etcd checked them differently per RPC,
 * and each difference was a hole). Every function answers undefined when the
 * request is permitted, else the AuthError to report; with auth disabled all
 * answer undefined at once.
 *
 * What each request needs:
 *   Range                 READ  [key, range_end)
 *   Put                   WRITE key; READ key if prev_kv; WRITE on every key
 *                         already attached to its lease, unless admin
 *   DeleteRange           WRITE [key, range_end); READ the same if prev_kv
 *   Txn                   READ on every compare's [key, range_end), and every
 *                         op of success AND failure as above, nested txns too
 *   Watch                 READ on the create request's key/range_end AS SENT
 *                         ("\x00" = from key; never after rewriting it)
 *   LeaseRevoke           WRITE on every attached key, unless admin
 *   LeaseTimeToLive(keys) READ on every attached key, unless admin
 *   LeaseLeases           READ on every key of every lease, unless admin
 */
import type { etcdserverpb, serverpb } from '../pb/index.js';
import { AuthError } from './errors.js';
import type { AuthInfo } from './tokens.js';

/** What the checks need from the store (AuthStore implements it). */
export interface PermissionChecks {
  isEnabled(): boolean;
  isRangePermitted(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): AuthError | undefined;
  isPutPermitted(ai: AuthInfo | undefined, key: Uint8Array): AuthError | undefined;
  isDeleteRangePermitted(ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): AuthError | undefined;
  isAdminPermitted(ai: AuthInfo | undefined): AuthError | undefined;
}

/** The keys attached to a lease now (lessor.lookup(id)?.keys()); undefined when there is no such lease. */
export type LeaseKeysLookup = (leaseId: bigint) => readonly Uint8Array[] | undefined;

/**
 * Who an applied entry runs as: the header's user and auth revision, or
 * undefined when the proposer named no user (auth was off, or no token). A
 * client certificate without a CN names the user "" at a revision: etcd
 * refuses it as a user without grants (permission denied).
 */
export function authInfoFromHeader(header: serverpb.RequestHeader | undefined): AuthInfo | undefined {
  if (header === undefined || (header.username === '' && header.authRevision === 0)) return undefined;
  return { username: header.username, revision: header.authRevision };
}

/** Txns nested deeper than this are refused outright (the API layer bounds them far lower). */
export const txnNestingMax = 64;

const noKey = new Uint8Array(0);

export function checkRangeRequest(c: PermissionChecks, ai: AuthInfo | undefined, r: etcdserverpb.RangeRequest): AuthError | undefined {
  if (!c.isEnabled()) return undefined;
  return c.isRangePermitted(ai, r.key, r.rangeEnd);
}

/** WRITE on every key attached to the lease, unless admin (attaching would let the user revoke them). */
function checkLeaseKeysWritable(c: PermissionChecks, ai: AuthInfo | undefined, keys: readonly Uint8Array[] | undefined): AuthError | undefined {
  if (keys === undefined || keys.length === 0) return undefined;
  if (c.isAdminPermitted(ai) === undefined) return undefined;
  for (const key of keys) {
    const err = c.isPutPermitted(ai, key);
    if (err !== undefined) return err;
  }
  return undefined;
}

export function checkPutRequest(
  c: PermissionChecks,
  ai: AuthInfo | undefined,
  r: etcdserverpb.PutRequest,
  leaseKeys: LeaseKeysLookup,
): AuthError | undefined {
  if (!c.isEnabled()) return undefined;
  const err = c.isPutPermitted(ai, r.key);
  if (err !== undefined) return err;
  if (r.lease !== 0n) {
    const leaseErr = checkLeaseKeysWritable(c, ai, leaseKeys(r.lease));
    if (leaseErr !== undefined) return leaseErr;
  }
  return r.prevKv ? c.isRangePermitted(ai, r.key, noKey) : undefined;
}

export function checkDeleteRangeRequest(
  c: PermissionChecks,
  ai: AuthInfo | undefined,
  r: etcdserverpb.DeleteRangeRequest,
): AuthError | undefined {
  if (!c.isEnabled()) return undefined;
  const err = c.isDeleteRangePermitted(ai, r.key, r.rangeEnd);
  if (err !== undefined) return err;
  return r.prevKv ? c.isRangePermitted(ai, r.key, r.rangeEnd) : undefined;
}

function checkOps(
  c: PermissionChecks,
  ai: AuthInfo | undefined,
  ops: readonly etcdserverpb.RequestOp[],
  leaseKeys: LeaseKeysLookup,
  depth: number,
): AuthError | undefined {
  for (const op of ops) {
    const req = op.request;
    if (req === undefined) continue;
    let err: AuthError | undefined;
    switch (req.case) {
      case 'requestRange':
        err = checkRangeRequest(c, ai, req.value);
        break;
      case 'requestPut':
        err = checkPutRequest(c, ai, req.value, leaseKeys);
        break;
      case 'requestDeleteRange':
        err = checkDeleteRangeRequest(c, ai, req.value);
        break;
      case 'requestTxn':
        err = checkTxnAt(c, ai, req.value, leaseKeys, depth + 1);
        break;
    }
    if (err !== undefined) return err;
  }
  return undefined;
}

function checkTxnAt(
  c: PermissionChecks,
  ai: AuthInfo | undefined,
  txn: etcdserverpb.TxnRequest,
  leaseKeys: LeaseKeysLookup,
  depth: number,
): AuthError | undefined {
  if (depth > txnNestingMax) return new AuthError('PermissionDenied');
  for (const cmp of txn.compare) {
    const err = c.isRangePermitted(ai, cmp.key, cmp.rangeEnd);
    if (err !== undefined) return err;
  }
  // Both branches: which one runs is only known at apply, and either may read or write.
  return checkOps(c, ai, txn.success, leaseKeys, depth) ?? checkOps(c, ai, txn.failure, leaseKeys, depth);
}

export function checkTxnRequest(
  c: PermissionChecks,
  ai: AuthInfo | undefined,
  txn: etcdserverpb.TxnRequest,
  leaseKeys: LeaseKeysLookup,
): AuthError | undefined {
  if (!c.isEnabled()) return undefined;
  return checkTxnAt(c, ai, txn, leaseKeys, 0);
}

/**
 * A watch on the create request's key and range_end exactly as the client
 * sent them. Rewriting "\x00" to an empty range end first (as etcd's watch
 * server did) turns a from-key watch into a one-key check: GHSA-xg4h-6gfc-h4m8.
 */
export function checkWatchCreate(c: PermissionChecks, ai: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): AuthError | undefined {
  if (!c.isEnabled()) return undefined;
  return c.isRangePermitted(ai, key, rangeEnd);
}

/** Any RPC that needs an authenticated caller when auth is on (LeaseGrant, KeepAlive, MemberList, Alarm, ...). */
export function requireAuthInfo(c: PermissionChecks, ai: AuthInfo | undefined): AuthError | undefined {
  if (!c.isEnabled()) return undefined;
  return ai === undefined || ai.username === '' ? new AuthError('UserEmpty') : undefined;
}

function checkEveryKey(
  c: PermissionChecks,
  ai: AuthInfo | undefined,
  keys: Iterable<Uint8Array>,
  write: boolean,
): AuthError | undefined {
  const err = requireAuthInfo(c, ai);
  if (err !== undefined || !c.isEnabled()) return err;
  const admin = c.isAdminPermitted(ai) === undefined;
  for (const key of keys) {
    const err = write ? c.isPutPermitted(ai, key) : c.isRangePermitted(ai, key, noKey);
    if (err !== undefined) return err;
    // A root-role holder passes a key's check unless its token is stale, which the first key
    // tells (as etcd, which checks the token's revision for each key, root's too): one is enough.
    if (admin) return undefined;
  }
  return undefined;
}

/** LeaseRevoke: the caller must be able to write every key the revocation deletes. */
export function checkLeaseRevoke(c: PermissionChecks, ai: AuthInfo | undefined, attachedKeys: Iterable<Uint8Array>): AuthError | undefined {
  return checkEveryKey(c, ai, attachedKeys, true);
}

/** LeaseTimeToLive with keys=true, as etcd (PR #15815): denied unless every attached key is readable. */
export function checkLeaseTimeToLive(c: PermissionChecks, ai: AuthInfo | undefined, attachedKeys: Iterable<Uint8Array>): AuthError | undefined {
  return checkEveryKey(c, ai, attachedKeys, false);
}

/** LeaseLeases: every key of every lease must be readable, unless admin. */
export function checkLeaseLeases(c: PermissionChecks, ai: AuthInfo | undefined, allAttachedKeys: Iterable<Uint8Array>): AuthError | undefined {
  return checkEveryKey(c, ai, allAttachedKeys, false);
}

/** Raft requests that need the root role at apply (auth management), as etcd's needAdminPermission. */
export function requiresAdmin(r: serverpb.InternalRaftRequest): boolean {
  switch (r.request?.case) {
    case 'authEnable':
    case 'authDisable':
    case 'authUserAdd':
    case 'authUserDelete':
    case 'authUserChangePassword':
    case 'authUserGrantRole':
    case 'authUserRevokeRole':
    case 'authRoleAdd':
    case 'authRoleDelete':
    case 'authRoleGrantPermission':
    case 'authRoleRevokePermission':
      return true;
    case 'put':
    case 'deleteRange':
    case 'txn':
    case 'compaction':
    case 'leaseGrant':
    case 'leaseRevoke':
    case 'alarm':
    case 'leaseCheckpoint':
    case 'memberAttributesSet':
    case 'clusterVersionSet':
    case 'authenticate':
    case undefined:
      return false;
  }
}
