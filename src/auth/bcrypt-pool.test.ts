import assert from 'node:assert/strict';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { etcdserverpb, serverpb } from '../pb/index.js';
import {
  AuthError,
  AuthStore,
  BcryptPool,
  MemoryAuthBackend,
  normalizeBcryptCost,
  prepareUserAdd,
  prepareUserChangePassword,
  SimpleTokenProvider,
  encodeHashedPassword,
} from './index.js';
import { ManualClock } from '../base/index.js';

test('hash and compare on a worker thread', async () => {
  const pool = new BcryptPool({ size: 1 });
  try {
    const hash = await pool.hash('correct horse', 4);
    assert.match(hash, /^\$2[ab]\$04\$[./A-Za-z0-9]{53}$/);
    assert.equal(await pool.compare('correct horse', hash), true);
    assert.equal(await pool.compare('wrong horse', hash), false);
    assert.equal(await pool.compare('x', 'not a bcrypt hash'), false, 'a malformed hash never matches');
    // A hash made by Go's bcrypt ($2a$) is understood too.
    assert.equal(await pool.compare('pw', bcrypt.hashSync('pw', 4).replace('$2b$', '$2a$')), true);
  } finally {
    await pool.close();
  }
});

test('the event loop keeps ticking while bcrypt runs (cost 12)', async () => {
  // On the main thread, one cost-12 hash blocks the loop for its whole run.
  const t0 = performance.now();
  bcrypt.hashSync('pw', 12);
  const blockingMs = performance.now() - t0;
  const pool = new BcryptPool({ size: 1 });
  try {
    let last = performance.now();
    let maxGapMs = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      ticks++;
    }, 5);
    const h0 = performance.now();
    await pool.hash('pw', 12);
    const hashMs = performance.now() - h0;
    clearInterval(timer);
    console.log(`# bcrypt cost 12: ${blockingMs.toFixed(0)} ms blocking on the main thread; on the pool ${hashMs.toFixed(0)} ms with the loop's largest gap ${maxGapMs.toFixed(1)} ms over ${ticks} ticks`);
    assert.ok(maxGapMs < blockingMs / 2, `loop stalled ${maxGapMs} ms (blocking run: ${blockingMs} ms)`);
    assert.ok(ticks >= 5, `only ${ticks} ticks during ${hashMs} ms`);
  } finally {
    await pool.close();
  }
});

test('the queue is bounded: past it, TooManyRequests at once', async () => {
  const pool = new BcryptPool({ size: 1, queueMax: 2 });
  try {
    const running = [pool.hash('a', 6), pool.hash('b', 6), pool.hash('c', 6)];
    await assert.rejects(pool.hash('d', 6), (err: unknown) => err instanceof AuthError && err.code === 'TooManyRequests');
    assert.equal(pool.pending, 3);
    const hashes = await Promise.all(running);
    assert.equal(hashes.length, 3);
    assert.equal(pool.pending, 0);
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.hash('e', 4), /closed/);
});

test('etcd --bcrypt-cost rule: out of [4, 31] means 10', () => {
  assert.equal(normalizeBcryptCost(4), 4);
  assert.equal(normalizeBcryptCost(31), 31);
  assert.equal(normalizeBcryptCost(3), 10);
  assert.equal(normalizeBcryptCost(32), 10);
  assert.equal(normalizeBcryptCost(5.5), 10);
});

test('the Authenticate flow: hash before proposing, check the password, mint the token in apply', async () => {
  const pool = new BcryptPool({ size: 2 });
  const backend = new MemoryAuthBackend();
  const store = new AuthStore({ backend, bcrypt: pool, tokenProvider: new SimpleTokenProvider({ clock: new ManualClock() }) });
  try {
    await assert.rejects(store.checkPassword('root', 'pw'), (e: unknown) => e instanceof AuthError && e.code === 'AuthNotEnabled');
    // API layer: the request to propose carries only the hash.
    const add = await prepareUserAdd(pool, etcdserverpb.AuthUserAddRequest.create({ name: 'root', password: 'rootpw' }), 4);
    assert.equal(add.password, '');
    assert.ok(!Buffer.from(etcdserverpb.AuthUserAddRequest.encode(add)).includes('rootpw'), 'no plaintext in the proposal');
    store.userAdd(add);
    store.userAdd(await prepareUserAdd(pool, etcdserverpb.AuthUserAddRequest.create({ name: 'cn', password: 'ignored', options: { noPassword: true } }), 4));
    store.userGrantRole({ user: 'root', role: 'root' });
    store.authEnable();
    await assert.rejects(store.checkPassword('root', 'bad'), (e: unknown) => e instanceof AuthError && e.code === 'AuthFailed');
    await assert.rejects(store.checkPassword('ghost', 'x'), (e: unknown) => e instanceof AuthError && e.code === 'AuthFailed');
    await assert.rejects(store.checkPassword('cn', 'x'), (e: unknown) => e instanceof AuthError && e.code === 'NoPasswordUser');
    const checkedRevision = await store.checkPassword('root', 'rootpw');
    assert.equal(checkedRevision, store.revision());
    const prefix = store.genTokenPrefix();
    const token = store.authenticate(serverpb.InternalAuthenticateRequest.create({ name: 'root', simpleToken: prefix }), 77);
    assert.equal(token, `${prefix}.77`);
    assert.equal(store.authInfoFromToken(token).username, 'root');
    // A client-supplied hash (etcd 3.5 hashedPassword: the bcrypt string) is kept as sent.
    const clientHash = bcrypt.hashSync('newpw', 4);
    const change = await prepareUserChangePassword(pool, etcdserverpb.AuthUserChangePasswordRequest.create({ name: 'root', hashedPassword: clientHash }), 4);
    assert.equal(change.hashedPassword, encodeHashedPassword(clientHash));
    store.userChangePassword(change);
    assert.equal(await store.checkPassword('root', 'newpw'), store.revision());
    for (const v of backend.rawValues()) {
      for (const secret of ['rootpw', 'newpw', 'ignored']) assert.ok(!Buffer.from(v).includes(secret), `stored ${secret}`);
    }
  } finally {
    await pool.close();
  }
});
