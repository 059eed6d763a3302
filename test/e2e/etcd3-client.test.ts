// The npm `etcd3` client (1.1.2), an independent implementation of the etcd
// v3 API, against one etcd-ts member: KV, txn, watch, lease, and the lock and
// election recipes it builds on KV + lease + watch, with two clients
// contending. ETCD3_E2E_KIND=etcd runs the same file against the real etcd,
// which is how the expectations here were checked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdLeaseInvalidError, EtcdLockFailedError, Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { delay, etcdMissing, useWorkspace, type Cluster, type MemberKind } from '../harness/index.js';

const kind: MemberKind = process.env['ETCD3_E2E_KIND'] === 'etcd' ? 'etcd' : 'etcd-ts';
const skip = kind === 'etcd' ? etcdMissing() : false;

/** Bounded poll: resolves once cond() holds, fails with what after timeoutMs. */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

/** Fails if p does not settle within timeoutMs (a recipe that hangs is a failure, not a stuck test). */
async function within<T>(what: string, p: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not settled in ${timeoutMs} ms`)), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface Seen {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value: string;
  readonly prev: string | undefined;
  readonly modRevision: string;
}

/** Records a watcher's events in arrival order. */
function record(w: Watcher): Seen[] {
  const seen: Seen[] = [];
  const push = (type: Seen['type']) => (kv: IKeyValue, prev?: IKeyValue) =>
    seen.push({ type, key: kv.key.toString(), value: kv.value.toString(), prev: prev?.value.toString(), modRevision: kv.mod_revision });
  w.on('put', push('put'));
  w.on('delete', push('delete'));
  return seen;
}

describe(`npm etcd3 client against ${kind}`, { skip }, () => {
  const ws = useWorkspace('etcd3-client');
  let cluster: Cluster;
  let a: Etcd3;
  let b: Etcd3;

  before(async () => {
    cluster = await ws.startCluster({ kind });
    a = new Etcd3({ hosts: cluster.endpoints });
    b = new Etcd3({ hosts: cluster.endpoints });
  });
  after(() => {
    a.close();
    b.close();
  });

  test('kv: put, get, getAll with prefix/sort/limit, count, previous values, delete', async () => {
    await a.put('kv/a').value('1');
    await a.put('kv/b').value('2');
    await a.put('kv/c').value('3');
    await a.put('kv-other').value('x');
    assert.equal(await a.get('kv/a').string(), '1');
    assert.equal(await b.get('kv/missing').string(), null);
    assert.equal(await a.get('kv/b').number(), 2);
    assert.deepEqual(await b.getAll().prefix('kv/').strings(), { 'kv/a': '1', 'kv/b': '2', 'kv/c': '3' });
    assert.deepEqual(await b.getAll().prefix('kv/').keys(), ['kv/a', 'kv/b', 'kv/c']);
    assert.equal(await b.getAll().prefix('kv/').count(), 3);
    assert.deepEqual(await a.getAll().prefix('kv/').sort('Key', 'Descend').limit(2).keys(), ['kv/c', 'kv/b']);
    const limited = await a.getAll().prefix('kv/').limit(1).exec();
    assert.equal(limited.more, true);
    assert.equal(limited.count, '3');

    const prev = await a.put('kv/a').value('1b').getPrevious();
    assert.equal(prev.value.toString(), '1');
    assert.equal(prev.version, '1');
    const first = await a.get('kv/a').exec();
    const kv = first.kvs[0];
    assert.ok(kv !== undefined);
    assert.equal(kv.version, '2');
    assert.ok(Number(kv.mod_revision) > Number(kv.create_revision));
    // The value before the overwrite, read at the revision it was written.
    assert.equal(await a.get('kv/a').revision(kv.create_revision).string(), '1');

    const deleted = await a.delete().key('kv/b').getPrevious();
    assert.deepEqual(
      deleted.map((d) => [d.key.toString(), d.value.toString()]),
      [['kv/b', '2']],
    );
    const byPrefix = await b.delete().prefix('kv/').exec();
    assert.equal(byPrefix.deleted, '2');
    assert.equal(await a.getAll().prefix('kv/').count(), 0);
    assert.equal(await a.get('kv-other').string(), 'x');
  });

  test('txn: if/then/else, both branches, responses of each op', async () => {
    await a.put('tx/k').value('v1');
    const won = await a.if('tx/k', 'Value', '==', 'v1').then(a.put('tx/k').value('v2'), a.get('tx/k')).else(a.put('tx/k').value('lost')).commit();
    assert.equal(won.succeeded, true);
    assert.equal(won.responses.length, 2);
    assert.equal(won.responses[1]?.response_range?.kvs[0]?.value.toString(), 'v2');
    const lost = await b.if('tx/k', 'Value', '==', 'v1').then(b.put('tx/k').value('no')).else(b.get('tx/k'), b.delete().key('tx/none')).commit();
    assert.equal(lost.succeeded, false);
    assert.equal(lost.responses[0]?.response_range?.kvs[0]?.value.toString(), 'v2');
    assert.equal(lost.responses[1]?.response_delete_range?.deleted, '0');
    // Version and revision compares, several clauses at once.
    const multi = await a.if('tx/k', 'Version', '==', 2).and('tx/missing', 'Create', '==', 0).and('tx/k', 'Mod', '>', 0).then(a.put('tx/created').value('y')).commit();
    assert.equal(multi.succeeded, true);
    assert.equal(await b.get('tx/created').string(), 'y');
    // A put and a delete of the same key in one branch is refused by the server.
    await assert.rejects(a.if('tx/k', 'Version', '>', 0).then(a.put('tx/dup').value('1'), a.delete().key('tx/dup')).commit(), /duplicate key given in txn request/);
    assert.equal(await a.get('tx/dup').string(), null);
  });

  test('watch: a key and a prefix, with previous values, events in order, from a past revision', async () => {
    const keyWatch = await a.watch().key('w/one').withPreviousKV().create();
    const prefixWatch = await b.watch().prefix('w/').withPreviousKV().create();
    const onKey = record(keyWatch);
    const onPrefix = record(prefixWatch);
    const start = await a.put('w/one').value('1');
    await a.put('w/two').value('2');
    await a.put('w/one').value('1b');
    await a.delete().key('w/two');
    await a.put('not-w').value('z');
    await a.if('w/one', 'Value', '==', '1b').then(a.put('w/three').value('3'), a.delete().key('w/one')).commit();
    await until('6 prefix events', () => onPrefix.length >= 6);
    await until('3 key events', () => onKey.length >= 3);
    const base = Number(start.header.revision);
    const brief = (s: Seen): string => `${s.type} ${s.key}=${s.value} prev=${String(s.prev)} @${Number(s.modRevision) - base}`;
    assert.deepEqual(onKey.map(brief), ['put w/one=1 prev=undefined @0', 'put w/one=1b prev=1 @2', 'delete w/one= prev=1b @5']);
    assert.deepEqual(onPrefix.map(brief), [
      'put w/one=1 prev=undefined @0',
      'put w/two=2 prev=undefined @1',
      'put w/one=1b prev=1 @2',
      'delete w/two= prev=2 @3',
      'put w/three=3 prev=undefined @5',
      'delete w/one= prev=1b @5',
    ]);
    await keyWatch.cancel();
    await prefixWatch.cancel();

    // History: a watch from the first put's revision replays everything since.
    const replay = await b.watch().prefix('w/').startRevision(String(base)).create();
    const replayed = record(replay);
    await until('6 replayed events', () => replayed.length >= 6);
    assert.deepEqual(
      replayed.map((s) => `${s.type} ${s.key}`),
      ['put w/one', 'put w/two', 'put w/one', 'delete w/two', 'put w/three', 'delete w/one'],
    );
    await replay.cancel();
  });

  test('lease: grant, attach keys, keepalive, time-to-live, revoke removes keys, expiry removes keys', async () => {
    const lease = a.lease(30, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put('ls/1').value('a');
    await lease.put('ls/2').value('b');
    const ka = await lease.keepaliveOnce();
    assert.equal(ka.ID, id);
    assert.equal(ka.TTL, '30');
    const ttl = await b.leaseClient.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(ttl.grantedTTL, '30');
    assert.ok(Number(ttl.TTL) > 25 && Number(ttl.TTL) <= 30, `remaining ${ttl.TTL}`);
    assert.deepEqual(ttl.keys.map((k) => k.toString()).sort(), ['ls/1', 'ls/2']);
    const listed = await b.leaseClient.leaseLeases({});
    assert.ok(listed.leases.some((l) => l.ID === id));
    const kv = (await b.get('ls/1').exec()).kvs[0];
    assert.equal(kv?.lease, id);

    await lease.revoke();
    assert.equal(await b.getAll().prefix('ls/').count(), 0);
    const gone = await b.leaseClient.leaseTimeToLive({ ID: id });
    assert.equal(gone.TTL, '-1');
    await assert.rejects(b.lease(30, { autoKeepAlive: false }).put('ls/x').value('v').lease(id).exec(), /requested lease not found/);

    // Expiry: the shortest lease (raised to the member's minimum TTL) with no keepalive.
    const short = b.lease(1, { autoKeepAlive: false });
    const shortId = await short.grant();
    await short.put('ls/short').value('s');
    assert.equal(await a.get('ls/short').string(), 's');
    await until('the short lease to expire', async () => (await a.get('ls/short').string()) === null, 15_000);
    assert.equal((await a.leaseClient.leaseTimeToLive({ ID: shortId })).TTL, '-1');
    await assert.rejects(short.keepaliveOnce(), (e: unknown) => e instanceof EtcdLeaseInvalidError);
  });

  test('lease: automatic keepalive keeps a short lease and its key alive past its TTL', async () => {
    const lease = a.lease(2);
    let renewals = 0;
    lease.on('keepaliveSucceeded', () => renewals++);
    await lease.put('ka/k').value('v');
    await delay(4_500);
    assert.equal(await b.get('ka/k').string(), 'v');
    assert.ok(renewals >= 2, `${renewals} keepalives answered`);
    assert.equal(lease.revoked(), false);
    await lease.revoke();
    assert.equal(await b.get('ka/k').string(), null);
  });

  test('lock: two clients contend; the holder excludes the other until it releases', async () => {
    const held = await a.lock('lk/mutex').ttl(10).acquire();
    await assert.rejects(b.lock('lk/mutex').ttl(10).acquire(), (e: unknown) => e instanceof EtcdLockFailedError);
    await held.release();
    const second = await b.lock('lk/mutex').ttl(10).acquire();
    await assert.rejects(a.lock('lk/mutex').acquire(), (e: unknown) => e instanceof EtcdLockFailedError);
    await second.release();

    // Mutual exclusion under contention: each client retries until it holds the lock.
    let inside = 0;
    let entries = 0;
    const worker = async (c: Etcd3, rounds: number): Promise<void> => {
      for (let done = 0, attempts = 0; done < rounds; attempts++) {
        if (attempts > 500) throw new Error('could not acquire the lock in 500 attempts');
        try {
          await c.lock('lk/counter').ttl(10).do(async () => {
            inside++;
            assert.equal(inside, 1, 'two holders at once');
            entries++;
            await delay(5);
            inside--;
          });
          done++;
        } catch (e) {
          if (!(e instanceof EtcdLockFailedError)) throw e;
          await delay(5);
        }
      }
    };
    await within('contending workers', Promise.all([worker(a, 10), worker(b, 10)]), 30_000);
    assert.equal(entries, 20);
    assert.equal(await a.getAll().prefix('lk/').count(), 0);
  });

  test('election: campaign, observe, the second candidate wins when the leader resigns', async () => {
    const ea = a.election('el', 10);
    const eb = b.election('el', 10);
    const observer = await b.election('el', 10).observe();
    const changes: (string | undefined)[] = [];
    observer.on('change', (v) => changes.push(v));

    const first = ea.campaign('alice');
    await within('alice elected', first.wait());
    assert.equal(await eb.leader(), 'alice');
    await until('observer sees alice', () => observer.leader() === 'alice');

    const second = eb.campaign('bob');
    let bobElected = false;
    second.on('elected', () => (bobElected = true));
    // Bob's key exists behind Alice's; he is not leader while she holds it.
    await until('bob campaigning', async () => (await a.getAll().prefix('election/el').count()) === 2);
    await delay(300);
    assert.equal(bobElected, false);
    assert.equal(await ea.leader(), 'alice');

    // A proclamation changes the leader's value in place.
    await first.proclaim('alice-2');
    assert.equal(await eb.leader(), 'alice-2');
    await until('observer sees alice-2', () => observer.leader() === 'alice-2');

    await first.resign();
    await within('bob elected', second.wait());
    assert.equal(await ea.leader(), 'bob');
    await until('observer sees bob', () => observer.leader() === 'bob');

    await second.resign();
    await until('no leader', async () => (await ea.leader()) === undefined);
    await observer.cancel();
    // Every leader the observer reported, in order (after the last resign it may report none).
    const leaders = changes.filter((v): v is string => v !== undefined);
    assert.deepEqual(
      leaders.filter((v, i) => v !== leaders[i - 1]),
      ['alice', 'alice-2', 'bob'],
    );
  });
});
