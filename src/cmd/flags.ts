/**
 * Command-line flags with the semantics of Go's `flag` package, which etcd
 * and etcdctl use, so that every command line that works with them works here:
 * `-name v`, `--name v`, `--name=v`; boolean flags as `--b`, `--b=true|false`
 * (never `--b false`); parsing stops at the first non-flag argument or `--`.
 * Error texts are Go's ("flag provided but not defined: -x").
 */
import { parseGoInt64 } from '../base/index.js';

export type FlagKind = 'string' | 'bool' | 'int' | 'uint' | 'duration' | 'float';

export interface FlagDef {
  readonly name: string;
  readonly kind: FlagKind;
  /** The default as etcd's help prints it. */
  readonly defaultText: string;
  readonly usage: string;
  /** Section heading in the help text. */
  readonly section?: string;
  /** Checks a value; returns an error text ("parse error", or a validator's message) or undefined. */
  readonly check?: (value: string) => string | undefined;
  readonly hidden?: boolean;
}

export class FlagError extends Error {
  override readonly name = 'FlagError';
}

export interface ParsedFlags {
  /** Flags given on the command line, by name, with their raw text ('true' for bare booleans). */
  readonly values: Map<string, string>;
  readonly args: string[];
}

const durationRe = /^([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$/;

/** Parses a Go duration ("1h30m", "100ms", "0") into milliseconds; undefined when invalid. */
export function parseDurationMs(s: string): number | undefined {
  if (s === '0') return 0;
  if (!durationRe.test(s)) return undefined;
  const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of s.matchAll(/([0-9]*(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)/g)) {
    const n = Number(m[1]);
    const unit = unitMs[m[2] ?? ''];
    if (!Number.isFinite(n) || unit === undefined) return undefined;
    total += n * unit;
  }
  return total;
}

/** A flag's integer: the value, or Go's flag package's error for strconv's reason. */
export function parseGoInt(kind: 'int' | 'uint', text: string): bigint | 'parse error' | 'value out of range' {
  const n = parseGoInt64(text, kind === 'int');
  return n === 'invalid syntax' ? 'parse error' : n;
}

/** A flag's integer value as a number (checked for its kind before). */
export function goIntValue(kind: 'int' | 'uint', text: string): number {
  const n = parseGoInt(kind, text);
  if (typeof n !== 'bigint') throw new FlagError(`invalid integer ${text}: ${n}`);
  return Number(n);
}

function kindCheck(kind: FlagKind, value: string): string | undefined {
  switch (kind) {
    case 'string':
      return undefined;
    case 'bool':
      return /^(1|0|t|f|T|F|true|false|TRUE|FALSE|True|False)$/.test(value) ? undefined : 'parse error';
    case 'int':
    case 'uint': {
      const n = parseGoInt(kind, value);
      return typeof n === 'bigint' ? undefined : n;
    }
    case 'float':
      return value.trim() !== '' && Number.isFinite(Number(value)) ? undefined : 'parse error';
    case 'duration':
      return parseDurationMs(value) === undefined ? 'parse error' : undefined;
  }
}

export function parseBool(value: string): boolean {
  return /^(1|t|T|true|TRUE|True)$/.test(value);
}

/** Why value is not one for def; undefined when it is. */
function valueError(def: FlagDef, value: string): string | undefined {
  return kindCheck(def.kind, value) ?? def.check?.(value);
}

export function checkValue(def: FlagDef, value: string): void {
  const err = valueError(def, value);
  if (err === undefined) return;
  // Go's flag package words a boolean that does not parse apart from other bad values.
  if (def.kind === 'bool' && kindCheck('bool', value) !== undefined) throw new FlagError(`invalid boolean value "${value}" for -${def.name}: ${err}`);
  throw new FlagError(`invalid value "${value}" for flag -${def.name}: ${err}`);
}

/**
 * A *_ variable that cannot be used. Not a command-line mistake: etcd prints
 * no usage for it and exits 1. `verifying`: a bad value, which etcd reports
 * as "error verifying flags, ..."; otherwise a variable that a flag shadows.
 */
export class EnvError extends Error {
  override readonly name = 'EnvError';
  constructor(
    message: string,
    readonly verifying: boolean,
  ) {
    super(message);
  }
}

export function parseFlags(defs: readonly FlagDef[], argv: readonly string[]): ParsedFlags {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const values = new Map<string, string>();
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body === '' || body.startsWith('-') || body.startsWith('=')) throw new FlagError(`bad flag syntax: ${arg}`);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    if (name === 'h' || name === 'help') throw new FlagError('help requested');
    const def = byName.get(name);
    if (def === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    let value: string;
    if (eq >= 0) {
      value = body.slice(eq + 1);
    } else if (def.kind === 'bool') {
      value = 'true';
    } else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      value = argv[++i] as string;
    }
    checkValue(def, value);
    values.set(name, value);
  }
  return { values, args: argv.slice(i) };
}

/** The help text, laid out as etcd's: sections, `--flag 'default'`, indented usage. */
export function flagsHelp(defs: readonly FlagDef[]): string {
  const out: string[] = [];
  let section: string | undefined;
  for (const d of defs) {
    if (d.hidden === true) continue;
    if (d.section !== undefined && d.section !== section) {
      section = d.section;
      out.push('', `${section}:`);
    }
    const dflt = d.kind === 'string' || d.kind === 'bool' || d.kind === 'duration' ? `'${d.defaultText}'` : d.defaultText;
    out.push(`  --${d.name} ${dflt}`, `    ${d.usage}`);
  }
  return out.join('\n') + '\n';
}

/** The environment variable for a flag: ETCD_ + upper snake case (listen-client-urls -> ETCD_LISTEN_CLIENT_URLS). */
export function envName(prefix: string, flag: string): string {
  return prefix + flag.toUpperCase().replace(/-/g, '_');
}

export interface EnvNote {
  readonly level: 'info' | 'warn';
  readonly msg: string;
}

export interface EnvResult {
  /** Values taken from the environment for flags not given on the command line. */
  readonly used: Map<string, string>;
  /** Log lines as etcd prints them: recognized variables (info), unrecognized ones (warn). */
  readonly notes: EnvNote[];
}

/**
 * Applies PREFIX_* environment variables to flags that the command line did not
 * set. A variable for a flag that the command line also set is an error, as
 * in etcd ("conflicting environment variable ... is shadowed"), and comes
 * first. Of several bad values etcd reports the last, visiting the flags in
 * name order as Go's flag set does.
 */
export function flagsFromEnv(
  prefix: string,
  defs: readonly FlagDef[],
  given: ReadonlyMap<string, string>,
  env: NodeJS.ProcessEnv,
): EnvResult {
  const used = new Map<string, string>();
  const notes: EnvNote[] = [];
  const known = new Set<string>();
  let bad: EnvError | undefined;
  for (const d of [...defs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const key = envName(prefix, d.name);
    known.add(key);
    const v = env[key];
    if (v === undefined || v === '') continue;
    if (given.has(d.name)) {
      throw new EnvError(
        `conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
        false,
      );
    }
    const err = valueError(d, v);
    if (err !== undefined) {
      bad = new EnvError(`invalid value "${v}" for ${key}: ${err}`, true);
      continue;
    }
    used.set(d.name, v);
    notes.push({ level: 'info', msg: `recognized and used environment variable ${key}=${v}` });
  }
  if (bad !== undefined) throw bad;
  for (const key of Object.keys(env).sort()) {
    if (key.startsWith(prefix) && !known.has(key)) notes.push({ level: 'warn', msg: `unrecognized environment variable ${key}=${env[key] ?? ''}` });
  }
  return { used, notes };
}
