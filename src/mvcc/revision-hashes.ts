/**
 * The hashes of the revisions a store applied since it opened: for each
 * revision, a CRC-32C over what its write transaction put in the key bucket
 * (each revision key, then its encoded KeyValue, in order). Every member
 * applies the same raft entries, so one revision hashes the same on every
 * member; a member whose apply went another way (a bug, a corrupted value it
 * read while applying, a double apply) hashes differently from that revision
 * on. Comparing the hashes of recent revisions (server/revision-check.ts)
 * finds it within seconds, at the cost of one checksum of each write.
 *
 * The bytes hashed are the stored ones (etcd's key-bucket layout, which
 * HashKV shares): a release that encoded a KeyValue differently would have
 * to keep the old encoding in the hash while members of both releases run
 * side by side, or the check would name the upgraded members.
 *
 * Only the newest `capacity` revisions are kept (a ring of 32-bit hashes);
 * nothing is persisted: after a restart, or a snapshot installed, the ring
 * starts over at the store's revision, and comparisons cover only the
 * revisions both sides applied since.
 */
import { assert, crc32cUpdate } from '../base/index.js';

/** Revisions kept: 256 KiB; a few seconds of the heaviest write load, minutes of a usual one. */
export const revisionHashesCapacityDefault = 65536;

export class RevisionHashes {
  private readonly ring: Uint32Array;
  private readonly bytes: Uint8Array;
  /** The newest revision held; revisions (last - count, last] are in the ring. */
  private last: number;
  private count = 0;

  constructor(
    rev: number,
    readonly capacity = revisionHashesCapacityDefault,
  ) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, 'revision hashes: capacity must be a positive integer');
    this.ring = new Uint32Array(capacity);
    this.bytes = new Uint8Array(this.ring.buffer);
    this.last = rev;
  }

  /** Forgets every hash: the store is now at rev (it reopened, or installed a snapshot). */
  reset(rev: number): void {
    this.last = rev;
    this.count = 0;
  }

  /** Records the hash of rev, the revision after the newest held. */
  push(rev: number, hash: number): void {
    assert(rev === this.last + 1, `revision hashes: ${rev} after ${this.last}`);
    this.last = rev;
    this.ring[rev % this.capacity] = hash;
    if (this.count < this.capacity) this.count++;
  }

  /** The revisions held are (oldest, newest]: oldest is the one before the first held. */
  get oldest(): number {
    return this.last - this.count;
  }

  get newest(): number {
    return this.last;
  }

  /**
   * The digest of revisions (from, to]: a CRC-32C over their hashes in
   * order; undefined unless every one of them is held. An empty span
   * (from === to) digests to 0.
   */
  digest(from: number, to: number): number | undefined {
    if (from < this.oldest || to > this.last || from > to) return undefined;
    let crc = 0;
    let rev = from + 1;
    while (rev <= to) {
      const at = rev % this.capacity;
      const n = Math.min(to - rev + 1, this.capacity - at);
      crc = crc32cUpdate(crc, this.bytes.subarray(at * 4, (at + n) * 4));
      rev += n;
    }
    return crc;
  }
}
