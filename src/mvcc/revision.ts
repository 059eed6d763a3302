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
