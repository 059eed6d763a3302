/**
 * A latency histogram with HDR-like buckets: exact below 128 µs, then 64
 * linear sub-buckets per power of two (relative error under 1.6%), up to
 * 2^40 µs. Recording is an index computation and an increment; histograms
 * from several processes merge by adding counts.
 */

const linearMax = 128;
const subBuckets = 64;
const subBits = 6;
const exponentsMax = 34;
const bucketsLen = linearMax + exponentsMax * subBuckets;

function bucketOf(us: number): number {
  if (us < linearMax) return us < 0 ? 0 : us;
  // us in [2^k, 2^(k+1)), k >= 7: keep the top 7 bits (64..127) as the sub-bucket.
  const k = 31 - Math.clz32(us);
  if (k >= 31) return bucketsLen - 1;
  const shift = k - subBits;
  const i = linearMax + (shift - 1) * subBuckets + ((us >>> shift) - subBuckets);
  return i < bucketsLen ? i : bucketsLen - 1;
}

/** The middle of a bucket's range, in µs. */
function valueOf(bucket: number): number {
  if (bucket < linearMax) return bucket;
  const shift = Math.floor((bucket - linearMax) / subBuckets) + 1;
  const low = (subBuckets + ((bucket - linearMax) % subBuckets)) * 2 ** shift;
  return low + 2 ** shift / 2;
}

export class Histogram {
  private readonly counts: Float64Array;
  private n = 0;
  private sumUs = 0;
  private maxUs = 0;

  constructor(counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(bucketsLen);
  }

  get count(): number {
    return this.n;
  }

  /** Records one latency in milliseconds. */
  recordMs(ms: number): void {
    const us = Math.round(ms * 1000);
    const b = bucketOf(us);
    this.counts[b] = (this.counts[b] ?? 0) + 1;
    this.n++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The value at quantile q (0..1), in milliseconds; 0 when empty. */
  quantileMs(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let b = 0; b < bucketsLen; b++) {
      seen += this.counts[b] ?? 0;
      if (seen >= rank) return Math.min(valueOf(b), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  get meanMs(): number {
    return this.n === 0 ? 0 : this.sumUs / this.n / 1000;
  }

  get maxMs(): number {
    return this.maxUs / 1000;
  }

  merge(other: Histogram): void {
    for (let b = 0; b < bucketsLen; b++) this.counts[b] = (this.counts[b] ?? 0) + (other.counts[b] ?? 0);
    this.n += other.n;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  /** Sparse form for IPC: [bucket, count] pairs plus totals. */
  toJSON(): SerializedHistogram {
    const pairs: number[] = [];
    for (let b = 0; b < bucketsLen; b++) {
      const c = this.counts[b] ?? 0;
      if (c > 0) pairs.push(b, c);
    }
    return { pairs, n: this.n, sumUs: this.sumUs, maxUs: this.maxUs };
  }

  static fromJSON(s: SerializedHistogram): Histogram {
    const h = new Histogram();
    for (let i = 0; i + 1 < s.pairs.length; i += 2) h.counts[s.pairs[i] ?? 0] = s.pairs[i + 1] ?? 0;
    h.n = s.n;
    h.sumUs = s.sumUs;
    h.maxUs = s.maxUs;
    return h;
  }
}

export interface SerializedHistogram {
  readonly pairs: number[];
  readonly n: number;
  readonly sumUs: number;
  readonly maxUs: number;
}
