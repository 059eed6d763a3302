/**
 * The revisions of one key, in generations. A generation runs from the put
 * that created the key to the tombstone that deleted it; deleting appends the
 * tombstone to the current generation and opens a new, empty one. For puts at
 * 1, 2, a delete at 3, a put at 4 and a delete at 5:
 *
 *   generations: [ {1, 2, 3(t)}, {4, 5(t)}, {} ]
 *
 * Compacting at revision R keeps, for each key, the newest revision <= R
 * (unless it is a tombstone) and everything newer; generations that end up
 * empty go, and a key left with only its empty generation goes from the
 * index. compact(2) above gives [ {2, 3(t)}, {4, 5(t)}, {} ]; compact(4)
 * gives [ {4, 5(t)}, {} ]; compact(5) leaves only the empty generation.
 * These are etcd's rules (mvcc/key_index.go) because HashKV must match.
 */
import { assert } from '../base/index.js';
import { revGreater, revKey, type Revision } from './revision.js';

export interface Generation {
  /** Number of puts in the generation (the version of its newest put). */
  ver: number;
  /** The revision that created the key (the first put). */
  created: Revision;
  /** Every revision, oldest first; a tombstone, if any, is last. */
  revs: Revision[];
}

export interface KeyAt {
  readonly modified: Revision;
  readonly created: Revision;
  readonly version: number;
}

const zeroRev: Revision = { main: 0, sub: 0 };

function newGeneration(): Generation {
  return { ver: 0, created: zeroRev, revs: [] };
}

export class KeyIndex {
  /** The lease of the key's current (live) version; 0n when none or deleted. */
  lease = 0n;
  generations: Generation[] = [];
  /** The newest revision put or tombstoned. */
  modified: Revision = zeroRev;
  /**
   * The key as of `modified`, kept beside the generations so that a read at
   * the current revision (nearly every read) touches this object only.
   * liveVersion 0: deleted.
   */
  private liveVersion = 0;
  private liveCreated: Revision = zeroRev;

  /** key: bytesToKey form. */
  constructor(readonly key: string) {}

  put(rev: Revision): void {
    if (!revGreater(rev, this.modified)) assert(false, `keyIndex put with a smaller revision ${rev.main}.${rev.sub}`);
    // Array literals, not push onto []: V8 would give a pushed-to empty array 17 slots.
    if (this.generations.length === 0) this.generations = [newGeneration()];
    const g = this.generations[this.generations.length - 1] as Generation;
    if (g.revs.length === 0) {
      g.created = rev;
      g.revs = [rev];
    } else {
      g.revs.push(rev);
    }
    g.ver++;
    this.modified = rev;
    this.liveVersion = g.ver;
    this.liveCreated = g.created;
  }

  /** Rebuilds from the newest surviving version of the key (store restore). */
  restore(created: Revision, modified: Revision, ver: number): void {
    assert(this.generations.length === 0, 'keyIndex restore on a non-empty index');
    this.modified = modified;
    this.generations = [{ created, ver, revs: [modified] }];
    this.liveVersion = ver;
    this.liveCreated = created;
  }

  /** Appends a tombstone and opens a new generation; false if the key is already deleted. */
  tombstone(rev: Revision): boolean {
    assert(!this.isEmpty(), 'keyIndex tombstone on an empty index');
    if ((this.generations[this.generations.length - 1] as Generation).revs.length === 0) return false;
    this.put(rev);
    this.generations.push(newGeneration());
    this.liveVersion = 0;
    return true;
  }

  /** The key as of atRev, or undefined if it did not exist then. */
  get(atRev: number): KeyAt | undefined {
    if (atRev >= this.modified.main) {
      return this.liveVersion === 0 ? undefined : { modified: this.modified, created: this.liveCreated, version: this.liveVersion };
    }
    assert(!this.isEmpty(), 'keyIndex get on an empty index');
    const g = this.findGeneration(atRev);
    if (g === undefined) return undefined;
    for (let n = g.revs.length - 1; n >= 0; n--) {
      const r = g.revs[n] as Revision;
      if (r.main <= atRev) return { modified: r, created: g.created, version: g.ver - (g.revs.length - n - 1) };
    }
    return undefined;
  }

  /**
   * Revisions at or after main revision `rev`, oldest first; of several
   * changes in one transaction only the last is returned.
   */
  since(rev: number): Revision[] {
    assert(!this.isEmpty(), 'keyIndex since on an empty index');
    const since: Revision = { main: rev, sub: 0 };
    let gi = this.generations.length - 1;
    for (; gi > 0; gi--) {
      const g = this.generations[gi] as Generation;
      if (g.revs.length === 0) continue;
      if (revGreater(since, g.created)) break;
    }
    const out: Revision[] = [];
    let last = 0;
    for (; gi < this.generations.length; gi++) {
      for (const r of (this.generations[gi] as Generation).revs) {
        if (revGreater(since, r)) continue;
        if (r.main === last) out[out.length - 1] = r;
        else out.push(r);
        last = r.main;
      }
    }
    return out;
  }

  /**
   * Drops the revisions compaction at atRev removes, adding the one kept
   * at or below atRev (if any) to `available`.
   */
  compact(atRev: number, available: Set<string>): void {
    assert(!this.isEmpty(), 'keyIndex compact on an empty index');
    const [found, revIndex] = this.doCompact(atRev, available);
    let genIdx = found;
    const g = this.generations[genIdx] as Generation;
    if (g.revs.length !== 0) {
      if (revIndex !== -1) g.revs = g.revs.slice(revIndex);
      // A generation reduced to its tombstone goes, tombstone included.
      if (g.revs.length === 1 && genIdx !== this.generations.length - 1) {
        const r = g.revs[0] as Revision;
        available.delete(revKey(r.main, r.sub));
        genIdx++;
      }
    }
    this.generations = this.generations.slice(genIdx);
  }

  /** Adds to `available` the revision compaction at atRev would keep, without compacting. */
  keep(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) return;
    const [genIdx, revIndex] = this.doCompact(atRev, available);
    const g = this.generations[genIdx] as Generation;
    if (g.revs.length !== 0 && revIndex === g.revs.length - 1 && genIdx !== this.generations.length - 1) {
      const r = g.revs[revIndex] as Revision;
      available.delete(revKey(r.main, r.sub));
    }
  }

  /** The generation holding atRev (first one whose tombstone is above it) and the newest revision <= atRev in it. */
  private doCompact(atRev: number, available: Set<string>): [number, number] {
    let genIdx = 0;
    let g = this.generations[0] as Generation;
    while (genIdx < this.generations.length - 1) {
      if ((g.revs[g.revs.length - 1] as Revision).main > atRev) break;
      genIdx++;
      g = this.generations[genIdx] as Generation;
    }
    let revIndex = -1;
    for (let n = g.revs.length - 1; n >= 0; n--) {
      const r = g.revs[n] as Revision;
      if (r.main <= atRev) {
        available.add(revKey(r.main, r.sub));
        revIndex = n;
        break;
      }
    }
    return [genIdx, revIndex];
  }

  /** Only the empty generation is left: the key is gone. */
  isEmpty(): boolean {
    return this.generations.length === 1 && (this.generations[0] as Generation).revs.length === 0;
  }

  /** The generation the key was in at rev, or undefined if it did not exist then. */
  private findGeneration(rev: number): Generation | undefined {
    const lastg = this.generations.length - 1;
    for (let cg = lastg; cg >= 0; cg--) {
      const g = this.generations[cg] as Generation;
      if (g.revs.length === 0) continue;
      if (cg !== lastg && (g.revs[g.revs.length - 1] as Revision).main <= rev) return undefined;
      if ((g.revs[0] as Revision).main <= rev) return g;
    }
    return undefined;
  }
}
