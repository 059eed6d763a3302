/**
 * auth: users, roles, key-range permissions, tokens and passwords, with
 * etcd 3.4.23's rules and errors and the later RBAC fixes.
 *
 * Promises:
 * - AuthStore state (users, roles, enabled flag, auth revision) changes only
 *   in apply, deterministically, written through AuthBackend inside the
 *   caller's apply transaction. Members fed the same log hold the same state.
 * - No password ever enters apply, the raft log, the WAL, the backend or a
 *   log line: the API layer hashes (BcryptPool, off the main thread) and
 *   proposes the hash base64-encoded in `hashedPassword`; apply refuses a
 *   plaintext `password`. Tokens are never logged.
 * - Permission checks are one code path for every RPC (request-checks.ts):
 *   nested txns, prev_kv, lease attachments, from-key watches and lease key
 *   listings are all checked. A user's grants are merged into sorted
 *   disjoint intervals (cached per user, dropped on any auth change); a key
 *   check is a binary search. Interval semantics are exactly etcd's:
 *   range_end empty = one key, "\x00" = from key on, else [key, range_end).
 * - Expected failures are AuthError with a stable `code`: etcd's rpctypes
 *   name without `ErrGRPC` (src/api/errors.ts maps it to status + message).
 * - Tokens: `simple` (`<16 letters>.<raft index>`, minted in apply on every
 *   member, expiring --auth-token-ttl after last use on the local clock) and
 *   `jwt` (signed {exp, revision, username}); newTokenProvider parses
 *   `--auth-token` as etcd does.
 *
 * On-disk format (schema implements AuthBackend): users and roles keyed by
 * name, values encoded authpb.User / authpb.Role (password = bcrypt hash
 * bytes); enabled flag and auth revision (uint64). See backend.ts.
 */
export { AuthError, authErrorMessages, isAuthError, type AuthErrorCode } from './errors.js';
export { MemoryAuthBackend, type AuthBackend, type AuthState } from './backend.js';
export { AuthStore, rootRole, rootUser, type AuthStatus, type AuthStoreOptions } from './store.js';
export { isOpenEnded, isValidPermissionRange, KeyRangeSet, UserPermissions, type KeyInterval } from './range-perms.js';
export {
  authInfoFromHeader,
  checkDeleteRangeRequest,
  checkLeaseLeases,
  checkLeaseRevoke,
  checkLeaseTimeToLive,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  checkWatchCreate,
  requireAuthInfo,
  requiresAdmin,
  txnNestingMax,
  type LeaseKeysLookup,
  type PermissionChecks,
} from './request-checks.js';
export {
  NopTokenProvider,
  randomSimpleTokenPrefix,
  SimpleTokenProvider,
  simpleTokenPrefixLength,
  type AssignContext,
  type AuthInfo,
  type SimpleTokenOptions,
  type TokenProvider,
} from './tokens.js';
export { isJwtSignMethod, JwtTokenProvider, jwtSignMethods, jwtTokenBytesMax, type JwtKeyOptions, type JwtSignMethod } from './jwt.js';
export {
  jwtDefaultTtlMs,
  newTokenProvider,
  parseAuthTokenOption,
  parseGoDurationMs,
  type AuthTokenConfig,
  type TokenProviderDeps,
} from './token-options.js';
export {
  BcryptPool,
  bcryptDefaultCost,
  bcryptMaxCost,
  bcryptMinCost,
  normalizeBcryptCost,
  warnIfBcryptCostInvalid,
  type BcryptPoolOptions,
} from './bcrypt-pool.js';
export { encodeHashedPassword, hashPasswordForProposal, prepareUserAdd, prepareUserChangePassword } from './password.js';
export { compareUtf8 } from './utf8-order.js';
