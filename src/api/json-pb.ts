/**
 * Protobuf messages as JSON the way etcd 3.4's grpc-gateway (golang/protobuf
 * jsonpb, OrigName, no defaults) writes and reads them, driven by the field
 * tables of src/pb:
 *
 * - names are the .proto names (`cluster_id`, `TTL`); reading accepts the
 *   lowerCamel names too and ignores unknown fields;
 * - 64-bit integers are decimal strings (numbers accepted when reading),
 *   bytes are standard base64, enums are their names (numbers accepted);
 * - zero scalars, empty repeated fields and unset messages are left out; a
 *   set oneof member is written even when zero;
 * - fields in declaration order; strings escaped as Go's encoding/json does
 *   (<, >, & and U+2028/9 as \u escapes).
 */
import { goQuote } from '../base/index.js';
import type { FieldInfo, MessageType } from '../pb/index.js';
import { checkGoJson, scanGoJson } from './go-json-scan.js';

type Obj = Record<string, unknown>;

/** A request body jsonpb refuses; its message is what grpc-gateway answers with (code INVALID_ARGUMENT). */
export class JsonPbError extends Error {}

const hex4 = (c: number): string => `\\u${c.toString(16).padStart(4, '0')}`;

/** A JSON string as Go's encoding/json writes it (HTML-safe). */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) out += hex4(c);
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c < 0xdc00 && next >= 0xdc00 && next <= 0xdfff) {
        out += s[i] ?? '';
        out += s[i + 1] ?? '';
        i++;
      } else out += '\ufffd';
    } else out += s[i] ?? '';
  }
  return `${out}"`;
}

const decoder = new TextDecoder();

function scalarJson(f: FieldInfo & { kind: 'scalar' }, v: unknown): string {
  switch (f.scalar) {
    case 'bool':
      return v === true ? 'true' : 'false';
    case 'int32':
    case 'uint32':
      return String(v);
    case 'int64num':
    case 'uint64num':
    case 'int64big':
    case 'uint64big':
      return `"${String(v)}"`;
    case 'string':
      return goJsonString(v as string);
    case 'bytes':
      return `"${Buffer.from(v as Uint8Array).toString('base64')}"`;
  }
}

function isZero(f: FieldInfo, v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (f.kind === 'message') return false;
  if (f.kind === 'enum') return v === 0;
  switch (f.scalar) {
    case 'bool':
      return v === false;
    case 'string':
      return v === '';
    case 'bytes':
      return (v as Uint8Array).length === 0;
    default:
      return v === 0 || v === 0n;
  }
}

function valueJson(f: FieldInfo, v: unknown): string {
  switch (f.kind) {
    case 'scalar':
      return scalarJson(f, v);
    case 'enum': {
      const name = f.enumType.names[v as number];
      return name !== undefined ? `"${name}"` : String(v);
    }
    case 'message':
      return toJson(f.messageType(), v as object);
  }
}

/** One message as jsonpb writes it. */
export function toJson<T extends object>(type: MessageType<T>, msg: T): string {
  const m = msg as Obj;
  const parts: string[] = [];
  for (const f of type.fields) {
    if (f.oneof !== undefined) {
      const set = m[f.oneof] as { case: string; value: unknown } | undefined;
      if (set?.case !== f.name) continue;
      parts.push(`"${f.protoName}":${valueJson(f, set.value)}`);
      continue;
    }
    const v = m[f.name];
    if (f.repeated) {
      const list = v as unknown[] | undefined;
      if (list === undefined || list.length === 0) continue;
      parts.push(`"${f.protoName}":[${list.map((x) => valueJson(f, x)).join(',')}]`);
      continue;
    }
    if (isZero(f, v)) continue;
    parts.push(`"${f.protoName}":${valueJson(f, v)}`);
  }
  return `{${parts.join(',')}}`;
}

const lowerCamel = (protoName: string): string => protoName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Go's base64 alphabet value of an ASCII byte, or -1. */
function base64Value(c: number): number {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c === 43) return 62;
  if (c === 47) return 63;
  return -1;
}

const isNewline = (c: number | undefined): boolean => c === 10 || c === 13;
const base64Error = (at: number): JsonPbError => new JsonPbError(`illegal base64 data at input byte ${at}`);

/**
 * Standard base64 decoded as Go's base64.StdEncoding does it, quantum by
 * quantum (newlines skipped, padding required), so that a bad input fails at
 * the byte offset Go reports.
 */
function fromBase64(s: string): Uint8Array {
  const src = Buffer.from(s, 'utf8');
  const out: number[] = [];
  let si = 0;
  for (;;) {
    const quantum = [0, 0, 0, 0];
    let len = 4;
    for (let j = 0; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return new Uint8Array(out);
        throw base64Error(si - j);
      }
      const c = src[si++] as number;
      const v = base64Value(c);
      if (v >= 0) {
        quantum[j] = v;
        continue;
      }
      if (isNewline(c)) {
        j--;
        continue;
      }
      if (c !== 61 || j < 2) throw base64Error(si - 1);
      if (j === 2) {
        // A second '=' must follow (newlines aside).
        while (si < src.length && isNewline(src[si])) si++;
        if (si === src.length) throw base64Error(src.length);
        if (src[si] !== 61) throw base64Error(si - 1);
        si++;
      }
      while (si < src.length && isNewline(src[si])) si++;
      if (si < src.length) throw base64Error(si);
      len = j;
      break;
    }
    const [a = 0, b = 0, c = 0, d = 0] = quantum;
    const bits = (a << 18) | (b << 12) | (c << 6) | d;
    out.push((bits >> 16) & 0xff);
    if (len > 2) out.push((bits >> 8) & 0xff);
    if (len > 3) out.push(bits & 0xff);
    if (len < 4) return new Uint8Array(out);
  }
}

/** A JSON number as written, for the errors that quote it (`number 1.5`). */
class JsonNumber {
  constructor(readonly raw: string) {}
}

/**
 * Parses JSON already known to be valid, keeping numbers as written:
 * encoding/json's errors quote the literal (1e3, 1.0, 99999999999999999999)
 * and decide on it, which JSON.parse's doubles cannot.
 */
function parseKeepingNumbers(text: string): unknown {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Obj = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const key = value() as string;
        ws();
        i++; // ':'
        obj[key] = value();
        ws();
        if (text[i++] === '}') return obj;
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i++] === ']') return arr;
      }
    }
    if (c === '"') {
      const from = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      i++;
      return JSON.parse(text.slice(from, i)) as string;
    }
    const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400)) ?? [''];
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    return new JsonNumber(m[0]);
  };
  return value();
}

/** Parses the first JSON value of a text as encoding/json's Decoder does, or throws its syntax error. */
function parseGoJson(text: string): unknown {
  const scan = scanGoJson(text);
  if (scan.kind === 'error') throw new JsonPbError(scan.message);
  if (scan.kind === 'incomplete') throw new JsonPbError(text.trim() === '' ? 'unexpected end of JSON input' : 'unexpected EOF');
  return parseKeepingNumbers(text.slice(0, scan.end));
}

/** Parses a whole text as json.Unmarshal does (jsonpb's quoted integers), or throws its syntax error. */
function unmarshalGoJson(text: string): unknown {
  const error = checkGoJson(text);
  if (error !== null) throw new JsonPbError(error);
  return parseKeepingNumbers(text);
}

/** Go's registered name of a nested enum: package.Outer_Inner. */
function goEnumName(typeName: string): string {
  const dot = typeName.indexOf('.');
  return typeName.slice(0, dot + 1) + typeName.slice(dot + 1).replaceAll('.', '_');
}

function goTypeName(f: FieldInfo): string {
  if (f.kind === 'message') return 'map[string]json.RawMessage';
  if (f.kind === 'enum') return goEnumName(f.enumType.typeName);
  switch (f.scalar) {
    case 'bytes':
      return '[]uint8';
    case 'int64num':
    case 'int64big':
      return 'int64';
    case 'uint64num':
    case 'uint64big':
      return 'uint64';
    default:
      return f.scalar;
  }
}

/** encoding/json's name for the kind of a JSON value in its type errors. */
function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof JsonNumber) return 'number';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : typeof v;
}

function typeError(kind: string, goType: string): JsonPbError {
  return new JsonPbError(`json: cannot unmarshal ${kind} into Go value of type ${goType}`);
}

const integerRanges: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  uint8: [0n, 255n],
};

/** A JSON number literal stored into a Go integer of this type (range is the type's, int32 for an enum). */
function integerLiteral(raw: string, goType: string, range: readonly [bigint, bigint]): bigint {
  if (!/^-?(?:0|[1-9]\d*)$/.test(raw)) throw typeError(`number ${raw}`, goType);
  const n = BigInt(raw);
  if (n < range[0] || n > range[1]) throw typeError(`number ${raw}`, goType);
  return n;
}

/**
 * An integer field: jsonpb drops the quotes of a quoted one (as written, no
 * unescaping) and hands the rest to encoding/json, whose errors follow.
 * null (quoted or not) leaves the field unset.
 */
function integer(v: unknown, goType: string, range: readonly [bigint, bigint]): bigint | null {
  if (v instanceof JsonNumber) return integerLiteral(v.raw, goType, range);
  if (typeof v !== 'string') throw typeError(jsonKind(v), goType);
  const inner = unmarshalGoJson(v);
  if (inner === null) return null;
  if (inner instanceof JsonNumber) return integerLiteral(inner.raw, goType, range);
  throw typeError(jsonKind(inner), goType);
}

function bytesFromJson(v: unknown): Uint8Array {
  if (typeof v === 'string') return fromBase64(v);
  // encoding/json also fills a []byte from an array of small numbers.
  if (Array.isArray(v)) {
    return new Uint8Array(
      v.map((x) => {
        if (x === null) return 0;
        if (!(x instanceof JsonNumber)) throw typeError(jsonKind(x), 'uint8');
        return Number(integerLiteral(x.raw, 'uint8', integerRanges['uint8'] as [bigint, bigint]));
      }),
    );
  }
  throw typeError(jsonKind(v), '[]uint8');
}

function scalarFromJson(f: FieldInfo & { kind: 'scalar' }, v: unknown): unknown {
  switch (f.scalar) {
    case 'bool':
      if (typeof v !== 'boolean') throw typeError(jsonKind(v), 'bool');
      return v;
    case 'string':
      if (typeof v !== 'string') throw typeError(jsonKind(v), 'string');
      return v;
    case 'bytes':
      return bytesFromJson(v);
    case 'int32':
    case 'uint32':
    case 'int64num':
    case 'uint64num': {
      const t = goTypeName(f);
      const n = integer(v, t, integerRanges[t] as [bigint, bigint]);
      return n === null ? undefined : Number(n);
    }
    case 'int64big':
    case 'uint64big': {
      const t = goTypeName(f);
      return integer(v, t, integerRanges[t] as [bigint, bigint]) ?? undefined;
    }
  }
}

/** The zero value of a repeated scalar or enum field's element. */
function zeroElement(f: FieldInfo & { kind: 'scalar' | 'enum' }): unknown {
  if (f.kind === 'enum') return 0;
  switch (f.scalar) {
    case 'bool':
      return false;
    case 'string':
      return '';
    case 'bytes':
      return new Uint8Array();
    case 'int64big':
    case 'uint64big':
      return 0n;
    default:
      return 0;
  }
}

function valueFromJson(f: FieldInfo, v: unknown): unknown {
  switch (f.kind) {
    case 'scalar':
      return scalarFromJson(f, v);
    case 'enum': {
      if (typeof v === 'string') {
        const n = f.enumType.values[v];
        if (n === undefined) throw new JsonPbError(`unknown value ${goQuote(v)} for enum ${goEnumName(f.enumType.typeName)}`);
        return n;
      }
      if (v instanceof JsonNumber) return Number(integerLiteral(v.raw, goTypeName(f), integerRanges['int32'] as [bigint, bigint]));
      throw typeError(jsonKind(v), goTypeName(f));
    }
    case 'message':
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof JsonNumber) throw typeError(jsonKind(v), goTypeName(f));
      return fromObject(f.messageType(), v as Obj);
  }
}

function fromObject<T extends object>(type: MessageType<T>, json: Obj): T {
  const msg = type.create() as Obj;
  for (const f of type.fields) {
    const raw = Object.hasOwn(json, f.protoName) ? json[f.protoName] : json[lowerCamel(f.protoName)];
    if (raw === undefined || raw === null) continue;
    if (f.repeated) {
      // jsonpb tries a quoted value as an enum's name before anything else, so a repeated enum given one
      // name is refused for the name or, if it is one, for the slice it cannot go into.
      if (f.kind === 'enum' && typeof raw === 'string') {
        valueFromJson(f, raw);
        throw new JsonPbError(`invalid target "slice" for enum ${goEnumName(f.enumType.typeName)}`);
      }
      // Then it reads a repeated field as a list of raw values; encoding/json leaves a scalar element
      // given null at its zero value.
      if (!Array.isArray(raw)) throw typeError(jsonKind(raw), '[]json.RawMessage');
      msg[f.name] = raw.map((x) => (x === null && f.kind !== 'message' ? zeroElement(f) : valueFromJson(f, x)));
    } else if (f.oneof !== undefined) {
      msg[f.oneof] = { case: f.name, value: valueFromJson(f, raw) };
    } else {
      const v = valueFromJson(f, raw);
      if (v !== undefined) msg[f.name] = v;
    }
  }
  return msg as T;
}

function fromParsed<T extends object>(type: MessageType<T>, json: unknown): T {
  // jsonpb takes a top-level null as "nothing set".
  if (json === undefined || json === null) return type.create();
  if (typeof json !== 'object' || Array.isArray(json) || json instanceof JsonNumber) throw typeError(jsonKind(json), 'map[string]json.RawMessage');
  return fromObject(type, json as Obj);
}

/** A request from one JSON value's text (a stream's element). */
export function fromJsonText<T extends object>(type: MessageType<T>, text: string): T {
  return fromParsed(type, parseGoJson(text));
}

/**
 * Parses a request body as grpc-gateway's json.Decoder does: the first JSON
 * value only (what follows it is never read); an empty body is the empty
 * message.
 */
export function fromJson<T extends object>(type: MessageType<T>, body: Uint8Array): T {
  const text = decoder.decode(body);
  if (text.trim() === '') return type.create();
  // The first value only: what follows it is never read (scanGoJson stops there).
  return fromJsonText(type, text);
}

/** Splits a stream body into its consecutive JSON values (json.Decoder); the tail that is not complete yet stays. */
export function splitJsonValues(text: string): { values: string[]; rest: string } {
  const values: string[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (c === '{' || c === '[') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0 && start >= 0) {
        values.push(text.slice(start, i + 1));
        start = -1;
        text = text.slice(i + 1);
        i = -1;
      }
    }
  }
  return { values, rest: text };
}
