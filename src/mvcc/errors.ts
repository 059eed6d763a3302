/**
 * Expected mvcc and KV-request failures as typed errors. The `code` is stable
 * and is what callers switch on; the message is the text etcd's clients see
 * (features.md §1.10), so src/api passes it through and maps the code to the
 * gRPC status: compacted and future-rev are OutOfRange, lease-not-found is
 * NotFound, the rest of the request errors are InvalidArgument.
 */

export const kvErrorCodes = {
  compacted: 'compacted',
  futureRev: 'future-rev',
  keyNotFound: 'key-not-found',
  leaseNotFound: 'lease-not-found',
  emptyKey: 'empty-key',
  tooManyOps: 'too-many-ops',
  duplicateKey: 'duplicate-key',
  valueProvided: 'value-provided',
  leaseProvided: 'lease-provided',
  invalidSortOption: 'invalid-sort-option',
  watcherDuplicateId: 'watcher-duplicate-id',
  watcherNotExist: 'watcher-not-exist',
  emptyWatcherRange: 'empty-watcher-range',
} as const;

export type KvErrorCode = (typeof kvErrorCodes)[keyof typeof kvErrorCodes];

const messages: Readonly<Record<KvErrorCode, string>> = {
  'compacted': 'etcdserver: mvcc: required revision has been compacted',
  'future-rev': 'etcdserver: mvcc: required revision is a future revision',
  'key-not-found': 'etcdserver: key not found',
  'lease-not-found': 'etcdserver: requested lease not found',
  'empty-key': 'etcdserver: key is not provided',
  'too-many-ops': 'etcdserver: too many operations in txn request',
  'duplicate-key': 'etcdserver: duplicate key given in txn request',
  'value-provided': 'etcdserver: value is provided',
  'lease-provided': 'etcdserver: lease is provided',
  'invalid-sort-option': 'etcdserver: invalid sort option',
  // Watch errors are cancel reasons on the stream, in mvcc's own words.
  'watcher-duplicate-id': 'mvcc: duplicate watch ID provided on the WatchStream',
  'watcher-not-exist': 'mvcc: watcher does not exist',
  'empty-watcher-range': 'mvcc: watcher range is empty',
};

export class KvError extends Error {
  override readonly name = 'KvError';

  constructor(readonly code: KvErrorCode) {
    super(messages[code]);
  }
}

export function isKvError(e: unknown, code?: KvErrorCode): e is KvError {
  return e instanceof KvError && (code === undefined || e.code === code);
}
