/**
 * Timers come in through this interface so that batch commits, compaction
 * pacing and the watch sync loop run on real timers in production and on a
 * hand-driven clock in tests (no wall-clock sleeps in tests).
 */
import { assert } from '../base/index.js';

export interface TimerHandle {
  readonly timerId: number;
}

export interface Timers {
  /** Runs fn once, no earlier than ms from now (ms = 0: on a later turn of the event loop). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; a timer that already ran or was cleared is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

let nextRealTimerId = 1;

/**
 * Node's timers, unref'ed: a pending batch commit or sync pass never keeps a
 * process alive on its own (the server's sockets do that).
 */
export const realTimers: Timers = {
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref();
    return { timerId: nextRealTimerId++, node: t } as TimerHandle & { node: NodeJS.Timeout };
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout((handle as TimerHandle & { node: NodeJS.Timeout }).node);
  },
};

interface ManualTimer {
  readonly timerId: number;
  readonly dueMs: number;
  readonly fn: () => void;
}

/** Timers that fire only when a test advances them; same due time fires in creation order. */
export class ManualTimers implements Timers {
  private nowMsValue = 0;
  private nextId = 1;
  private readonly timers = new Map<number, ManualTimer>();

  get nowMs(): number {
    return this.nowMsValue;
  }

  /** How many timers are waiting. */
  get pending(): number {
    return this.timers.size;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    assert(ms >= 0, 'timer delay must not be negative');
    const timer: ManualTimer = { timerId: this.nextId++, dueMs: this.nowMsValue + ms, fn };
    this.timers.set(timer.timerId, timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.timerId);
  }

  /**
   * Moves time forward by ms, running every timer that falls due, in due
   * order (timers set by a running timer run too if they fall due in time).
   */
  advance(ms: number): void {
    assert(ms >= 0, 'time cannot go back');
    const targetMs = this.nowMsValue + ms;
    for (let fired = 0; ; fired++) {
      assert(fired < 1_000_000, 'ManualTimers.advance: runaway timer loop');
      const next = this.nextDue(targetMs);
      if (next === undefined) break;
      this.timers.delete(next.timerId);
      this.nowMsValue = next.dueMs;
      next.fn();
    }
    this.nowMsValue = targetMs;
  }

  private nextDue(limitMs: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.timers.values()) {
      if (t.dueMs > limitMs) continue;
      if (best === undefined || t.dueMs < best.dueMs || (t.dueMs === best.dueMs && t.timerId < best.timerId)) best = t;
    }
    return best;
  }
}
