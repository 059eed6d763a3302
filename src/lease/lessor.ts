/**
 * The lessor. Two halves with different rules:
 *
 * - Apply half (grant, revoke, attach, detach, checkpoint, recover): runs on
 *   every member in log order and touches only deterministic state (ids, TTLs,
 *   checkpointed remainders, attached keys, the LeaseStore). Same input, same
 *   state and same store writes on every member, whatever the clocks say.
 * - Leader half (promote, demote, renew, expiredLeases, checkpointsDue,
 *   timeToLive): reads the injected Clock and keeps expiries and queues that
 *   only the primary (the raft leader) has. It never changes deterministic
 *   state itself: it returns revocations and checkpoints for the leader to
 *   PROPOSE, and they take effect when applied.
 */
import {
  assert,
  exponentialBuckets,
  idNone,
  leaseTtlSecondsMax,
  type Clock,
  type Counter,
  type Histogram,
  type LeaseId,
  type Registry,
} from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';
import { DueQueue } from './due-queue.js';
import {
  LeaseExistsError,
  LeaseExpiredError,
  LeaseNotFoundError,
  LeaseNotPrimaryError,
  LeaseTtlTooLargeError,
} from './errors.js';
import { Lease, checkpointSlot, compareLeaseIds, expirySlot, keyFromString, keyToString, type LeaseView } from './lease.js';
import type { LeaseStore, RangeDeleter } from './ports.js';

export interface LessorOptions {
  readonly clock: Clock;
  /** Shorter TTLs are raised to this: ceil(1.5 × election timeout), see minLeaseTtlSeconds. */
  readonly minTtlSeconds: number;
  readonly store: LeaseStore;
  /** May also be set later with setRangeDeleter (mvcc is usually built after the lessor). */
  readonly rangeDeleter?: RangeDeleter;
  /**
   * Whether the leader schedules checkpoints of remaining TTLs. etcd 3.4 has this
   * off by default (--experimental-enable-lease-checkpoint); it is on here, so a
   * leader change does not restart long leases at their full TTL.
   */
  readonly checkpointEnabled?: boolean;
  readonly checkpointIntervalMs?: number;
  /** Checkpoints per LeaseCheckpointRequest. */
  readonly checkpointBatchMax?: number;
  /** Expired leases reported per second at most (etcd's leaseRevokeRate). */
  readonly revokePerSecondMax?: number;
  /** A reported lease that is still there after this long is reported again. */
  readonly expiredRetryMs?: number;
  /** Bound on pending whenRevokedOrRetry promises. */
  readonly renewWaitersMax?: number;
  readonly registry?: Registry;
}

export const lessorDefaults = {
  checkpointEnabled: true,
  checkpointIntervalMs: 5 * 60 * 1000,
  checkpointBatchMax: 1000,
  revokePerSecondMax: 1000,
  expiredRetryMs: 3000,
  renewWaitersMax: 10_000,
} as const;

/**
 * etcd's minimum lease TTL: 1.5 election timeouts, counted in whole ticks
 * ((3 × electionTicks) / 2, integer division) and rounded up to seconds.
 * 2 s with the defaults (10 ticks of 100 ms).
 */
export function minLeaseTtlSeconds(electionTicks: number, heartbeatMs: number): number {
  assert(Number.isSafeInteger(electionTicks) && electionTicks > 0, 'electionTicks must be positive');
  assert(heartbeatMs > 0, 'heartbeatMs must be positive');
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatMs) / 1000);
}

/** LeaseTimeToLiveResponse's fields. An unknown lease has ttlSeconds -1 and grantedTtlSeconds 0. */
export interface LeaseTimeToLive {
  readonly id: LeaseId;
  /** Remaining seconds, truncated toward zero as etcd does. */
  readonly ttlSeconds: number;
  readonly grantedTtlSeconds: number;
  readonly keys: Uint8Array[];
}

export interface RenewResult {
  /** The TTL to answer the keepalive with: the granted TTL. */
  readonly ttlSeconds: number;
  /**
   * The lease carries a checkpointed remainder. Before answering the
   * keepalive, the server must propose LeaseCheckpoint{id, remaining_TTL: 0}
   * and wait for it to apply; otherwise a leader change could restart the
   * lease from the stale, shorter remainder and expire it before the TTL the
   * client was just promised (etcd PR #13508).
   */
  readonly clearRemainingTtl: boolean;
}

/** 'revoked': answer the keepalive with TTL 0. 'retry': leadership moved; renew again, on the leader. */
export type RenewWaitOutcome = 'revoked' | 'retry';

const int64Min = -(1n << 63n);
const int64Max = (1n << 63n) - 1n;

function assertLeaseId(id: LeaseId): void {
  assert(typeof id === 'bigint' && id >= int64Min && id <= int64Max, `lease id out of int64 range: ${String(id)}`);
}

/** Math.trunc without the -0 that would make equal answers compare unequal. */
function truncSeconds(ms: number): number {
  return Math.trunc(ms / 1000) + 0;
}

interface LeaseMetrics {
  granted: Counter;
  revoked: Counter;
  renewed: Counter;
  ttl: Histogram;
}

function registerMetrics(r: Registry): LeaseMetrics {
  return {
    granted: r.counter('etcd_debugging_lease_granted_total', 'The total number of granted leases.'),
    revoked: r.counter('etcd_debugging_lease_revoked_total', 'The total number of revoked leases.'),
    renewed: r.counter('etcd_debugging_lease_renewed_total', 'The number of renewed leases seen by the leader.'),
    // 1 second to about 3 months, as etcd's.
    ttl: r.histogram('etcd_debugging_lease_ttl_total', 'Bucketed histogram of lease TTLs.', exponentialBuckets(1, 2, 24)),
  };
}

export class Lessor {
  private readonly clock: Clock;
  private readonly minTtlSeconds: number;
  private readonly store: LeaseStore;
  private rangeDeleter: RangeDeleter | undefined;
  private readonly checkpointEnabled: boolean;
  private readonly checkpointIntervalMs: number;
  private readonly checkpointBatchMax: number;
  private readonly revokePerSecondMax: number;
  private readonly expiredRetryMs: number;
  private readonly renewWaitersMax: number;
  private readonly metrics: LeaseMetrics | undefined;

  private readonly leaseById = new Map<LeaseId, Lease>();
  /** Each attached key (latin1, see keyToString) to its lease; a key has at most one. */
  private readonly leaseByKey = new Map<string, Lease>();
  private readonly expiryQueue = new DueQueue<Lease>(expirySlot, compareLeaseIds);
  private readonly checkpointQueue = new DueQueue<Lease>(checkpointSlot, compareLeaseIds);
  private primary = false;
  /** Token bucket limiting expired-lease reports to revokePerSecondMax. */
  private revokeTokens: number;
  private revokeTokensAtMs: number;
  private readonly renewWaiters = new Map<LeaseId, Array<(o: RenewWaitOutcome) => void>>();
  private renewWaiterCount = 0;

  constructor(options: LessorOptions) {
    this.clock = options.clock;
    this.minTtlSeconds = options.minTtlSeconds;
    this.store = options.store;
    this.rangeDeleter = options.rangeDeleter;
    this.checkpointEnabled = options.checkpointEnabled ?? lessorDefaults.checkpointEnabled;
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? lessorDefaults.checkpointIntervalMs;
    this.checkpointBatchMax = options.checkpointBatchMax ?? lessorDefaults.checkpointBatchMax;
    this.revokePerSecondMax = options.revokePerSecondMax ?? lessorDefaults.revokePerSecondMax;
    this.expiredRetryMs = options.expiredRetryMs ?? lessorDefaults.expiredRetryMs;
    this.renewWaitersMax = options.renewWaitersMax ?? lessorDefaults.renewWaitersMax;
    assert(Number.isSafeInteger(this.minTtlSeconds) && this.minTtlSeconds >= 1, 'minTtlSeconds must be a positive integer');
    assert(this.checkpointIntervalMs > 0, 'checkpointIntervalMs must be positive');
    assert(Number.isSafeInteger(this.checkpointBatchMax) && this.checkpointBatchMax >= 1, 'checkpointBatchMax must be >= 1');
    assert(this.revokePerSecondMax > 0, 'revokePerSecondMax must be positive');
    assert(this.expiredRetryMs > 0, 'expiredRetryMs must be positive');
    assert(Number.isSafeInteger(this.renewWaitersMax) && this.renewWaitersMax >= 0, 'renewWaitersMax must be >= 0');
    this.metrics = options.registry === undefined ? undefined : registerMetrics(options.registry);
    this.revokeTokens = this.revokeBurst();
    this.revokeTokensAtMs = this.clock.nowMs();
    this.load();
  }

  setRangeDeleter(rangeDeleter: RangeDeleter): void {
    this.rangeDeleter = rangeDeleter;
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get size(): number {
    return this.leaseById.size;
  }

  // ---- Apply half: deterministic, called in log order on every member. ----

  /**
   * LeaseGrant. A TTL below the minimum is raised to it. Writes the record
   * through the store. Errors as etcd's, checked in etcd's order.
   */
  grant(id: LeaseId, ttlSeconds: number): LeaseView {
    assertLeaseId(id);
    // etcd rejects id 0 as "not found": the server replaces 0 with a fresh id before proposing.
    if (id === idNone) throw new LeaseNotFoundError();
    // The TTL is the client's int64, so it may be anything, 2^60 or -2^63
    // (not exact as a number): what is too large is refused, what is too small raised.
    if (ttlSeconds > leaseTtlSecondsMax) throw new LeaseTtlTooLargeError();
    if (this.leaseById.has(id)) throw new LeaseExistsError();
    const ttl = Math.max(ttlSeconds, this.minTtlSeconds);
    assert(Number.isSafeInteger(ttl), `lease TTL must be an integer: ${ttl}`);
    const lease = new Lease(id, ttl, 0);
    this.leaseById.set(id, lease);
    this.store.put(lease.record());
    if (this.primary) {
      const nowMs = this.clock.nowMs();
      this.refresh(lease, nowMs, lease.ttlSeconds, 0);
      this.scheduleCheckpoint(lease, nowMs);
    }
    this.metrics?.granted.inc();
    this.metrics?.ttl.observe(lease.ttlSeconds);
    return lease;
  }

  /**
   * LeaseRevoke (from a client or proposed by the leader for an expired
   * lease). Deletes the attached keys through the RangeDeleter in one call
   * (one mvcc write, one revision; no call when there are none), then the
   * lease and its record. Returns the deleted keys, sorted byte-wise.
   */
  revoke(id: LeaseId): Uint8Array[] {
    assertLeaseId(id);
    const lease = this.leaseById.get(id);
    if (lease === undefined) throw new LeaseNotFoundError();
    const keyStrings = lease.keyStrings();
    const keys = keyStrings.map(keyFromString);
    if (keys.length > 0) {
      assert(this.rangeDeleter !== undefined, 'revoke needs a RangeDeleter');
      // The lease still exists here: mvcc's delete path may detach each key.
      this.rangeDeleter.deleteKeys(keys);
    }
    for (const s of keyStrings) {
      if (this.leaseByKey.get(s) === lease) this.leaseByKey.delete(s);
    }
    lease.keySet = undefined;
    this.leaseById.delete(id);
    this.expiryQueue.remove(lease);
    this.checkpointQueue.remove(lease);
    this.store.delete(id);
    this.metrics?.revoked.inc();
    this.settleRenewWaiters(id, 'revoked');
    return keys;
  }

  /**
   * Attaches keys to a lease (a Put set or changed a key's lease, or mvcc is
   * restoring). A key attached to another lease moves to this one. O(1) per key.
   */
  attach(id: LeaseId, keys: readonly Uint8Array[]): void {
    const lease = this.leaseById.get(id);
    if (lease === undefined) throw new LeaseNotFoundError();
    for (const key of keys) {
      const s = keyToString(key);
      const previous = this.leaseByKey.get(s);
      if (previous === lease) continue;
      previous?.keySet?.delete(s);
      lease.keySet ??= new Set();
      lease.keySet.add(s);
      this.leaseByKey.set(s, lease);
    }
  }

  /** Detaches keys from a lease (the key was deleted or put with another lease). Keys not attached to it are ignored. */
  detach(id: LeaseId, keys: readonly Uint8Array[]): void {
    const lease = this.leaseById.get(id);
    if (lease === undefined) throw new LeaseNotFoundError();
    for (const key of keys) {
      const s = keyToString(key);
      if (this.leaseByKey.get(s) !== lease) continue;
      this.leaseByKey.delete(s);
      lease.keySet?.delete(s);
    }
  }

  /**
   * Applies one entry of a LeaseCheckpointRequest: records the remaining TTL
   * that a future promotion counts from (0 clears it). An unknown lease is
   * ignored, as in etcd (it may have been revoked since the proposal).
   * The record is always persisted, so the remainder also survives restarts.
   */
  checkpoint(id: LeaseId, remainingTtlSeconds: number): void {
    assertLeaseId(id);
    assert(Number.isSafeInteger(remainingTtlSeconds), `remaining TTL must be an integer: ${remainingTtlSeconds}`);
    const lease = this.leaseById.get(id);
    if (lease === undefined) return;
    lease.remainingTtlSeconds = remainingTtlSeconds;
    this.store.put(lease.record());
    if (this.primary) this.scheduleCheckpoint(lease, this.clock.nowMs());
  }

  /** The lease a key is attached to, or idNone. */
  leaseOf(key: Uint8Array): LeaseId {
    return this.leaseByKey.get(keyToString(key))?.id ?? idNone;
  }

  lookup(id: LeaseId): LeaseView | undefined {
    return this.leaseById.get(id);
  }

  /** Every lease, sorted by id (signed), the same on every member. */
  leases(): LeaseView[] {
    return [...this.leaseById.values()].sort(compareLeaseIds);
  }

  /**
   * Every lease, the soonest to expire first, as etcd lists them (LeaseLeases).
   * On a follower no lease expires, so the order is by id; ties too.
   */
  leasesByExpiry(): LeaseView[] {
    return [...this.leaseById.values()].sort((a, b) => (a.expiryMs === b.expiryMs ? compareLeaseIds(a, b) : a.expiryMs < b.expiryMs ? -1 : 1));
  }

  /**
   * Rebuilds the leases from the store (after a snapshot was installed into
   * the backend). Keys must be re-attached afterwards from mvcc, as at start.
   * Pending renew waiters are told to retry.
   */
  recover(): void {
    this.settleAllRenewWaiters('retry');
    this.leaseById.clear();
    this.leaseByKey.clear();
    this.expiryQueue.clear();
    this.checkpointQueue.clear();
    this.load();
  }

  private load(): void {
    assert(this.leaseById.size === 0, 'load into an empty lessor');
    for (const r of this.store.loadAll()) {
      assertLeaseId(r.id);
      assert(r.id !== idNone, 'stored lease with id 0');
      assert(Number.isSafeInteger(r.ttlSeconds) && Number.isSafeInteger(r.remainingTtlSeconds), 'stored lease TTLs must be integers');
      assert(!this.leaseById.has(r.id), `stored lease ${String(r.id)} twice`);
      // A smaller minimum may have been configured when it was granted.
      this.leaseById.set(r.id, new Lease(r.id, Math.max(r.ttlSeconds, this.minTtlSeconds), r.remainingTtlSeconds));
    }
    if (this.primary) this.refreshAll(this.clock.nowMs(), 0);
  }

  // ---- Leader half: clock-driven, only meaningful on the primary. ----

  /**
   * Makes this lessor the primary: call when this member becomes leader and
   * has applied every entry of earlier terms (etcd: on the leader's first
   * empty entry), with extendMs = the election timeout. Every lease restarts
   * at now + (checkpointed remainder or TTL) + extendMs, which is why a TTL is
   * a minimum. If more leases would expire within a second than 3/4 of the
   * revoke rate, later ones are pushed back so revocations do not pile up.
   */
  promote(extendMs: number): void {
    assert(extendMs >= 0, 'extendMs must be >= 0');
    this.settleAllRenewWaiters('retry');
    this.primary = true;
    this.refreshAll(this.clock.nowMs(), extendMs);
    this.spreadExpiries();
  }

  /** Leadership lost: no lease expires here until promoted again. */
  demote(): void {
    this.primary = false;
    this.expiryQueue.clear();
    this.checkpointQueue.clear();
    for (const lease of this.leaseById.values()) {
      lease.expiryMs = Infinity;
      lease.expiryDueMs = Infinity;
      lease.checkpointDueMs = Infinity;
    }
    this.settleAllRenewWaiters('retry');
  }

  /**
   * A keepalive, on the leader: the lease restarts at its full TTL. Throws
   * LeaseNotPrimaryError (forward to the leader), LeaseNotFoundError (answer
   * TTL 0) or LeaseExpiredError (past expiry, revocation pending: wait with
   * whenRevokedOrRetry, as etcd's Renew waits).
   */
  renew(id: LeaseId): RenewResult {
    assertLeaseId(id);
    if (!this.primary) throw new LeaseNotPrimaryError();
    const lease = this.leaseById.get(id);
    if (lease === undefined) throw new LeaseNotFoundError();
    const nowMs = this.clock.nowMs();
    if (lease.expiryMs <= nowMs) throw new LeaseExpiredError();
    // Full TTL, not the checkpointed remainder: the caller clears that remainder first.
    this.refresh(lease, nowMs, lease.ttlSeconds, 0);
    this.metrics?.renewed.inc();
    return { ttlSeconds: lease.ttlSeconds, clearRemainingTtl: lease.remainingTtlSeconds > 0 };
  }

  /**
   * Resolves 'revoked' once the lease is revoked (at once if it is unknown),
   * or 'retry' when this lessor is demoted, promoted again, recovers, or
   * already has renewWaitersMax waiters (the caller then backs off and retries).
   */
  whenRevokedOrRetry(id: LeaseId): Promise<RenewWaitOutcome> {
    if (!this.leaseById.has(id)) return Promise.resolve('revoked');
    if (!this.primary || this.renewWaiterCount >= this.renewWaitersMax) return Promise.resolve('retry');
    return new Promise((resolve) => {
      let waiters = this.renewWaiters.get(id);
      if (waiters === undefined) {
        waiters = [];
        this.renewWaiters.set(id, waiters);
      }
      waiters.push(resolve);
      this.renewWaiterCount++;
    });
  }

  /**
   * LeaseTimeToLive, on the leader (a follower's expiries are "forever":
   * LeaseNotPrimaryError means forward to the leader, as etcd does). An
   * unknown lease is not an error: TTL -1, granted TTL 0, which etcdctl prints
   * as "already expired".
   */
  timeToLive(id: LeaseId, withKeys = false): LeaseTimeToLive {
    assertLeaseId(id);
    if (!this.primary) throw new LeaseNotPrimaryError();
    const lease = this.leaseById.get(id);
    if (lease === undefined) return { id, ttlSeconds: -1, grantedTtlSeconds: 0, keys: [] };
    return {
      id,
      ttlSeconds: truncSeconds(lease.expiryMs - this.clock.nowMs()),
      grantedTtlSeconds: lease.ttlSeconds,
      keys: withKeys ? lease.keys() : [],
    };
  }

  /**
   * Leases past their expiry, for the leader to propose LeaseRevoke for each.
   * At most `limit`, and at most revokePerSecondMax per second over time
   * (burst: half of that). A reported lease that is still present
   * expiredRetryMs later (its revoke got lost) is reported again. Empty when
   * not primary. Ordered by expiry, then id.
   */
  expiredLeases(limit = Number.MAX_SAFE_INTEGER): LeaseId[] {
    if (!this.primary) return [];
    const nowMs = this.clock.nowMs();
    const budget = Math.min(limit, this.revokeTokensAvailable(nowMs));
    const out: LeaseId[] = [];
    // Every visit reports a lease and moves it past now, so one pass visits
    // each lease at most once.
    const visitsMax = this.expiryQueue.size;
    for (let visits = 0; out.length < budget; visits++) {
      const lease = this.expiryQueue.peek();
      if (lease === undefined || lease.expiryDueMs > nowMs) break;
      assert(visits < visitsMax, 'expiry queue visited a lease twice');
      // A lease is due at its expiry, or later when a retry is pending.
      assert(lease.expiryMs <= nowMs, 'a lease came due before its expiry');
      out.push(lease.id);
      this.expiryQueue.schedule(lease, nowMs + this.expiredRetryMs);
    }
    this.revokeTokens -= out.length;
    return out;
  }

  /**
   * Checkpoints that are due, for the leader to propose as ONE
   * LeaseCheckpointRequest: each lease whose granted TTL exceeds the
   * checkpoint interval gets its remaining TTL (rounded up) checkpointed once
   * per interval, unless it is expired or its remainder is not below its TTL.
   * At most `limit`. Empty when not primary or checkpointing is off.
   */
  checkpointsDue(limit = this.checkpointBatchMax): etcdserverpb.LeaseCheckpoint[] {
    if (!this.primary || !this.checkpointEnabled) return [];
    const nowMs = this.clock.nowMs();
    const out: etcdserverpb.LeaseCheckpoint[] = [];
    const visitsMax = this.checkpointQueue.size;
    for (let visits = 0; out.length < limit; visits++) {
      const lease = this.checkpointQueue.peek();
      if (lease === undefined || lease.checkpointDueMs > nowMs) break;
      assert(visits < visitsMax, 'checkpoint queue visited a lease twice');
      // Rescheduled now, not only when the checkpoint applies, so that a lost
      // proposal delays the next checkpoint instead of ending them.
      this.scheduleCheckpoint(lease, nowMs);
      if (lease.expiryMs <= nowMs) continue;
      const remainingTtlSeconds = Math.ceil((lease.expiryMs - nowMs) / 1000);
      if (remainingTtlSeconds >= lease.ttlSeconds) continue;
      out.push(etcdserverpb.LeaseCheckpoint.create({ ID: lease.id, remainingTTL: remainingTtlSeconds }));
    }
    return out;
  }

  private refresh(lease: Lease, nowMs: number, ttlSeconds: number, extendMs: number): void {
    lease.expiryMs = nowMs + ttlSeconds * 1000 + extendMs;
    this.expiryQueue.schedule(lease, lease.expiryMs);
  }

  private refreshAll(nowMs: number, extendMs: number): void {
    for (const lease of this.leaseById.values()) {
      this.refresh(lease, nowMs, lease.effectiveTtlSeconds(), extendMs);
      this.scheduleCheckpoint(lease, nowMs);
    }
  }

  private scheduleCheckpoint(lease: Lease, nowMs: number): void {
    if (!this.checkpointEnabled || lease.ttlSeconds * 1000 <= this.checkpointIntervalMs) return;
    this.checkpointQueue.schedule(lease, nowMs + this.checkpointIntervalMs);
  }

  /**
   * After a promotion every lease expires at once if the old leader was gone
   * long. Sorted by expiry, lease i may expire no earlier than one second
   * after lease i - n, with n = 3/4 of the revoke rate (etcd's target): then
   * any one-second window holds at most n expiries. Only ever later, so the
   * TTL stays a minimum.
   */
  private spreadExpiries(): void {
    const perSecond = Math.max(1, Math.floor((3 * this.revokePerSecondMax) / 4));
    if (this.leaseById.size <= perSecond) return;
    const sorted = [...this.leaseById.values()].sort((a, b) => a.expiryMs - b.expiryMs || compareLeaseIds(a, b));
    for (let i = perSecond; i < sorted.length; i++) {
      const lease = sorted[i] as Lease;
      const earliestMs = (sorted[i - perSecond] as Lease).expiryMs + 1000;
      if (lease.expiryMs < earliestMs) {
        lease.expiryMs = earliestMs;
        this.expiryQueue.schedule(lease, earliestMs);
      }
    }
  }

  private revokeBurst(): number {
    return Math.max(1, this.revokePerSecondMax / 2);
  }

  private revokeTokensAvailable(nowMs: number): number {
    const earnedTokens = ((nowMs - this.revokeTokensAtMs) * this.revokePerSecondMax) / 1000;
    this.revokeTokens = Math.min(this.revokeBurst(), this.revokeTokens + Math.max(0, earnedTokens));
    this.revokeTokensAtMs = nowMs;
    return Math.floor(this.revokeTokens);
  }

  private settleRenewWaiters(id: LeaseId, outcome: RenewWaitOutcome): void {
    const waiters = this.renewWaiters.get(id);
    if (waiters === undefined) return;
    this.renewWaiters.delete(id);
    this.renewWaiterCount -= waiters.length;
    for (const resolve of waiters) resolve(outcome);
  }

  private settleAllRenewWaiters(outcome: RenewWaitOutcome): void {
    for (const id of [...this.renewWaiters.keys()]) this.settleRenewWaiters(id, outcome);
    assert(this.renewWaiterCount === 0, 'renew waiter count drifted');
  }

  /** Checks the cross-structure invariants; for tests. O(n log n). */
  checkInvariants(): void {
    this.expiryQueue.checkInvariants();
    this.checkpointQueue.checkInvariants();
    let attached = 0;
    for (const lease of this.leaseById.values()) {
      for (const s of lease.keySet ?? []) assert(this.leaseByKey.get(s) === lease, 'key set and key map disagree');
      attached += lease.keyCount;
      assert(this.expiryQueue.has(lease) === this.primary, 'a lease is queued for expiry iff primary');
      assert(lease.expiryMs <= lease.expiryDueMs, 'a lease is never due before its expiry');
      if (!this.primary) assert(lease.expiryMs === Infinity && !this.checkpointQueue.has(lease), 'follower leases never expire');
    }
    assert(attached === this.leaseByKey.size, 'every attached key belongs to exactly one lease');
    assert(this.expiryQueue.size === (this.primary ? this.leaseById.size : 0), 'expiry queue size');
  }
}
