/**
 * Expected failures of the consensus core. Each has a stable `code`; the
 * server maps codes to its own errors (a dropped proposal becomes a retryable
 * "leader changed"/"timeout" error, never a crash).
 */
export const RaftErrorCode = {
  /** A proposal was not appended: no leader, a transfer in progress, the uncommitted limit, or a pending conf change. */
  ProposalDropped: 'ProposalDropped',
  /** step() was handed a local message type (MsgHup, MsgBeat, ...), which only the node itself generates. */
  StepLocalMsg: 'StepLocalMsg',
  /** step() was handed a response from a peer the node does not track. */
  StepPeerNotFound: 'StepPeerNotFound',
  /** The requested index is older than the first index of the log (it was compacted). */
  Compacted: 'Compacted',
  /** The requested index is past the last index of the log. */
  Unavailable: 'Unavailable',
  /** The snapshot asked for is older than the one storage already has. */
  SnapshotOutOfDate: 'SnapshotOutOfDate',
  /** Storage cannot produce a snapshot now; raft retries later. */
  SnapshotTemporarilyUnavailable: 'SnapshotTemporarilyUnavailable',
  /** A configuration value is out of range (Config.validate). */
  ConfigInvalid: 'ConfigInvalid',
  /** A configuration change cannot be applied to the current configuration. */
  ConfChangeInvalid: 'ConfChangeInvalid',
} as const;
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

export class RaftError extends Error {
  override readonly name = 'RaftError';
  constructor(
    readonly code: RaftErrorCode,
    message?: string,
  ) {
    super(message === undefined ? code : `${code}: ${message}`);
  }
}

export function isRaftError(e: unknown, code?: RaftErrorCode): e is RaftError {
  return e instanceof RaftError && (code === undefined || e.code === code);
}
