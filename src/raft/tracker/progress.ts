import { assert } from '../../base/index.js';
import { Inflights } from './inflights.js';

/**
 * How the leader replicates to one follower:
 * - Probe: one append at a time until the follower's match is found.
 * - Replicate: optimistic pipelining, bounded by the inflights buffer.
 * - Snapshot: a snapshot is on its way; nothing else is sent.
 */
export const ProgressState = {
  StateProbe: 'StateProbe',
  StateReplicate: 'StateReplicate',
  StateSnapshot: 'StateSnapshot',
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** The leader's view of one follower (or learner). */
export class Progress {
  /** The highest index known to be durably on the follower. */
  match = 0;
  /** The next index to send. In StateReplicate, entries [match+1, next) are in flight. */
  next: number;
  state: ProgressState = ProgressState.StateProbe;
  /** In StateSnapshot, the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round (or the leader just took office). */
  recentActive = false;
  /**
   * No further appends until something changes: in StateProbe after one
   * append (until a response or heartbeat response), in StateReplicate while
   * the inflights buffer is full.
   */
  msgAppFlowPaused = false;
  isLearner: boolean;
  inflights: Inflights;

  constructor(next: number, inflights: Inflights, isLearner: boolean) {
    this.next = next;
    this.inflights = inflights;
    this.isLearner = isLearner;
  }

  clone(): Progress {
    const p = new Progress(this.next, this.inflights.clone(), this.isLearner);
    p.match = this.match;
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.recentActive = this.recentActive;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    return p;
  }

  /** A fresh start at a new term: probe from `next`, nothing in flight. */
  resetForTerm(match: number, next: number): void {
    this.resetState(ProgressState.StateProbe);
    this.match = match;
    this.next = next;
    this.recentActive = false;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.StateSnapshot) {
      // The snapshot may or may not have landed: probe right after it.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.StateProbe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.StateProbe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.StateReplicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.StateSnapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /**
   * Records that an append with `entries` entries (the last at `lastIndex`,
   * `bytes` in total) was sent.
   */
  sentEntries(entries: number, lastIndex: number, bytes: number): void {
    switch (this.state) {
      case ProgressState.StateReplicate:
        if (entries > 0) {
          this.next = lastIndex + 1;
          this.inflights.add(lastIndex, bytes);
        }
        this.msgAppFlowPaused = this.inflights.full();
        break;
      case ProgressState.StateProbe:
        if (entries > 0) this.msgAppFlowPaused = true;
        break;
      case ProgressState.StateSnapshot:
        assert(false, `sending appends in ${this.state}`);
    }
  }

  /**
   * Handles an accepted append response for index n. Returns false when it
   * was stale (n <= match), true when match advanced.
   */
  maybeUpdate(n: number): boolean {
    if (n > this.next - 1) this.next = n + 1;
    if (this.match >= n) return false;
    this.match = n;
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * Handles a rejected append at index `rejected`, where the follower hinted
   * that its log is at most `matchHint` long (or matches up to there). Returns
   * false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.StateReplicate) {
      // A rejection at or below match is an old message; above it, restart
      // from just past match.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe only the rejection of the append we sent last counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.StateProbe:
      case ProgressState.StateReplicate:
        return this.msgAppFlowPaused;
      case ProgressState.StateSnapshot:
        return true;
    }
  }

  toString(): string {
    let s = `${this.state} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += ' learner';
    if (this.isPaused()) s += ' paused';
    if (this.pendingSnapshot > 0) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += ' inactive';
    const n = this.inflights.count();
    if (n > 0) {
      s += ` inflight=${n}`;
      if (this.inflights.full()) s += '[full]';
    }
    return s;
  }
}
