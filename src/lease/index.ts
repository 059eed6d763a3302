/**
 * lease: the lessor. Leases are granted with a TTL in seconds, keep keys
 * attached, and when one is revoked, or expires and the leader proposes its
 * revocation, every attached key is deleted in one mvcc write (one revision).
 *
 * Promises:
 * - Everything that changes lease state (grant, revoke, attach, detach,
 *   checkpoint, recover) is deterministic and runs in apply, in log order, on
 *   every member; nothing expires on a local timer. Members fed the same log
 *   hold the same leases, TTLs, checkpointed remainders, attachments and store
 *   records, whatever their clocks and leadership histories.
 * - Time is read only by the primary (leader) through the injected Clock.
 *   It reports expired leases and due checkpoints for the leader to PROPOSE;
 *   a follower's leases never expire ("forever") until it is promoted.
 * - A TTL is a minimum: a lease is never reported expired before its TTL has
 *   run out since its last renew, grant or promotion (promotion restarts it
 *   from the checkpointed remainder, plus the election timeout). It is
 *   reported once the leader's clock passes its expiry, rate-limited, and
 *   again every expiredRetryMs until the revocation applies.
 * - Lease ids are int64 bigints (0 = none); TTLs are whole seconds, raised to
 *   minTtlSeconds, at most 9,000,000,000. Errors are typed with a stable
 *   `code` and etcd's message.
 * - Checkpointing of remaining TTLs is ON by default (etcd 3.4: off), and
 *   applied checkpoints are always persisted, so neither a leader change nor
 *   a restart restarts a long lease at its full TTL.
 *
 * Persistence: through LeaseStore, which schema implements over LMDB in the
 * caller's apply transaction (etcd's format: bucket `lease`, key = id as 8
 * bytes big-endian, value = leasepb.Lease {1: ID, 2: TTL, 3: RemainingTTL}).
 * Attached keys are not stored: they are rebuilt with attach() from mvcc's
 * lease fields at start and after recover().
 */
export {
  LeaseError,
  LeaseExistsError,
  LeaseExpiredError,
  LeaseNotFoundError,
  LeaseNotPrimaryError,
  LeaseTtlTooLargeError,
  leaseErrorCodes,
  type LeaseErrorCode,
} from './errors.js';
export type { LeaseView } from './lease.js';
export { MemoryLeaseStore, type LeaseRecord, type LeaseStore, type RangeDeleter } from './ports.js';
export {
  Lessor,
  lessorDefaults,
  minLeaseTtlSeconds,
  type LeaseTimeToLive,
  type LessorOptions,
  type RenewResult,
  type RenewWaitOutcome,
} from './lessor.js';
