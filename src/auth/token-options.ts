/**
 * The `--auth-token` option, parsed as etcd parses it:
 *
 *   simple
 *   jwt,pub-key=<pem file>,priv-key=<pem file>,sign-method=RS256,ttl=5m
 *   ''                          (no token provider)
 *
 * The first comma-separated field is the type; every other field must be
 * exactly one `name=value` pair, each name at most once. For jwt,
 * sign-method is required, ttl is a Go duration (default 5m), and at least
 * one key: the private key signs (and verifies), a public key alone makes a
 * verify-only member. For HS* methods priv-key names the file holding the
 * shared secret. Unknown jwt option names are reported, not fatal.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Clock, Logger } from '../base/index.js';
import { nopLogger } from '../base/index.js';
import { AuthError } from './errors.js';
import { isJwtSignMethod, JwtTokenProvider, type JwtSignMethod } from './jwt.js';
import { NopTokenProvider, SimpleTokenProvider, type TokenProvider } from './tokens.js';

export type AuthTokenConfig =
  | { readonly kind: 'none' }
  | { readonly kind: 'simple' }
  | {
      readonly kind: 'jwt';
      readonly signMethod: JwtSignMethod;
      readonly ttlMs: number;
      readonly publicKeyPath: string | undefined;
      readonly privateKeyPath: string | undefined;
      readonly unknownOptions: readonly string[];
    };

export const jwtDefaultTtlMs = 5 * 60 * 1000;
const knownJwtOptions = new Set(['sign-method', 'pub-key', 'priv-key', 'ttl']);

const goUnitMs: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};

/**
 * A Go time.ParseDuration string ("5m", "1h30m", "1.5s", "-2s", "0") in
 * milliseconds; undefined when Go would reject it.
 */
export function parseGoDurationMs(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s.startsWith('-')) sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let totalMs = 0;
  const segment = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;
  for (let guard = 0; s !== '' && guard < 64; guard++) {
    const m = segment.exec(s);
    if (m === null) return undefined;
    const [all, whole = '', frac, unit = ''] = m;
    if (whole === '' && (frac === undefined || frac === '')) return undefined;
    const unitMs = goUnitMs[unit];
    if (unitMs === undefined) return undefined;
    totalMs += Number(`${whole === '' ? '0' : whole}.${frac ?? ''}0`) * unitMs;
    s = s.slice(all.length);
  }
  return s === '' ? sign * totalMs : undefined;
}

/** Splits `type,k=v,...` as etcd's decomposeOpts; throws AuthError InvalidAuthOpts. */
function decompose(option: string): { type: string; opts: Map<string, string> } {
  const fields = option.split(',');
  const opts = new Map<string, string>();
  for (const field of fields.slice(1)) {
    const pair = field.split('=');
    if (pair.length !== 2) throw new AuthError('InvalidAuthOpts', `not a name=value pair: "${field}"`);
    const [name, value] = pair as [string, string];
    if (opts.has(name)) throw new AuthError('InvalidAuthOpts', `duplicated parameter "${name}"`);
    opts.set(name, value);
  }
  return { type: fields[0] ?? '', opts };
}

export function parseAuthTokenOption(option: string): AuthTokenConfig {
  const { type, opts } = decompose(option);
  switch (type) {
    case '':
      return { kind: 'none' };
    case 'simple':
      return { kind: 'simple' };
    case 'jwt':
      break;
    default:
      throw new AuthError('InvalidAuthOpts', `unknown token type "${type}"`);
  }
  const ttlText = opts.get('ttl') ?? '';
  const ttlMs = ttlText === '' ? jwtDefaultTtlMs : parseGoDurationMs(ttlText);
  if (ttlMs === undefined || ttlMs <= 0) throw new AuthError('InvalidAuthOpts', `bad ttl "${ttlText}"`);
  const method = opts.get('sign-method') ?? '';
  if (!isJwtSignMethod(method)) throw new AuthError('InvalidAuthMethod', `"${method}"`);
  const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);
  return {
    kind: 'jwt',
    signMethod: method,
    ttlMs,
    publicKeyPath: nonEmpty(opts.get('pub-key')),
    privateKeyPath: nonEmpty(opts.get('priv-key')),
    unknownOptions: [...opts.keys()].filter((k) => !knownJwtOptions.has(k)).sort(),
  };
}

export interface TokenProviderDeps {
  readonly clock: Clock;
  /** `--auth-token-ttl`, for simple tokens (etcd: 300 s). */
  readonly simpleTtlMs?: number;
  readonly logger?: Logger;
  /** Reads a key file; node:fs by default. */
  readonly readFile?: (path: string) => Uint8Array;
}

function readKeyFile(read: (path: string) => Uint8Array, path: string): Buffer {
  try {
    return Buffer.from(read(path));
  } catch (err) {
    throw new AuthError('InvalidAuthOpts', `cannot read key file ${path}: ${(err as Error).message}`);
  }
}

/** Builds the provider `--auth-token` names. Throws AuthError for a bad option or key. */
export function newTokenProvider(option: string, deps: TokenProviderDeps): TokenProvider {
  const config = parseAuthTokenOption(option);
  const logger = deps.logger ?? nopLogger;
  switch (config.kind) {
    case 'none':
      return new NopTokenProvider();
    case 'simple':
      logger.warn('simple token is not cryptographically signed');
      return new SimpleTokenProvider({ clock: deps.clock, ...(deps.simpleTtlMs === undefined ? {} : { ttlMs: deps.simpleTtlMs }) });
    case 'jwt':
      break;
  }
  if (config.unknownOptions.length > 0) logger.warn('unknown JWT options', { keys: config.unknownOptions });
  const read = deps.readFile ?? ((p: string) => readFileSync(p));
  const priv = config.privateKeyPath === undefined ? undefined : readKeyFile(read, config.privateKeyPath);
  const pub = config.publicKeyPath === undefined ? undefined : readKeyFile(read, config.publicKeyPath);
  if (config.signMethod.startsWith('HS')) {
    return new JwtTokenProvider({ signMethod: config.signMethod, ttlMs: config.ttlMs, ...(priv === undefined ? {} : { secret: priv }) }, deps.clock);
  }
  try {
    return new JwtTokenProvider(
      {
        signMethod: config.signMethod,
        ttlMs: config.ttlMs,
        ...(priv === undefined ? {} : { privateKey: createPrivateKey(priv) }),
        ...(pub === undefined ? {} : { publicKey: createPublicKey(pub) }),
      },
      deps.clock,
    );
  } catch (err) {
    if (err instanceof AuthError) throw err;
    throw new AuthError('InvalidAuthOpts', `cannot parse key: ${(err as Error).message}`);
  }
}
