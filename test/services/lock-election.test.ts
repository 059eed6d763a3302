// The v3lock and v3election services: two clients contending for a lock and
// for leadership, a lock shared with `etcdctl lock` (clientv3's Mutex over
// plain KV), Observe following proclaims and resignations, and the errors
// and answers of odd requests compared with the real etcd's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GrpcChannel } from '../../src/grpc/index.js';
import { etcdserverpb, v3electionpb, v3lockpb } from '../../src/pb/index.js';
import { etcdctlBackground, etcdctlMissing, etcdMissing, methods, openChannel, outcome, useWorkspace, type Cluster } from '../harness/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array(0));
const callMs = 10_000;

/** Whether p settles within ms (false: still pending). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const r = await Promise.race([p.then(() => true as const, () => true as const), pending]);
  clearTimeout(timer);
  return r;
}

async function grant(ch: GrpcChannel, ttl = 60): Promise<bigint> {
  return (await ch.unary(methods.lease.LeaseGrant, etcdserverpb.LeaseGrantRequest.create({ TTL: ttl }), { timeoutMs: callMs })).ID;
}

function lock(ch: GrpcChannel, name: string, lease: bigint, opts: { signal?: AbortSignal } = {}): Promise<v3lockpb.LockResponse> {
  return ch.unary(methods.lock.Lock, v3lockpb.LockRequest.create({ name: enc(name), lease }), { timeoutMs: 30_000, ...opts });
}

function campaign(ch: GrpcChannel, name: string, lease: bigint, value: string): Promise<v3electionpb.CampaignResponse> {
  return ch.unary(methods.election.Campaign, v3electionpb.CampaignRequest.create({ name: enc(name), lease, value: enc(value) }), { timeoutMs: 30_000 });
}

describe('lock and election services', () => {
  const ws = useWorkspace('lock-election');
  let ours: Cluster;
  let a: GrpcChannel;
  let b: GrpcChannel;
  before(async () => {
    ours = await ws.startCluster({ kind: 'etcd-ts' });
    a = openChannel(ours.member(0).endpoint);
    b = openChannel(ours.member(0).endpoint);
  });
  after(() => {
    a.close();
    b.close();
  });

  test('two clients: the second Lock waits until the first unlocks', async () => {
    const [la, lb] = [await grant(a), await grant(b)];
    const first = await lock(a, 'door', la);
    assert.equal(dec(first.key), `door/${la.toString(16)}`);
    const second = lock(b, 'door', lb);
    assert.equal(await settlesWithin(second, 500), false, 'the second locker got the lock while it was held');
    const unlocked = await a.unary(methods.lock.Unlock, v3lockpb.UnlockRequest.create({ key: first.key }), { timeoutMs: callMs });
    const got = await second;
    assert.equal(dec(got.key), `door/${lb.toString(16)}`);
    // The waiter is told about the world after the holder's key went away.
    assert.ok((got.header?.revision ?? 0) >= (unlocked.header?.revision ?? 0));
    await b.unary(methods.lock.Unlock, v3lockpb.UnlockRequest.create({ key: got.key }), { timeoutMs: callMs });
  });

  test('a holder whose lease is revoked frees the lock; a waiter that gives up leaves the queue', async () => {
    const [la, lb, lc] = [await grant(a), await grant(b), await grant(b)];
    await lock(a, 'gate', la);
    const gaveUp = new AbortController();
    const quitter = outcome(lock(b, 'gate', lb, { signal: gaveUp.signal }));
    const waiter = lock(b, 'gate', lc);
    assert.equal(await settlesWithin(waiter, 300), false);
    gaveUp.abort();
    assert.equal((await quitter).ok, false);
    // The quitter's key is removed, so it cannot hold the lock behind the waiter's back.
    await waitUntil(async () => {
      const now = await a.unary(methods.kv.Range, etcdserverpb.RangeRequest.create({ key: enc('gate/'), rangeEnd: enc('gate0') }), { timeoutMs: callMs });
      return !now.kvs.some((kv) => dec(kv.key).endsWith(lb.toString(16)));
    });
    await a.unary(methods.lease.LeaseRevoke, etcdserverpb.LeaseRevokeRequest.create({ ID: la }), { timeoutMs: callMs });
    assert.equal(dec((await waiter).key), `gate/${lc.toString(16)}`);
  });

  test('interop with etcdctl lock on the same name, both ways', { skip: etcdctlMissing() }, async () => {
    const endpoints = ours.endpoints;
    const held = etcdctlBackground(['lock', 'shared'], { endpoints });
    const heldKey = (await held.waitFor((out) => out.includes('\n'))).trim();
    assert.match(heldKey, /^shared\/[0-9a-f]+$/);
    const ours1 = lock(a, 'shared', await grant(a));
    assert.equal(await settlesWithin(ours1, 500), false, 'our Lock ignored the lock etcdctl holds');
    await held.stop();
    const mine = await ours1;
    const waiting = etcdctlBackground(['lock', 'shared'], { endpoints });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(waiting.stdout(), '', 'etcdctl lock got the lock we hold');
    await a.unary(methods.lock.Unlock, v3lockpb.UnlockRequest.create({ key: mine.key }), { timeoutMs: callMs });
    assert.match((await waiting.waitFor((out) => out.includes('\n'))).trim(), /^shared\/[0-9a-f]+$/);
    await waiting.stop();
  });

  test('two candidates: Campaign waits, Observe follows proclaims and the next leader, Resign hands over', async () => {
    const [la, lb] = [await grant(a), await grant(b)];
    const observer = b.serverStream(methods.election.Observe, v3electionpb.LeaderRequest.create({ name: enc('chair') }), { timeoutMs: 30_000 });
    const won = await campaign(a, 'chair', la, 'alice');
    const leader = won.leader;
    assert.ok(leader !== undefined);
    assert.deepEqual([dec(leader.name), dec(leader.key), leader.lease], ['chair', `chair/${la.toString(16)}`, la]);
    assert.equal(leader.rev, won.header?.revision);
    assert.equal(dec((await observer.read())?.kv?.value), 'alice');

    const rival = campaign(b, 'chair', lb, 'bob');
    assert.equal(await settlesWithin(rival, 500), false, 'a second candidate won while the leader stands');
    await a.unary(methods.election.Proclaim, v3electionpb.ProclaimRequest.create({ leader, value: enc('alice-2') }), { timeoutMs: callMs });
    assert.equal(dec((await observer.read())?.kv?.value), 'alice-2');
    const now = await b.unary(methods.election.Leader, v3electionpb.LeaderRequest.create({ name: enc('chair') }), { timeoutMs: callMs });
    assert.deepEqual([dec(now.kv?.key), dec(now.kv?.value)], [`chair/${la.toString(16)}`, 'alice-2']);

    await a.unary(methods.election.Resign, v3electionpb.ResignRequest.create({ leader }), { timeoutMs: callMs });
    const next = await rival;
    assert.equal(dec(next.leader?.key), `chair/${lb.toString(16)}`);
    assert.equal(dec((await observer.read())?.kv?.value), 'bob');
    // The old leader key no longer speaks for the election.
    const stale = await outcome(a.unary(methods.election.Proclaim, v3electionpb.ProclaimRequest.create({ leader, value: enc('x') }), { timeoutMs: callMs }));
    assert.deepEqual(stale, { ok: false, code: 2, message: 'election: not leader' });
    observer.cancel();
  });

  test('odd requests answer as the real etcd does', { skip: etcdMissing() }, async () => {
    const real = await ws.startCluster({ kind: 'etcd' });
    const r = openChannel(real.member(0).endpoint);
    try {
      const theirs = await oddRequests(r);
      const mine = await oddRequests(openChannel(ours.member(0).endpoint));
      assert.deepEqual(mine, theirs);
    } finally {
      r.close();
      await real.close();
    }
  });
});

/** Each request's outcome with the member-specific parts (ids, revisions) reduced to their shape. */
async function oddRequests(ch: GrpcChannel): Promise<unknown[]> {
  const o = { timeoutMs: callMs };
  const bogus = v3electionpb.LeaderKey.create({ name: enc('odd'), key: enc('odd/abc'), rev: 99, lease: 1n });
  const results = [
    await outcome(ch.unary(methods.lock.Lock, v3lockpb.LockRequest.create({ name: enc('odd-lock'), lease: 12345n }), o)),
    await outcome(ch.unary(methods.lock.Unlock, v3lockpb.UnlockRequest.create({}), o)),
    await outcome(ch.unary(methods.lock.Unlock, v3lockpb.UnlockRequest.create({ key: enc('no-such') }), o)),
    await outcome(ch.unary(methods.election.Leader, v3electionpb.LeaderRequest.create({ name: enc('odd') }), o)),
    await outcome(ch.unary(methods.election.Proclaim, v3electionpb.ProclaimRequest.create({ value: enc('x') }), o)),
    await outcome(ch.unary(methods.election.Resign, v3electionpb.ResignRequest.create({}), o)),
    await outcome(ch.unary(methods.election.Proclaim, v3electionpb.ProclaimRequest.create({ leader: bogus, value: enc('x') }), o)),
    await outcome(ch.unary(methods.election.Resign, v3electionpb.ResignRequest.create({ leader: bogus }), o)),
    await outcome(ch.unary(methods.election.Campaign, v3electionpb.CampaignRequest.create({ name: enc('odd'), lease: 999n, value: enc('v') }), o)),
  ];
  // Without a lease, a 60 s one is made for the lock and for the campaign.
  const noLease = await ch.unary(methods.lock.Lock, v3lockpb.LockRequest.create({ name: enc('odd-free') }), o);
  const ttl = await ch.unary(methods.lease.LeaseTimeToLive, etcdserverpb.LeaseTimeToLiveRequest.create({ ID: BigInt(`0x${dec(noLease.key).split('/')[1] ?? ''}`) }), o);
  const twice = [await grant(ch)].flatMap((l) => [l, l]);
  const c1 = await ch.unary(methods.election.Campaign, v3electionpb.CampaignRequest.create({ name: enc('odd2'), lease: twice[0], value: enc('one') }), o);
  // Campaigning again with the same lease keeps the place and proclaims the new value.
  const c2 = await ch.unary(methods.election.Campaign, v3electionpb.CampaignRequest.create({ name: enc('odd2'), lease: twice[1], value: enc('two') }), o);
  const l2 = await ch.unary(methods.election.Leader, v3electionpb.LeaderRequest.create({ name: enc('odd2') }), o);
  return [
    ...results.map((x) => (x.ok ? { ok: true, revision: typeof (x.value as { header?: { revision: number } }).header?.revision } : x)),
    ttl.grantedTTL,
    c2.leader?.rev === c1.leader?.rev && c2.header?.revision === c1.header?.revision,
    [dec(l2.kv?.value), l2.kv?.version, (l2.header?.revision ?? 0) - (c1.header?.revision ?? 0)],
  ];
}

async function waitUntil(pred: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
