/**
 * Expected transport failures as typed errors with a stable `code`. They are
 * logged, passed to `onRejected`, or thrown from `call()` and
 * `fetchClusterFromPeers()`; none of them is a programmer error.
 */

export const transportErrorCodes = {
  clusterIdMismatch: 'cluster-id-mismatch',
  memberRemoved: 'member-removed',
  incompatibleVersion: 'incompatible-version',
  toMismatch: 'to-mismatch',
  peerNotFound: 'peer-not-found',
  peerUnreachable: 'peer-unreachable',
  timeout: 'timeout',
  stopped: 'stopped',
  frameTooLarge: 'frame-too-large',
  frameCorrupt: 'frame-corrupt',
  snapshotIncomplete: 'snapshot-incomplete',
  unknownMethod: 'unknown-method',
  rpcFailed: 'rpc-failed',
  badRequest: 'bad-request',
  tooManyRequests: 'too-many-requests',
} as const;

export type TransportErrorCode = (typeof transportErrorCodes)[keyof typeof transportErrorCodes];

export abstract class TransportError extends Error {
  abstract readonly code: TransportErrorCode;
}

/** The other side belongs to another cluster (HTTP 412), as etcd's errClusterIDMismatch. */
export class ClusterIdMismatchError extends TransportError {
  override readonly name = 'ClusterIdMismatchError';
  readonly code = transportErrorCodes.clusterIdMismatch;
  constructor(detail: string) {
    super(`cluster ID mismatch: ${detail}`);
  }
}

/**
 * The receiver knows the sender as removed from the cluster (HTTP 410). A
 * member that receives this about itself should stop, as etcd does
 * ("the member has been permanently removed from the cluster").
 */
export class MemberRemovedError extends TransportError {
  override readonly name = 'MemberRemovedError';
  readonly code = transportErrorCodes.memberRemoved;
  constructor() {
    super('the member has been permanently removed from the cluster');
  }
}

/** The other side speaks another version of this protocol (HTTP 412). */
export class IncompatibleVersionError extends TransportError {
  override readonly name = 'IncompatibleVersionError';
  readonly code = transportErrorCodes.incompatibleVersion;
  constructor(detail: string) {
    super(`incompatible version: ${detail}`);
  }
}

/** The request was meant for another member id (a URL now used by a new member; HTTP 412). */
export class ToMismatchError extends TransportError {
  override readonly name = 'ToMismatchError';
  readonly code = transportErrorCodes.toMismatch;
  constructor(detail: string) {
    super(`to field mismatch: ${detail}`);
  }
}

export class PeerNotFoundError extends TransportError {
  override readonly name = 'PeerNotFoundError';
  readonly code = transportErrorCodes.peerNotFound;
  constructor(id: string) {
    super(`peer ${id} not found`);
  }
}

export class PeerUnreachableError extends TransportError {
  override readonly name = 'PeerUnreachableError';
  readonly code = transportErrorCodes.peerUnreachable;
}

export class TimeoutError extends TransportError {
  override readonly name = 'TimeoutError';
  readonly code = transportErrorCodes.timeout;
}

export class StoppedError extends TransportError {
  override readonly name = 'StoppedError';
  readonly code = transportErrorCodes.stopped;
  constructor() {
    super('transport stopped');
  }
}

export class FrameTooLargeError extends TransportError {
  override readonly name = 'FrameTooLargeError';
  readonly code = transportErrorCodes.frameTooLarge;
  constructor(bytes: number, bytesMax: number) {
    super(`frame of ${bytes} bytes exceeds the limit of ${bytesMax}`);
  }
}

export class FrameCorruptError extends TransportError {
  override readonly name = 'FrameCorruptError';
  readonly code = transportErrorCodes.frameCorrupt;
}

/** The snapshot body ended before (or ran past) the size its header announced. */
export class SnapshotIncompleteError extends TransportError {
  override readonly name = 'SnapshotIncompleteError';
  readonly code = transportErrorCodes.snapshotIncomplete;
}

export class UnknownMethodError extends TransportError {
  override readonly name = 'UnknownMethodError';
  readonly code = transportErrorCodes.unknownMethod;
  constructor(method: string) {
    super(`unknown peer rpc method ${JSON.stringify(method)}`);
  }
}

/** The remote rpc handler threw; the message is the handler's error message. */
export class RpcFailedError extends TransportError {
  override readonly name = 'RpcFailedError';
  readonly code = transportErrorCodes.rpcFailed;
}

/** A malformed request or an unexpected HTTP status. */
export class BadRequestError extends TransportError {
  override readonly name = 'BadRequestError';
  readonly code = transportErrorCodes.badRequest;
}

/** A bounded table (pending calls, inflight snapshots) is full. */
export class TooManyRequestsError extends TransportError {
  override readonly name = 'TooManyRequestsError';
  readonly code = transportErrorCodes.tooManyRequests;
}
