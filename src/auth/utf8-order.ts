/**
 * Names sort as etcd sorts them: by their UTF-8 bytes (Go's sort.Strings,
 * bbolt key order). That is code point order, which JavaScript's `<` on
 * strings (UTF-16 code units) gets wrong for characters above U+FFFF
 * against U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Only where a surrogate meets a non-surrogate does UTF-16 order differ from code point order.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Inserts s into the array kept sorted in compareUtf8 order, after any equal element. */
export function insertSorted(sorted: string[], s: string): void {
  let at = sorted.length;
  while (at > 0 && compareUtf8(sorted[at - 1] as string, s) > 0) at--;
  sorted.splice(at, 0, s);
}
