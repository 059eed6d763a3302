// HPACK decoding against the worked examples of RFC 7541 Appendix C (written
// here as hex + expected fields + expected table), the Huffman code's own
// properties, and rewrites that must leave two decoders' tables in step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeInteger, encodeRawString, HpackDecoder, HpackError, huffmanCodes, huffmanDecode, type HeaderField } from './hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const f = (name: string, value: string): HeaderField => ({ name, value });

/** One header block of an RFC 7541 Appendix C sequence and the decoder's state after it. */
interface Step {
  readonly block: string;
  readonly fields: HeaderField[];
  readonly table: HeaderField[];
  readonly tableBytes: number;
}

function replay(steps: Step[], tableMaxBytes = 4096): void {
  const d = new HpackDecoder(tableMaxBytes);
  for (const [i, s] of steps.entries()) {
    const { fields, rewritten } = d.decode(hex(s.block));
    assert.deepEqual(fields, s.fields, `block ${i + 1}: fields`);
    assert.equal(rewritten, undefined);
    assert.deepEqual(d.tableEntries(), s.table, `block ${i + 1}: table`);
    assert.equal(d.tableBytes, s.tableBytes, `block ${i + 1}: table size`);
  }
}

const authorityEntry = f(':authority', 'www.example.com');
const noCache = f('cache-control', 'no-cache');
const custom = f('custom-key', 'custom-value');
const requests = (huffman: boolean): Step[] => [
  {
    block: huffman ? '828684418cf1e3c2e5f23a6ba0ab90f4ff' : '828684410f7777772e6578616d706c652e636f6d',
    fields: [f(':method', 'GET'), f(':scheme', 'http'), f(':path', '/'), authorityEntry],
    table: [authorityEntry],
    tableBytes: 57,
  },
  {
    block: huffman ? '828684be5886a8eb10649cbf' : '828684be58086e6f2d6361636865',
    fields: [f(':method', 'GET'), f(':scheme', 'http'), f(':path', '/'), authorityEntry, noCache],
    table: [noCache, authorityEntry],
    tableBytes: 110,
  },
  {
    block: huffman
      ? '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf'
      : '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
    fields: [f(':method', 'GET'), f(':scheme', 'https'), f(':path', '/index.html'), authorityEntry, custom],
    table: [custom, noCache, authorityEntry],
    tableBytes: 164,
  },
];

test('C.2: one field per representation', () => {
  replay([{ block: '400a637573746f6d2d6b65790d637573746f6d2d686561646572', fields: [f('custom-key', 'custom-header')], table: [f('custom-key', 'custom-header')], tableBytes: 55 }]);
  replay([{ block: '040c2f73616d706c652f70617468', fields: [f(':path', '/sample/path')], table: [], tableBytes: 0 }]);
  replay([{ block: '100870617373776f726406736563726574', fields: [f('password', 'secret')], table: [], tableBytes: 0 }]);
  replay([{ block: '82', fields: [f(':method', 'GET')], table: [], tableBytes: 0 }]);
});

test('C.3: three requests on one connection, raw literals', () => replay(requests(false)));

test('C.4: the same requests, Huffman-coded', () => replay(requests(true)));

test('C.5: responses evict from a 256-octet table', () => {
  const date = f('date', 'Mon, 21 Oct 2013 20:13:21 GMT');
  const location = f('location', 'https://www.example.com');
  const priv = f('cache-control', 'private');
  replay(
    [
      {
        block:
          '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
        fields: [f(':status', '302'), priv, date, location],
        table: [location, date, priv, f(':status', '302')],
        tableBytes: 222,
      },
      {
        block: '4803333037c1c0bf',
        fields: [f(':status', '307'), priv, date, location],
        table: [f(':status', '307'), location, date, priv],
        tableBytes: 222,
      },
    ],
    256,
  );
});

test('the Huffman code is complete and EOS is the all-ones 30-bit code', () => {
  const codes = huffmanCodes();
  assert.equal(codes.length, 257);
  // Kraft's sum is exactly 1 for a complete prefix code: every bit string decodes.
  const kraft = codes.reduce((sum, [, len]) => sum + 2 ** (30 - len), 0);
  assert.equal(kraft, 2 ** 30);
  assert.deepEqual(codes[256], [0x3fff_ffff, 30]);
  // Spot checks from RFC 7541 Appendix B.
  assert.deepEqual(codes['0'.charCodeAt(0)], [0x0, 5]);
  assert.deepEqual(codes[' '.charCodeAt(0)], [0x14, 6]);
  assert.deepEqual(codes['/'.charCodeAt(0)], [0x18, 6]);
  assert.deepEqual(codes[':'.charCodeAt(0)], [0x5c, 7]);
  assert.deepEqual(codes[0], [0x1ff8, 13]);
});

/** Huffman-encodes latin1 text with the decoder's own codes, padding with ones. */
function huffmanEncode(text: string): Buffer {
  const codes = huffmanCodes();
  const bits: number[] = [];
  for (const ch of Buffer.from(text, 'latin1')) {
    const [code, len] = codes[ch] ?? [0, 0];
    for (let i = len - 1; i >= 0; i--) bits.push(Math.floor(code / 2 ** i) % 2);
  }
  while (bits.length % 8 !== 0) bits.push(1);
  const out = Buffer.alloc(bits.length / 8);
  bits.forEach((b, i) => {
    out[i >> 3] = (out[i >> 3] ?? 0) | (b << (7 - (i & 7)));
  });
  return out;
}

test('Huffman: any octet string round-trips', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const text = Buffer.from(bytes).toString('latin1');
      assert.equal(huffmanDecode(huffmanEncode(text)), text);
    }),
  );
});

test('Huffman: bad padding and EOS are errors', () => {
  // 'a' is 00011 (5 bits): three one-bits pad it; zeros do not.
  assert.equal(huffmanDecode(Buffer.of(0b00011111)), 'a');
  assert.throws(() => huffmanDecode(Buffer.of(0b00011000)), HpackError);
  // A whole octet of padding is too long.
  assert.throws(() => huffmanDecode(Buffer.of(0b00011111, 0xff)), HpackError);
  // EOS itself.
  assert.throws(() => huffmanDecode(Buffer.of(0xff, 0xff, 0xff, 0xff)), HpackError);
});

test('malformed blocks are HpackErrors', () => {
  const d = () => new HpackDecoder();
  assert.throws(() => d().decode(Buffer.of(0x80)), HpackError, 'index 0');
  assert.throws(() => d().decode(Buffer.of(0xbe)), HpackError, 'empty dynamic table');
  assert.throws(() => d().decode(Buffer.of(0x40, 0x03, 0x61)), HpackError, 'truncated name');
  assert.throws(() => d().decode(Buffer.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), HpackError, 'huge integer');
  assert.throws(() => d().decode(Buffer.from([...encodeInteger(4097, 5, 0x20)])), HpackError, 'size update above SETTINGS');
});

test('a table size update evicts, and an entry larger than the table empties it', () => {
  const d = new HpackDecoder();
  const lit = (name: string, value: string): Buffer => Buffer.concat([Buffer.of(0x40), encodeRawString(name), encodeRawString(value)]);
  d.decode(Buffer.concat([lit('a', 'x'.repeat(10)), lit('b', 'y'.repeat(10))]));
  assert.equal(d.tableBytes, 2 * (1 + 10 + 32));
  d.decode(Buffer.concat([encodeInteger(50, 5, 0x20), lit('c', '')]));
  assert.deepEqual(d.tableEntries(), [f('c', '')]);
  assert.equal(d.tableMaxBytes, 50);
  d.decode(lit('d', 'z'.repeat(40)));
  assert.deepEqual(d.tableEntries(), []);
  assert.equal(d.tableBytes, 0);
});

const asciiUpper = (s: string): string => s.replace(/[a-z]/g, (c) => c.toUpperCase());
const upper = (name: string, value: string): string | undefined => (name === 'x-fix' ? asciiUpper(value) : undefined);

test('a rewritten block keeps both sides of the table in step', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          name: fc.constantFrom('x-fix', 'x-keep', ':authority'),
          value: fc.string({ maxLength: 40 }).map((s) => Buffer.from(s).toString('latin1')),
          kind: fc.constantFrom(0x40, 0x00, 0x10),
          huffman: fc.boolean(),
          refer: fc.nat(12),
        }),
        { minLength: 1, maxLength: 40 },
      ),
      fc.integer({ min: 64, max: 4096 }),
      (ops, tableMax) => {
        const shim = new HpackDecoder(tableMax);
        const far = new HpackDecoder(tableMax);
        const both = (block: Buffer): HeaderField[] => {
          const mine = shim.decode(block, upper);
          const theirs = far.decode(mine.rewritten ?? block);
          assert.deepEqual(theirs.fields, mine.fields);
          assert.deepEqual(far.tableEntries(), shim.tableEntries());
          assert.equal(far.tableBytes, shim.tableBytes);
          return mine.fields;
        };
        for (const op of ops) {
          const coded = huffmanEncode(op.value);
          const value = op.huffman ? Buffer.concat([encodeInteger(coded.length, 7, 0x80), coded]) : encodeRawString(op.value);
          const literal = Buffer.concat([encodeInteger(0, op.kind === 0x40 ? 6 : 4, op.kind), encodeRawString(op.name), value]);
          const [field] = both(literal);
          assert.equal(field?.value, op.name === 'x-fix' ? asciiUpper(op.value) : op.value);
          // Then an indexed reference to some dynamic entry: it must resolve alike on both sides.
          const entries = shim.tableEntries().length;
          if (entries > 0) both(encodeInteger(62 + (op.refer % entries), 7, 0x80));
        }
      },
    ),
  );
});

test('a fix must keep the value length', () => {
  const block = Buffer.concat([Buffer.of(0x40), encodeRawString('x-fix'), encodeRawString('ab')]);
  assert.throws(() => new HpackDecoder().decode(block, () => 'abc'), RangeError);
});
