/**
 * Identifier and counter vocabulary shared by every module.
 *
 * Terms, log indexes and revisions are counters that stay far below 2^53, so
 * they are plain numbers (asserted safe at the boundaries). Member, cluster and
 * lease ids are arbitrary 64-bit values on the wire, so they are bigints.
 */
export type Term = number;
export type Index = number;
export type Revision = number;
export type MemberId = bigint;
export type ClusterId = bigint;
export type LeaseId = bigint;

/** The id meaning "none" for members (no leader, no vote) and leases (no lease). */
export const idNone = 0n;

const uint64Mask = (1n << 64n) - 1n;

/** Formats an id the way etcd prints it: lower-case hex without leading zeros. */
export function idToHex(id: bigint): string {
  return (id & uint64Mask).toString(16);
}

/** Formats a lease id the way etcdctl prints it: 16 hex digits, zero padded. */
export function leaseIdToHex(id: bigint): string {
  return (id & uint64Mask).toString(16).padStart(16, '0');
}

/** Parses a hex id ("8e9e05c52164694d"); returns undefined when it is not hex or over 64 bits. */
export function idFromHex(hex: string): bigint | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) return undefined;
  return BigInt('0x' + hex);
}

/** Reinterprets a uint64 as int64 (two's complement), as Go's int64(uint64) does. */
export function uint64ToInt64(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

/** Reinterprets an int64 as uint64 (two's complement). */
export function int64ToUint64(v: bigint): bigint {
  return BigInt.asUintN(64, v);
}
