/**
 * The checks the API layer runs before it asks the member for anything,
 * re-exported from the modules that own them so src/api depends on the
 * server alone (DESIGN.md §2): etcd's request validation (mvcc) and the
 * permission checks shared by every path (auth).
 */
import * as auth from '../auth/index.js';
import * as mvcc from '../mvcc/index.js';

export const kvChecks = {
  range: mvcc.checkRangeRequest,
  put: mvcc.checkPutRequest,
  deleteRange: mvcc.checkDeleteRangeRequest,
  txn: mvcc.checkTxnRequest,
} as const;

export const authChecks = {
  range: auth.checkRangeRequest,
  txn: auth.checkTxnRequest,
  watchCreate: auth.checkWatchCreate,
  requireAuthInfo: auth.requireAuthInfo,
  leaseRevoke: auth.checkLeaseRevoke,
  leaseTimeToLive: auth.checkLeaseTimeToLive,
  leaseLeases: auth.checkLeaseLeases,
} as const;

export const authPasswords = {
  normalizeBcryptCost: auth.normalizeBcryptCost,
  prepareUserAdd: auth.prepareUserAdd,
  prepareUserChangePassword: auth.prepareUserChangePassword,
} as const;

export { AuthError, isAuthError } from '../auth/index.js';
