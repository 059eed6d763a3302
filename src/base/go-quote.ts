/**
 * Go's strconv.Quote (fmt's %q), and the rune walk under it: what Go's error
 * texts and etcdctl's output quote with.
 */

/** Decodes UTF-8 as Go ranges over a string: invalid bytes come back one at a time as null runes. */
export function* runes(b: Uint8Array): Generator<{ cp: number | null; bytes: Uint8Array }> {
  let i = 0;
  while (i < b.length) {
    const c = b[i] ?? 0;
    let n = 1;
    let cp: number | null = c;
    if (c >= 0x80) {
      cp = null;
      const need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      if (need > 0 && i + need <= b.length) {
        let v = c & (need === 2 ? 0x1f : need === 3 ? 0x0f : 0x07);
        let ok = true;
        for (let k = 1; k < need; k++) {
          const cc = b[i + k] ?? 0;
          if ((cc & 0xc0) !== 0x80) ok = false;
          v = (v << 6) | (cc & 0x3f);
        }
        const min = need === 2 ? 0x80 : need === 3 ? 0x800 : 0x10000;
        if (ok && v >= min && v <= 0x10ffff && !(v >= 0xd800 && v <= 0xdfff)) {
          cp = v;
          n = need;
        }
      }
    }
    yield { cp, bytes: b.subarray(i, i + n) };
    i += n;
  }
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function isGoPrint(cp: number): boolean {
  if (cp === 0x20) return true;
  return printable.test(String.fromCodePoint(cp));
}

/** strconv.Quote of a byte string: %q in fmt. */
export function goQuote(s: string | Uint8Array): string {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  let out = '"';
  for (const { cp, bytes } of runes(b)) {
    if (cp === null) {
      out += `\\x${(bytes[0] ?? 0).toString(16).padStart(2, '0')}`;
      continue;
    }
    switch (cp) {
      case 0x07: out += '\\a'; continue;
      case 0x08: out += '\\b'; continue;
      case 0x0c: out += '\\f'; continue;
      case 0x0a: out += '\\n'; continue;
      case 0x0d: out += '\\r'; continue;
      case 0x09: out += '\\t'; continue;
      case 0x0b: out += '\\v'; continue;
      case 0x5c: out += '\\\\'; continue;
      case 0x22: out += '\\"'; continue;
    }
    if (isGoPrint(cp)) out += String.fromCodePoint(cp);
    else if (cp < 0x80) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

