/**
 * Time comes in through this interface so that the same code runs on the real
 * clock in production and on a seeded fake clock in simulation.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock; only differences are meaningful. */
  nowMs(): number;
  /** Milliseconds since the Unix epoch, for timestamps shown to users. */
  wallMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => performance.now(),
  wallMs: () => Date.now(),
};

/** A clock that moves only when told to; for tests and simulation. */
export class ManualClock implements Clock {
  private monotonicMs: number;
  private readonly epochMs: number;

  constructor(startMs = 0, epochMs = 1_700_000_000_000) {
    this.monotonicMs = startMs;
    this.epochMs = epochMs;
  }

  nowMs(): number {
    return this.monotonicMs;
  }

  wallMs(): number {
    return this.epochMs + this.monotonicMs;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`clock cannot go back: ${ms}`);
    this.monotonicMs += ms;
  }
}
