/**
 * Unique 64-bit ids for proposals and leases, made as etcd's idutil makes
 * them: the low 16 bits of the member id, then 40 bits of the start time in
 * milliseconds and an 8-bit counter that keep counting up. Two members never
 * collide (different prefixes) and a restarted member starts above its old
 * ids (the clock moved on).
 */
import { assert } from '../base/index.js';

const suffixBits = 48n;
const suffixMask = (1n << suffixBits) - 1n;

export class IdGenerator {
  private readonly prefix: bigint;
  private suffix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    assert(Number.isSafeInteger(nowMs) && nowMs >= 0, 'bad start time');
    this.prefix = (memberId & 0xffffn) << suffixBits;
    this.suffix = (BigInt(nowMs) & ((1n << 40n) - 1n)) << 8n;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1n) & suffixMask;
    return this.prefix | this.suffix;
  }
}
