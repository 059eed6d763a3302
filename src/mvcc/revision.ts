/**
 * Revisions: `main` is the store revision of a write transaction, `sub` the
 * position of a change inside it. In the key bucket a revision is the 17-byte
 * key of schema.revisionToBytes, so the bucket is in revision order.
 */
import { bytesToMainRevision, bytesToSubRevision, revisionToBytes } from '../schema/index.js';

export interface Revision {
  readonly main: number;
  readonly sub: number;
}

export function revToBytes(rev: Revision, tombstone = false): Uint8Array {
  return revisionToBytes(rev.main, rev.sub, tombstone);
}

export function bytesToRev(b: Uint8Array): Revision {
  return { main: bytesToMainRevision(b), sub: bytesToSubRevision(b) };
}

/** A revision as a Set/Map key. */
export function revKey(main: number, sub: number): string {
  return `${main}_${sub}`;
}

/**
 * A set of revisions with no string per revision: a compaction or HashKV
 * collects one per key of the store, then looks up one per entry of the key
 * bucket. Most revisions are the only change of their transaction (sub 0):
 * their main revisions go in a set of numbers; the rest by main revision.
 */
export class RevisionSet {
  private readonly firsts = new Set<number>();
  private readonly others = new Map<number, Set<number>>();
  private count = 0;

  add(main: number, sub: number): void {
    if (sub === 0) {
      if (this.firsts.has(main)) return;
      this.firsts.add(main);
    } else {
      let subs = this.others.get(main);
      if (subs === undefined) this.others.set(main, (subs = new Set()));
      if (subs.has(sub)) return;
      subs.add(sub);
    }
    this.count++;
  }

  has(main: number, sub: number): boolean {
    return sub === 0 ? this.firsts.has(main) : this.others.get(main)?.has(sub) === true;
  }

  /** The revision whose 17-byte key-bucket key this is (its tombstone mark aside). */
  hasKey(key: Uint8Array): boolean {
    return this.has(bytesToMainRevision(key), bytesToSubRevision(key));
  }

  get size(): number {
    return this.count;
  }

  /** The revisions as revKey strings: those of sub 0 first, each part in the order added. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (const main of this.firsts) yield revKey(main, 0);
    for (const [main, subs] of this.others) for (const sub of subs) yield revKey(main, sub);
  }
}
