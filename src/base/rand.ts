import { assert } from './assert.js';

/**
 * Randomness comes in through this interface. A seeded generator makes every
 * simulation replayable from its seed; production uses the same generator
 * seeded from the OS.
 */
export interface Rand {
  /** A uniformly distributed 32-bit unsigned integer. */
  uint32(): number;
  /** A uniformly distributed integer in [0, n). */
  intn(n: number): number;
  /** A float in [0, 1). */
  float(): number;
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counter): 128 bits of state, passes
 * PractRand, and needs only 32-bit integer operations, which V8 runs fast.
 */
export class SeededRand implements Rand {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), `seed must be an integer: ${seed}`);
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = (seed >>> 0) ^ Math.floor(seed / 0x1_0000_0000);
    // Warm up so that close seeds give unrelated streams.
    for (let i = 0; i < 15; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  intn(n: number): number {
    assert(Number.isSafeInteger(n) && n > 0 && n <= 0x1_0000_0000, `intn: bad bound ${n}`);
    // Rejection sampling keeps the distribution uniform for every n.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  float(): number {
    return this.uint32() / 0x1_0000_0000;
  }
}
