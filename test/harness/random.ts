/**
 * Random choices for the seeded differential tests: a coin with a given
 * chance and a pick from a list, over one SeededRand, so that a seed gives
 * the same sequence of requests on every run.
 */
import type { SeededRand } from '../../src/base/index.js';

export class Choices {
  constructor(readonly rand: SeededRand) {}

  /** True with probability p. */
  chance(p: number): boolean {
    return this.rand.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.rand.intn(xs.length)] as T;
  }
}
