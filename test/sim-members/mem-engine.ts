/**
 * An in-memory BackendEngine (src/backend/engine.ts) for the simulation,
 * with LMDB's promises: a commit applies its whole batch at one instant (its
 * commit point, a random few milliseconds after it was started, in start
 * order) and is durable from then on; a crash before that loses it whole.
 * The committed buckets (MemDb) outlive the process, as a file would.
 */
import type { Rand } from '../../src/base/index.js';
import { bytesToKey, type BackendEngine, type EngineBatch, type EngineEntry } from '../../src/backend/index.js';
import type { Proc } from './loop.js';

/** One bucket: entries by byte-string key, and their keys in order (rebuilt when stale). */
class MemBucket {
  readonly entries = new Map<string, EngineEntry>();
  private sorted: string[] = [];
  private stale = false;

  set(keyStr: string, entry: EngineEntry | undefined): void {
    if (entry === undefined) {
      if (this.entries.delete(keyStr)) this.stale = true;
      return;
    }
    if (!this.entries.has(keyStr)) this.stale = true;
    this.entries.set(keyStr, entry);
  }

  keys(): string[] {
    if (this.stale) {
      this.sorted = [...this.entries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.stale = false;
    }
    return this.sorted;
  }
}

/** The committed state: what a crash leaves. */
export class MemDb {
  readonly buckets = new Map<string, MemBucket>();
  commits = 0;

  bucket(name: string): MemBucket {
    let b = this.buckets.get(name);
    if (b === undefined) {
      b = new MemBucket();
      this.buckets.set(name, b);
    }
    return b;
  }

  clone(): MemDb {
    const c = new MemDb();
    for (const [name, b] of this.buckets) {
      const nb = c.bucket(name);
      for (const [k, e] of b.entries) nb.set(k, e);
    }
    return c;
  }
}

function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemEngine implements BackendEngine {
  private readonly buckets: MemBucket[];
  /** When the last started commit lands (commits land in start order). */
  private lastLandMs = 0;
  private landed: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: MemDb,
    names: readonly string[],
    private readonly proc: Proc,
    private readonly rand: Rand,
  ) {
    this.buckets = names.map((n) => db.bucket(n));
  }

  get(bucket: number, key: Uint8Array): Uint8Array | undefined {
    return (this.buckets[bucket] as MemBucket).entries.get(bytesToKey(key))?.value;
  }

  peek(bucket: number, key: Uint8Array): Uint8Array | undefined {
    return this.get(bucket, key);
  }

  *range(bucket: number, start: Uint8Array, end: Uint8Array | undefined): Iterable<EngineEntry> {
    const b = this.buckets[bucket] as MemBucket;
    const keys = b.keys();
    const endStr = end === undefined ? undefined : bytesToKey(end);
    for (let i = lowerBound(keys, bytesToKey(start)); i < keys.length; i++) {
      const k = keys[i] as string;
      if (endStr !== undefined && k >= endStr) return;
      const e = b.entries.get(k);
      if (e !== undefined) yield e;
    }
  }

  commit(batch: EngineBatch): Promise<void> {
    // The batch is copied now: what lands is what was handed over.
    const writes = batch.buckets.map((o) => [...o.entries.values()].map((e) => ({ keyStr: e.keyStr, key: e.key, value: e.value })));
    const now = this.proc.nowMs();
    this.lastLandMs = Math.max(this.lastLandMs, now) + this.rand.intn(5);
    const landed = new Promise<void>((resolve) => {
      this.proc.after(this.lastLandMs - now, () => {
        writes.forEach((list, i) => {
          const b = this.buckets[i] as MemBucket;
          for (const w of list) b.set(w.keyStr, w.value === undefined ? undefined : { key: w.key, value: w.value });
        });
        this.db.commits++;
        resolve();
      });
    });
    this.landed = landed;
    return landed;
  }

  flushed(): Promise<void> {
    return this.landed;
  }

  size(): number {
    let n = 0;
    for (const b of this.buckets) for (const e of b.entries.values()) n += e.key.length + e.value.length;
    return n;
  }

  sizeInUse(): number {
    return this.size();
  }

  /**
   * Maps keep no free space: the copy changes nothing, but it takes a few
   * simulated milliseconds, in which the backend holds its commits (and a
   * crash leaves the file as it was, as the rename would).
   */
  defrag(): Promise<void> {
    return new Promise((resolve) => this.proc.after(1 + this.rand.intn(30), resolve));
  }

  close(): Promise<void> {
    return this.landed;
  }
}
