import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ManualClock } from '../base/index.js';
import {
  AuthError,
  JwtTokenProvider,
  NopTokenProvider,
  SimpleTokenProvider,
  newTokenProvider,
  parseAuthTokenOption,
  parseGoDurationMs,
  randomSimpleTokenPrefix,
  type AuthErrorCode,
  type JwtSignMethod,
} from './index.js';

function throwsCode(fn: () => unknown, code: AuthErrorCode): void {
  assert.throws(fn, (err: unknown) => err instanceof AuthError && err.code === code);
}

const ctx = (index: number, prefix = 'abcdefghijklmnop'): { index: number; simpleTokenPrefix: string } => ({ index, simpleTokenPrefix: prefix });

test('simple token prefixes: 16 letters from the CSPRNG', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = randomSimpleTokenPrefix();
    assert.match(p, /^[A-Za-z]{16}$/);
    seen.add(p);
  }
  assert.equal(seen.size, 200);
  assert.equal(new SimpleTokenProvider({ clock: new ManualClock() }).genTokenPrefix().length, 16);
});

test('simple tokens: <prefix>.<index>, expire after the TTL, refreshed on use', () => {
  const clock = new ManualClock();
  const p = new SimpleTokenProvider({ clock, ttlMs: 300_000 });
  p.enable();
  const t = p.assign('alice', 5, ctx(42));
  assert.equal(t, 'abcdefghijklmnop.42');
  assert.equal(p.waitIndex(t), 42);
  clock.advance(299_000);
  assert.deepEqual(p.info(t, 9), { username: 'alice', revision: 9 }, 'a simple token runs at the current revision');
  clock.advance(299_000);
  assert.deepEqual(p.info(t, 9)?.username, 'alice', 'the use above refreshed it');
  clock.advance(300_001);
  assert.equal(p.info(t, 9), undefined, 'expired');
  assert.equal(p.size, 0);
});

test('simple tokens: unknown, malformed, other users, disable', () => {
  const clock = new ManualClock();
  const p = new SimpleTokenProvider({ clock });
  assert.equal(p.ttlMs, 300_000, "etcd's default TTL");
  p.enable();
  const a = p.assign('alice', 1, ctx(1));
  const b = p.assign('bob', 1, ctx(2));
  for (const bad of ['', 'abcdefghijklmnop', 'abcdefghijklmnop.', 'abcdefghijklmnop.x', 'abc.1', 'abcdefghijklmnop.1.2', 'abcdefghijklmnop.3']) {
    assert.equal(p.info(bad, 1), undefined, bad);
  }
  assert.equal(p.waitIndex('nonsense'), undefined);
  p.invalidateUser('alice');
  assert.equal(p.info(a, 1), undefined);
  assert.equal(p.info(b, 1)?.username, 'bob');
  p.disable();
  assert.equal(p.info(b, 1), undefined);
  // Disabled: the token is answered but not recorded (etcd does the same).
  assert.equal(p.assign('bob', 1, ctx(3)), 'abcdefghijklmnop.3');
  assert.equal(p.size, 0);
  p.enable();
  throwsCode(() => p.assign('bob', 1, ctx(4, '')), 'AuthFailed');
  throwsCode(() => p.assign('bob', 1, ctx(4, 'short')), 'AuthFailed');
});

test('simple tokens: expired tokens are swept when new ones are minted; the count is bounded', () => {
  const clock = new ManualClock();
  const p = new SimpleTokenProvider({ clock, ttlMs: 1000, tokensMax: 3 });
  p.enable();
  for (let i = 1; i <= 3; i++) p.assign('u', 1, ctx(i));
  clock.advance(2000);
  p.assign('u', 1, ctx(4));
  assert.equal(p.size, 1, 'the three expired tokens were swept');
  for (let i = 5; i <= 9; i++) p.assign('u', 1, ctx(i));
  assert.equal(p.size, 3);
  assert.equal(p.info('abcdefghijklmnop.5', 1), undefined, 'the oldest were dropped');
  assert.equal(p.info('abcdefghijklmnop.9', 1)?.username, 'u');
});

test('nop provider: no token authenticates', () => {
  const p = new NopTokenProvider();
  throwsCode(() => p.assign(), 'AuthFailed');
  assert.equal(p.info(), undefined);
  assert.equal(p.genTokenPrefix(), '');
});

function decodePart(token: string, i: number): unknown {
  return JSON.parse(Buffer.from(token.split('.')[i] ?? '', 'base64url').toString('utf8'));
}

function keysFor(method: JwtSignMethod): { privateKey: KeyObject; publicKey: KeyObject } {
  if (method.startsWith('RS') || method.startsWith('PS')) return generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (method === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  if (method === 'ES384') return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  if (method === 'ES512') return generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
  return generateKeyPairSync('ed25519');
}

test('jwt: sign and verify with RS256, PS256, ES256, ES512, EdDSA and HS256; etcd claims', () => {
  const clock = new ManualClock(0, 1_700_000_000_000);
  for (const method of ['RS256', 'PS256', 'ES256', 'ES512', 'EdDSA'] as const) {
    const keys = keysFor(method);
    const p = new JwtTokenProvider({ signMethod: method, ttlMs: 300_000, ...keys }, clock);
    const t = p.assign('alice', 7);
    assert.deepEqual(decodePart(t, 0), { alg: method, typ: 'JWT' });
    assert.deepEqual(decodePart(t, 1), { exp: 1_700_000_300, revision: 7, username: 'alice' });
    assert.deepEqual(p.info(t), { username: 'alice', revision: 7 }, method);
    // A member holding only the public key verifies but cannot mint.
    const verifier = new JwtTokenProvider({ signMethod: method, ttlMs: 300_000, publicKey: keys.publicKey }, clock);
    assert.equal(verifier.verifyOnly, true);
    assert.deepEqual(verifier.info(t), { username: 'alice', revision: 7 });
    throwsCode(() => verifier.assign('alice', 7), 'VerifyOnly');
    // Another key pair's token is forged.
    const other = new JwtTokenProvider({ signMethod: method, ttlMs: 300_000, ...keysFor(method) }, clock);
    assert.equal(p.info(other.assign('alice', 7)), undefined, `${method}: foreign key`);
  }
  const secret = Buffer.from('shared secret');
  const h = new JwtTokenProvider({ signMethod: 'HS256', ttlMs: 60_000, secret }, clock);
  assert.deepEqual(h.info(h.assign('bob', 3)), { username: 'bob', revision: 3 });
  const h2 = new JwtTokenProvider({ signMethod: 'HS256', ttlMs: 60_000, secret: Buffer.from('other') }, clock);
  assert.equal(h.info(h2.assign('bob', 3)), undefined);
});

test('jwt: expiry, tampering, algorithm confusion, missing claims are invalid, never a crash', () => {
  const clock = new ManualClock(0, 1_700_000_000_000);
  const keys = keysFor('RS256');
  const p = new JwtTokenProvider({ signMethod: 'RS256', ttlMs: 60_000, ...keys }, clock);
  const t = p.assign('alice', 7);
  clock.advance(60_999);
  assert.equal(p.info(t)?.username, 'alice', 'valid through its exp second');
  clock.advance(1_000);
  assert.equal(p.info(t), undefined, 'expired');
  // Hand-made tokens signed with the right key but odd claims (PR #15676).
  const mint = (header: object, claims: object): string => {
    const h = Buffer.from(JSON.stringify(header)).toString('base64url');
    const c = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const signer = new JwtTokenProvider({ signMethod: 'RS256', ttlMs: 1, ...keys }, clock);
    // Reuse the provider's signature path by minting a token with the same header and swapping claims.
    const sig = (signer as unknown as { signBytes(d: Buffer, k: KeyObject): Buffer }).signBytes(Buffer.from(`${h}.${c}`), keys.privateKey);
    return `${h}.${c}.${sig.toString('base64url')}`;
  };
  const now = Math.floor(clock.wallMs() / 1000);
  const hdr = { alg: 'RS256', typ: 'JWT' };
  assert.deepEqual(p.info(mint(hdr, { username: 'x', revision: 2, exp: now + 10 })), { username: 'x', revision: 2 }, 'an externally minted token');
  assert.deepEqual(p.info(mint(hdr, { username: 'x', revision: 2 })), { username: 'x', revision: 2 }, 'exp is optional, as in jwt-go');
  assert.equal(p.info(mint(hdr, { revision: 2, exp: now + 10 })), undefined, 'no username');
  assert.equal(p.info(mint(hdr, { username: 'x', exp: now + 10 })), undefined, 'no revision');
  assert.equal(p.info(mint(hdr, { username: 7, revision: 2 })), undefined, 'username not a string');
  assert.equal(p.info(mint(hdr, { username: 'x', revision: '2' })), undefined, 'revision not a number');
  assert.equal(p.info(mint(hdr, { username: 'x', revision: -1 })), undefined, 'negative revision');
  assert.equal(p.info(mint(hdr, { username: 'x', revision: 2, exp: 'soon' })), undefined, 'exp not a number');
  assert.equal(p.info(mint(hdr, { username: 'x', revision: 2, nbf: now + 100 })), undefined, 'not yet valid');
  assert.equal(p.info(mint({ alg: 'RS512', typ: 'JWT' }, { username: 'x', revision: 2 })), undefined, 'other alg in header');
  assert.equal(p.info(mint({ alg: 'none' }, { username: 'x', revision: 2 })), undefined, 'alg none');
  const good = mint(hdr, { username: 'x', revision: 2 });
  const [h, c, s] = good.split('.') as [string, string, string];
  const evil = Buffer.from(JSON.stringify({ username: 'root', revision: 2 })).toString('base64url');
  assert.equal(p.info(`${h}.${evil}.${s}`), undefined, 'tampered claims');
  for (const junk of ['', 'a.b', 'a.b.c', `${h}.${c}`, `${h}.${c}.${s}.x`, `${h}.${c}.!!!`, 'x'.repeat(20_000), `${h}.e30.`]) {
    assert.equal(p.info(junk), undefined, `junk: ${junk.slice(0, 20)}`);
  }
  // HS256 with a public RSA key's bytes as the secret (algorithm confusion) is refused by the alg check.
  const hmac = createHmac('sha256', keys.publicKey.export({ type: 'spki', format: 'pem' })).update(`${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${c}`).digest('base64url');
  assert.equal(p.info(`${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${c}.${hmac}`), undefined);
});

test('jwt: key checks at construction', () => {
  const clock = new ManualClock();
  const rsa = keysFor('RS256');
  throwsCode(() => new JwtTokenProvider({ signMethod: 'RS256', ttlMs: 1000 }, clock), 'MissingKey');
  throwsCode(() => new JwtTokenProvider({ signMethod: 'HS256', ttlMs: 1000 }, clock), 'MissingKey');
  throwsCode(() => new JwtTokenProvider({ signMethod: 'RS256', ttlMs: 1000, privateKey: rsa.privateKey, publicKey: keysFor('RS256').publicKey }, clock), 'KeyMismatch');
  throwsCode(() => new JwtTokenProvider({ signMethod: 'ES256', ttlMs: 1000, ...rsa }, clock), 'InvalidAuthOpts');
  throwsCode(() => new JwtTokenProvider({ signMethod: 'ES256', ttlMs: 1000, ...keysFor('ES384') }, clock), 'InvalidAuthOpts');
});

test('Go durations', () => {
  const cases: [string, number | undefined][] = [
    ['5m', 300_000], ['1h30m', 5_400_000], ['1.5s', 1500], ['100ms', 100], ['0', 0], ['-2s', -2000], ['+3s', 3000],
    ['1.s', 1000], ['.5s', 500], ['1us', 0.001], ['', undefined], ['5', undefined], ['5x', undefined], ['.s', undefined], ['5m3', undefined],
  ];
  for (const [text, ms] of cases) assert.equal(parseGoDurationMs(text), ms, text);
});

test('--auth-token parsing, as etcd', () => {
  assert.deepEqual(parseAuthTokenOption('simple'), { kind: 'simple' });
  assert.deepEqual(parseAuthTokenOption(''), { kind: 'none' });
  assert.deepEqual(parseAuthTokenOption('jwt,pub-key=/p,priv-key=/k,sign-method=RS256,ttl=10m,extra=1'), {
    kind: 'jwt', signMethod: 'RS256', ttlMs: 600_000, publicKeyPath: '/p', privateKeyPath: '/k', unknownOptions: ['extra'],
  });
  const jwt = parseAuthTokenOption('jwt,sign-method=ES256,priv-key=/k');
  assert.equal(jwt.kind === 'jwt' && jwt.ttlMs, 300_000, 'ttl defaults to 5m');
  throwsCode(() => parseAuthTokenOption('bogus'), 'InvalidAuthOpts');
  throwsCode(() => parseAuthTokenOption('jwt,sign-method'), 'InvalidAuthOpts');
  throwsCode(() => parseAuthTokenOption('jwt,a=b=c'), 'InvalidAuthOpts');
  throwsCode(() => parseAuthTokenOption('jwt,ttl=1m,ttl=2m,sign-method=RS256'), 'InvalidAuthOpts');
  throwsCode(() => parseAuthTokenOption('jwt,priv-key=/k'), 'InvalidAuthMethod');
  throwsCode(() => parseAuthTokenOption('jwt,sign-method=none,priv-key=/k'), 'InvalidAuthMethod');
  throwsCode(() => parseAuthTokenOption('jwt,sign-method=RS256,ttl=soon'), 'InvalidAuthOpts');
});

test('newTokenProvider reads PEM key files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-jwt-'));
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'secret'), 'hmac secret');
    writeFileSync(join(dir, 'junk.pem'), 'not a key');
    const clock = new ManualClock();
    const p = newTokenProvider(`jwt,pub-key=${dir}/pub.pem,priv-key=${dir}/priv.pem,sign-method=ES256,ttl=1m`, { clock });
    assert.equal(p.kind, 'jwt');
    assert.equal(p.info(p.assign('u', 4, { index: 1, simpleTokenPrefix: '' }), 4)?.revision, 4);
    const hs = newTokenProvider(`jwt,priv-key=${dir}/secret,sign-method=HS512`, { clock });
    assert.equal(hs.info(hs.assign('u', 4, { index: 1, simpleTokenPrefix: '' }), 4)?.username, 'u');
    throwsCode(() => newTokenProvider(`jwt,priv-key=${dir}/junk.pem,sign-method=ES256`, { clock }), 'InvalidAuthOpts');
    throwsCode(() => newTokenProvider(`jwt,priv-key=${dir}/missing.pem,sign-method=ES256`, { clock }), 'InvalidAuthOpts');
    throwsCode(() => newTokenProvider('jwt,sign-method=ES256', { clock }), 'MissingKey');
    assert.equal(newTokenProvider('simple', { clock, simpleTtlMs: 1000 }).kind, 'simple');
    assert.equal(newTokenProvider('', { clock }).kind, 'none');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
