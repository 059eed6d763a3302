/**
 * Byte strings as JavaScript string keys: one char per byte (latin1), so
 * that Map lookups work and `<` on two such strings orders them exactly as
 * an unsigned byte-wise comparison (memcmp) orders the bytes.
 */

/** Above this length String.fromCharCode.apply would pass too many arguments. */
const applyBytesMax = 4096;

export function bytesToKey(bytes: Uint8Array): string {
  if (bytes.length <= applyBytesMax) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

export function keyToBytes(key: string): Uint8Array {
  return Buffer.from(key, 'latin1');
}
