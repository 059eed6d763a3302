/**
 * A small datadriven test format (after cockroachdb's): a file is a list of
 * cases, each
 *
 *     directive key=value key=(v1, v2) flag
 *     optional input lines
 *     ----
 *     expected output
 *     <blank line>
 *
 * Output that contains blank lines is fenced by a doubled separator:
 * `----` `----` before it and `----` `----` after it. Lines starting with
 * `#` between cases are comments. This module is pure (no file access): the
 * test reads the file, runs each case, and with REWRITE=1 writes back the
 * text rewrite() returns.
 */
export interface CmdArg {
  key: string;
  vals: string[];
}

export interface TestCase {
  /** 1-based line of the directive, for error messages. */
  line: number;
  cmd: string;
  args: CmdArg[];
  input: string;
  expected: string;
  /** Lines of the file before this case's directive (comments, blank lines). */
  before: string[];
}

export interface ParsedFile {
  cases: TestCase[];
  /** Lines after the last case. */
  trailer: string[];
}

function tokenize(line: string): string[] {
  const toks: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of line) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ' ' && depth === 0) {
      if (cur.length > 0) toks.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.length > 0) toks.push(cur);
  return toks;
}

export function parseDirective(line: string): { cmd: string; args: CmdArg[] } {
  const [cmd = '', ...rest] = tokenize(line.trim());
  const args = rest.map((tok): CmdArg => {
    const eq = tok.indexOf('=');
    if (eq < 0) return { key: tok, vals: [] };
    const key = tok.slice(0, eq);
    let v = tok.slice(eq + 1);
    if (v.startsWith('(') && v.endsWith(')')) {
      v = v.slice(1, -1);
      return { key, vals: v.split(',').map((s) => s.trim()).filter((s) => s.length > 0) };
    }
    return { key, vals: [v] };
  });
  return { cmd, args };
}

export function parseFile(text: string): ParsedFile {
  const lines = text.split('\n');
  const cases: TestCase[] = [];
  let before: string[] = [];
  let i = 0;
  const lineCountMax = lines.length + 1;
  for (let guard = 0; i < lines.length; guard++) {
    if (guard > lineCountMax) throw new Error('datadriven: parser does not progress');
    const l = lines[i] ?? '';
    if (l.trim() === '' || l.startsWith('#')) {
      before.push(l);
      i++;
      continue;
    }
    const line = i + 1;
    const { cmd, args } = parseDirective(l);
    i++;
    const input: string[] = [];
    while (i < lines.length && lines[i] !== '----') input.push(lines[i++] ?? '');
    if (i >= lines.length) throw new Error(`datadriven: line ${line}: missing ---- separator`);
    i++;
    const out: string[] = [];
    if (lines[i] === '----') {
      // Fenced output: ends at a "----" "----" pair.
      i++;
      while (i < lines.length && !(lines[i] === '----' && lines[i + 1] === '----')) out.push(lines[i++] ?? '');
      i += 2;
    } else {
      while (i < lines.length && (lines[i] ?? '') !== '') out.push(lines[i++] ?? '');
    }
    cases.push({ line, cmd, args, input: input.join('\n'), expected: out.join('\n'), before });
    before = [];
  }
  return { cases, trailer: before };
}

/** Renders one case with the given output. */
function renderCase(c: TestCase, directive: string, output: string): string {
  let s = directive + '\n';
  if (c.input.length > 0) s += c.input + '\n';
  s += '----\n';
  const body = output.replace(/\n+$/, '');
  if (body.split('\n').some((l) => l.trim() === '') && body.length > 0) s += `----\n${body}\n----\n----\n`;
  else s += body.length > 0 ? body + '\n' : '';
  return s;
}

/** The file text with every case's expected output replaced by `outputs[i]`. */
export function rewrite(text: string, outputs: readonly string[]): string {
  const lines = text.split('\n');
  const parsed = parseFile(text);
  let s = '';
  parsed.cases.forEach((c, idx) => {
    for (const l of c.before) s += l + '\n';
    s += renderCase(c, lines[c.line - 1] ?? '', outputs[idx] ?? c.expected);
  });
  for (const l of parsed.trailer) s += l + '\n';
  return s.replace(/\n*$/, '\n');
}

export function argVals(c: { args: CmdArg[] }, key: string): string[] | undefined {
  return c.args.find((a) => a.key === key)?.vals;
}

export function hasArg(c: { args: CmdArg[] }, key: string): boolean {
  return c.args.some((a) => a.key === key);
}
