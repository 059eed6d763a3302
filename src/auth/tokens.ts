/**
 * Token providers: what a client's token means. Tokens are minted in apply
 * (InternalAuthenticateRequest, after the API layer checked the password),
 * so every member knows every simple token, and resolved locally on the
 * member a request arrives at. Nothing here is persisted: a restarted member
 * knows no simple tokens and its clients authenticate again, as with etcd.
 */
import { randomBytes } from 'node:crypto';
import { assert, type Clock } from '../base/index.js';
import { AuthError } from './errors.js';

/** Who a request runs as, and the auth revision its permission check is made against. */
export interface AuthInfo {
  readonly username: string;
  readonly revision: number;
}

/** What apply knows when it assigns a token. */
export interface AssignContext {
  /** The raft index of the InternalAuthenticateRequest entry. */
  readonly index: number;
  /** The proposer's genTokenPrefix() (InternalAuthenticateRequest.simple_token). */
  readonly simpleTokenPrefix: string;
}

export interface TokenProvider {
  readonly kind: 'simple' | 'jwt' | 'none';
  enable(): void;
  disable(): void;
  /** Forgets a deleted user's tokens, or those issued before a password change. */
  invalidateUser(username: string): void;
  /** A fresh random prefix for a simple token; '' for the other kinds. Called by the proposer. */
  genTokenPrefix(): string;
  /** Mints the token for an authenticated user; called in apply on every member. */
  assign(username: string, revision: number, ctx: AssignContext): string;
  /** The user a token stands for, or undefined when it is unknown, expired or forged. */
  info(token: string, currentRevision: number): AuthInfo | undefined;
  /**
   * The raft index a simple token was minted at: the caller must wait until
   * this member has applied it before info() can know the token (bounded by
   * the request deadline). undefined for other kinds or malformed tokens.
   */
  waitIndex(token: string): number | undefined;
}

/** No token type configured (`--auth-token ''`): nothing authenticates by token. */
export class NopTokenProvider implements TokenProvider {
  readonly kind = 'none';
  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}
  genTokenPrefix(): string {
    return '';
  }
  assign(): string {
    throw new AuthError('AuthFailed');
  }
  info(): AuthInfo | undefined {
    return undefined;
  }
  waitIndex(): number | undefined {
    return undefined;
  }
}

const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const simpleTokenPrefixLength = 16;
const simplePrefixRe = /^[A-Za-z]{16}$/;
const simpleTokenRe = /^([A-Za-z]{16})\.(\d{1,16})$/;

/** 16 letters from the OS CSPRNG, unbiased (bytes >= 208 are redrawn: 208 = 4 * 52). */
export function randomSimpleTokenPrefix(): string {
  let out = '';
  while (out.length < simpleTokenPrefixLength) {
    for (const b of randomBytes(32)) {
      if (b < 208 && out.length < simpleTokenPrefixLength) out += letters[b % 52];
    }
  }
  return out;
}

export interface SimpleTokenOptions {
  readonly clock: Clock;
  /** `--auth-token-ttl` in ms; etcd's default is 300 s. */
  readonly ttlMs?: number;
  /** Bound on live tokens; the oldest minted is dropped first beyond it. */
  readonly tokensMax?: number;
}

interface SimpleEntry {
  readonly username: string;
  expiresAtMs: number;
}

/** Expired tokens are swept at most this often, when a token is minted. */
const sweepIntervalMs = 1000;

/**
 * etcd's `simple` tokens: `<16 random letters>.<raft index>`, unsigned and
 * stateful. A token lives ttlMs after it was minted or last used ON THIS
 * member (expiry is local, by the injected clock, as etcd's TTL keeper).
 */
export class SimpleTokenProvider implements TokenProvider {
  readonly kind = 'simple';
  private readonly tokens = new Map<string, SimpleEntry>();
  private enabled = false;
  private lastSweepMs = -Infinity;
  private readonly clock: Clock;
  readonly ttlMs: number;
  private readonly tokensMax: number;

  constructor(opts: SimpleTokenOptions) {
    this.clock = opts.clock;
    // etcd: a TTL of 0 or less means the default.
    this.ttlMs = opts.ttlMs !== undefined && opts.ttlMs > 0 ? opts.ttlMs : 300_000;
    this.tokensMax = opts.tokensMax ?? 1 << 20;
    assert(this.tokensMax > 0, 'tokensMax must be positive');
  }

  enable(): void {
    this.enabled = true;
  }

  disable(): void {
    this.enabled = false;
    this.tokens.clear();
  }

  get size(): number {
    return this.tokens.size;
  }

  invalidateUser(username: string): void {
    for (const [token, e] of this.tokens) if (e.username === username) this.tokens.delete(token);
  }

  genTokenPrefix(): string {
    return randomSimpleTokenPrefix();
  }

  assign(username: string, _revision: number, ctx: AssignContext): string {
    // A proposer configured for another token kind sends no prefix; a token
    // ".<index>" would be guessable, so none is minted.
    if (!simplePrefixRe.test(ctx.simpleTokenPrefix)) throw new AuthError('AuthFailed');
    assert(Number.isSafeInteger(ctx.index) && ctx.index > 0, `bad index for a simple token: ${ctx.index}`);
    const token = `${ctx.simpleTokenPrefix}.${ctx.index}`;
    if (!this.enabled) return token;
    assert(!this.tokens.has(token), 'simple token minted twice (an entry applied twice?)');
    const now = this.clock.nowMs();
    this.sweep(now);
    while (this.tokens.size >= this.tokensMax) {
      const oldest = this.tokens.keys().next();
      if (oldest.done === true) break;
      this.tokens.delete(oldest.value);
    }
    this.tokens.set(token, { username, expiresAtMs: now + this.ttlMs });
    return token;
  }

  info(token: string, currentRevision: number): AuthInfo | undefined {
    if (!simpleTokenRe.test(token)) return undefined;
    const e = this.tokens.get(token);
    if (e === undefined) return undefined;
    const now = this.clock.nowMs();
    if (now > e.expiresAtMs) {
      this.tokens.delete(token);
      return undefined;
    }
    e.expiresAtMs = now + this.ttlMs;
    // A simple token runs at the member's current auth revision (etcd does the same).
    return { username: e.username, revision: currentRevision };
  }

  waitIndex(token: string): number | undefined {
    const m = simpleTokenRe.exec(token);
    if (m === null) return undefined;
    const index = Number(m[2]);
    return Number.isSafeInteger(index) ? index : undefined;
  }

  /** Drops expired tokens; bounded by the map's size, run at most once a second. */
  private sweep(now: number): void {
    if (now - this.lastSweepMs < sweepIntervalMs) return;
    this.lastSweepMs = now;
    for (const [token, e] of this.tokens) if (now > e.expiresAtMs) this.tokens.delete(token);
  }
}
