/**
 * Go's strconv.ParseInt(s, 0, 64) and ParseUint(s, 0, 64), which both Go
 * flag packages etcd uses (the server's flag, etcdctl's pflag) call for
 * integer flags: a 0x, 0o, 0b or bare 0 (octal) prefix, underscores between
 * digits (the prefix counts as one), a sign for the signed form only. The
 * value, or strconv's reason; each caller words its error as its Go package
 * does.
 */
export function parseGoInt64(text: string, signed: boolean): bigint | 'invalid syntax' | 'value out of range' {
  let s = text;
  let negative = false;
  if (signed && (s.startsWith('+') || s.startsWith('-'))) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  const prefix = /^0[xob]/i.exec(s)?.[0].toLowerCase();
  const base = prefix === '0x' ? 16 : prefix === '0o' ? 8 : prefix === '0b' ? 2 : s.length > 1 && s.startsWith('0') ? 8 : 10;
  const body = prefix === undefined ? s : s.slice(2);
  // An underscore only between digits (or right after a base prefix), never last.
  const underscoresOk = !/__|_$/.test(s) && (prefix !== undefined || !s.startsWith('_'));
  const digits = body.replace(/_/g, '');
  const digitRe = base === 16 ? /^[0-9a-f]+$/i : base === 8 ? /^[0-7]+$/ : base === 2 ? /^[01]+$/ : /^[0-9]+$/;
  if (!underscoresOk || !digitRe.test(digits)) return 'invalid syntax';
  let n = 0n;
  for (const c of digits) n = n * BigInt(base) + BigInt(parseInt(c, base));
  const max = !signed ? 2n ** 64n - 1n : negative ? 2n ** 63n : 2n ** 63n - 1n;
  if (n > max) return 'value out of range';
  return negative ? -n : n;
}
