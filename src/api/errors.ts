/**
 * From a module's typed error to what etcd's clients see: a gRPC status code
 * and etcd's exact message, looked up in the one rpctypes table (src/base's
 * rpctypes.ts). Every module's typed errors carry a stable `code`; statusOf()
 * maps it here. Anything else is a bug and becomes UNKNOWN with its message,
 * as grpc-go reports a non-status error.
 */
import { rpcErrors, type RpcErrorName } from '../base/index.js';
import { GrpcStatus, type GrpcStatusCode } from '../grpc/index.js';

export interface EtcdStatus {
  readonly status: GrpcStatusCode;
  readonly message: string;
}

const aliases: Readonly<Record<string, RpcErrorName>> = {
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

function lookup(code: string): RpcErrorName | undefined {
  if (Object.hasOwn(rpcErrors, code)) return code as RpcErrorName;
  return aliases[code];
}

/** Failures etcd reports as plain Go errors rather than rpctypes ones: gRPC Unknown with the error's text. */
const plainErrors: Readonly<Record<string, string>> = {
  ProposalDeadline: 'context deadline exceeded',
  TimeoutLeaderTransfer: 'etcdserver: request timed out, leader transfer took too long',
};

/** The status and message of one of etcd's errors. */
export function etcdStatus(name: RpcErrorName): EtcdStatus {
  const e = rpcErrors[name];
  return { status: GrpcStatus[e.status], message: e.message };
}

/** The status and message a failure is reported with. */
export function statusOf(err: unknown): EtcdStatus {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    const known = lookup(err.code);
    if (known !== undefined) return etcdStatus(known);
    const plain = plainErrors[err.code];
    if (plain !== undefined) return { status: GrpcStatus.UNKNOWN, message: plain };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: GrpcStatus.UNKNOWN, message };
}
