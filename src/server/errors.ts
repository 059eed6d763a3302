/**
 * The member's expected failures. Each has a stable code, named as etcd's
 * rpctypes error it becomes (src/api maps code -> gRPC status and etcd's exact
 * message in one table); the message here is for logs.
 */
export const serverErrorCodes = [
  'NoLeader',
  'NotLeader',
  'LeaderChanged',
  'Stopped',
  'Timeout',
  'TimeoutDueToLeaderFail',
  'TimeoutDueToConnectionLost',
  'TimeoutWaitAppliedIndex',
  'TooManyRequests',
  'RequestTooLarge',
  'NoSpace',
  'Corrupt',
  'NotCapable',
  'NotSupportedForLearner',
  'Unhealthy',
  'MemberExist',
  'PeerURLExist',
  'MemberNotFound',
  'MemberBadURLs',
  'MemberNotLearner',
  'LearnerNotReady',
  'TooManyLearners',
  'MemberNotEnoughStarted',
  'IDRemoved',
  'BadLeaderTransferee',
  /** A client's MoveLeader call ended (deadline or cancel) before the transferee led: etcd's plain error, gRPC Unknown. */
  'TimeoutLeaderTransfer',
  'Canceled',
  /**
   * The request timeout passed before the proposal reached raft (no leader
   * all along): etcd's Propose blocks while there is no leader and returns
   * the context's own error, which clients get as gRPC Unknown "context
   * deadline exceeded", and do not retry.
   */
  'ProposalDeadline',
] as const;

export type ServerErrorCode = (typeof serverErrorCodes)[number];

export class ServerError extends Error {
  override readonly name = 'ServerError';

  constructor(
    readonly code: ServerErrorCode,
    message?: string,
  ) {
    super(message ?? code);
  }
}

export function isServerError(e: unknown, code?: ServerErrorCode): e is ServerError {
  return e instanceof ServerError && (code === undefined || e.code === code);
}
