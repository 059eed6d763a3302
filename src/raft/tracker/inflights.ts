import { assert } from '../../base/index.js';

/**
 * The append messages in flight to one follower, as a ring buffer of (last
 * index, bytes) pairs capped both by count and by total bytes. The leader
 * stops sending when it is full and frees a prefix whenever the follower
 * acknowledges an index.
 */
export class Inflights {
  private start = 0;
  private countNow = 0;
  private bytesNow = 0;
  // Grown lazily: most followers never have many messages in flight.
  private indexes = new Float64Array(0);
  private sizes = new Float64Array(0);

  constructor(
    readonly countMax: number,
    /** 0 means no byte limit. */
    readonly bytesMax: number,
  ) {
    assert(Number.isSafeInteger(countMax) && countMax > 0, `inflights: bad count limit ${countMax}`);
    assert(Number.isSafeInteger(bytesMax) && bytesMax >= 0, `inflights: bad byte limit ${bytesMax}`);
  }

  clone(): Inflights {
    const c = new Inflights(this.countMax, this.bytesMax);
    c.start = this.start;
    c.countNow = this.countNow;
    c.bytesNow = this.bytesNow;
    c.indexes = this.indexes.slice();
    c.sizes = this.sizes.slice();
    return c;
  }

  /** Records a message whose last entry has `index`; indexes must increase. */
  add(index: number, bytes: number): void {
    assert(!this.full(), 'inflights: add to a full buffer');
    if (this.countNow > 0) assert(index > this.lastIndex(), `inflights: index ${index} not increasing`);
    if (this.countNow === this.indexes.length) this.grow();
    let pos = this.start + this.countNow;
    if (pos >= this.indexes.length) pos -= this.indexes.length;
    this.indexes[pos] = index;
    this.sizes[pos] = bytes;
    this.countNow++;
    this.bytesNow += bytes;
  }

  private lastIndex(): number {
    let pos = this.start + this.countNow - 1;
    if (pos >= this.indexes.length) pos -= this.indexes.length;
    return this.indexes[pos] ?? 0;
  }

  private grow(): void {
    const cap = this.indexes.length;
    const next = Math.min(this.countMax, cap === 0 ? 1 : cap * 2);
    const idx = new Float64Array(next);
    const sz = new Float64Array(next);
    for (let i = 0; i < this.countNow; i++) {
      let p = this.start + i;
      if (p >= cap) p -= cap;
      idx[i] = this.indexes[p] ?? 0;
      sz[i] = this.sizes[p] ?? 0;
    }
    this.indexes = idx;
    this.sizes = sz;
    this.start = 0;
  }

  /** Frees every message whose last index is <= `to`. */
  freeLE(to: number): void {
    const cap = this.indexes.length;
    let i = 0;
    let pos = this.start;
    let bytes = 0;
    while (i < this.countNow) {
      if ((this.indexes[pos] ?? 0) > to) break;
      bytes += this.sizes[pos] ?? 0;
      i++;
      pos++;
      if (pos >= cap) pos = 0;
    }
    this.countNow -= i;
    this.bytesNow -= bytes;
    this.start = this.countNow === 0 ? 0 : pos;
  }

  full(): boolean {
    return this.countNow >= this.countMax || (this.bytesMax > 0 && this.bytesNow >= this.bytesMax);
  }

  count(): number {
    return this.countNow;
  }

  bytes(): number {
    return this.bytesNow;
  }

  reset(): void {
    this.start = 0;
    this.countNow = 0;
    this.bytesNow = 0;
  }
}
