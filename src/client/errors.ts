/**
 * The errors the client throws. Every failed call becomes one ClientError whose
 * message is what etcd's Go client (clientv3 3.4) would print for it, because
 * etcdctl prints exactly that and callers match on it:
 *
 * - a known etcd server error carries etcd's text, e.g. "etcdserver: mvcc:
 *   required revision has been compacted" (rpctypes' table);
 * - a deadline or cancellation of the caller's own context reads "context
 *   deadline exceeded" / "context canceled";
 * - anything else is grpc-go's "rpc error: code = <Name> desc = <text>".
 *
 * `code` is a stable name to switch on; `grpcCode` the numeric gRPC status.
 */
import { GrpcError, GrpcStatus, statusName, type GrpcStatusCode } from '../grpc/index.js';

const S = GrpcStatus;

/** etcd 3.4's server errors as clients see them (api/v3rpc/rpctypes): gRPC status and exact text. */
const etcdErrors = {
  EMPTY_KEY: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: key is not provided' },
  KEY_NOT_FOUND: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: key not found' },
  VALUE_PROVIDED: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: value is provided' },
  LEASE_PROVIDED: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: lease is provided' },
  TOO_MANY_OPS: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: too many operations in txn request' },
  DUPLICATE_KEY: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: duplicate key given in txn request' },
  COMPACTED: { grpcCode: S.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision has been compacted' },
  FUTURE_REV: { grpcCode: S.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision is a future revision' },
  NO_SPACE: { grpcCode: S.RESOURCE_EXHAUSTED, message: 'etcdserver: mvcc: database space exceeded' },
  LEASE_NOT_FOUND: { grpcCode: S.NOT_FOUND, message: 'etcdserver: requested lease not found' },
  LEASE_EXIST: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: lease already exists' },
  LEASE_TTL_TOO_LARGE: { grpcCode: S.OUT_OF_RANGE, message: 'etcdserver: too large lease TTL' },
  MEMBER_EXIST: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: member ID already exist' },
  PEER_URL_EXIST: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: Peer URLs already exists' },
  MEMBER_NOT_ENOUGH_STARTED: {
    grpcCode: S.FAILED_PRECONDITION,
    message: 'etcdserver: re-configuration failed due to not enough started members',
  },
  MEMBER_BAD_URLS: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: given member URLs are invalid' },
  MEMBER_NOT_FOUND: { grpcCode: S.NOT_FOUND, message: 'etcdserver: member not found' },
  MEMBER_NOT_LEARNER: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: can only promote a learner member' },
  LEARNER_NOT_READY: {
    grpcCode: S.FAILED_PRECONDITION,
    message: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  TOO_MANY_LEARNERS: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: too many learner members in cluster' },
  REQUEST_TOO_LARGE: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: request is too large' },
  TOO_MANY_REQUESTS: { grpcCode: S.RESOURCE_EXHAUSTED, message: 'etcdserver: too many requests' },
  ROOT_USER_NOT_EXIST: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: root user does not exist' },
  ROOT_ROLE_NOT_EXIST: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: root user does not have root role' },
  USER_ALREADY_EXIST: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: user name already exists' },
  USER_EMPTY: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: user name is empty' },
  USER_NOT_FOUND: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: user name not found' },
  ROLE_ALREADY_EXIST: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: role name already exists' },
  ROLE_NOT_FOUND: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: role name not found' },
  ROLE_EMPTY: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: role name is empty' },
  AUTH_FAILED: {
    grpcCode: S.INVALID_ARGUMENT,
    message: 'etcdserver: authentication failed, invalid user ID or password',
  },
  PERMISSION_DENIED: { grpcCode: S.PERMISSION_DENIED, message: 'etcdserver: permission denied' },
  ROLE_NOT_GRANTED: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: role is not granted to the user' },
  PERMISSION_NOT_GRANTED: {
    grpcCode: S.FAILED_PRECONDITION,
    message: 'etcdserver: permission is not granted to the role',
  },
  AUTH_NOT_ENABLED: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: authentication is not enabled' },
  INVALID_AUTH_TOKEN: { grpcCode: S.UNAUTHENTICATED, message: 'etcdserver: invalid auth token' },
  INVALID_AUTH_MGMT: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: invalid auth management' },
  AUTH_OLD_REVISION: { grpcCode: S.INVALID_ARGUMENT, message: 'etcdserver: revision of auth store is old' },
  NO_LEADER: { grpcCode: S.UNAVAILABLE, message: 'etcdserver: no leader' },
  NOT_LEADER: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: not leader' },
  LEADER_CHANGED: { grpcCode: S.UNAVAILABLE, message: 'etcdserver: leader changed' },
  NOT_CAPABLE: { grpcCode: S.UNAVAILABLE, message: 'etcdserver: not capable' },
  STOPPED: { grpcCode: S.UNAVAILABLE, message: 'etcdserver: server stopped' },
  TIMEOUT: { grpcCode: S.UNAVAILABLE, message: 'etcdserver: request timed out' },
  TIMEOUT_DUE_TO_LEADER_FAIL: {
    grpcCode: S.UNAVAILABLE,
    message: 'etcdserver: request timed out, possibly due to previous leader failure',
  },
  TIMEOUT_DUE_TO_CONNECTION_LOST: {
    grpcCode: S.UNAVAILABLE,
    message: 'etcdserver: request timed out, possibly due to connection lost',
  },
  TIMEOUT_WAIT_APPLIED_INDEX: {
    grpcCode: S.UNAVAILABLE,
    message: 'etcdserver: request timed out, waiting for the applied index took too long',
  },
  UNHEALTHY: { grpcCode: S.UNAVAILABLE, message: 'etcdserver: unhealthy cluster' },
  CORRUPT: { grpcCode: S.DATA_LOSS, message: 'etcdserver: corrupt cluster' },
  NOT_SUPPORTED_FOR_LEARNER: { grpcCode: S.UNAVAILABLE, message: 'etcdserver: rpc not supported for learner' },
  BAD_LEADER_TRANSFEREE: { grpcCode: S.FAILED_PRECONDITION, message: 'etcdserver: bad leader transferee' },
} as const satisfies Record<string, { readonly grpcCode: GrpcStatusCode; readonly message: string }>;

export type EtcdErrorCode = keyof typeof etcdErrors;

const byMessage = new Map<string, EtcdErrorCode>(
  (Object.keys(etcdErrors) as EtcdErrorCode[]).map((code) => [etcdErrors[code].message, code]),
);

/** The stable codes: known etcd errors by name, plus the client's own. */
export const ErrorCode = {
  ...(Object.fromEntries(Object.keys(etcdErrors).map((k) => [k, k])) as { readonly [K in EtcdErrorCode]: K }),
  /** The caller's deadline passed ("context deadline exceeded"). */
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  /** The caller cancelled ("context canceled"), or the client was closed. */
  CANCELED: 'CANCELED',
  /** Any other gRPC failure: code and text as grpc-go prints them. */
  GRPC: 'GRPC',
  /** A failure of the client itself (no endpoints, bad endpoint, lost lease, ...). */
  CLIENT: 'CLIENT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** etcd's exact text for a known error code. */
export function etcdErrorMessage(code: EtcdErrorCode): string {
  return etcdErrors[code].message;
}

export class ClientError extends Error {
  override readonly name = 'ClientError';
  /** A stable code: one of ErrorCode's values (known etcd errors by name, else DEADLINE_EXCEEDED, CANCELED, GRPC, CLIENT). */
  readonly code: ErrorCode;
  /** The gRPC status code (UNKNOWN for client-side failures). */
  readonly grpcCode: GrpcStatusCode;
  /** The gRPC status text as the server sent it (same as message for etcd errors). */
  readonly details: string;

  constructor(code: ErrorCode, grpcCode: GrpcStatusCode, message: string, details: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.grpcCode = grpcCode;
    this.details = details;
  }

  /** grpc-go's rendering of the status: "rpc error: code = X desc = Y". */
  get grpcText(): string {
    return grpcErrorText(this.grpcCode, this.details);
  }
}

export function grpcErrorText(code: number, details: string): string {
  return `rpc error: code = ${statusName(code)} desc = ${details}`;
}

/** A failure that belongs to the client, not to a call (Go's plain errors). */
export function clientFailure(message: string, options?: ErrorOptions): ClientError {
  return new ClientError(ErrorCode.CLIENT, GrpcStatus.UNKNOWN, message, message, options);
}

export function deadlineError(): ClientError {
  return new ClientError(ErrorCode.DEADLINE_EXCEEDED, GrpcStatus.DEADLINE_EXCEEDED, 'context deadline exceeded', 'context deadline exceeded');
}

export function canceledError(): ClientError {
  return new ClientError(ErrorCode.CANCELED, GrpcStatus.CANCELLED, 'context canceled', 'context canceled');
}

/**
 * Converts a gRPC failure as clientv3's toErr does: a known etcd text becomes
 * that error; a deadline or cancellation becomes the context's error; the rest
 * keeps grpc-go's "rpc error" text.
 */
export function fromGrpcError(err: GrpcError): ClientError {
  const code = byMessage.get(err.details);
  if (code !== undefined) {
    const k = etcdErrors[code];
    return new ClientError(code, k.grpcCode, k.message, k.message, { cause: err });
  }
  if (err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    const e = deadlineError();
    return new ClientError(e.code, e.grpcCode, e.message, err.details, { cause: err });
  }
  if (err.code === GrpcStatus.CANCELLED) {
    const e = canceledError();
    return new ClientError(e.code, e.grpcCode, e.message, err.details, { cause: err });
  }
  return new ClientError(ErrorCode.GRPC, err.code, grpcErrorText(err.code, err.details), err.details, { cause: err });
}

/** Any thrown value as a ClientError. */
export function toClientError(err: unknown): ClientError {
  if (err instanceof ClientError) return err;
  if (err instanceof GrpcError) return fromGrpcError(err);
  if (err instanceof Error) return clientFailure(err.message, { cause: err });
  return clientFailure(String(err));
}

/** Whether the error is the known etcd error with this code. */
export function isEtcdError(err: unknown, code: EtcdErrorCode): boolean {
  return err instanceof ClientError && err.code === code;
}

/** Unavailable: the member could not serve it now; another member (or later) may. */
export function isUnavailable(err: unknown): boolean {
  return err instanceof ClientError && err.grpcCode === GrpcStatus.UNAVAILABLE;
}

/** Whether err came from the caller's deadline or cancellation. */
export function isContextError(err: unknown): boolean {
  return err instanceof ClientError && (err.code === ErrorCode.DEADLINE_EXCEEDED || err.code === ErrorCode.CANCELED);
}
