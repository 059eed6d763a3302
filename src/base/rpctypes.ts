/**
 * rpctypes: the errors etcd's server and its clients agree on — each one's gRPC
 * status and exact message (etcd 3.4.23's api/v3rpc/rpctypes, features.md
 * §1.10). The server reports these; the client recognises them by their text,
 * as clientv3 does. Statuses are gRPC's code names so that this table needs no
 * transport: `grpc` turns a name into its number.
 */

export type GrpcStatusName =
  | 'CANCELLED'
  | 'UNKNOWN'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'DATA_LOSS'
  | 'UNAUTHENTICATED';

export interface RpcError {
  readonly status: GrpcStatusName;
  readonly message: string;
}

/** By etcd's names (ErrGRPC<name>). */
export const rpcErrors = {
  EmptyKey: { status: 'INVALID_ARGUMENT', message: 'etcdserver: key is not provided' },
  KeyNotFound: { status: 'INVALID_ARGUMENT', message: 'etcdserver: key not found' },
  ValueProvided: { status: 'INVALID_ARGUMENT', message: 'etcdserver: value is provided' },
  LeaseProvided: { status: 'INVALID_ARGUMENT', message: 'etcdserver: lease is provided' },
  TooManyOps: { status: 'INVALID_ARGUMENT', message: 'etcdserver: too many operations in txn request' },
  DuplicateKey: { status: 'INVALID_ARGUMENT', message: 'etcdserver: duplicate key given in txn request' },
  InvalidSortOption: { status: 'INVALID_ARGUMENT', message: 'etcdserver: invalid sort option' },
  Compacted: { status: 'OUT_OF_RANGE', message: 'etcdserver: mvcc: required revision has been compacted' },
  FutureRev: { status: 'OUT_OF_RANGE', message: 'etcdserver: mvcc: required revision is a future revision' },
  NoSpace: { status: 'RESOURCE_EXHAUSTED', message: 'etcdserver: mvcc: database space exceeded' },
  LeaseNotFound: { status: 'NOT_FOUND', message: 'etcdserver: requested lease not found' },
  LeaseExist: { status: 'FAILED_PRECONDITION', message: 'etcdserver: lease already exists' },
  LeaseTTLTooLarge: { status: 'OUT_OF_RANGE', message: 'etcdserver: too large lease TTL' },
  WatchCanceled: { status: 'CANCELLED', message: 'etcdserver: watch canceled' },
  MemberExist: { status: 'FAILED_PRECONDITION', message: 'etcdserver: member ID already exist' },
  PeerURLExist: { status: 'FAILED_PRECONDITION', message: 'etcdserver: Peer URLs already exists' },
  // rpctypes declares it FailedPrecondition, but 3.4.23's server never maps its error
  // there: member add, remove and promote answer it Unknown (HTTP 500 on the gateway).
  MemberNotEnoughStarted: {
    status: 'UNKNOWN',
    message: 'etcdserver: re-configuration failed due to not enough started members',
  },
  MemberBadURLs: { status: 'INVALID_ARGUMENT', message: 'etcdserver: given member URLs are invalid' },
  MemberNotFound: { status: 'NOT_FOUND', message: 'etcdserver: member not found' },
  MemberNotLearner: { status: 'FAILED_PRECONDITION', message: 'etcdserver: can only promote a learner member' },
  LearnerNotReady: {
    status: 'FAILED_PRECONDITION',
    message: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  TooManyLearners: { status: 'FAILED_PRECONDITION', message: 'etcdserver: too many learner members in cluster' },
  RequestTooLarge: { status: 'INVALID_ARGUMENT', message: 'etcdserver: request is too large' },
  TooManyRequests: { status: 'RESOURCE_EXHAUSTED', message: 'etcdserver: too many requests' },
  RootUserNotExist: { status: 'FAILED_PRECONDITION', message: 'etcdserver: root user does not exist' },
  RootRoleNotExist: { status: 'FAILED_PRECONDITION', message: 'etcdserver: root user does not have root role' },
  UserAlreadyExist: { status: 'FAILED_PRECONDITION', message: 'etcdserver: user name already exists' },
  UserEmpty: { status: 'INVALID_ARGUMENT', message: 'etcdserver: user name is empty' },
  UserNotFound: { status: 'FAILED_PRECONDITION', message: 'etcdserver: user name not found' },
  RoleAlreadyExist: { status: 'FAILED_PRECONDITION', message: 'etcdserver: role name already exists' },
  RoleNotFound: { status: 'FAILED_PRECONDITION', message: 'etcdserver: role name not found' },
  RoleEmpty: { status: 'INVALID_ARGUMENT', message: 'etcdserver: role name is empty' },
  AuthFailed: { status: 'INVALID_ARGUMENT', message: 'etcdserver: authentication failed, invalid user ID or password' },
  PermissionNotGiven: { status: 'INVALID_ARGUMENT', message: 'etcdserver: permission not given' },
  PermissionDenied: { status: 'PERMISSION_DENIED', message: 'etcdserver: permission denied' },
  RoleNotGranted: { status: 'FAILED_PRECONDITION', message: 'etcdserver: role is not granted to the user' },
  PermissionNotGranted: { status: 'FAILED_PRECONDITION', message: 'etcdserver: permission is not granted to the role' },
  AuthNotEnabled: { status: 'FAILED_PRECONDITION', message: 'etcdserver: authentication is not enabled' },
  InvalidAuthToken: { status: 'UNAUTHENTICATED', message: 'etcdserver: invalid auth token' },
  InvalidAuthMgmt: { status: 'INVALID_ARGUMENT', message: 'etcdserver: invalid auth management' },
  AuthOldRevision: { status: 'INVALID_ARGUMENT', message: 'etcdserver: revision of auth store is old' },
  NoLeader: { status: 'UNAVAILABLE', message: 'etcdserver: no leader' },
  NotLeader: { status: 'FAILED_PRECONDITION', message: 'etcdserver: not leader' },
  LeaderChanged: { status: 'UNAVAILABLE', message: 'etcdserver: leader changed' },
  NotCapable: { status: 'UNAVAILABLE', message: 'etcdserver: not capable' },
  Stopped: { status: 'UNAVAILABLE', message: 'etcdserver: server stopped' },
  Timeout: { status: 'UNAVAILABLE', message: 'etcdserver: request timed out' },
  TimeoutDueToLeaderFail: {
    status: 'UNAVAILABLE',
    message: 'etcdserver: request timed out, possibly due to previous leader failure',
  },
  TimeoutDueToConnectionLost: {
    status: 'UNAVAILABLE',
    message: 'etcdserver: request timed out, possibly due to connection lost',
  },
  TimeoutWaitAppliedIndex: {
    status: 'UNAVAILABLE',
    message: 'etcdserver: request timed out, waiting for the applied index took too long',
  },
  Unhealthy: { status: 'UNAVAILABLE', message: 'etcdserver: unhealthy cluster' },
  Corrupt: { status: 'DATA_LOSS', message: 'etcdserver: corrupt cluster' },
  NotSupportedForLearner: { status: 'UNAVAILABLE', message: 'etcdserver: rpc not supported for learner' },
  BadLeaderTransferee: { status: 'FAILED_PRECONDITION', message: 'etcdserver: bad leader transferee' },
  Canceled: { status: 'CANCELLED', message: 'context canceled' },
} as const satisfies Record<string, RpcError>;

export type RpcErrorName = keyof typeof rpcErrors;

const byMessage = new Map<string, RpcErrorName>(
  (Object.keys(rpcErrors) as RpcErrorName[]).map((name) => [rpcErrors[name].message, name]),
);

/** The error etcd reports with this exact text, if it is one of the table's. */
export function rpcErrorByMessage(message: string): RpcErrorName | undefined {
  return byMessage.get(message);
}
