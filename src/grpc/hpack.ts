/**
 * HPACK (RFC 7541): decoding, for the server's own HTTP/2 connections
 * (h2-connection.ts) and for the one header rewrite the client port needs
 * (authority-shim.ts): replacing a request's `:authority` that nghttp2 would
 * refuse, without breaking the connection's header compression. Encoding, for
 * the server's responses, uses no dynamic table (encodeHeaderFields).
 *
 * HpackDecoder keeps the dynamic table exactly as the decoder on the far side
 * (nghttp2's) does: entries, sizes, eviction and size updates. A rewrite
 * replaces a field's value with one of the same length, re-encoded as a plain
 * literal, so the entry it may add has the same size on both sides and the two
 * tables stay in step; later indexed references then resolve, on nghttp2's
 * side, to the rewritten value.
 *
 * Names and values are latin1 strings: one character per octet, whatever the
 * octets are.
 */

export class HpackError extends Error {
  override readonly name = 'HpackError';
}

export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

// ---------------------------------------------------------------- Huffman

/**
 * Code lengths of the HPACK Huffman code (RFC 7541 Appendix B) for symbols
 * 0..255 and 256 (EOS). The code is canonical (codes are handed out in order
 * of length, then of symbol), so the lengths define every code.
 */
const huffmanCodeLengths: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' ' - '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0' - '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@' - 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P' - '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`' - 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p' - 127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
  30, // EOS
];
const eosSymbol = 256;
const huffmanLengthMax = 30;

/**
 * Canonical decoding tables: for each code length, the first code of that
 * length, how many codes have it, and where its symbols start in `symbols`
 * (all symbols ordered by code).
 */
const huffman = (() => {
  const symbols = Array.from(huffmanCodeLengths.keys()).sort(
    (a, b) => (huffmanCodeLengths[a] ?? 0) - (huffmanCodeLengths[b] ?? 0) || a - b,
  );
  const count = new Int32Array(huffmanLengthMax + 1);
  for (const len of huffmanCodeLengths) count[len] = (count[len] ?? 0) + 1;
  const firstCode = new Int32Array(huffmanLengthMax + 1);
  const firstIndex = new Int32Array(huffmanLengthMax + 1);
  let code = 0;
  let index = 0;
  for (let len = 1; len <= huffmanLengthMax; len++) {
    firstCode[len] = code;
    firstIndex[len] = index;
    const n = count[len] ?? 0;
    code = (code + n) * 2;
    index += n;
  }
  return { symbols: Uint16Array.from(symbols), count, firstCode, firstIndex };
})();

/** Each symbol's code as [code, bit length], for tests. */
export function huffmanCodes(): [number, number][] {
  const codes: [number, number][] = [];
  for (let len = 1; len <= huffmanLengthMax; len++) {
    for (let i = 0; i < (huffman.count[len] ?? 0); i++) {
      const sym = huffman.symbols[(huffman.firstIndex[len] ?? 0) + i] ?? 0;
      codes[sym] = [(huffman.firstCode[len] ?? 0) + i, len];
    }
  }
  return codes;
}

/** Decodes a Huffman-coded string literal (RFC 7541 §5.2): octets out, as latin1. */
export function huffmanDecode(bytes: Uint8Array): string {
  // The shortest code is 5 bits.
  const out = Buffer.allocUnsafe(Math.ceil((bytes.length * 8) / 5));
  let n = 0;
  let code = 0;
  let len = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const offset = code - (huffman.firstCode[len] ?? 0);
      if (offset < (huffman.count[len] ?? 0)) {
        const sym = huffman.symbols[(huffman.firstIndex[len] ?? 0) + offset] ?? 0;
        if (sym === eosSymbol) throw new HpackError('Huffman string contains EOS');
        out[n++] = sym;
        code = 0;
        len = 0;
      } else if (len >= huffmanLengthMax) {
        throw new HpackError('bad Huffman code');
      }
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== 2 ** len - 1) throw new HpackError('bad Huffman padding');
  return out.toString('latin1', 0, n);
}

// ---------------------------------------------------------------- tables

/** RFC 7541 Appendix A, indexes 1..61. */
const staticTable: readonly HeaderField[] = (
  [
    [':authority', ''],
    [':method', 'GET'],
    [':method', 'POST'],
    [':path', '/'],
    [':path', '/index.html'],
    [':scheme', 'http'],
    [':scheme', 'https'],
    [':status', '200'],
    [':status', '204'],
    [':status', '206'],
    [':status', '304'],
    [':status', '400'],
    [':status', '404'],
    [':status', '500'],
    ['accept-charset', ''],
    ['accept-encoding', 'gzip, deflate'],
    ['accept-language', ''],
    ['accept-ranges', ''],
    ['accept', ''],
    ['access-control-allow-origin', ''],
    ['age', ''],
    ['allow', ''],
    ['authorization', ''],
    ['cache-control', ''],
    ['content-disposition', ''],
    ['content-encoding', ''],
    ['content-language', ''],
    ['content-length', ''],
    ['content-location', ''],
    ['content-range', ''],
    ['content-type', ''],
    ['cookie', ''],
    ['date', ''],
    ['etag', ''],
    ['expect', ''],
    ['expires', ''],
    ['from', ''],
    ['host', ''],
    ['if-match', ''],
    ['if-modified-since', ''],
    ['if-none-match', ''],
    ['if-range', ''],
    ['if-unmodified-since', ''],
    ['last-modified', ''],
    ['link', ''],
    ['location', ''],
    ['max-forwards', ''],
    ['proxy-authenticate', ''],
    ['proxy-authorization', ''],
    ['range', ''],
    ['referer', ''],
    ['refresh', ''],
    ['retry-after', ''],
    ['server', ''],
    ['set-cookie', ''],
    ['strict-transport-security', ''],
    ['transfer-encoding', ''],
    ['user-agent', ''],
    ['vary', ''],
    ['via', ''],
    ['www-authenticate', ''],
  ] as const
).map(([name, value]) => ({ name, value }));

/** An entry's size counts its name, its value and this overhead (RFC 7541 §4.1). */
const entryOverheadBytes = 32;
/** SETTINGS_HEADER_TABLE_SIZE's default, and node:http2's. */
export const defaultTableBytes = 4096;

function entrySize(f: HeaderField): number {
  return f.name.length + f.value.length + entryOverheadBytes;
}

/** A replacement for a field's value, of the same length; undefined keeps it. */
export type FieldFix = (name: string, value: string) => string | undefined;

export interface DecodedBlock {
  readonly fields: HeaderField[];
  /** The block with every fixed value re-encoded; undefined when nothing changed. */
  readonly rewritten: Buffer | undefined;
}

/** The decoding side of one HTTP/2 connection's header compression. */
export class HpackDecoder {
  /** Newest first, so dynamic index i (from 62) is entries[i - 62]. */
  private readonly entries: HeaderField[] = [];
  private sizeBytes = 0;
  private maxBytes: number;

  /** settingsMaxBytes: the SETTINGS_HEADER_TABLE_SIZE this side announced. */
  constructor(private readonly settingsMaxBytes = defaultTableBytes) {
    this.maxBytes = settingsMaxBytes;
  }

  get tableBytes(): number {
    return this.sizeBytes;
  }

  get tableMaxBytes(): number {
    return this.maxBytes;
  }

  /** The dynamic table, newest entry first. */
  tableEntries(): readonly HeaderField[] {
    return this.entries;
  }

  /** Decodes one complete header block, updating the table. Throws HpackError on a malformed block. */
  decode(block: Buffer, fix?: FieldFix): DecodedBlock {
    const r = new BlockReader(block);
    const fields: HeaderField[] = [];
    const parts: Buffer[] = [];
    let copiedTo = 0;
    while (!r.done()) {
      const first = r.peek();
      if (first & 0x80) {
        fields.push(this.lookup(r.integer(7)));
        continue;
      }
      if ((first & 0xe0) === 0x20) {
        this.resize(r.integer(5));
        continue;
      }
      const indexing = (first & 0xc0) === 0x40;
      const nameIndex = r.integer(indexing ? 6 : 4);
      const name = nameIndex === 0 ? r.string() : this.lookup(nameIndex).name;
      const valueAt = r.pos;
      let value = r.string();
      const fixed = fix?.(name, value);
      if (fixed !== undefined && fixed !== value) {
        if (fixed.length !== value.length) throw new RangeError('a fixed header value must keep its length');
        parts.push(block.subarray(copiedTo, valueAt), encodeRawString(fixed));
        copiedTo = r.pos;
        value = fixed;
      }
      const field = { name, value };
      fields.push(field);
      if (indexing) this.insert(field);
    }
    if (parts.length === 0) return { fields, rewritten: undefined };
    parts.push(block.subarray(copiedTo));
    return { fields, rewritten: Buffer.concat(parts) };
  }

  private lookup(index: number): HeaderField {
    const f = index <= staticTable.length ? staticTable[index - 1] : this.entries[index - staticTable.length - 1];
    if (index === 0 || f === undefined) throw new HpackError(`header table index ${index} out of range`);
    return f;
  }

  private resize(bytes: number): void {
    if (bytes > this.settingsMaxBytes) throw new HpackError(`table size update ${bytes} above the announced ${this.settingsMaxBytes}`);
    this.maxBytes = bytes;
    this.evictTo(bytes);
  }

  private insert(field: HeaderField): void {
    const size = entrySize(field);
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    this.evictTo(Math.max(0, this.maxBytes - size));
    if (size > this.maxBytes) return;
    this.entries.unshift(field);
    this.sizeBytes += size;
  }

  private evictTo(bytes: number): void {
    while (this.sizeBytes > bytes) {
      const e = this.entries.pop();
      if (e === undefined) break;
      this.sizeBytes -= entrySize(e);
    }
  }
}

/** The largest integer accepted; header blocks are far smaller. */
const integerMax = 2 ** 31 - 1;

class BlockReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  peek(): number {
    return this.buf[this.pos] ?? 0;
  }

  /** An integer with an N-bit prefix (RFC 7541 §5.1). */
  integer(prefixBits: number): number {
    const mask = 2 ** prefixBits - 1;
    let v = this.byte() & mask;
    if (v < mask) return v;
    for (let shift = 0; ; shift += 7) {
      const b = this.byte();
      v += (b & 0x7f) * 2 ** shift;
      if (v > integerMax) throw new HpackError('integer too large');
      if ((b & 0x80) === 0) return v;
    }
  }

  /** A string literal (RFC 7541 §5.2), raw or Huffman-coded. */
  string(): string {
    const huffmanCoded = (this.peek() & 0x80) !== 0;
    const len = this.integer(7);
    if (this.pos + len > this.buf.length) throw new HpackError('string runs past the end of the block');
    const raw = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return huffmanCoded ? huffmanDecode(raw) : raw.toString('latin1');
  }

  private byte(): number {
    const b = this.buf[this.pos++];
    if (b === undefined) throw new HpackError('header block truncated');
    return b;
  }
}

/** An integer with an N-bit prefix; `high` holds the bits above the prefix. */
export function encodeInteger(value: number, prefixBits: number, high = 0): Buffer {
  const mask = 2 ** prefixBits - 1;
  if (value < mask) return Buffer.of(high | value);
  const out = [high | mask];
  let v = value - mask;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A string literal without Huffman coding. */
export function encodeRawString(value: string): Buffer {
  const bytes = Buffer.from(value, 'latin1');
  return Buffer.concat([encodeInteger(bytes.length, 7), bytes]);
}

/** Static-table index of each name (its first entry), for literal fields with an indexed name. */
const staticNameIndex: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  staticTable.forEach((f, i) => {
    if (!m.has(f.name)) m.set(f.name, i + 1);
  });
  return m;
})();

/**
 * A header block of literal fields that are never added to the dynamic table
 * (RFC 7541 §6.2.2), names indexed from the static table when they are in it,
 * strings raw: the decoder on the far side keeps an empty table, whatever
 * size it allows. Names and values are latin1; names must be lower-case.
 */
export function encodeHeaderFields(fields: readonly HeaderField[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const index = staticNameIndex.get(f.name);
    if (index === undefined) parts.push(Buffer.of(0), encodeRawString(f.name));
    else parts.push(encodeInteger(index, 4));
    parts.push(encodeRawString(f.value));
  }
  return Buffer.concat(parts);
}
