/**
 * client: the etcd v3 client library (no server imports), over src/grpc.
 *
 * Promises:
 * - KV, Watch, Lease, Cluster, Maintenance and Auth with clientv3 3.4's
 *   semantics; every failure is a ClientError whose message is the text
 *   clientv3 (and so etcdctl) would give.
 * - Several endpoints: calls go round-robin to READY endpoints; repeatable
 *   calls are retried on Unavailable against the next one; mutations are
 *   sent at most once. Dial and per-call timeouts, AbortSignal cancellation,
 *   TLS per endpoint scheme (https://, unixs://) or client configuration.
 * - Auth: with a user and password the client authenticates first, sends the
 *   token as metadata, and authenticates again on "invalid auth token".
 * - Watchers resume after a reconnect from the revision after the last one
 *   they saw; lease keep-alives report a lost lease.
 * - Mutex, Election and Session use etcd's key layout (`<prefix>/<lease hex>`)
 *   and interoperate with `etcdctl lock` / `etcdctl elect`; stm() runs a
 *   transaction function under serializable snapshot isolation.
 */
export { Client, type ClientOptions } from './client.js';
export {
  Connection,
  deadlineOf,
  type CallOptions,
  type ConnectionOptions,
  type TlsOptions,
  type ClientLogger,
  type ClientLogEntry,
  type ClientLogLevel,
  type RetryPolicy,
} from './connection.js';
export { parseEndpoint, endpointUsesTls, type ParsedEndpoint, type EndpointScheme } from './endpoint.js';
export {
  ClientError,
  ErrorCode,
  clientFailure,
  deadlineError,
  canceledError,
  toClientError,
  fromGrpcError,
  grpcErrorText,
  etcdErrorMessage,
  isEtcdError,
  isUnavailable,
  isContextError,
  etcdError,
} from './errors.js';
export type { RpcErrorName } from '../base/index.js';
export {
  KV,
  Txn,
  Op,
  Compare,
  toBytes,
  prefixRangeEnd,
  keyRange,
  rangeRequest,
  putRequest,
  deleteRequest,
  isCompareOp,
  firstKv,
  type Bytes,
  type CompareOp,
  type GetOptions,
  type PutOptions,
  type DeleteOptions,
  type CompactOptions,
  type RangeOptions,
  type SortOrder,
  type SortTarget,
} from './kv.js';
export { Watch, Watcher, watchResponseError, type WatchOptions, type WatchResponse } from './watch.js';
export { Lease, LeaseKeepAlive } from './lease.js';
export { Cluster } from './cluster.js';
export { Maintenance, type AlarmName } from './maintenance.js';
export { Auth, type PermissionType } from './auth.js';
export { Session, Mutex, Election, observeLeader, stm, type SessionOptions, type StmTxn, type StmOptions, type RecipeClient } from './concurrency.js';
export { AsyncQueue, sleep } from './queue.js';
export { GrpcStatus, type GrpcStatusCode } from '../grpc/index.js';
export { etcdserverpb, mvccpb, authpb } from '../pb/index.js';
export type { FieldInfo, MessageType } from '../pb/index.js';
