/**
 * Linearizable reads through raft's ReadIndex, batched: every read that
 * arrives while no round is being issued joins the next round, one round
 * confirms leadership for all of them (a heartbeat quorum, or the lease in
 * lease-based mode), and each waits until the applied index reaches the read
 * index before reading locally. A read that arrives after a round was issued
 * never joins it: its linearization point must come after the ReadIndex.
 *
 * Rounds are retried (raft drops a ReadIndex without a leader) every
 * retryMs and fail with Timeout after timeoutMs, as etcd's linearizableReadLoop.
 *
 * A round's context is a request id unique in the cluster (the member's id
 * generator, as etcd's): the leader keeps one pending ReadIndex per context,
 * and drops a second with the same bytes, so two followers counting 1, 2, 3
 * each would lose each other's rounds to the retry.
 *
 * A member that is its own quorum (the sole voter, leading) knows the read
 * index without a round: such a read only waits for the applied index.
 */
import { assert } from '../base/index.js';
import { ServerError } from './errors.js';
import type { AppliedIndexWait } from './wait.js';

interface Reader {
  resolve(): void;
  reject(err: unknown): void;
}

type ScheduleFn = (fn: () => void) => void;

interface Round {
  readonly ctx: Uint8Array;
  readonly key: string;
  readonly readers: Reader[];
  readonly startedMs: number;
  retryTimer: NodeJS.Timeout | undefined;
}

export interface LinearizableReadOptions {
  /** Asks raft for a read index with this context (RawNode.readIndex). */
  issue(ctx: Uint8Array): void;
  /** The read index when no round is needed (RawNode.localReadIndex), else undefined. */
  localIndex(): number | undefined;
  /** A request id no other round in the cluster uses (IdGenerator.next). */
  nextId(): bigint;
  appliedWait: AppliedIndexWait;
  nowMs(): number;
  retryMs: number;
  timeoutMs: number;
  /** Reads waiting for a round; past it, reads fail with TooManyRequests. */
  pendingMax: number;
  /** A round timed out, or an answer came for a round already given up (etcd_server_slow_read_indexes_total). */
  onSlow?: () => void;
  /** A round failed outright: the member stopped under it (etcd_server_read_indexes_failed_total). */
  onFailed?: () => void;
}

export class LinearizableReads {
  private pending: Reader[] = [];
  private round: Round | undefined;
  private stopped: Error | undefined;
  private scheduled = false;

  constructor(
    private readonly opts: LinearizableReadOptions,
    private readonly schedule: ScheduleFn = (fn) => setImmediate(fn),
  ) {}

  /** Resolves when a local read reflects every write acknowledged before the call. */
  read(): Promise<void> {
    if (this.stopped !== undefined) return Promise.reject(this.stopped);
    const local = this.opts.localIndex();
    if (local !== undefined) return this.opts.appliedWait.wait(local);
    if (this.pending.length >= this.opts.pendingMax) return Promise.reject(new ServerError('TooManyRequests'));
    const p = new Promise<void>((resolve, reject) => this.pending.push({ resolve, reject }));
    this.maybeStartRound();
    return p;
  }

  /** A ReadState from raft's Ready. Unknown contexts (an older member life, a retried round) are ignored. */
  onReadState(ctx: Uint8Array, index: number): void {
    const round = this.round;
    if (round === undefined || Buffer.from(ctx).toString('hex') !== round.key) {
      this.opts.onSlow?.();
      return;
    }
    this.finishRound(round);
    const readers = round.readers;
    this.opts.appliedWait.wait(index).then(
      () => {
        for (const r of readers) r.resolve();
      },
      (err: unknown) => {
        for (const r of readers) r.reject(err);
      },
    );
    this.maybeStartRound();
  }

  /** A new leader was elected: reissue the current round at once rather than waiting for the retry. */
  onLeaderChange(): void {
    const round = this.round;
    if (round !== undefined) this.opts.issue(round.ctx);
  }

  stop(err: Error): void {
    this.stopped = err;
    const round = this.round;
    if (round !== undefined) {
      this.finishRound(round);
      this.opts.onFailed?.();
      for (const r of round.readers) r.reject(err);
    }
    const pending = this.pending;
    this.pending = [];
    for (const r of pending) r.reject(err);
  }

  /**
   * Issues the next round at the end of this turn of the event loop, so that
   * every read that arrived in the same turn shares it.
   */
  private maybeStartRound(): void {
    if (this.round !== undefined || this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      if (this.round === undefined && this.pending.length > 0 && this.stopped === undefined) this.startRound();
    });
  }

  private startRound(): void {
    assert(this.round === undefined, 'one ReadIndex round at a time');
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, this.opts.nextId());
    const round: Round = {
      ctx,
      key: Buffer.from(ctx).toString('hex'),
      readers: this.pending,
      startedMs: this.opts.nowMs(),
      retryTimer: undefined,
    };
    this.pending = [];
    this.round = round;
    this.opts.issue(ctx);
    this.scheduleRetry(round);
  }

  private scheduleRetry(round: Round): void {
    round.retryTimer = setTimeout(() => {
      if (this.round !== round) return;
      if (this.opts.nowMs() - round.startedMs >= this.opts.timeoutMs) {
        this.finishRound(round);
        this.opts.onSlow?.();
        for (const r of round.readers) r.reject(new ServerError('Timeout'));
        this.maybeStartRound();
        return;
      }
      this.opts.issue(round.ctx);
      this.scheduleRetry(round);
    }, this.opts.retryMs);
    round.retryTimer.unref();
  }

  private finishRound(round: Round): void {
    if (round.retryTimer !== undefined) clearTimeout(round.retryTimer);
    this.round = undefined;
  }
}
