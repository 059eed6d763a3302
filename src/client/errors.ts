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
 * `code` is a stable name to switch on (etcd's rpctypes name, e.g. Compacted);
 * `grpcCode` the numeric gRPC status.
 */
import { rpcErrorByMessage, rpcErrors, type RpcErrorName } from '../base/index.js';
import { GrpcError, GrpcStatus, grpcErrorText, type GrpcStatusCode } from '../grpc/index.js';

/** The stable codes: etcd's errors by their rpctypes names, plus the client's own. */
export const ErrorCode = {
  ...(Object.fromEntries(Object.keys(rpcErrors).map((k) => [k, k])) as { readonly [K in RpcErrorName]: K }),
  /** The caller's deadline passed ("context deadline exceeded"). */
  DeadlineExceeded: 'DeadlineExceeded',
  /** Any other gRPC failure: code and text as grpc-go prints them. */
  Grpc: 'Grpc',
  /** A failure of the client itself (no endpoints, bad endpoint, lost lease, ...). */
  Client: 'Client',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** etcd's exact text for one of its errors. */
export function etcdErrorMessage(code: RpcErrorName): string {
  return rpcErrors[code].message;
}

/** One of etcd's errors as the client reports it. */
export function etcdError(code: RpcErrorName, options?: ErrorOptions): ClientError {
  const e = rpcErrors[code];
  return new ClientError(code, GrpcStatus[e.status], e.message, e.message, options);
}

export class ClientError extends Error {
  override readonly name = 'ClientError';
  /** A stable code: one of ErrorCode's values (etcd's errors by name, else DeadlineExceeded, Grpc, Client). */
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

/** grpc-go's rendering of a status, for the client's callers too. */
export { grpcErrorText };

/** A failure that belongs to the client, not to a call (Go's plain errors). */
export function clientFailure(message: string, options?: ErrorOptions): ClientError {
  return new ClientError(ErrorCode.Client, GrpcStatus.UNKNOWN, message, message, options);
}

export function deadlineError(): ClientError {
  return new ClientError(ErrorCode.DeadlineExceeded, GrpcStatus.DEADLINE_EXCEEDED, 'context deadline exceeded', 'context deadline exceeded');
}

export function canceledError(): ClientError {
  return etcdError('Canceled');
}

/**
 * Converts a gRPC failure as clientv3's toErr does: a known etcd text becomes
 * that error; a deadline or cancellation becomes the context's error; the rest
 * keeps grpc-go's "rpc error" text.
 */
export function fromGrpcError(err: GrpcError): ClientError {
  const code = rpcErrorByMessage(err.details);
  if (code !== undefined) return etcdError(code, { cause: err });
  if (err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    const e = deadlineError();
    return new ClientError(e.code, e.grpcCode, e.message, err.details, { cause: err });
  }
  if (err.code === GrpcStatus.CANCELLED) {
    const e = canceledError();
    return new ClientError(e.code, e.grpcCode, e.message, err.details, { cause: err });
  }
  return new ClientError(ErrorCode.Grpc, err.code, grpcErrorText(err.code, err.details), err.details, { cause: err });
}

/**
 * A watch's cancel reason as an error. etcd 3.4 gives a refused watch its
 * gRPC error as grpc-go prints it ("rpc error: code = Unauthenticated desc =
 * etcdserver: invalid auth token"): a known etcd text in it gets that code,
 * for callers to tell a stale token from a missing permission; the message
 * stays the reason, as clientv3 reports it.
 */
export function cancelReasonError(reason: string): ClientError {
  const m = /^rpc error: code = \w+ desc = (.*)$/s.exec(reason);
  const code = rpcErrorByMessage(m?.[1] ?? reason);
  if (code === undefined) return clientFailure(reason);
  return new ClientError(code, GrpcStatus[rpcErrors[code].status], reason, m?.[1] ?? reason);
}

/** Any thrown value as a ClientError. */
export function toClientError(err: unknown): ClientError {
  if (err instanceof ClientError) return err;
  if (err instanceof GrpcError) return fromGrpcError(err);
  if (err instanceof Error) return clientFailure(err.message, { cause: err });
  return clientFailure(String(err));
}

/** Whether the error is the known etcd error with this code. */
export function isEtcdError(err: unknown, code: RpcErrorName): boolean {
  return err instanceof ClientError && err.code === code;
}

/** Unavailable: the member could not serve it now; another member (or later) may. */
export function isUnavailable(err: unknown): boolean {
  return err instanceof ClientError && err.grpcCode === GrpcStatus.UNAVAILABLE;
}

/** Whether err came from the caller's deadline or cancellation. */
export function isContextError(err: unknown): boolean {
  return err instanceof ClientError && (err.code === ErrorCode.DeadlineExceeded || err.code === ErrorCode.Canceled);
}
