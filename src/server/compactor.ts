/**
 * Auto compaction (--auto-compaction-mode, --auto-compaction-retention), as
 * etcd 3.4's compactors behave. Only the leader runs one (it is paused on
 * every other member); a compaction is an ordinary Compaction request
 * through raft, and "already compacted" counts as success.
 *
 * periodic, retention P: every P/10 (at most 6 minutes) the current revision
 * is sampled, the last P/(P/10)+1 samples kept, so the oldest one is the
 * revision of about P ago. The first compaction happens P after the start,
 * at that oldest sample; later ones every min(P, 1 hour) after the last
 * success; a failure is retried at the next sample.
 *
 * revision, retention N: every 5 minutes, compact at current revision - N,
 * unless that is <= 0 or the revision compacted last time.
 *
 * The retention text is etcd's: a bare non-negative integer is hours
 * (periodic) or revisions (revision); anything else is a Go duration, taken
 * in nanoseconds in revision mode, as etcd does.
 */
import type { Clock, Logger } from '../base/index.js';
import type { TimerHandle, Timers } from '../backend/index.js';
import type { CompactionRetention } from './config.js';

const hourMs = 3_600_000;
/** etcd's revision compactor interval. */
export const revisionCompactionIntervalMs = 5 * 60_000;
const retryDivisor = 10;

export interface CompactorDeps {
  /** The store's current revision. */
  rev(): number;
  /** Proposes a compaction at rev; resolves when it applied. "Already compacted" must resolve too. */
  compact(rev: number): Promise<void>;
  readonly timers: Timers;
  readonly clock: Clock;
  readonly logger: Logger;
}

export abstract class Compactor {
  /** Starts paused: the server resumes it while this member leads. */
  protected paused = true;
  protected stopped = false;
  private timer: TimerHandle | undefined;

  constructor(protected readonly deps: CompactorDeps) {}

  abstract run(): void;

  /** Not the leader: skip compactions until resumed. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.timers.clearTimeout(this.timer);
  }

  protected after(ms: number, fn: () => void): void {
    if (this.stopped) return;
    this.timer = this.deps.timers.setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) fn();
    }, ms);
  }

  protected async tryCompact(rev: number, what: Record<string, unknown>): Promise<boolean> {
    const log = this.deps.logger;
    log.info(`starting auto ${this.kind} compaction`, { revision: rev, ...what });
    const started = this.deps.clock.nowMs();
    try {
      await this.deps.compact(rev);
      log.info(`completed auto ${this.kind} compaction`, { revision: rev, ...what, tookMs: Math.round(this.deps.clock.nowMs() - started) });
      return true;
    } catch (e) {
      log.warn(`failed auto ${this.kind} compaction`, { revision: rev, ...what, error: (e as Error).message });
      return false;
    }
  }

  protected abstract get kind(): string;
}

export class PeriodicCompactor extends Compactor {
  private readonly revs: number[] = [];
  private lastSuccessMs = 0;
  private baseIntervalMs = 0;

  constructor(
    deps: CompactorDeps,
    private readonly periodMs: number,
  ) {
    super(deps);
  }

  protected get kind(): string {
    return 'periodic';
  }

  /** min(P, 1 h): how often compactions happen after the first. */
  get compactIntervalMs(): number {
    return Math.min(this.periodMs, hourMs);
  }

  /** How often the revision is sampled (and a failure retried). */
  get retryIntervalMs(): number {
    return this.compactIntervalMs / retryDivisor;
  }

  get retentions(): number {
    return Math.floor(this.periodMs / this.retryIntervalMs) + 1;
  }

  run(): void {
    this.lastSuccessMs = this.deps.clock.nowMs();
    this.baseIntervalMs = this.periodMs;
    this.sample();
  }

  private sample(): void {
    this.revs.push(this.deps.rev());
    if (this.revs.length > this.retentions) this.revs.shift();
    this.after(this.retryIntervalMs, () => void this.step());
  }

  private async step(): Promise<void> {
    if (this.paused || this.deps.clock.nowMs() - this.lastSuccessMs < this.baseIntervalMs) return this.sample();
    // The first compaction waits the whole period; later ones the compaction interval.
    this.baseIntervalMs = this.compactIntervalMs;
    const rev = this.revs[0] ?? 0;
    if (await this.tryCompact(rev, { 'compact-period': `${this.periodMs}ms` })) this.lastSuccessMs = this.deps.clock.nowMs();
    this.sample();
  }
}

export class RevisionCompactor extends Compactor {
  private prev = 0;

  constructor(
    deps: CompactorDeps,
    private readonly retention: number,
    private readonly intervalMs = revisionCompactionIntervalMs,
  ) {
    super(deps);
  }

  protected get kind(): string {
    return 'revision';
  }

  run(): void {
    this.after(this.intervalMs, () => void this.step());
  }

  private async step(): Promise<void> {
    const rev = this.deps.rev() - this.retention;
    if (!this.paused && rev > 0 && rev !== this.prev) {
      if (await this.tryCompact(rev, { 'revision-compaction-retention': this.retention })) this.prev = rev;
    }
    this.run();
  }
}

/** The compactor the flags ask for, or undefined when auto compaction is off. */
export function newCompactor(r: CompactionRetention, deps: CompactorDeps): Compactor | undefined {
  if (r.retention <= 0) return undefined;
  return r.mode === 'periodic' ? new PeriodicCompactor(deps, r.retention) : new RevisionCompactor(deps, r.retention);
}
