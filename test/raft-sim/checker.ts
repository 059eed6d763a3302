import type { raftpb } from '../../src/pb/index.js';
import type { RawNode } from '../../src/raft/index.js';

/** A broken safety or liveness property; the message names the invariant. */
export class Violation extends Error {
  override readonly name = 'Violation';
  constructor(
    readonly invariant: string,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
  }
}

/** FNV-1a over a previous hash, an entry's term and index, and its data: a rolling hash of the applied sequence. */
export function chainHash(prev: number, term: number, index: number, data: Uint8Array): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  const mix = (b: number): void => {
    h ^= b & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const v of [term, index]) for (let i = 0; i < 6; i++) mix(Math.floor(v / 2 ** (8 * i)));
  for (const b of data) mix(b);
  return h;
}

/**
 * The global record the invariants are checked against: who led which
 * term, which entry each (index, term) names, which entry was applied at each
 * index, and the smallest term in which each index was known committed.
 */
export class Checker {
  private leaderOfTerm = new Map<number, bigint>();
  /** (index, term) -> [data hash, term of the previous entry]. */
  private entryAt = new Map<string, [number, number]>();
  /** index -> [term, rolling hash after applying it]. */
  private appliedAt = new Map<number, [number, number]>();
  /** index -> the smallest leader term whose commit index covered it. */
  private commitTerm = new Map<number, number>();
  private durableCommit = 0;
  maxApplied = 0;
  leadersSeen = new Set<string>();

  /** Election safety: at most one leader per term. Also records commits, and checks leader completeness on new leaders. */
  observeLeader(id: bigint, rn: RawNode): void {
    const r = rn.raft;
    if (r.state !== 'StateLeader') return;
    const prev = this.leaderOfTerm.get(r.term);
    if (prev !== undefined && prev !== id) throw new Violation('election safety', `term ${r.term} has leaders ${prev} and ${id}`);
    this.leaderOfTerm.set(r.term, id);
    const key = `${id}@${r.term}`;
    if (!this.leadersSeen.has(key)) {
      this.leadersSeen.add(key);
      this.checkLeaderCompleteness(id, rn);
    }
  }

  /**
   * Records commits as they become durable (a persisted hard state). A
   * leader's in-memory commit index may count its own unpersisted entries;
   * only what is durable (or applied) is committed for leader completeness.
   */
  observeDurableCommit(hs: raftpb.HardState): void {
    for (let i = this.durableCommit + 1; i <= hs.commit; i++) if (!this.commitTerm.has(i)) this.commitTerm.set(i, hs.term);
    if (hs.commit > this.durableCommit) this.durableCommit = hs.commit;
  }

  /** Every entry committed in an earlier term is in the new leader's log. */
  private checkLeaderCompleteness(id: bigint, rn: RawNode): void {
    const r = rn.raft;
    const first = r.raftLog.firstIndex();
    for (const [i, t] of this.commitTerm) {
      if (t >= r.term || i < first) continue;
      const applied = this.appliedAt.get(i);
      const want = applied?.[0];
      const got = r.raftLog.term(i);
      if (want !== undefined && got !== want) {
        throw new Violation('leader completeness', `leader ${id} of term ${r.term} has term ${got} at index ${i}, committed with term ${want} in term ${t}`);
      }
      if (got < 0) throw new Violation('leader completeness', `leader ${id} of term ${r.term} lacks committed index ${i}`);
    }
  }

  /**
   * Log matching, checked as entries become durable: one (index, term) names
   * one entry, and the entry before it always has the same term (which by
   * induction makes the prefixes equal).
   */
  observePersisted(id: bigint, e: raftpb.Entry, prevTerm: number): void {
    const key = `${e.index}/${e.term}`;
    const h = chainHash(0, 0, 0, e.data) ^ e.type;
    const seen = this.entryAt.get(key);
    if (seen === undefined) {
      this.entryAt.set(key, [h, prevTerm]);
      return;
    }
    if (seen[0] !== h) throw new Violation('log matching', `node ${id}: entry ${key} differs in content`);
    if (prevTerm >= 0 && seen[1] >= 0 && seen[1] !== prevTerm) {
      throw new Violation('log matching', `node ${id}: entry ${key} follows term ${prevTerm}, elsewhere term ${seen[1]}`);
    }
    if (seen[1] < 0 && prevTerm >= 0) seen[1] = prevTerm;
  }

  /** State machine safety: no two nodes apply different entries (or histories) at one index. */
  observeApplied(id: bigint, index: number, term: number, hash: number): void {
    const seen = this.appliedAt.get(index);
    if (seen === undefined) {
      this.appliedAt.set(index, [term, hash]);
      if (index > this.maxApplied) this.maxApplied = index;
      // An applied entry is committed; a leader of a later term must have it.
      if (!this.commitTerm.has(index)) this.commitTerm.set(index, Number.MAX_SAFE_INTEGER);
      return;
    }
    if (seen[0] !== term || seen[1] !== hash) {
      throw new Violation('state machine safety', `node ${id} applied term ${term} hash ${hash} at index ${index}, another node term ${seen[0]} hash ${seen[1]}`);
    }
  }

  /** A snapshot's state must be one that was applied at its index. */
  observeSnapshotState(id: bigint, index: number, hash: number): void {
    const seen = this.appliedAt.get(index);
    if (seen !== undefined && seen[1] !== hash) {
      throw new Violation('state machine safety', `node ${id} installed a snapshot at ${index} with hash ${hash}, applied hash there is ${seen[1]}`);
    }
  }

  termsWithLeader(): number {
    return this.leaderOfTerm.size;
  }
}
