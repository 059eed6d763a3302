/**
 * Expected failures of the write-ahead log and the snapshot files, as typed
 * errors with a stable `code`. A failed write or fsync is not among them: it
 * rejects with the operating system's error and leaves the Wal unusable
 * (raft cannot continue once its storage has failed).
 */

export const walErrorCodes = {
  corrupt: 'wal-corrupt',
  notFound: 'wal-not-found',
  exists: 'wal-exists',
  locked: 'wal-locked',
  snapshotNotFound: 'wal-snapshot-not-found',
  snapshotCorrupt: 'snap-corrupt',
} as const;

export type WalErrorCode = (typeof walErrorCodes)[keyof typeof walErrorCodes];

export abstract class WalError extends Error {
  abstract readonly code: WalErrorCode;
}

/**
 * WalCorruptError: a record that a crash cannot explain (a bad checksum or
 * length in a segment that was complete, or damage followed by data that had
 * been fsynced), or records that contradict each other. The member refuses to
 * start; repair means replacing it (or its WAL) from a healthy member.
 */
export class WalCorruptError extends WalError {
  override readonly name = 'WalCorruptError';
  readonly code = walErrorCodes.corrupt;
  constructor(
    /** The segment file (full path). */
    readonly file: string,
    /** Byte offset of the bad record within the file. */
    readonly offset: number,
    /** What is wrong, e.g. "crc mismatch", "bad record length". */
    readonly reason: string,
  ) {
    super(`wal: corrupt record in ${file} at offset ${offset}: ${reason}`);
  }
}

/** WalNotFoundError: open() on a directory that holds no WAL segment. */
export class WalNotFoundError extends WalError {
  override readonly name = 'WalNotFoundError';
  readonly code = walErrorCodes.notFound;
  constructor(readonly dir: string) {
    super(`wal: no wal segment found in ${dir}`);
  }
}

/** WalExistsError: create() on a directory that already holds WAL segments. */
export class WalExistsError extends WalError {
  override readonly name = 'WalExistsError';
  readonly code = walErrorCodes.exists;
  constructor(readonly dir: string) {
    super(`wal: ${dir} already holds a wal`);
  }
}

/** WalLockedError: another live process (or this one) has the directory open. */
export class WalLockedError extends WalError {
  override readonly name = 'WalLockedError';
  readonly code = walErrorCodes.locked;
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`wal: ${dir} is locked by process ${pid}`);
  }
}

/**
 * WalSnapshotNotFoundError: open() was asked to start after a snapshot whose
 * marker is not in the log, or the log lacks entries right after it.
 */
export class WalSnapshotNotFoundError extends WalError {
  override readonly name = 'WalSnapshotNotFoundError';
  readonly code = walErrorCodes.snapshotNotFound;
  constructor(
    readonly index: number,
    readonly term: number,
    detail: string,
  ) {
    super(`wal: snapshot at index ${index} term ${term}: ${detail}`);
  }
}

/** SnapshotCorruptError: a snap file whose checksum, length or name does not match. */
export class SnapshotCorruptError extends WalError {
  override readonly name = 'SnapshotCorruptError';
  readonly code = walErrorCodes.snapshotCorrupt;
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`snap: corrupt snapshot file ${file}: ${reason}`);
  }
}
