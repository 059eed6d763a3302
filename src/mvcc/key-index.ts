/**
 * The revisions of one key, in generations. A generation runs from the put
 * that created the key to the tombstone that deleted it; deleting appends the
 * tombstone to the current generation and opens a new, empty one. For puts at
 * 1, 2, a delete at 3, a put at 4 and a delete at 5:
 *
 *   generations: [ {1, 2, 3(t)}, {4, 5(t)}, {} ]
 *
 * Compacting at revision R keeps, for each key, the newest revision <= R
 * and everything newer; generations that end below R go, and a key left
 * with only its empty generation goes from the index. compact(2) above
 * gives [ {2, 3(t)}, {4, 5(t)}, {} ]; compact(4) gives [ {4, 5(t)}, {} ];
 * compact(5) gives [ {5(t)}, {} ], and compact(6) leaves only the empty
 * generation. A tombstone at R itself is kept: a watch from R, which
 * compaction at R allows, must still see that delete (etcd #18089; etcd
 * 3.4.23 dropped it, 3.4.34 and 3.5.15 keep it). keep(), which picks what
 * HashKV covers, leaves that tombstone out, as every etcd version does, so
 * the hashes stay those of etcd.
 *
 * Most keys of a large store have a single revision (restored, or compacted
 * down to it): such a key keeps no generation objects at all, only its
 * newest revision, creation and version, and builds the generations the
 * first time something needs them. That halves the index's memory. The
 * newest revision is kept as two numbers, not a Revision: an object per key
 * costs 40 bytes (Node runs V8 without pointer compression), the two fields
 * 16.
 */
import { assert } from '../base/index.js';
import type { RevisionSet, Revision } from './revision.js';

export interface Generation {
  /** Number of puts in the generation (the version of its newest put). */
  ver: number;
  /** The main revision that created the key (the first put). */
  created: number;
  /** Every revision, oldest first; a tombstone, if any, is last. */
  revs: Revision[];
}

export interface KeyAt {
  readonly modified: Revision;
  /** The key's create revision (a main revision). */
  readonly created: number;
  readonly version: number;
}

/** Where existsAt appends a revision: a number[] or a RevisionList. */
export interface RevisionSink {
  push(main: number, sub: number): void;
}

function newGeneration(): Generation {
  return { ver: 0, created: 0, revs: [] };
}

export class KeyIndex {
  /** The lease of the key's current (live) version; 0n when none or deleted. */
  lease = 0n;
  /** The newest revision put or tombstoned (main 0: none yet). */
  private modMain = 0;
  private modSub = 0;
  /**
   * The generations; undefined while the key has exactly one revision, a
   * live put, which the newest revision, `liveCreated` and `liveVersion`
   * describe.
   */
  private gens: Generation[] | undefined;
  /** The key as of its newest revision (so reads at the current revision touch nothing else); 0: deleted. */
  private liveVersion = 0;
  private liveCreated = 0;

  /** key: bytesToKey form. */
  constructor(readonly key: string) {}

  /** The generations, oldest first (a copy for a single-revision key). */
  generations(): readonly Generation[] {
    return this.gens ?? this.single();
  }

  /** The newest revision put or tombstoned ({0, 0}: none yet). */
  get modified(): Revision {
    return { main: this.modMain, sub: this.modSub };
  }

  private single(): Generation[] {
    return this.modMain === 0 ? [] : [{ created: this.liveCreated, ver: this.liveVersion, revs: [this.modified] }];
  }

  /** The generations, built if the key had a single revision. */
  private full(): Generation[] {
    return (this.gens ??= this.single());
  }

  put(rev: Revision): void {
    if (!(rev.main > this.modMain || (rev.main === this.modMain && rev.sub > this.modSub))) {
      assert(false, `keyIndex put with a smaller revision ${rev.main}.${rev.sub}`);
    }
    if (this.modMain === 0) {
      this.modMain = rev.main;
      this.modSub = rev.sub;
      this.liveCreated = rev.main;
      this.liveVersion = 1;
      return;
    }
    const gens = this.full();
    const g = gens[gens.length - 1] as Generation;
    if (g.revs.length === 0) {
      g.created = rev.main;
      // Array literals, not push onto []: V8 gives a pushed-to empty array 17 slots.
      g.revs = [rev];
    } else {
      g.revs.push(rev);
    }
    g.ver++;
    this.modMain = rev.main;
    this.modSub = rev.sub;
    this.liveVersion = g.ver;
    this.liveCreated = g.created;
  }

  /** Rebuilds from the newest surviving version of the key (store restore). */
  restore(created: number, modified: Revision, ver: number): void {
    assert(this.modMain === 0, 'keyIndex restore on a non-empty index');
    this.modMain = modified.main;
    this.modSub = modified.sub;
    this.liveVersion = ver;
    this.liveCreated = created;
  }

  /**
   * Rebuilds a key whose only surviving revision is its tombstone (a
   * compaction at the tombstone's revision keeps it; store restore). The
   * generation it ends has no put left; its create revision is unknown.
   */
  restoreTombstone(rev: Revision): void {
    assert(this.modMain === 0, 'keyIndex restore on a non-empty index');
    this.modMain = rev.main;
    this.modSub = rev.sub;
    this.liveVersion = 0;
    this.gens = [{ ver: 1, created: 0, revs: [rev] }, newGeneration()];
  }

  /** Appends a tombstone and opens a new generation; false if the key is already deleted. */
  tombstone(rev: Revision): boolean {
    assert(!this.isEmpty(), 'keyIndex tombstone on an empty index');
    if (this.liveVersion === 0) return false;
    this.put(rev);
    this.full().push(newGeneration());
    this.liveVersion = 0;
    return true;
  }

  /** The key as of atRev, or undefined if it did not exist then. */
  get(atRev: number): KeyAt | undefined {
    if (atRev >= this.modMain) {
      return this.liveVersion === 0 ? undefined : { modified: this.modified, created: this.liveCreated, version: this.liveVersion };
    }
    if (this.gens === undefined) return undefined; // its only revision is after atRev
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
   * Whether the key existed at atRev; if so, and `out` is given, appends its
   * main and sub revision then to it. get() without its objects at the
   * current revision, for ranges over many keys.
   */
  existsAt(atRev: number, out?: RevisionSink): boolean {
    if (atRev >= this.modMain) {
      if (this.liveVersion === 0) return false;
      out?.push(this.modMain, this.modSub);
      return true;
    }
    const at = this.get(atRev);
    if (at === undefined) return false;
    out?.push(at.modified.main, at.modified.sub);
    return true;
  }

  /**
   * Drops the revisions compaction at atRev removes, adding the ones kept
   * at or below atRev to `available`: the newest revision <= atRev if it is
   * a put, and a tombstone at atRev itself.
   */
  compact(atRev: number, available: RevisionSet): void {
    assert(!this.isEmpty(), 'keyIndex compact on an empty index');
    if (this.gens === undefined) {
      if (this.modMain <= atRev) available.add(this.modMain, this.modSub);
      return;
    }
    const gens = this.gens;
    if (gens.length === 1 && this.modMain <= atRev) {
      // A live key whose newest revision is at or below atRev (the common case): that revision alone is left.
      available.add(this.modMain, this.modSub);
      this.gens = undefined;
      return;
    }
    const [genIdx, revIndex] = this.doCompact(atRev, available);
    const g = gens[genIdx] as Generation;
    if (revIndex > 0) g.revs = g.revs.slice(revIndex);
    // The generation before, if its tombstone is at atRev, keeps that tombstone alone.
    const prev = genIdx > 0 ? (gens[genIdx - 1] as Generation) : undefined;
    const tomb = prev?.revs[prev.revs.length - 1];
    if (prev !== undefined && tomb !== undefined && tomb.main === atRev) {
      available.add(tomb.main, tomb.sub);
      prev.revs = [tomb];
      this.gens = gens.slice(genIdx - 1);
    } else {
      this.gens = gens.slice(genIdx);
    }
    // Down to one live revision: the generations are no longer needed.
    const only = this.gens[0];
    if (this.gens.length === 1 && only !== undefined && only.revs.length === 1) this.gens = undefined;
  }

  /**
   * Adds to `available` the put compaction at atRev keeps, without
   * compacting: not a tombstone at atRev, which HashKV leaves out (as etcd,
   * which does not keep it).
   */
  keep(atRev: number, available: RevisionSet): void {
    if (this.isEmpty()) return;
    if (this.gens === undefined) {
      if (this.modMain <= atRev) available.add(this.modMain, this.modSub);
      return;
    }
    this.doCompact(atRev, available);
  }

  /**
   * The generation holding the newest revision <= atRev, or the first one
   * after it (the first whose tombstone is above atRev, else the current
   * one), and that revision's place in it (-1: none); adds the revision to
   * `available`. A generation whose tombstone is at atRev is passed over: a
   * transaction that deletes a key and puts it again has the put at the
   * same main revision, in the next generation.
   */
  private doCompact(atRev: number, available: RevisionSet): [number, number] {
    const gens = this.full();
    let genIdx = 0;
    let g = gens[0] as Generation;
    while (genIdx < gens.length - 1) {
      if ((g.revs[g.revs.length - 1] as Revision).main > atRev) break;
      genIdx++;
      g = gens[genIdx] as Generation;
    }
    let revIndex = -1;
    for (let n = g.revs.length - 1; n >= 0; n--) {
      const r = g.revs[n] as Revision;
      if (r.main <= atRev) {
        available.add(r.main, r.sub);
        revIndex = n;
        break;
      }
    }
    return [genIdx, revIndex];
  }

  /** The revisions the key holds, puts and tombstones: each one record of the key bucket. */
  revisionCount(): number {
    if (this.gens === undefined) return 1;
    let n = 0;
    for (const g of this.gens) n += g.revs.length;
    return n;
  }

  /** Only the empty generation is left: the key is gone. */
  isEmpty(): boolean {
    const gens = this.gens;
    return gens !== undefined && gens.length === 1 && (gens[0] as Generation).revs.length === 0;
  }

  /** The generation the key was in at rev, or undefined if it did not exist then. */
  private findGeneration(rev: number): Generation | undefined {
    const gens = this.full();
    const lastg = gens.length - 1;
    for (let cg = lastg; cg >= 0; cg--) {
      const g = gens[cg] as Generation;
      if (g.revs.length === 0) continue;
      if (cg !== lastg && (g.revs[g.revs.length - 1] as Revision).main <= rev) return undefined;
      if ((g.revs[0] as Revision).main <= rev) return g;
    }
    return undefined;
  }
}
