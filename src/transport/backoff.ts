/**
 * Reconnect pacing and the timer seam. Delays grow exponentially from
 * initialMs to maxMs, with "equal jitter" (half fixed, half random) so that
 * members restarted together do not dial in lockstep, yet a retry never comes
 * sooner than half the nominal delay.
 */
import { assert, type Rand } from '../base/index.js';

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
}

/** Short, because a restarted member should be back in the cluster within a heartbeat or two. */
export const defaultBackoff: BackoffPolicy = { initialMs: 50, maxMs: 1000, factor: 2 };

export function checkBackoffPolicy(p: BackoffPolicy): void {
  assert(p.initialMs > 0 && p.maxMs >= p.initialMs && p.factor >= 1, `bad backoff policy ${JSON.stringify(p)}`);
}

/** The delay before retry number `attempt` (0 = the first retry after a failure). */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, rand: Rand): number {
  assert(Number.isSafeInteger(attempt) && attempt >= 0, `bad attempt ${attempt}`);
  // Cap the exponent so that factor^attempt never overflows to Infinity.
  const nominal = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor, Math.min(attempt, 64)));
  const half = nominal / 2;
  return Math.round(half + rand.float() * half);
}

/** Timers come in through this seam so that tests can drive them; the default is Node's. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Randomness for jitter when none is injected; jitter needs no reproducibility in production. */
export const mathRand: Rand = {
  uint32: () => Math.floor(Math.random() * 0x1_0000_0000),
  intn: (n) => Math.floor(Math.random() * n),
  float: () => Math.random(),
};
