/**
 * Command-line flags as spf13/pflag parses them for etcdctl: `--name=value`,
 * `--name value`, `--bool` / `--bool=false`, shorthands (`-w json`,
 * `-wjson`), flags anywhere among the arguments, `--` ends flags; and
 * pflag's error texts. Values unset on the command line come from
 * ETCDCTL_<NAME> environment variables, as etcdctl's SetPflagsFromEnv does.
 */
import { parseGoInt64 } from '../base/index.js';
import { goDuration, parseGoDuration } from './go-format.js';

export type FlagKind = 'bool' | 'string' | 'int' | 'uint' | 'duration' | 'stringSlice';

export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  /** The default, as the command-line text pflag would parse. */
  readonly def: string;
  readonly short?: string;
  /** The help text after the flag in usage pages. */
  readonly usage: string;
}

/**
 * The largest number below 2^63. Go's int64s from 2^63 - 512 up round to
 * 2^63 as numbers, which the protobuf writer sends as -2^63: a revision or
 * TTL of 2^63 - 1 would reach the server as the most negative one.
 */
const int64NumberMax = 2 ** 63 - 1024;

/** An int64 that Go parsed as the number the wire takes: those that round to 2^63 stay below it (as the pb reader keeps them). */
export function int64Number(v: bigint): number {
  return Math.min(Number(v), int64NumberMax);
}

/** An int or uint flag as pflag reads it (strconv base 0, 64 bits): the value, or strconv's error text. */
export function parseGoInt(s: string, signed: boolean): bigint | string {
  const v = parseGoInt64(s, signed);
  return typeof v === 'bigint' ? v : `strconv.${signed ? 'ParseInt' : 'ParseUint'}: parsing ${goQuoteSimple(s)}: ${v}`;
}

export class FlagError extends Error {
  override readonly name = 'FlagError';
}

/** Parsed flag values by name; `changed` lists those given on the command line or by env. */
export class FlagValues {
  private readonly values = new Map<string, string>();
  readonly changed = new Set<string>();

  constructor(private readonly specs: ReadonlyMap<string, FlagSpec>) {
    for (const s of specs.values()) this.values.set(s.name, s.def);
  }

  set(name: string, raw: string): void {
    const spec = this.specs.get(name);
    if (spec === undefined) throw new FlagError(`unknown flag: --${name}`);
    const bad = validate(spec, raw);
    // pflag names a flag with its shorthand, whichever form was typed.
    const source = spec.short !== undefined ? `-${spec.short}, --${name}` : `--${name}`;
    if (bad !== undefined) throw new FlagError(`invalid argument ${goQuoteSimple(raw)} for ${goQuoteSimple(source)} flag: ${bad}`);
    if (spec.kind === 'stringSlice' && this.changed.has(name)) this.values.set(name, `${this.values.get(name) ?? ''},${raw}`);
    else this.values.set(name, raw);
    this.changed.add(name);
  }

  has(name: string): boolean {
    return this.specs.has(name);
  }

  string(name: string): string {
    return this.values.get(name) ?? '';
  }

  bool(name: string): boolean {
    return this.string(name) === 'true' || this.string(name) === '1' || this.string(name) === 't' || this.string(name) === 'T' || this.string(name) === 'TRUE' || this.string(name) === 'True';
  }

  int(name: string): number {
    const v = parseGoInt(this.string(name), true);
    return typeof v === 'bigint' ? int64Number(v) : 0;
  }

  durationMs(name: string): number {
    return parseGoDuration(this.string(name)) ?? 0;
  }

  /** The value as pflag's Value.String() shows it (durations normalised, slices bracketed). */
  display(name: string): string {
    switch (this.specs.get(name)?.kind) {
      case 'bool':
        return String(this.bool(name));
      case 'int':
      case 'uint': {
        const v = parseGoInt(this.string(name), this.specs.get(name)?.kind === 'int');
        return typeof v === 'bigint' ? String(v) : this.string(name);
      }
      case 'duration':
        return goDuration(BigInt(Math.round(this.durationMs(name) * 1e6)));
      case 'stringSlice':
        return `[${this.stringSlice(name).join(',')}]`;
      default:
        return this.string(name);
    }
  }

  stringSlice(name: string): string[] {
    const v = this.string(name);
    return v === '' ? [] : v.split(',');
  }
}

function goQuoteSimple(s: string): string {
  return JSON.stringify(s);
}

const boolTexts = new Set(['1', 't', 'T', 'true', 'TRUE', 'True', '0', 'f', 'F', 'false', 'FALSE', 'False']);

function validate(spec: FlagSpec, raw: string): string | undefined {
  switch (spec.kind) {
    case 'bool':
      return boolTexts.has(raw) ? undefined : `strconv.ParseBool: parsing ${goQuoteSimple(raw)}: invalid syntax`;
    case 'int':
    case 'uint': {
      const v = parseGoInt(raw, spec.kind === 'int');
      return typeof v === 'string' ? v : undefined;
    }
    case 'duration':
      return parseGoDuration(raw) === undefined ? `time: invalid duration ${goQuoteSimple(raw)}` : undefined;
    case 'string':
    case 'stringSlice':
      return undefined;
  }
}

/**
 * Parses args against specs: returns the positional arguments (in order) and
 * whether `--` was seen (with the index in positionals where it was).
 */
export function parseFlags(args: readonly string[], specList: readonly FlagSpec[]): { values: FlagValues; positional: string[]; dashAt: number } {
  const specs = new Map(specList.map((s) => [s.name, s]));
  const shorts = new Map(specList.filter((s) => s.short !== undefined).map((s) => [s.short ?? '', s]));
  const values = new FlagValues(specs);
  const positional: string[] = [];
  let dashAt = -1;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') {
      dashAt = positional.length;
      positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = specs.get(name);
      if (spec === undefined) throw new FlagError(`unknown flag: --${name}`);
      if (eq >= 0) values.set(name, a.slice(eq + 1));
      else if (spec.kind === 'bool') values.set(name, 'true');
      else {
        if (i + 1 >= args.length) throw new FlagError(`flag needs an argument: --${name}`);
        values.set(name, args[++i] ?? '');
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // A run of shorthands: -iw json, -wjson.
      for (let j = 1; j < a.length; j++) {
        const c = a[j] ?? '';
        const spec = shorts.get(c);
        if (spec === undefined) throw new FlagError(`unknown shorthand flag: '${c}' in ${a}`);
        if (spec.kind === 'bool') {
          if (a[j + 1] === '=') {
            values.set(spec.name, a.slice(j + 2));
            break;
          }
          values.set(spec.name, 'true');
          continue;
        }
        let v = a.slice(j + 1);
        if (v.startsWith('=')) v = v.slice(1);
        else if (v === '') {
          if (i + 1 >= args.length) throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
          v = args[++i] ?? '';
        }
        values.set(spec.name, v);
        break;
      }
      continue;
    }
    positional.push(a);
  }
  return { values, positional, dashAt };
}

/** ETCDCTL_FOO_BAR for flag foo-bar. */
export function envName(flag: string): string {
  return `ETCDCTL_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Sets every listed flag not given on the command line from its ETCDCTL_ variable. */
export function applyEnv(values: FlagValues, names: readonly string[], env: Readonly<Record<string, string | undefined>>): void {
  for (const name of names) {
    if (values.changed.has(name)) continue;
    const v = env[envName(name)];
    if (v === undefined || v === '') continue;
    try {
      values.set(name, v);
    } catch {
      // etcdctl ignores an environment value it cannot parse.
    }
  }
}
