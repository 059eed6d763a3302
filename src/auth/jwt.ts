/**
 * etcd's `jwt` tokens: JWS compact tokens signed with node:crypto, claims
 * {exp, revision, username} as etcd writes them (header {"alg","typ":"JWT"}).
 * Tokens minted elsewhere with the same key are accepted too, as in etcd.
 * A token that fails to parse, is signed with another algorithm or key, is
 * expired or not yet valid, or lacks a string `username` or a numeric
 * `revision` is invalid: never an exception (etcd PR #15676).
 */
import { constants, createHmac, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { Clock } from '../base/index.js';
import { AuthError } from './errors.js';
import type { AuthInfo, TokenProvider } from './tokens.js';

export const jwtSignMethods = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'EdDSA',
] as const;
export type JwtSignMethod = (typeof jwtSignMethods)[number];

export function isJwtSignMethod(s: string): s is JwtSignMethod {
  return (jwtSignMethods as readonly string[]).includes(s);
}

type Family = 'rsa' | 'pss' | 'ec' | 'hmac' | 'eddsa';

interface MethodInfo {
  readonly family: Family;
  /** node:crypto digest name; null for EdDSA, which hashes internally. */
  readonly hash: string | null;
  /** The curve an ES method requires (node's namedCurve). */
  readonly curve?: string;
}

const methodInfo: Readonly<Record<JwtSignMethod, MethodInfo>> = {
  RS256: { family: 'rsa', hash: 'sha256' },
  RS384: { family: 'rsa', hash: 'sha384' },
  RS512: { family: 'rsa', hash: 'sha512' },
  PS256: { family: 'pss', hash: 'sha256' },
  PS384: { family: 'pss', hash: 'sha384' },
  PS512: { family: 'pss', hash: 'sha512' },
  ES256: { family: 'ec', hash: 'sha256', curve: 'prime256v1' },
  ES384: { family: 'ec', hash: 'sha384', curve: 'secp384r1' },
  ES512: { family: 'ec', hash: 'sha512', curve: 'secp521r1' },
  HS256: { family: 'hmac', hash: 'sha256' },
  HS384: { family: 'hmac', hash: 'sha384' },
  HS512: { family: 'hmac', hash: 'sha512' },
  EdDSA: { family: 'eddsa', hash: null },
};

export interface JwtKeyOptions {
  readonly signMethod: JwtSignMethod;
  /** Token lifetime; etcd's default is 5 minutes. */
  readonly ttlMs: number;
  readonly privateKey?: KeyObject;
  readonly publicKey?: KeyObject;
  /** The HMAC secret (etcd reads it from the priv-key file). */
  readonly secret?: Uint8Array;
}

/** A token longer than this is not parsed at all. */
export const jwtTokenBytesMax = 16 * 1024;
/** Verified tokens remembered so a hot client costs one signature check; cleared when full. */
const verifiedCacheMax = 1024;
/** Only tokens up to this size are remembered (etcd's own are ~300-800 bytes), bounding the cache's memory. */
const verifiedCacheTokenBytesMax = 2048;

function keyTypeFits(info: MethodInfo, key: KeyObject): boolean {
  const t = key.asymmetricKeyType;
  switch (info.family) {
    case 'rsa':
      return t === 'rsa';
    case 'pss':
      return t === 'rsa' || t === 'rsa-pss';
    case 'ec':
      return t === 'ec' && key.asymmetricKeyDetails?.namedCurve === info.curve;
    case 'eddsa':
      return t === 'ed25519';
    case 'hmac':
      return false;
  }
}

/** The public half's DER, to tell whether a private and a public key belong together. */
function spki(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

function b64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url');
}

const segmentRe = /^[A-Za-z0-9_-]*$/;

function parseJsonSegment(seg: string): Record<string, unknown> | undefined {
  if (!segmentRe.test(seg)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

interface VerifiedClaims {
  readonly username: string;
  readonly revision: number;
  readonly expSec: number | undefined;
  readonly nbfSec: number | undefined;
}

/** Reads the time claims as jwt-go does: absent (or 0 for exp) means unchecked; a non-number is invalid. */
function timeClaim(claims: Record<string, unknown>, name: string): number | undefined | null {
  const v = claims[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  return v;
}

function readClaims(claims: Record<string, unknown>): VerifiedClaims | undefined {
  const username = claims['username'];
  const revision = claims['revision'];
  if (typeof username !== 'string') return undefined;
  if (typeof revision !== 'number' || !Number.isFinite(revision) || revision < 0) return undefined;
  const exp = timeClaim(claims, 'exp');
  const nbf = timeClaim(claims, 'nbf');
  if (exp === null || nbf === null) return undefined;
  return { username, revision: Math.floor(revision), expSec: exp === 0 ? undefined : exp, nbfSec: nbf };
}

export class JwtTokenProvider implements TokenProvider {
  readonly kind = 'jwt';
  private readonly info_: MethodInfo;
  private readonly signKey: KeyObject | Uint8Array | undefined;
  private readonly verifyKey: KeyObject | Uint8Array;
  private readonly headerSegment: string;
  private readonly verified = new Map<string, VerifiedClaims>();

  /** Throws AuthError MissingKey / KeyMismatch / InvalidAuthOpts for keys that cannot serve the method. */
  constructor(
    readonly options: JwtKeyOptions,
    private readonly clock: Clock,
  ) {
    const info = methodInfo[options.signMethod];
    this.info_ = info;
    this.headerSegment = b64url(JSON.stringify({ alg: options.signMethod, typ: 'JWT' }));
    if (info.family === 'hmac') {
      if (options.secret === undefined || options.secret.length === 0) throw new AuthError('MissingKey');
      this.signKey = options.secret;
      this.verifyKey = options.secret;
      return;
    }
    const { privateKey, publicKey } = options;
    if (privateKey === undefined && publicKey === undefined) throw new AuthError('MissingKey');
    for (const k of [privateKey, publicKey]) {
      if (k !== undefined && !keyTypeFits(info, k)) {
        throw new AuthError('InvalidAuthOpts', `key type ${k.asymmetricKeyType ?? k.type} does not fit ${options.signMethod}`);
      }
    }
    if (privateKey !== undefined && publicKey !== undefined && !spki(privateKey).equals(spki(publicKey))) {
      throw new AuthError('KeyMismatch');
    }
    this.signKey = privateKey;
    this.verifyKey = publicKey ?? (privateKey as KeyObject);
  }

  /** With only a public key, this member verifies tokens but cannot mint them. */
  get verifyOnly(): boolean {
    return this.signKey === undefined;
  }

  enable(): void {}

  disable(): void {
    this.verified.clear();
  }

  invalidateUser(): void {
    // A JWT stays valid until it expires; its revision goes stale instead.
  }

  genTokenPrefix(): string {
    return '';
  }

  assign(username: string, revision: number): string {
    if (this.signKey === undefined) throw new AuthError('VerifyOnly');
    const expSec = Math.floor((this.clock.wallMs() + this.options.ttlMs) / 1000);
    // Keys in etcd's order (Go marshals a map sorted by key).
    const payload = b64url(JSON.stringify({ exp: expSec, revision, username }));
    const signingInput = `${this.headerSegment}.${payload}`;
    return `${signingInput}.${b64url(this.signBytes(Buffer.from(signingInput), this.signKey))}`;
  }

  info(token: string): AuthInfo | undefined {
    if (token.length > jwtTokenBytesMax) return undefined;
    let claims = this.verified.get(token);
    if (claims === undefined) {
      claims = this.verifyToken(token);
      if (claims === undefined) return undefined;
      if (token.length <= verifiedCacheTokenBytesMax) {
        if (this.verified.size >= verifiedCacheMax) this.verified.clear();
        this.verified.set(token, claims);
      }
    }
    const nowSec = Math.floor(this.clock.wallMs() / 1000);
    if (claims.expSec !== undefined && nowSec > claims.expSec) {
      this.verified.delete(token);
      return undefined;
    }
    if (claims.nbfSec !== undefined && nowSec < claims.nbfSec) return undefined;
    return { username: claims.username, revision: claims.revision };
  }

  waitIndex(): number | undefined {
    return undefined;
  }

  private verifyToken(token: string): VerifiedClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [h, p, s] = parts as [string, string, string];
    const header = parseJsonSegment(h);
    if (header === undefined || header['alg'] !== this.options.signMethod) return undefined;
    if (!segmentRe.test(s)) return undefined;
    if (!this.verifyBytes(Buffer.from(`${h}.${p}`), Buffer.from(s, 'base64url'))) return undefined;
    const claims = parseJsonSegment(p);
    return claims === undefined ? undefined : readClaims(claims);
  }

  private signBytes(data: Buffer, key: KeyObject | Uint8Array): Buffer {
    const info = this.info_;
    switch (info.family) {
      case 'hmac':
        return createHmac(info.hash as string, key).update(data).digest();
      case 'rsa':
        return sign(info.hash, data, key as KeyObject);
      case 'pss':
        return sign(info.hash, data, {
          key: key as KeyObject,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        });
      case 'ec':
        return sign(info.hash, data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
      case 'eddsa':
        return sign(null, data, key as KeyObject);
    }
  }

  private verifyBytes(data: Buffer, sig: Buffer): boolean {
    const info = this.info_;
    const key = this.verifyKey;
    try {
      switch (info.family) {
        case 'hmac': {
          const want = createHmac(info.hash as string, key).update(data).digest();
          return want.length === sig.length && timingSafeEqual(want, sig);
        }
        case 'rsa':
          return verify(info.hash, data, key as KeyObject, sig);
        case 'pss':
          return verify(info.hash, data, {
            key: key as KeyObject,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_AUTO,
          }, sig);
        case 'ec':
          return verify(info.hash, data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' }, sig);
        case 'eddsa':
          return verify(null, data, key as KeyObject, sig);
      }
    } catch {
      // A signature of the wrong shape for the key is a forged token, not a crash.
      return false;
    }
  }
}
