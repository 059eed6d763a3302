// The client library against one etcd-ts member: KV and txn, watchers sharing
// a stream and resuming after the member restarts, lease keep-alive and the
// lost-lease signal, Mutex and Election interoperating with Debian's etcdctl,
// STM under contention, and auth token refresh.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Compare, Election, Mutex, Op, Session, stm, type Watcher, type WatchResponse } from '../../src/client/index.js';
import { etcdctl, etcdctlBackground, etcdctlMissing, liveChildren, useWorkspace, type Cluster } from '../harness/index.js';

const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString();

async function nextResponse(w: Watcher, timeoutMs = 10_000): Promise<WatchResponse> {
  const it = w[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    it.next(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no watch response in time')), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.equal(r.done, false, 'watcher ended');
  return r.value;
}

describe('client against etcd-ts', () => {
  const ws = useWorkspace('client');
  let c: Cluster;
  let client: Client;
  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts' });
    client = await Client.connect({ endpoints: c.endpoints, dialTimeoutMs: 5000 });
  });
  after(() => {
    client.close();
    assert.equal(liveChildren() >= 0, true);
  });

  test('put, get with prefix and sort, delete with prev-kv, txn', async () => {
    await client.kv.put('kv/a', '1');
    await client.kv.put('kv/b', '2');
    await client.kv.put('kv/c', '3');
    const all = await client.kv.get('kv/', { prefix: true, sortOrder: 'DESCEND' });
    assert.deepEqual(all.kvs.map((kv) => text(kv.key)), ['kv/c', 'kv/b', 'kv/a']);
    assert.equal(all.count, 3);
    const limited = await client.kv.get('kv/', { prefix: true, limit: 1 });
    assert.equal(limited.more, true);
    const del = await client.kv.delete('kv/b', { prevKv: true });
    assert.equal(del.deleted, 1);
    assert.equal(text(del.prevKvs[0]?.value), '2');
    const t = await client.kv.txn().if(Compare.value('kv/a', '=', '1')).then(Op.put('kv/a', '10'), Op.get('kv/c')).else(Op.get('kv/a')).commit();
    assert.equal(t.succeeded, true);
    assert.equal(t.responses[1]?.response?.case, 'responseRange');
    const missing = await client.kv.txn().if(Compare.version('kv/b', '>', 0)).commit();
    assert.equal(missing.succeeded, false);
  });

  test('bad requests get etcd errors', async () => {
    await assert.rejects(client.kv.put('', 'x'), { message: 'etcdserver: key is not provided' });
    const rev = (await client.kv.put('cmp/x', '1')).header?.revision ?? 0;
    await client.kv.put('cmp/x', '2');
    await client.kv.compact(rev);
    await assert.rejects(client.kv.get('cmp/x', { revision: rev - 1 }), { message: 'etcdserver: mvcc: required revision has been compacted' });
    await assert.rejects(client.lease.revoke(12345n), { message: 'etcdserver: requested lease not found' });
  });

  test('a call past its deadline or aborted fails with the context error', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(client.kv.get('x', { signal: ac.signal }), { message: 'context canceled' });
    // A stream call too: a keep-alive the member does not answer (it is stopped) ends at its deadline.
    const lease = await client.lease.grant(30);
    c.member(0).pause();
    try {
      const started = performance.now();
      await assert.rejects(client.lease.keepAliveOnce(lease.ID, { timeoutMs: 500 }), { message: 'context deadline exceeded' });
      assert.ok(performance.now() - started < 3000, 'the keep-alive gave up at its deadline');
    } finally {
      c.member(0).resume();
    }
  });

  test('watchers share a stream, get progress, and resume after the member restarts', async () => {
    const base = (await client.kv.put('w/0', 'start')).header?.revision ?? 0;
    const wa = client.watch.watch('w/a');
    const wp = client.watch.watch('w/', { prefix: true, prevKv: true, startRevision: base });
    await Promise.all([wa.created, wp.created]);
    const first = await nextResponse(wp);
    assert.equal(text(first.events[0]?.kv?.key), 'w/0');
    await client.kv.put('w/a', '1');
    assert.equal(text((await nextResponse(wa)).events[0]?.kv?.value), '1');
    assert.equal(text((await nextResponse(wp)).events[0]?.kv?.value), '1');
    client.watch.requestProgress();
    const progress = await nextResponse(wa);
    assert.equal(progress.progressNotify, true);
    assert.ok((progress.header?.revision ?? 0) >= base + 1);
    await nextResponse(wp);

    await c.member(0).kill();
    await c.member(0).start();
    // Written by another client while ours reconnects: the watcher must still see it, once.
    const other = await Client.connect({ endpoints: c.endpoints });
    try {
      await other.kv.put('w/a', '2');
      await other.kv.put('w/a', '3');
    } finally {
      other.close();
    }
    const seen: string[] = [];
    while (seen.length < 2) for (const e of (await nextResponse(wa, 20_000)).events) seen.push(text(e.kv?.value));
    assert.deepEqual(seen, ['2', '3']);
    const prefixSeen: string[] = [];
    while (prefixSeen.length < 2) for (const e of (await nextResponse(wp, 20_000)).events) prefixSeen.push(`${text(e.kv?.value)}<${text(e.prevKv?.value)}`);
    assert.deepEqual(prefixSeen, ['2<1', '3<2']);
    wa.cancel();
    wp.cancel();
    assert.equal((await wa[Symbol.asyncIterator]().next()).done, true);
  });

  test('a watch from a compacted revision is cancelled with the compact revision', async () => {
    const r1 = (await client.kv.put('wc/k', '1')).header?.revision ?? 0;
    await client.kv.put('wc/k', '2');
    await client.kv.compact(r1 + 1);
    const w = client.watch.watch('wc/k', { startRevision: r1 });
    const resp = await nextResponse(w);
    assert.equal(resp.canceled, true);
    assert.equal(resp.compactRevision, r1 + 1);
  });

  test('keep-alive renews a lease; its revocation is reported as lost', async () => {
    const grant = await client.lease.grant(3);
    const ka = client.lease.keepAlive(grant.ID, 3);
    const first = await ka[Symbol.asyncIterator]().next();
    assert.equal(first.value?.ID, grant.ID);
    await new Promise((r) => setTimeout(r, 4000));
    const ttl = await client.lease.timeToLive(grant.ID);
    assert.ok(ttl.TTL > 0, 'kept alive past its TTL');
    const other = await Client.connect({ endpoints: c.endpoints });
    await other.lease.revoke(grant.ID);
    other.close();
    const why = await Promise.race([ka.lost, new Promise((r) => setTimeout(() => r('not lost'), 10_000))]);
    assert.match(String(why), /requested lease not found|not received/);
  });

  test('mutex: etcdctl lock waits while we hold it, and we wait for etcdctl', { skip: etcdctlMissing() }, async () => {
    const session = await Session.create(client, { ttlSeconds: 10 });
    const m = new Mutex(session, 'locks/one');
    await m.lock();
    assert.match(m.key, /^locks\/one\/[0-9a-f]+$/);
    const ctl = etcdctlBackground(['lock', 'locks/one'], { endpoints: c.endpoints, timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(ctl.stdout(), '', 'etcdctl got the lock while we held it');
    await m.unlock();
    await ctl.waitFor((out) => out.startsWith('locks/one/'), 15_000);
    // Now etcdctl holds it: our second lock waits until etcdctl lets go.
    const m2 = new Mutex(session, 'locks/one');
    let acquired = false;
    const p = m2.lock().then(() => {
      acquired = true;
    });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(acquired, false);
    await ctl.stop();
    await p;
    await m2.unlock();
    await session.close();
  });

  test('election: etcdctl elect -l observes our leadership; resign hands over', { skip: etcdctlMissing() }, async () => {
    const s1 = await Session.create(client, { ttlSeconds: 10 });
    const s2 = await Session.create(client, { ttlSeconds: 10 });
    const e1 = new Election(s1, 'elect/x');
    const e2 = new Election(s2, 'elect/x');
    await e1.campaign('one');
    const obs = etcdctlBackground(['elect', '-l', 'elect/x'], { endpoints: c.endpoints, timeoutMs: 30_000 });
    await obs.waitFor((out) => out.includes('\none\n'), 15_000);
    let won = false;
    const p = e2.campaign('two').then(() => {
      won = true;
    });
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(won, false);
    await e1.resign();
    await p;
    assert.equal(text((await e2.leader())?.value), 'two');
    await obs.waitFor((out) => out.includes('\ntwo\n'), 15_000);
    await obs.stop();
    await s1.close();
    await s2.close();
  });

  test('stm: concurrent increments are serialized', async () => {
    await client.kv.put('stm/n', '0');
    const bump = (): Promise<unknown> =>
      stm(client, async (t) => {
        const n = Number(text(await t.get('stm/n')));
        t.put('stm/n', String(n + 1));
      }, { attemptsMax: 50 });
    await Promise.all([bump(), bump(), bump(), bump(), bump()]);
    assert.equal(text((await client.kv.get('stm/n')).kvs[0]?.value), '5');
  });

  test('auth: the client authenticates, and again when its token is rejected', { skip: etcdctlMissing() }, async () => {
    await client.auth.userAdd('root', 'rootpw');
    await client.auth.userGrantRole('root', 'root');
    await client.auth.enable();
    try {
      const authed = await Client.connect({ endpoints: c.endpoints, username: 'root', password: 'rootpw' });
      await authed.kv.put('auth/k', 'v');
      const w = authed.watch.watch('auth/w');
      await w.created;
      // A restart forgets simple tokens: the next call gets "invalid auth token" and must recover.
      await c.member(0).kill();
      await c.member(0).start();
      assert.equal(text((await authed.kv.get('auth/k', { timeoutMs: 20_000 })).kvs[0]?.value), 'v');
      // The watch is back too.
      assert.equal((await etcdctl(['--user', 'root:rootpw', 'put', 'auth/w', 'after the restart'], { endpoints: c.endpoints })).code, 0);
      assert.equal(text((await nextResponse(w, 20_000)).events[0]?.kv?.value), 'after the restart');
      await assert.rejects(client.kv.get('auth/k'), { message: 'etcdserver: user name is empty' });
      await authed.auth.disable();
      authed.close();
    } finally {
      await etcdctl(['--user', 'root:rootpw', 'auth', 'disable'], { endpoints: c.endpoints });
    }
  });
});

describe('client watches whose token goes stale', { skip: etcdctlMissing() }, () => {
  const ws = useWorkspace('client-token-stale');

  test('a watch created on a stream whose token went stale authenticates again and is created', async () => {
    // JWT tokens carry the auth revision they were issued at: any change to users or roles makes them old at once.
    const keys = mkdtempSync(join(tmpdir(), 'etcd-ts-client-jwt-'));
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(keys, 'jwt.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(keys, 'jwt.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const jwt = `jwt,pub-key=${join(keys, 'jwt.pub')},priv-key=${join(keys, 'jwt.key')},sign-method=ES256,ttl=1h`;
    const c = await ws.startCluster({ kind: 'etcd-ts', extraFlags: ['--auth-token', jwt] });
    const ctl = (args: string[]): Promise<unknown> => etcdctl(args, { endpoints: c.endpoints });
    const asRoot = (args: string[]): Promise<unknown> => etcdctl(['--user', 'root:rootpw', ...args], { endpoints: c.endpoints });
    await ctl(['user', 'add', 'root:rootpw']);
    await ctl(['user', 'grant-role', 'root', 'root']);
    await ctl(['auth', 'enable']);
    const authed = await Client.connect({ endpoints: c.endpoints, username: 'root', password: 'rootpw' });
    try {
      const first = authed.watch.watch('stale/a');
      await first.created;
      // The auth revision moves on: the token the open stream carries is now old.
      await asRoot(['role', 'add', 'unused']);
      // etcd (3.4 and etcd-ts alike) reads the token at each create: this one is canceled for it, and the
      // client authenticates again and creates both watches on a new stream.
      const second = authed.watch.watch('stale/b');
      await second.created;
      await asRoot(['put', 'stale/b', 'seen']);
      assert.equal(text((await nextResponse(second, 20_000)).events[0]?.kv?.value), 'seen');
      await asRoot(['put', 'stale/a', 'seen too']);
      assert.equal(text((await nextResponse(first, 20_000)).events[0]?.kv?.value), 'seen too');
    } finally {
      authed.close();
      rmSync(keys, { recursive: true, force: true });
    }
  });
});
