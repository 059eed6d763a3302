// CRC-32C against published check values and a bit-at-a-time reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32c, crc32cExtend, crc32cUpdate } from './crc32c.js';

function slow(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('check values from RFC 3720 and the usual "123456789"', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('slicing-by-8 equals bit-at-a-time, and updates compose', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
      assert.equal(crc32c(a), slow(a));
      const both = new Uint8Array([...a, ...b]);
      assert.equal(crc32cUpdate(crc32c(a), b), crc32c(both));
    }),
  );
});

test('crc32cExtend gives crc32cUpdate from the data\'s own checksum and length', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 300 }), (crc, data) => {
      assert.equal(crc32cExtend(crc, crc32c(data), data.length), crc32cUpdate(crc, data));
    }),
  );
  // Lengths past the first tables, zeros and not.
  for (const n of [0, 1, 3, 4, 5, 64, 1000, 65_537, 1 << 20]) {
    const data = new Uint8Array(n).map((_, i) => (i * 131) & 0xff);
    assert.equal(crc32cExtend(0x12345678, crc32c(data), n), crc32cUpdate(0x12345678, data), `${n} bytes`);
  }
});

test('small pieces read without a view and through the cached view agree, at any offset', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 1100 }), fc.nat(), fc.nat(), fc.nat({ max: 7 }), (data, x, y, shift) => {
      const from = x % data.length;
      const to = from + (y % (data.length - from + 1));
      const want = slow(data.subarray(from, to));
      // A fresh buffer: below 512 bytes it is read without a view.
      assert.equal(crc32c(data.slice(from, to)), want);
      // The same bytes inside a buffer already viewed (a checksum of 512 bytes or more views it).
      const big = new Uint8Array(shift + data.length + 512);
      big.set(data, shift);
      crc32c(big);
      assert.equal(crc32c(big.subarray(shift + from, shift + to)), want);
    }),
  );
});
