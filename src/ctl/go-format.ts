/**
 * Go's formatting, as etcdctl's output depends on it: strconv.Quote (%q),
 * encoding/json's string escaping and its rendering of protobuf structs
 * (omitempty fields, bytes as base64, oneofs under the Go field name),
 * time.Duration's String, go-humanize's Bytes, and %x of ids.
 */
import { goQuote, runes } from '../base/index.js';
import type { FieldInfo, MessageType } from '../client/index.js';

export { goQuote };

/** %016x of a 64-bit id. */
export function hex16(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16).padStart(16, '0');
}

/** %x of a 64-bit id (no padding); %16x pads with spaces. */
export function hexId(id: bigint, width = 0): string {
  return BigInt.asUintN(64, id).toString(16).padStart(width, ' ');
}

/** A uint64 id printed as Go prints it (%d / %v). */
export function u64(id: bigint): string {
  return BigInt.asUintN(64, id).toString();
}

/** encoding/json's string encoding (HTML-safe, invalid UTF-8 as U+FFFD). */
export function jsonString(s: string | Uint8Array): string {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  let out = '"';
  for (const { cp } of runes(b)) {
    if (cp === null) {
      out += '\ufffd';
      continue;
    }
    if (cp === 0x22) out += '\\"';
    else if (cp === 0x5c) out += '\\\\';
    else if (cp === 0x0a) out += '\\n';
    else if (cp === 0x0d) out += '\\r';
    else if (cp === 0x09) out += '\\t';
    else if (cp < 0x20 || cp === 0x3c || cp === 0x3e || cp === 0x26 || cp === 0x2028 || cp === 0x2029) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else out += String.fromCodePoint(cp);
  }
  return `${out}"`;
}

function isEmpty(f: FieldInfo, v: unknown): boolean {
  if (f.repeated) return (v as unknown[]).length === 0;
  if (v === undefined || v === null) return true;
  if (f.kind === 'message') return false;
  if (v instanceof Uint8Array) return v.length === 0;
  return v === 0 || v === 0n || v === false || v === '';
}

function scalarJson(f: FieldInfo, v: unknown): string {
  if (v instanceof Uint8Array) return jsonString(Buffer.from(v).toString('base64'));
  if (typeof v === 'string') return jsonString(v);
  if (typeof v === 'bigint') return (f.kind === 'scalar' && f.scalar.startsWith('uint') ? BigInt.asUintN(64, v) : v).toString();
  if (f.kind === 'message') return messageJson(f.messageType(), v as object);
  return String(v);
}

function goFieldName(oneof: string): string {
  return oneof.split('_').map((p) => (p[0] ?? '').toUpperCase() + p.slice(1)).join('');
}

/** A generated protobuf struct as Go's encoding/json renders it (gogo tags: proto names, omitempty). */
export function messageJson<T extends object>(type: MessageType<T>, msg: T): string {
  const rec = msg as Record<string, unknown>;
  const parts: string[] = [];
  const oneofsDone = new Set<string>();
  for (const f of type.fields) {
    if (f.oneof !== undefined) {
      if (oneofsDone.has(f.oneof)) continue;
      oneofsDone.add(f.oneof);
      const camel = f.oneof.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      const u = rec[camel] as { case: string; value: unknown } | undefined;
      const chosen = u === undefined ? undefined : type.fields.find((g) => g.name === u.case);
      // The oneof's wrapper struct has no json tags: its one field is keyed by its Go name.
      const body = u === undefined || chosen === undefined ? 'null' : `{${jsonString(goFieldName(chosen.protoName))}:${scalarJson(chosen, u.value)}}`;
      parts.push(`${jsonString(goFieldName(f.oneof))}:${body}`);
      continue;
    }
    const v = rec[f.name];
    if (isEmpty(f, v)) continue;
    const enc = f.repeated ? `[${(v as unknown[]).map((x) => scalarJson(f, x)).join(',')}]` : scalarJson(f, v);
    parts.push(`${jsonString(f.protoName)}:${enc}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * golang/protobuf's CompactTextString (a message's String()) of a message of
 * numeric and bool fields, such as a ResponseHeader: "name:value " for each
 * set field; undefined renders as Go's nil pointer, <nil>.
 */
export function compactText<T extends object>(type: MessageType<T>, msg: T | undefined): string {
  if (msg === undefined) return '<nil>';
  const rec = msg as Record<string, unknown>;
  return type.fields
    .filter((f) => !isEmpty(f, rec[f.name]))
    .map((f) => {
      const v = rec[f.name];
      return `${f.protoName}:${typeof v === 'bigint' && f.kind === 'scalar' && f.scalar.startsWith('uint') ? BigInt.asUintN(64, v) : String(v)} `;
    })
    .join('');
}

/** time.Duration.String() of a duration in nanoseconds. */
export function goDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < 1000n) out = `${u}ns`;
  else if (u < 1_000_000n) out = `${fraction(u, 1000n)}µs`;
  else if (u < 1_000_000_000n) out = `${fraction(u, 1_000_000n)}ms`;
  else {
    const h = u / 3_600_000_000_000n;
    u -= h * 3_600_000_000_000n;
    const m = u / 60_000_000_000n;
    u -= m * 60_000_000_000n;
    const s = `${fraction(u, 1_000_000_000n)}s`;
    out = h > 0n ? `${h}h${m}m${s}` : m > 0n ? `${m}m${s}` : s;
  }
  return neg ? `-${out}` : out;
}

function fraction(v: bigint, unit: bigint): string {
  const whole = v / unit;
  const frac = (v % unit).toString().padStart(unit.toString().length - 1, '0').replace(/0+$/, '');
  return frac === '' ? whole.toString() : `${whole}.${frac}`;
}

/** Parses a Go duration ("5s", "1m30s", "200ms", "1.5h"); undefined if malformed. */
export function parseGoDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let sign = 1;
  let rest = s;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '') return undefined;
  let total = 0;
  let pos = 0;
  re.lastIndex = 0;
  while (pos < rest.length) {
    const m = re.exec(rest);
    if (m === null) return undefined;
    total += Number(m[1]) * (units[m[2] ?? ''] ?? 0);
    pos = re.lastIndex;
  }
  return sign * total;
}

/** Rounds half to even, as Go's %.0f/%.1f do on exact halves. */
function roundHalfEven(x: number, digits: number): string {
  const f = 10 ** digits;
  const y = x * f;
  const r = Math.round(y);
  const adjusted = Math.abs(y % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return (adjusted / f).toFixed(digits);
}

/** go-humanize Bytes: SI units. */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${roundHalfEven(val, val < 10 ? 1 : 0)} ${sizes[e] ?? ''}`;
}

/** strconv.Unquote of a double-quoted or back-quoted Go literal; undefined if malformed. */
export function goUnquote(lit: string): string | undefined {
  if (lit.length >= 2 && lit.startsWith('`') && lit.endsWith('`')) return lit.slice(1, -1);
  if (lit.length < 2 || !lit.startsWith('"') || !lit.endsWith('"')) return undefined;
  const body = lit.slice(1, -1);
  const bytes: number[] = [];
  const pushStr = (s: string): void => {
    for (const b of Buffer.from(s, 'utf8')) bytes.push(b);
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i] ?? '';
    if (c === '"' || c === '\n') return undefined;
    if (c !== '\\') {
      pushStr(c);
      continue;
    }
    const e = body[++i];
    const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };
    if (e === undefined) return undefined;
    if (simple[e] !== undefined) {
      bytes.push(simple[e]);
      continue;
    }
    const hexLen = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (hexLen > 0) {
      const h = body.slice(i + 1, i + 1 + hexLen);
      if (!/^[0-9a-fA-F]+$/.test(h) || h.length !== hexLen) return undefined;
      const v = parseInt(h, 16);
      if (e === 'x') bytes.push(v);
      else pushStr(String.fromCodePoint(v));
      i += hexLen;
      continue;
    }
    if (/[0-7]/.test(e)) {
      const o = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(o)) return undefined;
      const v = parseInt(o, 8);
      if (v > 255) return undefined;
      bytes.push(v);
      i += 2;
      continue;
    }
    return undefined;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** etcdctl's argify: splits a line into words, honouring "double" (Go-unquoted) and 'single' quotes. */
export function argify(s: string): string[] | Error {
  const re = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?/g;
  const args = s.match(re) ?? [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a.startsWith("'")) {
      // etcdctl slices by the number of words here, not the word's length; kept for identical behaviour.
      args[i] = a.slice(1, args.length - 1);
    } else if (a.startsWith('"')) {
      const u = goUnquote(a);
      if (u === undefined) return new Error('invalid syntax');
      args[i] = u;
    }
  }
  return args;
}

/** Go's syscall.Errno Error() (strerror) of the errors file operations usually meet, by Node's code. */
const goErrnoTexts: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'file exists',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  EXDEV: 'invalid cross-device link',
  ENOTEMPTY: 'directory not empty',
};

/** The strerror text Go prints for a Node fs/spawn error (Node's message when the code is not known). */
export function goErrnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return goErrnoTexts[e.code ?? ''] ?? (err instanceof Error ? err.message : String(err));
}

/**
 * A Node fs error as Go's *os.PathError prints it, "<op> <path>: <strerror>"
 * (op is the failing system call, e.g. open, or read for a directory read as
 * a file); two-path errors (rename, link) as *os.LinkError, "<op> <old> <new>: ...".
 */
export function goPathError(path: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException & { dest?: string };
  const op = e.syscall ?? 'open';
  return e.dest !== undefined ? `${op} ${path} ${e.dest}: ${goErrnoText(err)}` : `${op} ${path}: ${goErrnoText(err)}`;
}

/** Go's syscall.Signal String() for the signals a command usually dies of. */
const goSignalNames: Readonly<Record<string, string>> = {
  SIGHUP: 'hangup',
  SIGINT: 'interrupt',
  SIGQUIT: 'quit',
  SIGILL: 'illegal instruction',
  SIGABRT: 'aborted',
  SIGBUS: 'bus error',
  SIGFPE: 'floating point exception',
  SIGKILL: 'killed',
  SIGSEGV: 'segmentation fault',
  SIGPIPE: 'broken pipe',
  SIGTERM: 'terminated',
};

/**
 * What Go's exec.Cmd.Run returns, as text, for a command that could not
 * start (error from Node's spawn) or ended other than with status 0;
 * undefined when it succeeded.
 */
export function goExecError(name: string, r: { readonly error?: NodeJS.ErrnoException | undefined; readonly status: number | null; readonly signal: NodeJS.Signals | null }): string | undefined {
  if (r.error !== undefined) {
    // exec.Command looks a bare name up in $PATH first; a path is tried as it is.
    if (r.error.code === 'ENOENT' && !name.includes('/')) return `exec: ${goQuote(name)}: executable file not found in $PATH`;
    return `fork/exec ${name}: ${goErrnoText(r.error)}`;
  }
  if (r.signal !== null) return `signal: ${goSignalNames[r.signal] ?? r.signal.toLowerCase()}`;
  return r.status === 0 ? undefined : `exit status ${r.status ?? 1}`;
}

/** %q of a []string: ["a" "b"]. */
export function goQuoteList(items: readonly string[]): string {
  return `[${items.map((s) => goQuote(s)).join(' ')}]`;
}
