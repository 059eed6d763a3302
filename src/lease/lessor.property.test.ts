// Two members, each with its own lessor, store, clock and tiny KV, are fed the
// same apply stream (grant, revoke, put/delete with leases, checkpoint) while
// their leadership and clocks move independently (advance, promote, demote,
// renew, restart). What either one reports as expired or due for a checkpoint
// may be "proposed" and then applies to both, as through raft.
//
// Checked after every step against a naive model (plain maps, scans):
// - deterministic state (leases, TTLs, remainders, attached keys, store
//   records, KV) is equal on both members and to the model;
// - revoke deletes exactly the model's attached keys, sorted, in one call;
// - expiredLeases reports exactly the leases whose expiry (last grant on the
//   primary / renew / promote + TTL) has passed and that were not reported in
//   the last retry interval, so never before the TTL and always once due;
// - checkpointsDue reports exactly the due long leases, with the true
//   remaining TTL;
// - renew and timeToLive answer as the model says.
// At the end every lease is reported once each member's clock is far enough on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock, compareBytes, idNone, toHex, type LeaseId } from '../base/index.js';
import { LeaseError, Lessor, MemoryLeaseStore } from './index.js';

const minTtlSeconds = 2;
const checkpointIntervalMs = 5000;
const expiredRetryMs = 3000;
const ttlMaxSeconds = 9_000_000_000;

const leaseIdPool: readonly LeaseId[] = [1n, 2n, 3n, -4n, 1n << 40n];
const keyPool: readonly Uint8Array[] = [[0x61], [0x61, 0x00], [0xff], [0x62], [0xc3, 0xa9], []].map((a) => new Uint8Array(a));

type Who = 0 | 1;
type Cmd =
  | { readonly kind: 'grant'; readonly id: LeaseId; readonly ttl: number }
  | { readonly kind: 'revoke'; readonly id: LeaseId }
  | { readonly kind: 'put'; readonly key: number; readonly id: LeaseId }
  | { readonly kind: 'del'; readonly key: number }
  | { readonly kind: 'checkpoint'; readonly id: LeaseId; readonly remaining: number }
  | { readonly kind: 'strayDetach'; readonly id: LeaseId; readonly key: number }
  | { readonly kind: 'advance'; readonly who: Who; readonly ms: number }
  | { readonly kind: 'advanceNear'; readonly who: Who; readonly pick: number; readonly deltaMs: number }
  | { readonly kind: 'promote'; readonly who: Who; readonly extendMs: number }
  | { readonly kind: 'demote'; readonly who: Who }
  | { readonly kind: 'renew'; readonly who: Who; readonly id: LeaseId }
  | { readonly kind: 'expire'; readonly who: Who; readonly commit: boolean }
  | { readonly kind: 'checkpoints'; readonly who: Who; readonly commit: boolean }
  | { readonly kind: 'ttl'; readonly who: Who; readonly id: LeaseId }
  | { readonly kind: 'restart'; readonly who: Who };

const idArb = fc.constantFrom(...leaseIdPool);
const whoArb = fc.constantFrom<Who>(0, 1);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('grant' as const), id: fc.oneof(idArb, fc.constant(idNone)), ttl: fc.constantFrom(-1, 1, 2, 3, 5, 8, 13, 30, ttlMaxSeconds + 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('revoke' as const), id: idArb }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.nat(keyPool.length - 1), id: fc.oneof(idArb, fc.constant(idNone)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('del' as const), key: fc.nat(keyPool.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('checkpoint' as const), id: idArb, remaining: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('strayDetach' as const), id: idArb, key: fc.nat(keyPool.length - 1) }) },
  // Lands on (or 1 ms around) a time the model says something happens, where off-by-one bugs live.
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('advanceNear' as const), who: whoArb, pick: fc.nat(10), deltaMs: fc.constantFrom(-1, 0, 1) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('advance' as const), who: whoArb, ms: fc.integer({ min: 0, max: 12_000 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('promote' as const), who: whoArb, extendMs: fc.constantFrom(0, 1, 1000, 2000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('demote' as const), who: whoArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('renew' as const), who: whoArb, id: idArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('expire' as const), who: whoArb, commit: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('checkpoints' as const), who: whoArb, commit: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ttl' as const), who: whoArb, id: idArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), who: whoArb }) },
);

interface ModelLease {
  ttl: number;
  remaining: number;
}

/** What the member's leader half should be doing, per lease. */
interface LeaderModel {
  primary: boolean;
  expiryMs: Map<LeaseId, number>;
  nextReportMs: Map<LeaseId, number>;
  checkpointDueMs: Map<LeaseId, number>;
}

interface Member {
  readonly clock: ManualClock;
  readonly store: MemoryLeaseStore;
  lessor: Lessor;
  /** The fake mvcc: key (hex) to its lease (idNone for none). */
  readonly kv: Map<string, LeaseId>;
  readonly deleteCalls: string[][];
  readonly leader: LeaderModel;
}

function newMember(startMs: number): Member {
  const clock = new ManualClock(startMs);
  const store = new MemoryLeaseStore();
  const m: Member = {
    clock,
    store,
    lessor: undefined as unknown as Lessor,
    kv: new Map(),
    deleteCalls: [],
    leader: { primary: false, expiryMs: new Map(), nextReportMs: new Map(), checkpointDueMs: new Map() },
  };
  m.lessor = openLessor(m);
  return m;
}

function openLessor(m: Member): Lessor {
  return new Lessor({
    clock: m.clock,
    store: m.store,
    minTtlSeconds,
    checkpointIntervalMs,
    expiredRetryMs,
    revokePerSecondMax: 1e9,
    rangeDeleter: {
      // As mvcc would: one call, deletes and detaches each key.
      deleteKeys(keys) {
        assert.ok(keys.length > 0, 'deleteKeys with no keys');
        for (let i = 1; i < keys.length; i++) assert.ok(compareBytes(keys[i - 1] as Uint8Array, keys[i] as Uint8Array) < 0, 'keys sorted and distinct');
        m.deleteCalls.push(keys.map(toHex));
        for (const k of keys) {
          const l = m.lessor.leaseOf(k);
          if (l !== idNone) m.lessor.detach(l, [k]);
          m.kv.delete(toHex(k));
        }
      },
    },
  });
}

/** How often the interesting paths were reached, so the generator is known to reach them. */
const reached = { commands: 0, revokesWithKeys: 0, expiredReported: 0, checkpointsReported: 0, renewed: 0, renewExpired: 0, restarts: 0 };

class World {
  readonly leases = new Map<LeaseId, ModelLease>();
  readonly kv = new Map<string, LeaseId>();
  readonly members: readonly [Member, Member] = [newMember(0), newMember(1_000_000)];

  member(who: Who): Member {
    return this.members[who];
  }

  /** Runs fn on both members; both must answer the same (value or error code). */
  onBoth<T>(fn: (m: Member) => T): { value?: T; code?: string } {
    const answers = this.members.map((m) => {
      try {
        return { value: fn(m) };
      } catch (e) {
        if (e instanceof LeaseError) return { code: e.code };
        throw e;
      }
    });
    assert.deepEqual(answers[0], answers[1], 'members answered the same apply differently');
    return answers[0] as { value?: T; code?: string };
  }

  attachedKeys(id: LeaseId): string[] {
    return [...this.kv].filter(([, l]) => l === id).map(([k]) => k).sort();
  }

  // ---- the apply stream ----

  grant(id: LeaseId, ttl: number): void {
    const expectedCode = id === idNone ? 'lease-not-found' : ttl > ttlMaxSeconds ? 'lease-ttl-too-large' : this.leases.has(id) ? 'lease-exists' : undefined;
    const r = this.onBoth((m) => m.lessor.grant(id, ttl).ttlSeconds);
    assert.equal(r.code, expectedCode);
    if (expectedCode !== undefined) return;
    const granted = Math.max(ttl, minTtlSeconds);
    assert.equal(r.value, granted);
    this.leases.set(id, { ttl: granted, remaining: 0 });
    for (const m of this.members) {
      if (!m.leader.primary) continue;
      this.refresh(m, id, granted, 0);
      this.scheduleCheckpoint(m, id);
    }
  }

  revoke(id: LeaseId): void {
    const expected = this.leases.has(id) ? this.attachedKeys(id) : undefined;
    const callsBefore = this.members.map((m) => m.deleteCalls.length);
    const r = this.onBoth((m) => m.lessor.revoke(id).map(toHex));
    if (expected === undefined) {
      assert.equal(r.code, 'lease-not-found');
      return;
    }
    assert.deepEqual(r.value, expected, 'revoke returns exactly the attached keys');
    if (expected.length > 0) reached.revokesWithKeys++;
    this.members.forEach((m, i) => {
      assert.deepEqual(m.deleteCalls.slice(callsBefore[i]), expected.length === 0 ? [] : [expected], 'one delete of exactly those keys');
      for (const map of [m.leader.expiryMs, m.leader.nextReportMs, m.leader.checkpointDueMs]) map.delete(id);
    });
    this.leases.delete(id);
    for (const k of expected) this.kv.delete(k);
  }

  put(keyAt: number, id: LeaseId): void {
    // The server rejects a put with an unknown lease before it reaches apply.
    if (id !== idNone && !this.leases.has(id)) return;
    const key = keyPool[keyAt] as Uint8Array;
    const k = toHex(key);
    this.onBoth((m) => {
      const old = m.kv.get(k) ?? idNone;
      if (old !== idNone) m.lessor.detach(old, [key]);
      m.kv.set(k, id);
      if (id !== idNone) m.lessor.attach(id, [key]);
    });
    this.kv.set(k, id);
  }

  del(keyAt: number): void {
    const key = keyPool[keyAt] as Uint8Array;
    const k = toHex(key);
    this.onBoth((m) => {
      const old = m.kv.get(k);
      if (old === undefined) return;
      if (old !== idNone) m.lessor.detach(old, [key]);
      m.kv.delete(k);
    });
    this.kv.delete(k);
  }

  /** A detach of a key not attached to that lease changes nothing (or the lease is unknown). */
  strayDetach(id: LeaseId, keyAt: number): void {
    const key = keyPool[keyAt] as Uint8Array;
    if (this.kv.get(toHex(key)) === id) return;
    const r = this.onBoth((m) => m.lessor.detach(id, [key]));
    assert.equal(r.code, this.leases.has(id) ? undefined : 'lease-not-found');
  }

  checkpoint(id: LeaseId, remaining: number): void {
    this.onBoth((m) => m.lessor.checkpoint(id, remaining));
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    lease.remaining = remaining;
    for (const m of this.members) if (m.leader.primary) this.scheduleCheckpoint(m, id);
  }

  // ---- the leader model ----

  refresh(m: Member, id: LeaseId, ttlSeconds: number, extendMs: number): void {
    const expiry = m.clock.nowMs() + ttlSeconds * 1000 + extendMs;
    m.leader.expiryMs.set(id, expiry);
    m.leader.nextReportMs.set(id, expiry);
  }

  scheduleCheckpoint(m: Member, id: LeaseId): void {
    const lease = this.leases.get(id);
    if (lease !== undefined && lease.ttl * 1000 > checkpointIntervalMs) m.leader.checkpointDueMs.set(id, m.clock.nowMs() + checkpointIntervalMs);
  }

  advanceNear(who: Who, pick: number, deltaMs: number): void {
    const m = this.member(who);
    const now = m.clock.nowMs();
    const times = [...m.leader.expiryMs.values(), ...m.leader.nextReportMs.values(), ...m.leader.checkpointDueMs.values()]
      .map((t) => t + deltaMs)
      .filter((t) => t > now)
      .sort((a, b) => a - b);
    const target = times[pick % Math.max(1, times.length)];
    if (target !== undefined) m.clock.advance(target - now);
  }

  clearLeader(m: Member): void {
    m.leader.primary = false;
    m.leader.expiryMs.clear();
    m.leader.nextReportMs.clear();
    m.leader.checkpointDueMs.clear();
  }

  promote(who: Who, extendMs: number): void {
    const m = this.member(who);
    m.lessor.promote(extendMs);
    m.leader.primary = true;
    for (const [id, l] of this.leases) {
      this.refresh(m, id, l.remaining > 0 ? l.remaining : l.ttl, extendMs);
      this.scheduleCheckpoint(m, id);
    }
  }

  renew(who: Who, id: LeaseId): void {
    const m = this.member(who);
    const lease = this.leases.get(id);
    const expiry = m.leader.expiryMs.get(id);
    let expected: { value?: { ttlSeconds: number; clearRemainingTtl: boolean }; code?: string };
    if (!m.leader.primary) expected = { code: 'lease-not-primary' };
    else if (lease === undefined) expected = { code: 'lease-not-found' };
    else if (expiry !== undefined && expiry <= m.clock.nowMs()) expected = { code: 'lease-expired' };
    else expected = { value: { ttlSeconds: lease.ttl, clearRemainingTtl: lease.remaining > 0 } };
    let actual: typeof expected;
    try {
      actual = { value: m.lessor.renew(id) };
    } catch (e) {
      assert.ok(e instanceof LeaseError);
      actual = { code: e.code };
    }
    assert.deepEqual(actual, expected);
    if (expected.code === 'lease-expired') reached.renewExpired++;
    if (expected.value === undefined || lease === undefined) return;
    reached.renewed++;
    this.refresh(m, id, lease.ttl, 0);
    // The server proposes the clear before answering the keepalive.
    if (expected.value.clearRemainingTtl) this.checkpoint(id, 0);
  }

  expire(who: Who, commit: boolean): void {
    const m = this.member(who);
    const now = m.clock.nowMs();
    const due = m.leader.primary
      ? [...m.leader.nextReportMs].filter(([, t]) => t <= now).sort(([a, ta], [b, tb]) => ta - tb || (a < b ? -1 : 1))
      : [];
    for (const [id, expiry] of m.leader.expiryMs) {
      assert.ok(!due.some(([d]) => d === id) || expiry <= now, 'never reported before its expiry');
    }
    assert.deepEqual(m.lessor.expiredLeases(), due.map(([id]) => id));
    reached.expiredReported += due.length;
    for (const [id] of due) m.leader.nextReportMs.set(id, now + expiredRetryMs);
    if (commit) for (const [id] of due) this.revoke(id);
  }

  checkpoints(who: Who, commit: boolean): void {
    const m = this.member(who);
    const now = m.clock.nowMs();
    const due = m.leader.primary
      ? [...m.leader.checkpointDueMs].filter(([, t]) => t <= now).sort(([a, ta], [b, tb]) => ta - tb || (a < b ? -1 : 1))
      : [];
    const expected: Array<[LeaseId, number]> = [];
    for (const [id] of due) {
      this.scheduleCheckpoint(m, id);
      const expiry = m.leader.expiryMs.get(id) ?? Infinity;
      const remaining = Math.ceil((expiry - now) / 1000);
      if (expiry > now && remaining < (this.leases.get(id)?.ttl ?? 0)) expected.push([id, remaining]);
    }
    const actual = m.lessor.checkpointsDue().map((c): [LeaseId, number] => [c.ID, c.remainingTTL]);
    assert.deepEqual(actual, expected);
    reached.checkpointsReported += actual.length;
    if (commit) for (const [id, remaining] of actual) this.checkpoint(id, remaining);
  }

  ttl(who: Who, id: LeaseId): void {
    const m = this.member(who);
    if (!m.leader.primary) {
      assert.throws(() => m.lessor.timeToLive(id), (e: unknown) => e instanceof LeaseError && e.code === 'lease-not-primary');
      return;
    }
    const lease = this.leases.get(id);
    const expiry = m.leader.expiryMs.get(id) ?? 0;
    const expected =
      lease === undefined
        ? { id, ttlSeconds: -1, grantedTtlSeconds: 0, keys: [] }
        : { id, ttlSeconds: Math.trunc((expiry - m.clock.nowMs()) / 1000) + 0, grantedTtlSeconds: lease.ttl, keys: this.attachedKeys(id) };
    const actual = m.lessor.timeToLive(id, true);
    assert.deepEqual({ ...actual, keys: actual.keys.map(toHex) }, expected);
  }

  restart(who: Who): void {
    const m = this.member(who);
    m.lessor = openLessor(m);
    reached.restarts++;
    // mvcc re-attaches every key that carries a lease.
    for (const [k, id] of m.kv) if (id !== idNone) m.lessor.attach(id, [Buffer.from(k, 'hex')]);
    this.clearLeader(m);
  }

  run(cmd: Cmd): void {
    switch (cmd.kind) {
      case 'grant': return this.grant(cmd.id, cmd.ttl);
      case 'revoke': return this.revoke(cmd.id);
      case 'put': return this.put(cmd.key, cmd.id);
      case 'del': return this.del(cmd.key);
      case 'checkpoint': return this.checkpoint(cmd.id, cmd.remaining);
      case 'strayDetach': return this.strayDetach(cmd.id, cmd.key);
      case 'advance': return this.member(cmd.who).clock.advance(cmd.ms);
      case 'advanceNear': return this.advanceNear(cmd.who, cmd.pick, cmd.deltaMs);
      case 'promote': return this.promote(cmd.who, cmd.extendMs);
      case 'demote':
        this.member(cmd.who).lessor.demote();
        return this.clearLeader(this.member(cmd.who));
      case 'renew': return this.renew(cmd.who, cmd.id);
      case 'expire': return this.expire(cmd.who, cmd.commit);
      case 'checkpoints': return this.checkpoints(cmd.who, cmd.commit);
      case 'ttl': return this.ttl(cmd.who, cmd.id);
      case 'restart': return this.restart(cmd.who);
    }
  }

  /** Deterministic state must be equal on both members and to the model. */
  check(): void {
    const expected = [...this.leases]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([id, l]) => ({ id, ttl: l.ttl, remaining: l.remaining, keys: this.attachedKeys(id) }));
    const expectedKv = [...this.kv].sort();
    for (const m of this.members) {
      m.lessor.checkInvariants();
      assert.equal(m.lessor.isPrimary, m.leader.primary);
      const state = m.lessor.leases().map((l) => ({ id: l.id, ttl: l.ttlSeconds, remaining: l.remainingTtlSeconds, keys: l.keys().map(toHex) }));
      assert.deepEqual(state, expected);
      const stored = m.store.loadAll().sort((a, b) => (a.id < b.id ? -1 : 1));
      assert.deepEqual(stored, expected.map((l) => ({ id: l.id, ttlSeconds: l.ttl, remainingTtlSeconds: l.remaining })));
      assert.deepEqual([...m.kv].sort(), expectedKv);
      for (const [k, id] of this.kv) assert.equal(m.lessor.leaseOf(Buffer.from(k, 'hex')), id);
    }
  }

  /** Once a member leads and its clock is far enough on, every lease is reported. */
  checkEventualExpiry(): void {
    for (const m of this.members) {
      if (!m.lessor.isPrimary) m.lessor.promote(0);
      m.clock.advance(3_600_000);
      assert.deepEqual(new Set(m.lessor.expiredLeases()), new Set(this.leases.keys()));
    }
  }
}

test('lessors fed the same apply stream agree with each other and with the model, whatever their clocks and leadership', () => {
  fc.assert(
    fc.property(fc.array(cmdArb, { minLength: 10, maxLength: 100, size: 'max' }), (cmds) => {
      const world = new World();
      for (const cmd of cmds) {
        reached.commands++;
        world.run(cmd);
        world.check();
      }
      world.checkEventualExpiry();
    }),
    { numRuns: Number(process.env['LEASE_PROPERTY_RUNS'] ?? 1000) },
  );
  for (const [path, count] of Object.entries(reached)) assert.ok(count > 0, `the generator never reached ${path}`);
});
