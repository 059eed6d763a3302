/**
 * Go's sort.Sort (Go 1.19, the release etcd 3.4.23 is built with): pattern
 * defeating quicksort, which is not stable. etcd sorts a range's kvs by
 * version, create or mod revision, or value with it, so kvs that tie leave
 * in the order this algorithm puts them in, not in key order, once there
 * are more than 12 of them. A client sees that order; giving the same one
 * takes the same steps, comparison for comparison and swap for swap.
 */

/** Sorts items in place as Go 1.19's sort.Sort over an Interface whose Less is less and whose Swap exchanges two items. */
export function goSort<T>(items: T[], less: (a: T, b: T) => boolean): void {
  const n = items.length;
  if (n <= 1) return;
  new GoSorter(items, less).pdqsort(0, n, bitsLen(n));
}

/** Go's bits.Len: the number of bits needed to represent n (0 for 0). */
function bitsLen(n: number): number {
  return n === 0 ? 0 : Math.floor(Math.log2(n)) + 1;
}

/** choosePivot's guess at the order of the range. */
const Hint = { Unknown: 0, Increasing: 1, Decreasing: 2 } as const;
type Hint = (typeof Hint)[keyof typeof Hint];

const maxInsertion = 12;
const shortestNinther = 50;
const maxSwaps = 4 * 3;
const mask64 = (1n << 64n) - 1n;

class GoSorter<T> {
  constructor(
    private readonly items: T[],
    private readonly lessFn: (a: T, b: T) => boolean,
  ) {}

  private less(i: number, j: number): boolean {
    return this.lessFn(this.items[i] as T, this.items[j] as T);
  }

  private swap(i: number, j: number): void {
    const t = this.items[i] as T;
    this.items[i] = this.items[j] as T;
    this.items[j] = t;
  }

  private insertionSort(a: number, b: number): void {
    for (let i = a + 1; i < b; i++) {
      for (let j = i; j > a && this.less(j, j - 1); j--) this.swap(j, j - 1);
    }
  }

  private siftDown(lo: number, hi: number, first: number): void {
    let root = lo;
    for (;;) {
      let child = 2 * root + 1;
      if (child >= hi) return;
      if (child + 1 < hi && this.less(first + child, first + child + 1)) child++;
      if (!this.less(first + root, first + child)) return;
      this.swap(first + root, first + child);
      root = child;
    }
  }

  private heapSort(a: number, b: number): void {
    const first = a;
    const hi = b - a;
    for (let i = Math.floor((hi - 1) / 2); i >= 0; i--) this.siftDown(i, hi, first);
    for (let i = hi - 1; i >= 0; i--) {
      this.swap(first, first + i);
      this.siftDown(0, i, first);
    }
  }

  pdqsort(a: number, b: number, limit: number): void {
    let wasBalanced = true;
    let wasPartitioned = true;
    for (;;) {
      const length = b - a;
      if (length <= maxInsertion) {
        this.insertionSort(a, b);
        return;
      }
      if (limit === 0) {
        this.heapSort(a, b);
        return;
      }
      if (!wasBalanced) {
        this.breakPatterns(a, b);
        limit--;
      }
      let [pivot, hint] = this.choosePivot(a, b);
      if (hint === Hint.Decreasing) {
        this.reverseRange(a, b);
        pivot = b - 1 - (pivot - a);
        hint = Hint.Increasing;
      }
      if (wasBalanced && wasPartitioned && hint === Hint.Increasing && this.partialInsertionSort(a, b)) return;
      if (a > 0 && !this.less(a - 1, pivot)) {
        a = this.partitionEqual(a, b, pivot);
        continue;
      }
      const [mid, alreadyPartitioned] = this.partition(a, b, pivot);
      wasPartitioned = alreadyPartitioned;
      const leftLen = mid - a;
      const rightLen = b - mid;
      const balanceThreshold = Math.floor(length / 8);
      if (leftLen < rightLen) {
        wasBalanced = leftLen >= balanceThreshold;
        this.pdqsort(a, mid, limit);
        a = mid + 1;
      } else {
        wasBalanced = rightLen >= balanceThreshold;
        this.pdqsort(mid + 1, b, limit);
        b = mid;
      }
    }
  }

  private partition(a: number, b: number, pivot: number): [number, boolean] {
    this.swap(a, pivot);
    let i = a + 1;
    let j = b - 1;
    while (i <= j && this.less(i, a)) i++;
    while (i <= j && !this.less(j, a)) j--;
    if (i > j) {
      this.swap(j, a);
      return [j, true];
    }
    this.swap(i, j);
    i++;
    j--;
    for (;;) {
      while (i <= j && this.less(i, a)) i++;
      while (i <= j && !this.less(j, a)) j--;
      if (i > j) break;
      this.swap(i, j);
      i++;
      j--;
    }
    this.swap(j, a);
    return [j, false];
  }

  private partitionEqual(a: number, b: number, pivot: number): number {
    this.swap(a, pivot);
    let i = a + 1;
    let j = b - 1;
    for (;;) {
      while (i <= j && !this.less(a, i)) i++;
      while (i <= j && this.less(a, j)) j--;
      if (i > j) break;
      this.swap(i, j);
      i++;
      j--;
    }
    return i;
  }

  private partialInsertionSort(a: number, b: number): boolean {
    const maxSteps = 5;
    const shortestShifting = 50;
    let i = a + 1;
    for (let step = 0; step < maxSteps; step++) {
      while (i < b && !this.less(i, i - 1)) i++;
      if (i === b) return true;
      if (b - a < shortestShifting) return false;
      this.swap(i, i - 1);
      // Go shifts down to index 1 here, not to a: kept, for the same swaps.
      if (i - a >= 2) {
        for (let j = i - 1; j >= 1; j--) {
          if (!this.less(j, j - 1)) break;
          this.swap(j, j - 1);
        }
      }
      if (b - i >= 2) {
        for (let j = i + 1; j < b; j++) {
          if (!this.less(j, j - 1)) break;
          this.swap(j, j - 1);
        }
      }
    }
    return false;
  }

  private breakPatterns(a: number, b: number): void {
    const length = b - a;
    if (length < 8) return;
    // Go's xorshift, seeded with the length, on 64 bits.
    let random = BigInt(length);
    const modulus = 2 ** bitsLen(length);
    const at = a + Math.floor(length / 4) * 2;
    for (let idx = at - 1; idx <= at + 1; idx++) {
      random ^= (random << 13n) & mask64;
      random ^= random >> 17n;
      random ^= (random << 5n) & mask64;
      let other = Number(random & BigInt(modulus - 1));
      if (other >= length) other -= length;
      this.swap(idx, a + other);
    }
  }

  private choosePivot(a: number, b: number): [number, Hint] {
    const l = b - a;
    const swaps = { n: 0 };
    const quarter = Math.floor(l / 4);
    let i = a + quarter;
    let j = a + quarter * 2;
    let k = a + quarter * 3;
    if (l >= 8) {
      if (l >= shortestNinther) {
        i = this.median(i - 1, i, i + 1, swaps);
        j = this.median(j - 1, j, j + 1, swaps);
        k = this.median(k - 1, k, k + 1, swaps);
      }
      j = this.median(i, j, k, swaps);
    }
    if (swaps.n === 0) return [j, Hint.Increasing];
    if (swaps.n === maxSwaps) return [j, Hint.Decreasing];
    return [j, Hint.Unknown];
  }

  /** The index of the median of the three; counts in swaps how often two were out of order. */
  private median(a: number, b: number, c: number, swaps: { n: number }): number {
    let lo = a;
    let mid = b;
    if (this.less(mid, lo)) {
      swaps.n++;
      [lo, mid] = [mid, lo];
    }
    if (this.less(c, mid)) {
      swaps.n++;
      mid = c;
    }
    if (this.less(mid, lo)) {
      swaps.n++;
      mid = lo;
    }
    return mid;
  }

  private reverseRange(a: number, b: number): void {
    for (let i = a, j = b - 1; i < j; i++, j--) this.swap(i, j);
  }
}
