/**
 * Expected auth failures as one typed error class. The `code` is stable: it
 * is etcd's rpctypes name without the `ErrGRPC` prefix, which is what
 * src/api/errors.ts looks up to answer with etcd's gRPC status and message.
 * Codes that etcd never maps to a gRPC status (NoPasswordUser, VerifyOnly,
 * the token-option errors) carry etcd's own `auth: ...` text as the message,
 * because that text is what a client sees from etcd (as status Unknown).
 */

export const authErrorMessages = {
  RootUserNotExist: 'etcdserver: root user does not exist',
  RootRoleNotExist: 'etcdserver: root user does not have root role',
  UserAlreadyExist: 'etcdserver: user name already exists',
  UserEmpty: 'etcdserver: user name is empty',
  UserNotFound: 'etcdserver: user name not found',
  RoleAlreadyExist: 'etcdserver: role name already exists',
  RoleNotFound: 'etcdserver: role name not found',
  RoleEmpty: 'etcdserver: role name is empty',
  AuthFailed: 'etcdserver: authentication failed, invalid user ID or password',
  PermissionNotGiven: 'etcdserver: permission not given',
  PermissionDenied: 'etcdserver: permission denied',
  RoleNotGranted: 'etcdserver: role is not granted to the user',
  PermissionNotGranted: 'etcdserver: permission is not granted to the role',
  AuthNotEnabled: 'etcdserver: authentication is not enabled',
  InvalidAuthToken: 'etcdserver: invalid auth token',
  InvalidAuthMgmt: 'etcdserver: invalid auth management',
  AuthOldRevision: 'etcdserver: revision of auth store is old',
  TooManyRequests: 'etcdserver: too many requests',
  // Not in etcd's rpctypes table: clients get these texts with status Unknown.
  NoPasswordUser: 'auth: authentication failed, password was given for no password user',
  VerifyOnly: 'auth: token signing attempted with verify-only key',
  InvalidAuthOpts: 'auth: invalid auth options',
  InvalidAuthMethod: 'auth: invalid auth signature method',
  MissingKey: 'auth: missing key data',
  KeyMismatch: 'auth: public and private keys don\'t match',
} as const;

export type AuthErrorCode = keyof typeof authErrorMessages;

/**
 * An expected failure. It carries no stack trace: a denial is an answer, not
 * a bug, and capturing a stack would make a denied request cost ~10x an
 * allowed one (a client probing keys it may not read must stay cheap).
 */
export class AuthError extends Error {
  override readonly name: 'AuthError';
  readonly code: AuthErrorCode;

  /** `detail` (never a password or token) goes after etcd's text, for startup errors only. */
  constructor(code: AuthErrorCode, detail?: string) {
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(detail === undefined ? authErrorMessages[code] : `${authErrorMessages[code]}: ${detail}`);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = 'AuthError';
    this.code = code;
  }
}

export function isAuthError(err: unknown, code?: AuthErrorCode): err is AuthError {
  return err instanceof AuthError && (code === undefined || err.code === code);
}
