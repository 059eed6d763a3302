/**
 * Keys longer than LMDB takes (1978 bytes in this build; bbolt takes 32 KiB,
 * and etcd stores a user or role name of any size under its name). Such a
 * key is stored under its first 1900 bytes followed by its SHA-256 (1932
 * bytes, a length no key stored as it is has), with the whole key in front
 * of the value; reads give the key back whole.
 *
 * Order: a long key sorts by its first 1900 bytes like the key itself; two
 * long keys that share those bytes sort by their hashes, not by the rest.
 */
import { createHash } from 'node:crypto';

/** Keys up to this long are stored as they are. */
export const storedAsIsBytesMax = 1931;
const prefixBytes = 1900;
const hashBytes = 32;
/** The length of every key stored for a long one. */
const longStoredBytes = prefixBytes + hashBytes;
/** The longest key LMDB holds. */
export const storedKeyBytesMax = longStoredBytes;

/** The key LMDB holds for key. */
export function storedKey(key: Uint8Array): Uint8Array {
  if (key.length <= storedAsIsBytesMax) return key;
  const out = Buffer.allocUnsafe(longStoredBytes);
  out.set(key.subarray(0, prefixBytes));
  out.set(createHash('sha256').update(key).digest(), prefixBytes);
  return out;
}

/** Whether a key LMDB holds stands for a long one. */
export function isLongStored(stored: Uint8Array): boolean {
  return stored.length === longStoredBytes;
}

/** The value LMDB holds for (key, value): for a long key, its length (4 bytes) and the key first. */
export function storedValue(key: Uint8Array, value: Uint8Array): Uint8Array {
  if (key.length <= storedAsIsBytesMax) return value;
  const out = Buffer.allocUnsafe(4 + key.length + value.length);
  out.writeUInt32LE(key.length, 0);
  out.set(key, 4);
  out.set(value, 4 + key.length);
  return out;
}

/** The key and value a long key's record holds; undefined when it does not hold them whole. */
export function longRecord(stored: Uint8Array, value: Uint8Array): { key: Uint8Array; value: Uint8Array } | undefined {
  if (value.length < 4) return undefined;
  const n = (value[0] as number) | ((value[1] as number) << 8) | ((value[2] as number) << 16) | ((value[3] as number) << 24);
  if (n <= storedAsIsBytesMax || 4 + n > value.length) return undefined;
  const key = value.subarray(4, 4 + n);
  if (Buffer.compare(storedKey(key), stored) !== 0) return undefined;
  return { key, value: value.subarray(4 + n) };
}

/** A range's bounds as LMDB keys: a long bound becomes its prefix, and the entries past it are left to `within`. */
export function storedBounds(start: Uint8Array, end: Uint8Array | undefined): { start: Uint8Array; end: Uint8Array | undefined; exact: boolean } {
  const longStart = start.length > storedAsIsBytesMax;
  const longEnd = end !== undefined && end.length > storedAsIsBytesMax;
  if (!longStart && !longEnd) return { start, end, exact: true };
  const s = longStart ? start.subarray(0, prefixBytes) : start;
  // Every stored key for an original key below a long end sorts below its prefix followed by 0xff bytes.
  const e = end === undefined || !longEnd ? end : Buffer.concat([end.subarray(0, prefixBytes), Buffer.alloc(hashBytes + 1, 0xff)]);
  return { start: s, end: e, exact: false };
}

/** Whether an original key lies in [start, end). */
export function within(key: Uint8Array, start: Uint8Array, end: Uint8Array | undefined): boolean {
  return Buffer.compare(key, start) >= 0 && (end === undefined || Buffer.compare(key, end) < 0);
}
