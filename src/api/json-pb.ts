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
import type { FieldInfo, MessageType } from '../pb/index.js';

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

const base64Alphabet = /^[A-Za-z0-9+/]$/;

/** Standard base64 as Go's base64.StdEncoding decodes it, with its error message. */
function fromBase64(s: string): Uint8Array {
  let i = 0;
  for (; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch === '=' || ch === '\r' || ch === '\n') break;
    if (!base64Alphabet.test(ch)) throw new JsonPbError(`illegal base64 data at input byte ${i}`);
  }
  const body = s.slice(0, i).length;
  const padding = s.slice(i);
  const rest = body % 4;
  const padOk = (rest === 0 && padding === '') || (rest === 2 && padding === '==') || (rest === 3 && padding === '=');
  if (!padOk) throw new JsonPbError(`illegal base64 data at input byte ${rest === 0 ? i : body - rest}`);
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Go's registered name of a nested enum: package.Outer_Inner. */
function goEnumName(typeName: string): string {
  const dot = typeName.indexOf('.');
  return typeName.slice(0, dot + 1) + typeName.slice(dot + 1).replaceAll('.', '_');
}

function goTypeName(f: FieldInfo): string {
  if (f.kind === 'message') return `${f.messageType().typeName}`;
  if (f.kind === 'enum') return f.enumType.typeName;
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

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : typeof v;
}

function mismatch(f: FieldInfo, v: unknown): JsonPbError {
  return new JsonPbError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type ${goTypeName(f)}`);
}

function integer(f: FieldInfo, v: unknown): bigint {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v !== 'string') throw mismatch(f, v);
  // jsonpb reads a quoted integer by parsing what is inside the quotes as JSON.
  if (/^-?\d+$/.test(v)) return BigInt(v);
  const bad = v.trimStart()[0];
  throw new JsonPbError(bad === undefined ? 'unexpected end of JSON input' : `invalid character ${goQuoteChar(bad)} looking for beginning of value`);
}

function scalarFromJson(f: FieldInfo & { kind: 'scalar' }, v: unknown): unknown {
  switch (f.scalar) {
    case 'bool':
      if (typeof v !== 'boolean') throw mismatch(f, v);
      return v;
    case 'string':
      if (typeof v !== 'string') throw mismatch(f, v);
      return v;
    case 'bytes':
      if (typeof v !== 'string') throw mismatch(f, v);
      return fromBase64(v);
    case 'int32':
    case 'uint32':
    case 'int64num':
    case 'uint64num':
      return Number(integer(f, v));
    case 'int64big':
    case 'uint64big':
      return integer(f, v);
  }
}

function valueFromJson(f: FieldInfo, v: unknown): unknown {
  switch (f.kind) {
    case 'scalar':
      return scalarFromJson(f, v);
    case 'enum': {
      if (typeof v === 'number') return v;
      const n = typeof v === 'string' ? f.enumType.values[v] : undefined;
      if (n === undefined) throw new JsonPbError(`unknown value ${JSON.stringify(v)} for enum ${goEnumName(f.enumType.typeName)}`);
      return n;
    }
    case 'message':
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw mismatch(f, v);
      return fromObject(f.messageType(), v as Obj);
  }
}

function fromObject<T extends object>(type: MessageType<T>, json: Obj): T {
  const msg = type.create() as Obj;
  for (const f of type.fields) {
    const raw = Object.hasOwn(json, f.protoName) ? json[f.protoName] : json[lowerCamel(f.protoName)];
    if (raw === undefined || raw === null) continue;
    if (f.repeated) {
      if (!Array.isArray(raw)) throw mismatch(f, raw);
      msg[f.name] = raw.map((x) => valueFromJson(f, x));
    } else if (f.oneof !== undefined) {
      msg[f.oneof] = { case: f.name, value: valueFromJson(f, raw) };
    } else msg[f.name] = valueFromJson(f, raw);
  }
  return msg as T;
}

/** A request from one parsed JSON value (an empty body is the empty message). */
export function fromJsonValue<T extends object>(type: MessageType<T>, json: unknown): T {
  if (json === undefined) return type.create();
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new JsonPbError(`json: cannot unmarshal ${jsonKind(json)} into Go value of type map[string]json.RawMessage`);
  return fromObject(type, json as Obj);
}

/** Parses a whole request body. */
export function fromJson<T extends object>(type: MessageType<T>, body: Uint8Array): T {
  const text = decoder.decode(body);
  if (text.trim() === '') return type.create();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new JsonPbError(goSyntaxMessage(text, e));
  }
  return fromJsonValue(type, parsed);
}

/** encoding/json's message for the first syntax error, as near as JSON.parse lets us tell. */
function goSyntaxMessage(text: string, e: unknown): string {
  const at = /position (\d+)/.exec((e as Error).message);
  const ch = at === null ? undefined : text[Number(at?.[1])];
  // json.Decoder reports a body that stops inside a value as an unexpected EOF.
  if (at === null || ch === undefined) return 'unexpected EOF';
  return `invalid character ${goQuoteChar(ch)} ${expectation(text, Number(at[1]))}`;
}

function goQuoteChar(ch: string): string {
  if (ch === "'") return "'\\''";
  if (ch === '"') return `'"'`;
  return `'${ch}'`;
}

/** What encoding/json was looking for where the bad character stands. */
function expectation(text: string, pos: number): string {
  const before = text.slice(0, pos).trimEnd();
  const last = before[before.length - 1];
  if (last === '{') return 'looking for beginning of object key string';
  if (last === ',') return /[[{][^[{]*$/.test(before) && lastOpen(before) === '{' ? 'looking for beginning of object key string' : 'looking for beginning of value';
  if (last === ':' || last === '[' || last === undefined) return 'looking for beginning of value';
  if (lastOpen(before) === '{') return isAfterKey(before) ? "after object key" : 'after object key:value pair';
  return 'after array element';
}

function lastOpen(s: string): string | undefined {
  let depth = 0;
  let inString = false;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s[i];
    if (c === '"' && s[i - 1] !== '\\') inString = !inString;
    if (inString) continue;
    if (c === '}' || c === ']') depth++;
    else if (c === '{' || c === '[') {
      if (depth === 0) return c;
      depth--;
    }
  }
  return undefined;
}

/** True when the text ends in an object key that still waits for its colon. */
function isAfterKey(s: string): boolean {
  const m = /([{,])\s*"(?:[^"\\]|\\.)*"$/.exec(s);
  return m !== null;
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
