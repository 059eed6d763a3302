/**
 * The leader's half of leases, run by EtcdServer and by the simulation's
 * members alike: the lessor is promoted when this member, as leader, applies
 * the first entry of its term (from then on it knows every grant and renewal
 * of the log) and demoted when leadership goes; while promoted, expired
 * leases are revoked and remaining TTLs checkpointed through raft.
 *
 * Keep-alives and TimeToLive are answered here after a ReadIndex round: it
 * confirms that this member still leads, and the answer waits until what was
 * committed then has applied. etcd answers from its lessor at once, so a
 * leader cut off from the others (not yet stepped down) renews leases the
 * new leader will expire, and reports a lease that a revoke acknowledged by
 * the others removed (etcd #13915, #15247); here such a leader cannot
 * confirm, and the client's keep-alive fails instead of lying.
 *
 * Forwarding from a follower to the leader is not here: the server does it
 * over its peer transport, the simulation through its network.
 */
import { LeaseExpiredError, LeaseNotFoundError, LeaseNotPrimaryError, type LeaseTimeToLive, type Lessor } from '../lease/index.js';
import { etcdserverpb, type serverpb } from '../pb/index.js';

export interface LeaseLeaderHost {
  readonly lessor: Lessor;
  /** The election timeout: a promoted lessor extends every lease by it. */
  readonly electionMs: number;
  isLeader(): boolean;
  /** The current raft term. */
  term(): number;
  /** A ReadIndex round: resolves once this member confirmed its leadership and applied what was committed then. */
  linearizableRead(): Promise<void>;
  /** Proposes and resolves with the applied response; rejects when that is not known. */
  propose(request: serverpb.InternalRaftRequest['request']): Promise<object>;
  /** A proposal of the member's own: undefined when it failed. */
  proposeInternal(request: serverpb.InternalRaftRequest['request']): Promise<object | undefined>;
  /** A lease the leader revoked because it expired. */
  onExpired?(id: bigint): void;
}

export class LeaseLeader {
  private promotedTerm = -1;

  constructor(private readonly host: LeaseLeaderHost) {}

  /**
   * An empty entry applied: a new leader's first entry. Promotes the lessor
   * when this member leads the entry's term; true when it did just now.
   */
  onEmptyEntry(term: number): boolean {
    const h = this.host;
    if (!h.isLeader() || term !== h.term() || this.promotedTerm === term) return false;
    this.promotedTerm = term;
    h.lessor.promote(h.electionMs);
    return true;
  }

  /** Called on every soft state change: a member that stopped leading demotes its lessor. */
  onSoftState(wasLeader: boolean): void {
    if (wasLeader && !this.host.isLeader()) this.host.lessor.demote();
  }

  /** Whether this member leads and has promoted its lessor for the current term. */
  get serving(): boolean {
    return this.host.isLeader() && this.promotedTerm === this.host.term();
  }

  /** The periodic pass: revokes expired leases, checkpoints remaining TTLs. */
  tick(): void {
    const h = this.host;
    if (!this.serving) return;
    for (const id of h.lessor.expiredLeases()) {
      void h.proposeInternal({ case: 'leaseRevoke', value: etcdserverpb.LeaseRevokeRequest.create({ ID: id }) }).then((revoked) => {
        if (revoked !== undefined) h.onExpired?.(id);
      });
    }
    const due = h.lessor.checkpointsDue();
    if (due.length > 0) void h.proposeInternal({ case: 'leaseCheckpoint', value: etcdserverpb.LeaseCheckpointRequest.create({ checkpoints: due }) });
  }

  /** A keep-alive on the leader: the TTL, 0 when the lease is gone, undefined when it should be tried again. */
  async renew(id: bigint): Promise<number | undefined> {
    await this.host.linearizableRead();
    const h = this.host;
    try {
      const r = h.lessor.renew(id);
      // A remaining TTL recorded by a checkpoint would survive a leader change; clear it first.
      // As etcd's, a clear that fails (a timeout, a leader change) does not fail the keep-alive:
      // the lease is renewed here either way, and the next keep-alive clears it again.
      if (r.clearRemainingTtl) {
        await h
          .propose({
            case: 'leaseCheckpoint',
            value: etcdserverpb.LeaseCheckpointRequest.create({ checkpoints: [etcdserverpb.LeaseCheckpoint.create({ ID: id, remainingTTL: 0 })] }),
          })
          .catch(() => undefined);
      }
      return r.ttlSeconds;
    } catch (e) {
      if (e instanceof LeaseNotFoundError) return 0;
      if (e instanceof LeaseExpiredError) return (await h.lessor.whenRevokedOrRetry(id)) === 'revoked' ? 0 : undefined;
      if (e instanceof LeaseNotPrimaryError) return undefined;
      throw e;
    }
  }

  /** TimeToLive on the leader; undefined when it should be tried again (not primary). */
  async timeToLive(id: bigint, withKeys: boolean): Promise<LeaseTimeToLive | undefined> {
    await this.host.linearizableRead();
    try {
      return this.host.lessor.timeToLive(id, withKeys);
    } catch (e) {
      if (e instanceof LeaseNotPrimaryError) return undefined;
      throw e;
    }
  }
}
