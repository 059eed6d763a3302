// Every lessor operation and error, one behaviour per test, on a ManualClock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, Registry, idNone, leaseTtlSecondsMax, toHex, utf8 } from '../base/index.js';
import {
  LeaseError,
  LeaseExistsError,
  LeaseExpiredError,
  LeaseNotFoundError,
  LeaseNotPrimaryError,
  LeaseTtlTooLargeError,
  Lessor,
  MemoryLeaseStore,
  leaseErrorCodes,
  minLeaseTtlSeconds,
  type LessorOptions,
  type RangeDeleter,
} from './index.js';

interface Setup {
  readonly clock: ManualClock;
  readonly store: MemoryLeaseStore;
  readonly lessor: Lessor;
  /** Every deleteKeys call, keys as utf-8 strings. */
  readonly deleteCalls: string[][];
}

function setup(options: Partial<LessorOptions> = {}): Setup {
  const clock = new ManualClock();
  const store = new MemoryLeaseStore();
  const deleteCalls: string[][] = [];
  const holder: { lessor?: Lessor } = {};
  // Behaves as mvcc's delete path would: detaches each key it deletes.
  const rangeDeleter: RangeDeleter = {
    deleteKeys(keys) {
      deleteCalls.push(keys.map((k) => Buffer.from(k).toString()));
      for (const k of keys) {
        const l = holder.lessor?.leaseOf(k) ?? idNone;
        if (l !== idNone) holder.lessor?.detach(l, [k]);
      }
    },
  };
  const lessor = new Lessor({ clock, minTtlSeconds: 2, store, rangeDeleter, ...options });
  holder.lessor = lessor;
  return { clock, store, lessor, deleteCalls };
}

function keyNames(keys: readonly Uint8Array[]): string[] {
  return keys.map((k) => Buffer.from(k).toString());
}

function expectLeaseError(fn: () => unknown, ctor: new () => LeaseError, code: string, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ctor, `expected ${ctor.name}, got ${String(e)}`);
    assert.ok(e instanceof LeaseError);
    assert.equal(e.code, code);
    assert.equal(e.message, message);
    return true;
  });
}

test('minLeaseTtlSeconds is 1.5 election timeouts in whole ticks, rounded up to seconds', () => {
  assert.equal(minLeaseTtlSeconds(10, 100), 2);
  assert.equal(minLeaseTtlSeconds(5, 100), 1); // 7 ticks = 700 ms
  assert.equal(minLeaseTtlSeconds(10, 1000), 15);
  assert.equal(minLeaseTtlSeconds(50, 100), 8); // 7.5 s
});

test('grant raises a short TTL to the minimum and persists the lease', () => {
  const { lessor, store } = setup();
  assert.equal(lessor.grant(1n, 1).ttlSeconds, 2);
  assert.equal(lessor.grant(2n, -5).ttlSeconds, 2);
  assert.equal(lessor.grant(3n, 60).ttlSeconds, 60);
  assert.equal(lessor.grant(4n, leaseTtlSecondsMax).ttlSeconds, leaseTtlSecondsMax);
  assert.deepEqual(store.get(1n), { id: 1n, ttlSeconds: 2, remainingTtlSeconds: 0 });
  assert.deepEqual(store.get(3n), { id: 3n, ttlSeconds: 60, remainingTtlSeconds: 0 });
  assert.equal(store.size, 4);
  assert.equal(lessor.size, 4);
  lessor.checkInvariants();
});

test('grant errors carry etcd codes and messages and change nothing', () => {
  const { lessor, store } = setup();
  lessor.grant(7n, 10);
  expectLeaseError(() => lessor.grant(idNone, 10), LeaseNotFoundError, leaseErrorCodes.notFound, 'etcdserver: requested lease not found');
  expectLeaseError(() => lessor.grant(8n, leaseTtlSecondsMax + 1), LeaseTtlTooLargeError, 'lease-ttl-too-large', 'etcdserver: too large lease TTL');
  expectLeaseError(() => lessor.grant(7n, 20), LeaseExistsError, 'lease-exists', 'etcdserver: lease already exists');
  // etcd checks the TTL before the duplicate id.
  expectLeaseError(() => lessor.grant(7n, leaseTtlSecondsMax + 1), LeaseTtlTooLargeError, 'lease-ttl-too-large', 'etcdserver: too large lease TTL');
  // A client's int64 beyond 2^53 (a number that is not exact) is refused or raised, never a crash of apply.
  expectLeaseError(() => lessor.grant(9n, 2 ** 56), LeaseTtlTooLargeError, 'lease-ttl-too-large', 'etcdserver: too large lease TTL');
  assert.equal(lessor.grant(10n, -(2 ** 63)).ttlSeconds, 2);
  assert.equal(lessor.lookup(7n)?.ttlSeconds, 10);
  assert.equal(store.size, 2);
  assert.throws(() => lessor.grant(1n << 63n, 10), /int64/);
});

test('leases are listed sorted by signed id; lookup finds one', () => {
  const { lessor } = setup();
  for (const id of [5n, -3n, 9_000_000_000_000_000_000n, 1n, -(1n << 63n)]) lessor.grant(id, 10);
  assert.deepEqual(
    lessor.leases().map((l) => l.id),
    [-(1n << 63n), -3n, 1n, 5n, 9_000_000_000_000_000_000n],
  );
  assert.equal(lessor.lookup(-3n)?.id, -3n);
  assert.equal(lessor.lookup(4n), undefined);
});

test('attach, detach and leaseOf; a key moves when attached to another lease', () => {
  const { lessor } = setup();
  lessor.grant(1n, 10);
  lessor.grant(2n, 10);
  lessor.attach(1n, [utf8('a'), utf8('b')]);
  lessor.attach(1n, [utf8('a')]);
  assert.equal(lessor.leaseOf(utf8('a')), 1n);
  assert.equal(lessor.lookup(1n)?.keyCount, 2);
  lessor.attach(2n, [utf8('b')]);
  assert.deepEqual(keyNames(lessor.lookup(1n)?.keys() ?? []), ['a']);
  assert.deepEqual(keyNames(lessor.lookup(2n)?.keys() ?? []), ['b']);
  lessor.detach(1n, [utf8('b'), utf8('zz')]); // not attached to lease 1: ignored
  assert.equal(lessor.leaseOf(utf8('b')), 2n);
  lessor.detach(2n, [utf8('b')]);
  assert.equal(lessor.leaseOf(utf8('b')), idNone);
  assert.equal(lessor.lookup(2n)?.keyCount, 0);
  expectLeaseError(() => lessor.attach(3n, [utf8('x')]), LeaseNotFoundError, 'lease-not-found', 'etcdserver: requested lease not found');
  expectLeaseError(() => lessor.detach(3n, [utf8('x')]), LeaseNotFoundError, 'lease-not-found', 'etcdserver: requested lease not found');
  lessor.checkInvariants();
});

test('keys are kept as bytes and listed in byte-wise order', () => {
  const { lessor } = setup();
  lessor.grant(1n, 10);
  const keys = [new Uint8Array([0xff]), new Uint8Array([0x61, 0x00]), new Uint8Array([0x61]), new Uint8Array([0xc3, 0xa9]), new Uint8Array([])];
  lessor.attach(1n, keys);
  assert.deepEqual(
    lessor.lookup(1n)?.keys().map(toHex),
    ['', '61', '6100', 'c3a9', 'ff'],
  );
});

test('revoke deletes exactly the attached keys, sorted, in one call, then the lease and its record', () => {
  const { lessor, store, deleteCalls } = setup();
  lessor.grant(1n, 10);
  lessor.grant(2n, 10);
  lessor.attach(1n, [utf8('k2'), utf8('k1'), utf8('k3')]);
  lessor.attach(2n, [utf8('other')]);
  assert.deepEqual(keyNames(lessor.revoke(1n)), ['k1', 'k2', 'k3']);
  assert.deepEqual(deleteCalls, [['k1', 'k2', 'k3']]);
  assert.equal(lessor.lookup(1n), undefined);
  assert.equal(store.get(1n), undefined);
  assert.equal(lessor.leaseOf(utf8('k1')), idNone);
  assert.equal(lessor.leaseOf(utf8('other')), 2n);
  expectLeaseError(() => lessor.revoke(1n), LeaseNotFoundError, 'lease-not-found', 'etcdserver: requested lease not found');
  lessor.checkInvariants();
});

test('revoking a lease without keys does not call the range deleter (no new revision)', () => {
  const { lessor, deleteCalls } = setup();
  lessor.grant(1n, 10);
  assert.deepEqual(lessor.revoke(1n), []);
  assert.deepEqual(deleteCalls, []);
});

test('revoke works when the range deleter does not detach (keys are dropped anyway)', () => {
  const clock = new ManualClock();
  const seen: string[][] = [];
  const lessor = new Lessor({ clock, minTtlSeconds: 2, store: new MemoryLeaseStore() });
  lessor.grant(1n, 10);
  lessor.attach(1n, [utf8('a')]);
  assert.throws(() => lessor.revoke(1n), /RangeDeleter/);
  lessor.setRangeDeleter({ deleteKeys: (keys) => seen.push(keyNames(keys)) });
  lessor.revoke(1n);
  assert.deepEqual(seen, [['a']]);
  assert.equal(lessor.leaseOf(utf8('a')), idNone);
  lessor.checkInvariants();
});

test('checkpoint records and persists the remainder; unknown leases are ignored', () => {
  const { lessor, store } = setup();
  lessor.grant(1n, 600);
  lessor.checkpoint(1n, 250);
  assert.equal(lessor.lookup(1n)?.remainingTtlSeconds, 250);
  assert.deepEqual(store.get(1n), { id: 1n, ttlSeconds: 600, remainingTtlSeconds: 250 });
  lessor.checkpoint(99n, 5);
  assert.equal(lessor.lookup(99n), undefined);
  lessor.checkpoint(1n, 0);
  assert.deepEqual(store.get(1n), { id: 1n, ttlSeconds: 600, remainingTtlSeconds: 0 });
});

test('a follower never expires leases and refuses leader-only calls', () => {
  const { lessor, clock } = setup();
  lessor.grant(1n, 5);
  clock.advance(1_000_000);
  assert.equal(lessor.isPrimary, false);
  assert.deepEqual(lessor.expiredLeases(), []);
  assert.deepEqual(lessor.checkpointsDue(), []);
  expectLeaseError(() => lessor.renew(1n), LeaseNotPrimaryError, 'lease-not-primary', 'not a primary lessor');
  expectLeaseError(() => lessor.timeToLive(1n), LeaseNotPrimaryError, 'lease-not-primary', 'not a primary lessor');
  lessor.checkInvariants();
});

test('promote starts every lease at now + TTL + extend; expiry is reported at that moment, not before', () => {
  const { lessor, clock } = setup();
  lessor.grant(1n, 5);
  lessor.grant(2n, 10);
  clock.advance(100_000);
  lessor.promote(1000);
  lessor.checkInvariants();
  clock.advance(5999);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(1);
  assert.deepEqual(lessor.expiredLeases(), [1n]);
  lessor.revoke(1n); // the leader's proposal applied
  clock.advance(4999);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(1);
  assert.deepEqual(lessor.expiredLeases(), [2n]);
});

test('a lease granted on the primary expires TTL after the grant', () => {
  const { lessor, clock } = setup();
  lessor.promote(0);
  clock.advance(50);
  lessor.grant(1n, 3);
  clock.advance(2999);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(1);
  assert.deepEqual(lessor.expiredLeases(), [1n]);
});

test('an expired lease is reported again every retry interval until revoked', () => {
  const { lessor, clock } = setup({ expiredRetryMs: 3000 });
  lessor.promote(0);
  lessor.grant(1n, 2);
  clock.advance(2000);
  assert.deepEqual(lessor.expiredLeases(), [1n]);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(2999);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(1);
  assert.deepEqual(lessor.expiredLeases(), [1n]);
  lessor.revoke(1n);
  clock.advance(10_000);
  assert.deepEqual(lessor.expiredLeases(), []);
  lessor.checkInvariants();
});

test('demote stops expiry; promote again restarts leases from their TTL', () => {
  const { lessor, clock } = setup();
  lessor.promote(0);
  lessor.grant(1n, 10);
  clock.advance(9000);
  lessor.demote();
  lessor.checkInvariants();
  clock.advance(60_000);
  assert.deepEqual(lessor.expiredLeases(), []);
  lessor.promote(0);
  clock.advance(9999);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(1);
  assert.deepEqual(lessor.expiredLeases(), [1n]);
});

test('promote counts from the checkpointed remainder', () => {
  const { lessor, clock } = setup();
  lessor.grant(1n, 600);
  lessor.checkpoint(1n, 100);
  lessor.promote(500);
  clock.advance(100_499);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(1);
  assert.deepEqual(lessor.expiredLeases(), [1n]);
});

test('renew restarts the lease at its full TTL and asks to clear a checkpointed remainder', () => {
  const { lessor, clock, store } = setup();
  lessor.grant(1n, 600);
  lessor.checkpoint(1n, 100);
  lessor.promote(0);
  clock.advance(50_000);
  assert.deepEqual(lessor.renew(1n), { ttlSeconds: 600, clearRemainingTtl: true });
  clock.advance(100_000);
  assert.deepEqual(lessor.expiredLeases(), [], 'renewed lease is no longer bound by the remainder');
  lessor.checkpoint(1n, 0); // the clear the server proposes
  assert.equal(store.get(1n)?.remainingTtlSeconds, 0);
  assert.deepEqual(lessor.renew(1n), { ttlSeconds: 600, clearRemainingTtl: false });
  clock.advance(599_999);
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(1);
  assert.deepEqual(lessor.expiredLeases(), [1n]);
});

test('renew of an unknown lease is not found; of an expired one is refused until revoked', async () => {
  const { lessor, clock } = setup();
  lessor.promote(0);
  expectLeaseError(() => lessor.renew(5n), LeaseNotFoundError, 'lease-not-found', 'etcdserver: requested lease not found');
  lessor.grant(1n, 2);
  clock.advance(2000);
  expectLeaseError(() => lessor.renew(1n), LeaseExpiredError, 'lease-expired', 'lease expired, revocation pending');
  const waiting = lessor.whenRevokedOrRetry(1n);
  lessor.revoke(1n);
  assert.equal(await waiting, 'revoked');
  assert.equal(await lessor.whenRevokedOrRetry(1n), 'revoked');
});

test('renew waiters are told to retry on demote and promote, and are bounded', async () => {
  const { lessor, clock } = setup({ renewWaitersMax: 1 });
  lessor.promote(0);
  lessor.grant(1n, 2);
  clock.advance(2000);
  const first = lessor.whenRevokedOrRetry(1n);
  assert.equal(await lessor.whenRevokedOrRetry(1n), 'retry', 'over the bound');
  lessor.demote();
  assert.equal(await first, 'retry');
  assert.equal(await lessor.whenRevokedOrRetry(1n), 'retry', 'not primary');
  lessor.promote(0);
  clock.advance(2000);
  const second = lessor.whenRevokedOrRetry(1n);
  lessor.promote(0);
  assert.equal(await second, 'retry');
});

test('timeToLive answers remaining seconds truncated, the granted TTL and optionally keys; unknown is -1', () => {
  const { lessor, clock } = setup();
  lessor.grant(1n, 10);
  lessor.attach(1n, [utf8('b'), utf8('a')]);
  lessor.promote(0);
  clock.advance(2500);
  assert.deepEqual(lessor.timeToLive(1n), { id: 1n, ttlSeconds: 7, grantedTtlSeconds: 10, keys: [] });
  assert.deepEqual(keyNames(lessor.timeToLive(1n, true).keys), ['a', 'b']);
  assert.deepEqual(lessor.timeToLive(2n, true), { id: 2n, ttlSeconds: -1, grantedTtlSeconds: 0, keys: [] });
  clock.advance(7600);
  assert.equal(Object.is(lessor.timeToLive(1n).ttlSeconds, 0), true, 'just expired: 0, not -0');
});

test('expired leases are rate limited to revokePerSecondMax with a half-second burst', () => {
  const { lessor, clock } = setup({ revokePerSecondMax: 10 });
  lessor.promote(0);
  for (let i = 1; i <= 30; i++) lessor.grant(BigInt(i), 2);
  clock.advance(2000);
  assert.deepEqual(lessor.expiredLeases(), [1n, 2n, 3n, 4n, 5n], 'burst of 5');
  assert.deepEqual(lessor.expiredLeases(), []);
  clock.advance(300);
  assert.deepEqual(lessor.expiredLeases(), [6n, 7n, 8n]);
  assert.deepEqual(lessor.expiredLeases(2), [], 'no tokens left');
  clock.advance(1000);
  assert.deepEqual(lessor.expiredLeases(2), [9n, 10n], 'the limit argument caps a batch');
  assert.equal(lessor.expiredLeases().length, 3, 'burst cap 5 minus the 2 just used');
});

test('promote spreads expiries so that a second holds at most 3/4 of the revoke rate', () => {
  const { lessor, clock } = setup({ revokePerSecondMax: 8 }); // 6 per second
  for (let i = 1; i <= 20; i++) lessor.grant(BigInt(i), 5);
  lessor.promote(0);
  const reportedAtMs = new Map<bigint, number>();
  for (let t = 0; t <= 20_000; t += 100) {
    for (const id of lessor.expiredLeases()) if (!reportedAtMs.has(id)) reportedAtMs.set(id, clock.nowMs());
    clock.advance(100);
  }
  assert.equal(reportedAtMs.size, 20);
  const times = [...reportedAtMs.values()].sort((a, b) => a - b);
  assert.ok((times[0] ?? 0) >= 5000, 'never before the TTL');
  for (let i = 6; i < times.length; i++) assert.ok((times[i] ?? 0) - (times[i - 6] ?? 0) >= 1000, `window at ${i}`);
  assert.deepEqual([...reportedAtMs.keys()].slice(0, 6), [1n, 2n, 3n, 4n, 5n, 6n], 'ties keep id order');
});

test('checkpoints: long leases get their remaining TTL every interval, short ones never', () => {
  const { lessor, clock } = setup({ checkpointIntervalMs: 10_000 });
  lessor.promote(0);
  lessor.grant(1n, 60);
  lessor.grant(2n, 10); // not longer than the interval
  lessor.grant(3n, 30);
  clock.advance(9_999);
  assert.deepEqual(lessor.checkpointsDue(), []);
  clock.advance(1);
  assert.deepEqual(
    lessor.checkpointsDue().map((c) => [c.ID, c.remainingTTL]),
    [[1n, 50], [3n, 20]],
  );
  assert.deepEqual(lessor.checkpointsDue(), [], 'rescheduled a full interval later');
  lessor.checkpoint(1n, 50);
  clock.advance(10_500);
  assert.deepEqual(
    lessor.checkpointsDue().map((c) => [c.ID, c.remainingTTL]),
    [[1n, 40], [3n, 10]],
    'remaining TTL rounds up',
  );
});

test('checkpoints skip renewed and expired leases but keep them scheduled', () => {
  const { lessor, clock } = setup({ checkpointIntervalMs: 10_000 });
  lessor.promote(0);
  lessor.grant(1n, 20);
  lessor.grant(2n, 20);
  clock.advance(9_500);
  lessor.renew(1n);
  clock.advance(500);
  assert.deepEqual(lessor.checkpointsDue().map((c) => c.ID), [2n], 'lease 1 would checkpoint its full TTL');
  clock.advance(10_000);
  assert.deepEqual(lessor.checkpointsDue().map((c) => [c.ID, c.remainingTTL]), [[1n, 10]], 'lease 2 expired');
});

test('checkpoints come in batches of checkpointBatchMax and stop when off or demoted', () => {
  const { lessor, clock } = setup({ checkpointIntervalMs: 1000, checkpointBatchMax: 2 });
  lessor.promote(0);
  for (let i = 1; i <= 5; i++) lessor.grant(BigInt(i), 10);
  clock.advance(1000);
  assert.equal(lessor.checkpointsDue().length, 2);
  assert.equal(lessor.checkpointsDue().length, 2);
  assert.equal(lessor.checkpointsDue(10).length, 1);
  lessor.demote();
  clock.advance(5000);
  assert.deepEqual(lessor.checkpointsDue(), []);
  const off = setup({ checkpointEnabled: false, checkpointIntervalMs: 1000 });
  off.lessor.promote(0);
  off.lessor.grant(1n, 10);
  off.clock.advance(5000);
  assert.deepEqual(off.lessor.checkpointsDue(), []);
});

test('a restarted lessor rebuilds leases from the store; keys come back through attach', () => {
  const { lessor, store, clock } = setup();
  lessor.grant(1n, 600);
  lessor.grant(2n, 30);
  lessor.checkpoint(1n, 100);
  lessor.attach(2n, [utf8('k')]);
  const restarted = new Lessor({ clock, minTtlSeconds: 40, store });
  assert.deepEqual(
    restarted.leases().map((l) => [l.id, l.ttlSeconds, l.remainingTtlSeconds, l.keyCount]),
    [[1n, 600, 100, 0], [2n, 40, 0, 0]],
    'TTLs below a raised minimum are raised',
  );
  restarted.attach(2n, [utf8('k')]);
  assert.equal(restarted.leaseOf(utf8('k')), 2n);
  restarted.checkInvariants();
});

test('recover replaces every lease with the store content, and keeps the primary expiring them', async () => {
  const { lessor, store, clock } = setup();
  lessor.promote(0);
  lessor.grant(1n, 2);
  lessor.attach(1n, [utf8('k')]);
  clock.advance(2000);
  const waiting = lessor.whenRevokedOrRetry(1n);
  store.delete(1n);
  store.put({ id: 9n, ttlSeconds: 5, remainingTtlSeconds: 0 });
  lessor.recover();
  assert.equal(await waiting, 'retry');
  assert.deepEqual(lessor.leases().map((l) => l.id), [9n]);
  assert.equal(lessor.leaseOf(utf8('k')), idNone);
  lessor.checkInvariants();
  clock.advance(5000);
  assert.deepEqual(lessor.expiredLeases(), [9n]);
});

test('metrics count grants, revokes and renewals and bucket TTLs', () => {
  const registry = new Registry();
  const { lessor } = setup({ registry });
  lessor.grant(1n, 10);
  lessor.grant(2n, 3);
  lessor.promote(0);
  lessor.renew(1n);
  lessor.revoke(2n);
  const text = registry.render();
  assert.match(text, /^etcd_debugging_lease_granted_total 2$/m);
  assert.match(text, /^etcd_debugging_lease_revoked_total 1$/m);
  assert.match(text, /^etcd_debugging_lease_renewed_total 1$/m);
  assert.match(text, /^etcd_debugging_lease_ttl_total_bucket\{le="4"\} 1$/m);
  assert.match(text, /^etcd_debugging_lease_ttl_total_bucket\{le="16"\} 2$/m);
});
