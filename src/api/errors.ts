/**
 * The ONE table from expected failures to what etcd's clients see: a gRPC
 * status code and etcd's exact message (etcd 3.4.23's rpctypes/error.go, see
 * shared/reference/features.md §1.10). Clients match these strings.
 *
 * Every module's typed errors carry a stable `code`; toGrpcError() looks it up
 * here. Anything else is a bug and becomes UNKNOWN with its message, as grpc-go
 * reports a non-status error.
 */
export const grpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusCode = (typeof grpcStatus)[keyof typeof grpcStatus];

interface EtcdError {
  readonly status: GrpcStatusCode;
  readonly message: string;
}

const s = grpcStatus;

/** rpctypes errors by name (ErrGRPC<name> in etcd). */
export const etcdErrors = {
  EmptyKey: { status: s.INVALID_ARGUMENT, message: 'etcdserver: key is not provided' },
  KeyNotFound: { status: s.INVALID_ARGUMENT, message: 'etcdserver: key not found' },
  ValueProvided: { status: s.INVALID_ARGUMENT, message: 'etcdserver: value is provided' },
  LeaseProvided: { status: s.INVALID_ARGUMENT, message: 'etcdserver: lease is provided' },
  TooManyOps: { status: s.INVALID_ARGUMENT, message: 'etcdserver: too many operations in txn request' },
  DuplicateKey: { status: s.INVALID_ARGUMENT, message: 'etcdserver: duplicate key given in txn request' },
  InvalidSortOption: { status: s.INVALID_ARGUMENT, message: 'etcdserver: invalid sort option' },
  Compacted: { status: s.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision has been compacted' },
  FutureRev: { status: s.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision is a future revision' },
  NoSpace: { status: s.RESOURCE_EXHAUSTED, message: 'etcdserver: mvcc: database space exceeded' },
  LeaseNotFound: { status: s.NOT_FOUND, message: 'etcdserver: requested lease not found' },
  LeaseExist: { status: s.FAILED_PRECONDITION, message: 'etcdserver: lease already exists' },
  LeaseTTLTooLarge: { status: s.OUT_OF_RANGE, message: 'etcdserver: too large lease TTL' },
  WatchCanceled: { status: s.CANCELLED, message: 'etcdserver: watch canceled' },
  MemberExist: { status: s.FAILED_PRECONDITION, message: 'etcdserver: member ID already exist' },
  PeerURLExist: { status: s.FAILED_PRECONDITION, message: 'etcdserver: Peer URLs already exists' },
  MemberNotEnoughStarted: {
    status: s.FAILED_PRECONDITION,
    message: 'etcdserver: re-configuration failed due to not enough started members',
  },
  MemberBadURLs: { status: s.INVALID_ARGUMENT, message: 'etcdserver: given member URLs are invalid' },
  MemberNotFound: { status: s.NOT_FOUND, message: 'etcdserver: member not found' },
  MemberNotLearner: { status: s.FAILED_PRECONDITION, message: 'etcdserver: can only promote a learner member' },
  LearnerNotReady: {
    status: s.FAILED_PRECONDITION,
    message: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  TooManyLearners: { status: s.FAILED_PRECONDITION, message: 'etcdserver: too many learner members in cluster' },
  RequestTooLarge: { status: s.INVALID_ARGUMENT, message: 'etcdserver: request is too large' },
  TooManyRequests: { status: s.RESOURCE_EXHAUSTED, message: 'etcdserver: too many requests' },
  RootUserNotExist: { status: s.FAILED_PRECONDITION, message: 'etcdserver: root user does not exist' },
  RootRoleNotExist: { status: s.FAILED_PRECONDITION, message: 'etcdserver: root user does not have root role' },
  UserAlreadyExist: { status: s.FAILED_PRECONDITION, message: 'etcdserver: user name already exists' },
  UserEmpty: { status: s.INVALID_ARGUMENT, message: 'etcdserver: user name is empty' },
  UserNotFound: { status: s.FAILED_PRECONDITION, message: 'etcdserver: user name not found' },
  RoleAlreadyExist: { status: s.FAILED_PRECONDITION, message: 'etcdserver: role name already exists' },
  RoleNotFound: { status: s.FAILED_PRECONDITION, message: 'etcdserver: role name not found' },
  RoleEmpty: { status: s.INVALID_ARGUMENT, message: 'etcdserver: role name is empty' },
  AuthFailed: { status: s.INVALID_ARGUMENT, message: 'etcdserver: authentication failed, invalid user ID or password' },
  PermissionNotGiven: { status: s.INVALID_ARGUMENT, message: 'etcdserver: permission not given' },
  PermissionDenied: { status: s.PERMISSION_DENIED, message: 'etcdserver: permission denied' },
  RoleNotGranted: { status: s.FAILED_PRECONDITION, message: 'etcdserver: role is not granted to the user' },
  PermissionNotGranted: { status: s.FAILED_PRECONDITION, message: 'etcdserver: permission is not granted to the role' },
  AuthNotEnabled: { status: s.FAILED_PRECONDITION, message: 'etcdserver: authentication is not enabled' },
  InvalidAuthToken: { status: s.UNAUTHENTICATED, message: 'etcdserver: invalid auth token' },
  InvalidAuthMgmt: { status: s.INVALID_ARGUMENT, message: 'etcdserver: invalid auth management' },
  AuthOldRevision: { status: s.INVALID_ARGUMENT, message: 'etcdserver: revision of auth store is old' },
  NoLeader: { status: s.UNAVAILABLE, message: 'etcdserver: no leader' },
  NotLeader: { status: s.FAILED_PRECONDITION, message: 'etcdserver: not leader' },
  LeaderChanged: { status: s.UNAVAILABLE, message: 'etcdserver: leader changed' },
  NotCapable: { status: s.UNAVAILABLE, message: 'etcdserver: not capable' },
  Stopped: { status: s.UNAVAILABLE, message: 'etcdserver: server stopped' },
  Timeout: { status: s.UNAVAILABLE, message: 'etcdserver: request timed out' },
  TimeoutDueToLeaderFail: {
    status: s.UNAVAILABLE,
    message: 'etcdserver: request timed out, possibly due to previous leader failure',
  },
  TimeoutDueToConnectionLost: {
    status: s.UNAVAILABLE,
    message: 'etcdserver: request timed out, possibly due to connection lost',
  },
  TimeoutWaitAppliedIndex: {
    status: s.UNAVAILABLE,
    message: 'etcdserver: request timed out, waiting for the applied index took too long',
  },
  Unhealthy: { status: s.UNAVAILABLE, message: 'etcdserver: unhealthy cluster' },
  Corrupt: { status: s.DATA_LOSS, message: 'etcdserver: corrupt cluster' },
  NotSupportedForLearner: { status: s.UNAVAILABLE, message: 'etcdserver: rpc not supported for learner' },
  BadLeaderTransferee: { status: s.FAILED_PRECONDITION, message: 'etcdserver: bad leader transferee' },
  Canceled: { status: s.CANCELLED, message: 'context canceled' },
} as const satisfies Record<string, EtcdError>;

export type EtcdErrorName = keyof typeof etcdErrors;

/**
 * Module error codes that are spelt differently from etcd's names (each
 * module names its errors for its own domain).
 */
const aliases: Readonly<Record<string, EtcdErrorName>> = {
  ErrCompacted: 'Compacted',
  ErrFutureRev: 'FutureRev',
  ErrKeyNotFound: 'KeyNotFound',
  ErrLeaseNotFound: 'LeaseNotFound',
  ErrLeaseExists: 'LeaseExist',
  ErrLeaseExist: 'LeaseExist',
  ErrLeaseTTLTooLarge: 'LeaseTTLTooLarge',
  ErrEmptyKey: 'EmptyKey',
  ErrTooManyOps: 'TooManyOps',
  ErrDuplicateKey: 'DuplicateKey',
  ErrValueProvided: 'ValueProvided',
  ErrLeaseProvided: 'LeaseProvided',
  ErrInvalidSortOption: 'InvalidSortOption',
  ErrNoSpace: 'NoSpace',
  'lease-not-found': 'LeaseNotFound',
  compacted: 'Compacted',
  'future-rev': 'FutureRev',
  'key-not-found': 'KeyNotFound',
  'empty-key': 'EmptyKey',
  'too-many-ops': 'TooManyOps',
  'duplicate-key': 'DuplicateKey',
  'value-provided': 'ValueProvided',
  'lease-provided': 'LeaseProvided',
  'invalid-sort-option': 'InvalidSortOption',
  'lease-exists': 'LeaseExist',
  'lease-ttl-too-large': 'LeaseTTLTooLarge',
  // etcd reports a removed member as not found.
  IDRemoved: 'MemberNotFound',
};

export function lookupEtcdError(code: string): EtcdError | undefined {
  if (Object.hasOwn(etcdErrors, code)) return etcdErrors[code as EtcdErrorName];
  const alias = aliases[code];
  return alias === undefined ? undefined : etcdErrors[alias];
}

/** The status and message a failure is reported with. */
export function statusOf(err: unknown): EtcdError {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    const known = lookupEtcdError(err.code);
    if (known !== undefined) return known;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: grpcStatus.UNKNOWN, message };
}
