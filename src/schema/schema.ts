/**
 * Every LMDB database ("bucket") and every fixed key of the backend, in one
 * place, with their on-disk formats. Names are etcd's bucket and key names.
 *
 * | bucket            | key                                  | value |
 * | ---               | ---                                  | ---   |
 * | key               | revision: 8-byte BE main, '_', 8-byte BE sub, + 't' if a tombstone | mvccpb.KeyValue (a tombstone holds only the key) |
 * | meta              | consistent_index                     | 8-byte BE applied raft index |
 * | meta              | term                                 | 8-byte BE term of that entry |
 * | meta              | scheduledCompactRev                  | revision bytes {main: rev} (17 bytes) |
 * | meta              | finishedCompactRev                   | revision bytes {main: rev} (17 bytes) |
 * | meta              | confState                            | raftpb.ConfState |
 * | lease             | lease id, 8-byte BE (two's complement)| leasepb.Lease (written by schema/lease.ts) |
 * | alarm             | etcdserverpb.AlarmMember             | empty |
 * | cluster           | clusterVersion                       | "X.Y.Z" |
 * | members           | member id, lower-case hex            | serverpb.MemberRecord |
 * | members_removed   | member id, lower-case hex            | "removed" |
 * | auth              | authEnabled                          | 0x01 enabled, 0x00 disabled |
 * | auth              | authRevision                         | 8-byte BE |
 * | authUsers         | user name                            | authpb.User |
 * | authRoles         | role name                            | authpb.Role |
 */
import { utf8 } from '../base/index.js';

export const bucketNames = {
  key: 'key',
  meta: 'meta',
  lease: 'lease',
  alarm: 'alarm',
  cluster: 'cluster',
  members: 'members',
  membersRemoved: 'members_removed',
  auth: 'auth',
  authUsers: 'authUsers',
  authRoles: 'authRoles',
} as const;

export type BucketName = (typeof bucketNames)[keyof typeof bucketNames];

/** Every bucket, for Backend.open. */
export const allBucketNames: readonly BucketName[] = Object.values(bucketNames);

export const metaKeys = {
  consistentIndex: utf8('consistent_index'),
  term: utf8('term'),
  scheduledCompactRev: utf8('scheduledCompactRev'),
  finishedCompactRev: utf8('finishedCompactRev'),
  confState: utf8('confState'),
  /** The raft indexes (8 bytes big-endian each, ascending) of conf changes refused when they applied. */
  refusedConfChanges: utf8('refusedConfChanges'),
} as const;

export const clusterKeys = {
  clusterVersion: utf8('clusterVersion'),
} as const;

export const authKeys = {
  enabled: utf8('authEnabled'),
  revision: utf8('authRevision'),
} as const;

/** What Backend.hash skips, as etcd: the applied index and term differ between members by design. */
export const hashIgnores = [
  { bucket: bucketNames.meta, key: metaKeys.consistentIndex },
  { bucket: bucketNames.meta, key: metaKeys.term },
] as const;

/** Length of a revision key in the key bucket, without and with the tombstone mark. */
export const revisionBytesLen = 17;
export const markedRevisionBytesLen = 18;
export const tombstoneMark = 0x74; // 't'
const revisionSeparator = 0x5f; // '_'

/** Writes {main, sub} as the key bucket's 17-byte key (a tombstone appends 't'). */
export function revisionToBytes(main: number, sub: number, tombstone = false): Uint8Array {
  const out = new Uint8Array(tombstone ? markedRevisionBytesLen : revisionBytesLen);
  writeRevisionBytes(out, main, sub);
  if (tombstone) out[17] = tombstoneMark;
  return out;
}

/** Writes {main, sub} into the first 17 bytes of out (a reused lookup key). */
export function writeRevisionBytes(out: Uint8Array, main: number, sub: number): void {
  writeUint64(out, 0, main);
  out[8] = revisionSeparator;
  writeUint64(out, 9, sub);
}

/** Reads the main revision of a key-bucket key. */
export function bytesToMainRevision(b: Uint8Array): number {
  return readUint64(b, 0);
}

export function bytesToSubRevision(b: Uint8Array): number {
  return readUint64(b, 9);
}

export function isTombstoneBytes(b: Uint8Array): boolean {
  return b.length === markedRevisionBytesLen && b[17] === tombstoneMark;
}

/** An unsigned 64-bit big-endian integer below 2^53 (revisions, indexes, terms). */
export function writeUint64(out: Uint8Array, at: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a uint53: ${v}`);
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  out[at] = hi >>> 24;
  out[at + 1] = (hi >>> 16) & 0xff;
  out[at + 2] = (hi >>> 8) & 0xff;
  out[at + 3] = hi & 0xff;
  out[at + 4] = lo >>> 24;
  out[at + 5] = (lo >>> 16) & 0xff;
  out[at + 6] = (lo >>> 8) & 0xff;
  out[at + 7] = lo & 0xff;
}

export function readUint64(b: Uint8Array, at: number): number {
  const hi = (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0;
  const lo = (((b[at + 4] as number) << 24) | ((b[at + 5] as number) << 16) | ((b[at + 6] as number) << 8) | (b[at + 7] as number)) >>> 0;
  const v = hi * 0x1_0000_0000 + lo;
  if (!Number.isSafeInteger(v)) throw new RangeError('uint64 above 2^53 in the backend');
  return v;
}

export function uint64Bytes(v: number): Uint8Array {
  const out = new Uint8Array(8);
  writeUint64(out, 0, v);
  return out;
}
