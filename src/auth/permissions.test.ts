/**
 * The permission checker against naive oracles: (1) an exact one that walks
 * the request range from its start, hopping from grant to covering grant
 * (no merging, no binary search), and (2) a brute-force one that enumerates
 * every key over a small alphabet and checks each touched key against the
 * grants one by one. Requests are random nested txns, puts with prev_kv and
 * leases, deletes with prev_kv, watches and lease key listings.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compareBytes, prefixEnd, toHex, utf8 } from '../base/index.js';
import { authpb, etcdserverpb, serverpb } from '../pb/index.js';
import {
  AuthStore,
  KeyRangeSet,
  authInfoFromHeader,
  requireAuthInfo,
  requiresAdmin,
  MemoryAuthBackend,
  checkDeleteRangeRequest,
  checkLeaseRevoke,
  checkLeaseTimeToLive,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  checkWatchCreate,
  encodeHashedPassword,
  isValidPermissionRange,
  txnNestingMax,
  type AuthInfo,
} from './index.js';

const runs = Number(process.env['AUTH_PROPERTY_RUNS'] ?? 300);
const alphabet = [0x00, 0x01, 0x61, 0x62, 0xff];
const b = (...bytes: number[]): Uint8Array => new Uint8Array(bytes);
const none = new Uint8Array(0);

// ---- oracles ----

interface Grant {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
}

const isOpen = (e: Uint8Array): boolean => e.length === 1 && e[0] === 0;
const withZero = (k: Uint8Array): Uint8Array => Uint8Array.from([...k, 0]);

/** The key set of a grant as [start, end) with null = unbounded. */
function grantSpan(g: Grant): [Uint8Array, Uint8Array | null] {
  if (g.rangeEnd.length === 0) return [g.key, withZero(g.key)];
  if (isOpen(g.rangeEnd)) return [g.key, null];
  return [g.key, g.rangeEnd];
}

function grantHas(g: Grant, k: Uint8Array): boolean {
  const [s, e] = grantSpan(g);
  return compareBytes(s, k) <= 0 && (e === null || compareBytes(k, e) < 0);
}

/** The request's key set as [start, end), by etcd's conventions (inverted ranges judged by their key). */
function requestSpan(key: Uint8Array, rangeEnd: Uint8Array): [Uint8Array, Uint8Array | null] {
  if (rangeEnd.length === 0) return [key, withZero(key)];
  const start = key.length === 0 ? b(0) : key;
  if (isOpen(rangeEnd)) return [start, null];
  if (compareBytes(rangeEnd, start) <= 0) return [start, withZero(start)];
  return [start, rangeEnd];
}

/** Oracle 1, exact: hop from the request's start through covering grants. */
function sweepCovers(grants: readonly Grant[], key: Uint8Array, rangeEnd: Uint8Array): boolean {
  const [start, end] = requestSpan(key, rangeEnd);
  let x = start;
  for (let hops = 0; hops <= grants.length; hops++) {
    let best: Uint8Array | null | undefined;
    for (const g of grants) {
      const [s, e] = grantSpan(g);
      if (compareBytes(s, x) > 0 || (e !== null && compareBytes(x, e) >= 0)) continue;
      if (e === null) best = null;
      else if (best !== null && (best === undefined || compareBytes(e, best) > 0)) best = e;
    }
    if (best === undefined) return false;
    if (best === null) return true;
    if (end !== null && compareBytes(best, end) >= 0) return true;
    x = best;
  }
  return false;
}

/** Every key of length 1..3 over the alphabet, sorted. */
const universe: Uint8Array[] = (() => {
  const out: Uint8Array[] = [];
  const grow = (prefix: number[]): void => {
    if (prefix.length > 0) out.push(Uint8Array.from(prefix));
    if (prefix.length < 3) for (const c of alphabet) grow([...prefix, c]);
  };
  grow([]);
  return out.sort(compareBytes);
})();

/** The keys of the universe a request really touches (an inverted range touches none). */
function touched(key: Uint8Array, rangeEnd: Uint8Array): Uint8Array[] {
  if (rangeEnd.length === 0) return universe.filter((k) => compareBytes(k, key) === 0);
  if (isOpen(rangeEnd)) return universe.filter((k) => compareBytes(k, key) >= 0);
  return universe.filter((k) => compareBytes(k, key) >= 0 && compareBytes(k, rangeEnd) < 0);
}

/** Oracle 2, brute force: every touched key is in some grant. */
function bruteAllowed(grants: readonly Grant[], key: Uint8Array, rangeEnd: Uint8Array): boolean {
  return touched(key, rangeEnd).every((k) => grants.some((g) => grantHas(g, k)));
}

// ---- generators ----

const keyArb = fc.array(fc.constantFrom(...alphabet), { minLength: 0, maxLength: 3 }).map((a) => Uint8Array.from(a));
const nonEmptyKeyArb = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 3 }).map((a) => Uint8Array.from(a));

/** A (key, range_end) pair in every shape: one key, from key, prefix, explicit, inverted. */
function rangeArb(keys: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Grant> {
  return fc.tuple(keys, fc.constantFrom('point', 'from', 'prefix', 'any'), keyArb).map(([key, shape, other]) => {
    switch (shape) {
      case 'point':
        return { key, rangeEnd: none };
      case 'from':
        return { key, rangeEnd: b(0) };
      case 'prefix':
        return { key, rangeEnd: key.length === 0 ? b(0) : prefixEnd(key) };
      case 'any':
        return { key, rangeEnd: other };
    }
  });
}

test('KeyRangeSet: points, ranges, from-key, touching and nested grants', () => {
  const set = (grants: Grant[]): KeyRangeSet => new KeyRangeSet(grants.map((g) => {
    const [start, end] = grantSpan(g);
    return { start, end };
  }));
  const s = set([{ key: utf8('a'), rangeEnd: utf8('c') }]);
  assert.equal(s.covers(utf8('a'), utf8('c')), true);
  assert.equal(s.covers(utf8('a'), utf8('d')), false, 'READ [a, c) does not permit [a, d)');
  assert.equal(s.covers(utf8('b'), none), true);
  assert.equal(s.covers(utf8('c'), none), false);
  assert.equal(s.covers(utf8('a'), b(0)), false, 'from-key needs an open-ended grant');
  const point = set([{ key: utf8('a'), rangeEnd: none }]);
  assert.equal(point.covers(utf8('a'), none), true);
  assert.equal(point.covers(utf8('a'), b(0)), false, 'one key does not permit a from-key watch (GHSA-xg4h-6gfc-h4m8)');
  assert.equal(point.covers(utf8('a'), prefixEnd(utf8('a'))), false);
  assert.equal(point.covers(utf8('a'), Uint8Array.from([0x61, 0])), true, '[a, a\\x00) is exactly the key a');
  const touching = set([{ key: utf8('a'), rangeEnd: utf8('b') }, { key: utf8('b'), rangeEnd: utf8('c') }, { key: utf8('c'), rangeEnd: none }]);
  assert.equal(touching.covers(utf8('a'), Uint8Array.from([0x63, 0])), true);
  assert.equal(touching.intervalCount, 1);
  const all = set([{ key: b(0), rangeEnd: b(0) }]);
  assert.equal(all.covers(b(0), b(0)), true);
  assert.equal(all.covers(none, b(0)), true, 'an empty start key means the first key');
  assert.equal(all.covers(none, none), false, 'the empty key itself is no key');
  assert.equal(isValidPermissionRange(utf8('b'), utf8('a')), false);
  assert.equal(isValidPermissionRange(none, b(0)), false);
});

test('property: merged interval checks equal the sweep oracle and are sound against brute force', () => {
  fc.assert(
    fc.property(fc.array(rangeArb(nonEmptyKeyArb), { maxLength: 8 }), fc.array(rangeArb(keyArb), { minLength: 1, maxLength: 8 }), (raw, requests) => {
      const grants = raw.filter((g) => isValidPermissionRange(g.key, g.rangeEnd));
      const set = new KeyRangeSet(grants.map((g) => {
        const [start, end] = grantSpan(g);
        return { start, end };
      }));
      for (const r of requests) {
        const got = set.covers(r.key, r.rangeEnd);
        assert.equal(got, sweepCovers(grants, r.key, r.rangeEnd));
        if (got) assert.ok(bruteAllowed(grants, r.key, r.rangeEnd), 'permitted a key outside every grant');
        if (r.rangeEnd.length === 0) assert.equal(set.coversKey(r.key), got);
      }
    }),
    { numRuns: runs * 3 },
  );
});

// ---- whole requests through the store ----

interface World {
  readonly store: AuthStore;
  readonly grantsOf: Map<string, { read: Grant[]; write: Grant[] }>;
  readonly leases: Map<bigint, Uint8Array[]>;
}

const roleArb = fc.record({
  read: fc.array(rangeArb(nonEmptyKeyArb), { maxLength: 5 }),
  write: fc.array(rangeArb(nonEmptyKeyArb), { maxLength: 5 }),
  both: fc.array(rangeArb(nonEmptyKeyArb), { maxLength: 3 }),
});
const worldArb = fc.record({
  roles: fc.array(roleArb, { minLength: 1, maxLength: 3 }),
  users: fc.array(fc.subarray([0, 1, 2]), { minLength: 1, maxLength: 3 }),
  leases: fc.array(fc.array(nonEmptyKeyArb, { maxLength: 3 }), { maxLength: 3 }),
});

interface WorldSpec {
  readonly roles: readonly { read: Grant[]; write: Grant[]; both: Grant[] }[];
  /** Per user, the indexes of their roles (those past the end are skipped). */
  readonly users: readonly number[][];
  readonly leases: readonly Uint8Array[][];
}

function buildWorld(spec: WorldSpec): World {
  const store = new AuthStore({ backend: new MemoryAuthBackend() });
  const hashedPassword = encodeHashedPassword('$2b$04$abcdefghijklmnopqrstuu5Q9l7wqfZ3cEbhT2mCyd2QcU7Q9q6W2');
  const valid = (g: Grant): boolean => isValidPermissionRange(g.key, g.rangeEnd);
  // What each role ends up granting, as etcd keeps it: a grant changes the type of the first grant
  // of its key (the list sorted by key) when that one has the same range end, and is added
  // otherwise, even beside an equal one further on. The checks are judged against the role as
  // stored; it must be this model's whenever Go's sort is stable (up to 12 grants).
  const effective = spec.roles.map((role, i) => {
    store.roleAdd({ name: `r${i}` });
    const model: { g: Grant; permType: authpb.Permission_Type }[] = [];
    const kinds: [Grant[], authpb.Permission_Type][] = [[role.read, 0], [role.write, 1], [role.both, 2]];
    for (const [grants, permType] of kinds) {
      for (const g of grants) {
        const req = { name: `r${i}`, perm: authpb.Permission.create({ permType, key: g.key, rangeEnd: g.rangeEnd }) };
        if (!valid(g)) {
          assert.throws(() => store.roleGrantPermission(req));
          continue;
        }
        store.roleGrantPermission(req);
        const first = model.find((x) => compareBytes(x.g.key, g.key) >= 0);
        if (first !== undefined && compareBytes(first.g.key, g.key) === 0 && compareBytes(first.g.rangeEnd, g.rangeEnd) === 0) first.permType = permType;
        else {
          model.push({ g, permType });
          model.sort((x, y) => compareBytes(x.g.key, y.g.key));
        }
      }
    }
    const stored = store.roleGet(`r${i}`).map((p) => ({ g: { key: p.key, rangeEnd: p.rangeEnd }, permType: p.permType }));
    const text = (l: typeof model): string[] => l.map((x) => `${toHex(x.g.key)}|${toHex(x.g.rangeEnd)}|${x.permType}`);
    if (model.length <= 12) assert.deepEqual(text(stored), text(model));
    return { read: stored.filter((x) => x.permType !== 1).map((x) => x.g), write: stored.filter((x) => x.permType !== 0).map((x) => x.g) };
  });
  const grantsOf = new Map<string, { read: Grant[]; write: Grant[] }>();
  spec.users.forEach((roles, i) => {
    const name = `u${i}`;
    store.userAdd(etcdserverpb.AuthUserAddRequest.create({ name, hashedPassword }));
    const read: Grant[] = [];
    const write: Grant[] = [];
    for (const r of roles) {
      const role = effective[r];
      if (role === undefined) continue;
      store.userGrantRole({ user: name, role: `r${r}` });
      read.push(...role.read);
      write.push(...role.write);
    }
    grantsOf.set(name, { read, write });
  });
  store.userAdd(etcdserverpb.AuthUserAddRequest.create({ name: 'root', hashedPassword }));
  store.userGrantRole({ user: 'root', role: 'root' });
  store.authEnable();
  const leases = new Map<bigint, Uint8Array[]>();
  spec.leases.forEach((keys, i) => leases.set(BigInt(i + 1), keys));
  return { store, grantsOf, leases };
}

type Access = { readonly write: boolean; readonly key: Uint8Array; readonly rangeEnd: Uint8Array };

/** Every access a txn can make, listed from the request independently of the checker. */
function accessesOfOps(ops: readonly etcdserverpb.RequestOp[], leases: Map<bigint, Uint8Array[]>, out: Access[]): Access[] {
  for (const op of ops) {
    const r = op.request;
    if (r === undefined) continue;
    if (r.case === 'requestRange') out.push({ write: false, key: r.value.key, rangeEnd: r.value.rangeEnd });
    if (r.case === 'requestPut') {
      out.push({ write: true, key: r.value.key, rangeEnd: none });
      if (r.value.prevKv) out.push({ write: false, key: r.value.key, rangeEnd: none });
      for (const k of leases.get(r.value.lease) ?? []) out.push({ write: true, key: k, rangeEnd: none });
    }
    if (r.case === 'requestDeleteRange') {
      out.push({ write: true, key: r.value.key, rangeEnd: r.value.rangeEnd });
      if (r.value.prevKv) out.push({ write: false, key: r.value.key, rangeEnd: r.value.rangeEnd });
    }
    if (r.case === 'requestTxn') accessesOfTxn(r.value, leases, out);
  }
  return out;
}

function accessesOfTxn(t: etcdserverpb.TxnRequest, leases: Map<bigint, Uint8Array[]>, out: Access[]): Access[] {
  for (const c of t.compare) out.push({ write: false, key: c.key, rangeEnd: c.rangeEnd });
  accessesOfOps(t.success, leases, out);
  accessesOfOps(t.failure, leases, out);
  return out;
}

const leaseArb = fc.constantFrom(0n, 1n, 2n, 3n, 9n);
const opArb: fc.Arbitrary<etcdserverpb.RequestOp> = fc.letrec<{ op: etcdserverpb.RequestOp; txn: etcdserverpb.TxnRequest }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    rangeArb(keyArb).map((g) => etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: etcdserverpb.RangeRequest.create(g) } })),
    fc.tuple(keyArb, fc.boolean(), leaseArb).map(([key, prevKv, lease]) =>
      etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key, prevKv, lease }) } })),
    fc.tuple(rangeArb(keyArb), fc.boolean()).map(([g, prevKv]) =>
      etcdserverpb.RequestOp.create({ request: { case: 'requestDeleteRange', value: etcdserverpb.DeleteRangeRequest.create({ ...g, prevKv }) } })),
    tie('txn').map((t) => etcdserverpb.RequestOp.create({ request: { case: 'requestTxn', value: t } })),
  ),
  txn: fc.record({
    compare: fc.array(rangeArb(keyArb).map((g) => etcdserverpb.Compare.create(g)), { maxLength: 2 }),
    success: fc.array(tie('op'), { maxLength: 3 }),
    failure: fc.array(tie('op'), { maxLength: 3 }),
  }).map((t) => etcdserverpb.TxnRequest.create(t)),
})).op;

const txnArb = fc.record({
  compare: fc.array(rangeArb(keyArb).map((g) => etcdserverpb.Compare.create(g)), { maxLength: 2 }),
  success: fc.array(opArb, { maxLength: 3 }),
  failure: fc.array(opArb, { maxLength: 3 }),
}).map((t) => etcdserverpb.TxnRequest.create(t));

function oracleAllows(w: World, user: string, accesses: readonly Access[]): boolean {
  const g = w.grantsOf.get(user);
  assert.ok(g !== undefined);
  return accesses.every((a) => sweepCovers(a.write ? g.write : g.read, a.key, a.rangeEnd));
}

function bruteAllows(w: World, user: string, accesses: readonly Access[]): boolean {
  const g = w.grantsOf.get(user);
  assert.ok(g !== undefined);
  return accesses.every((a) => bruteAllowed(a.write ? g.write : g.read, a.key, a.rangeEnd));
}

test('property: txn, put, delete and range checks never allow an access outside the grants', () => {
  fc.assert(
    fc.property(worldArb, fc.array(txnArb, { minLength: 1, maxLength: 4 }), (spec, txns) => {
      const w = buildWorld(spec);
      const leaseKeys = (id: bigint): Uint8Array[] | undefined => w.leases.get(id);
      const rev = w.store.revision();
      for (const user of w.grantsOf.keys()) {
        const ai: AuthInfo = { username: user, revision: rev };
        for (const txn of txns) {
          const accesses = accessesOfTxn(txn, w.leases, []);
          const allowed = checkTxnRequest(w.store, ai, txn, leaseKeys) === undefined;
          assert.equal(allowed, oracleAllows(w, user, accesses));
          if (allowed) assert.ok(bruteAllows(w, user, accesses));
          // Every op alone, through the single-request checks.
          for (const op of [...txn.success, ...txn.failure]) {
            const r = op.request;
            if (r === undefined || r.case === 'requestTxn') continue;
            const single = accessesOfOps([op], w.leases, []);
            const err = r.case === 'requestRange' ? checkRangeRequest(w.store, ai, r.value)
              : r.case === 'requestPut' ? checkPutRequest(w.store, ai, r.value, leaseKeys)
                : checkDeleteRangeRequest(w.store, ai, r.value);
            assert.equal(err === undefined, oracleAllows(w, user, single));
            if (err !== undefined) assert.equal(err.code, 'PermissionDenied');
          }
        }
        // root may do anything.
        assert.equal(checkTxnRequest(w.store, { username: 'root', revision: rev }, txns[0] as etcdserverpb.TxnRequest, leaseKeys), undefined);
      }
    }),
    { numRuns: runs },
  );
});

test('property: watches and lease key listings follow the read grants', () => {
  fc.assert(
    fc.property(worldArb, fc.array(rangeArb(keyArb), { minLength: 1, maxLength: 6 }), fc.array(nonEmptyKeyArb, { maxLength: 6 }), (spec, watches, keys) => {
      const w = buildWorld(spec);
      const rev = w.store.revision();
      for (const [user, g] of w.grantsOf) {
        const ai: AuthInfo = { username: user, revision: rev };
        for (const watch of watches) {
          const allowed = checkWatchCreate(w.store, ai, watch.key, watch.rangeEnd) === undefined;
          assert.equal(allowed, sweepCovers(g.read, watch.key, watch.rangeEnd));
          if (allowed) assert.ok(bruteAllowed(g.read, watch.key, watch.rangeEnd));
        }
        const readable = keys.filter((k) => g.read.some((gr) => grantHas(gr, k)));
        assert.equal(checkLeaseTimeToLive(w.store, ai, keys) === undefined, readable.length === keys.length);
        const writable = keys.filter((k) => g.write.some((gr) => grantHas(gr, k)));
        assert.equal(checkLeaseRevoke(w.store, ai, keys) === undefined, writable.length === keys.length);
      }
    }),
    { numRuns: runs },
  );
});

// ---- the advisories, one by one ----

function advisoryWorld(): { store: AuthStore; ai: AuthInfo; leases: Map<bigint, Uint8Array[]> } {
  const w = buildWorld({
    roles: [{ read: [{ key: utf8('r'), rangeEnd: none }], write: [{ key: utf8('w'), rangeEnd: utf8('x') }], both: [] }],
    users: [[0]],
    leases: [],
  });
  w.leases.set(7n, [utf8('secret')]);
  return { store: w.store, ai: { username: 'u0', revision: w.store.revision() }, leases: w.leases };
}

const put = (key: string, extra: Partial<etcdserverpb.PutRequest> = {}): etcdserverpb.RequestOp =>
  etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key: utf8(key), ...extra }) } });
const txnOf = (success: etcdserverpb.RequestOp[], compare: etcdserverpb.Compare[] = []): etcdserverpb.TxnRequest =>
  etcdserverpb.TxnRequest.create({ compare, success });

test('advisories: nested txn, prev_kv and lease in a txn, from-key watch, compares', () => {
  const { store, ai, leases } = advisoryWorld();
  const leaseKeys = (id: bigint): Uint8Array[] | undefined => leases.get(id);
  const nested = txnOf([etcdserverpb.RequestOp.create({ request: { case: 'requestTxn', value: txnOf([put('forbidden')]) } })]);
  assert.equal(checkTxnRequest(store, ai, nested, leaseKeys)?.code, 'PermissionDenied', 'nested txn (CVE-2026-33343)');
  assert.equal(checkTxnRequest(store, ai, txnOf([put('wa')]), leaseKeys), undefined);
  assert.equal(checkTxnRequest(store, ai, txnOf([put('wa', { prevKv: true })]), leaseKeys)?.code, 'PermissionDenied', 'prev_kv needs READ');
  assert.equal(checkTxnRequest(store, ai, txnOf([put('wa', { lease: 7n })]), leaseKeys)?.code, 'PermissionDenied', 'lease keys need WRITE');
  assert.equal(checkTxnRequest(store, ai, txnOf([put('wa', { lease: 8n })]), leaseKeys), undefined, 'a lease without keys');
  assert.equal(checkTxnRequest(store, ai, txnOf([], [etcdserverpb.Compare.create({ key: utf8('s') })]), leaseKeys)?.code, 'PermissionDenied');
  assert.equal(checkWatchCreate(store, ai, utf8('r'), none), undefined);
  assert.equal(checkWatchCreate(store, ai, utf8('r'), b(0))?.code, 'PermissionDenied', 'from-key watch (GHSA-xg4h-6gfc-h4m8)');
  assert.equal(checkWatchCreate(store, ai, utf8('r'), prefixEnd(utf8('r')))?.code, 'PermissionDenied', 'prefix watch');
  // Too deep a nesting is refused, not recursed into without bound.
  let deep = txnOf([put('wa')]);
  for (let i = 0; i <= txnNestingMax; i++) deep = txnOf([etcdserverpb.RequestOp.create({ request: { case: 'requestTxn', value: deep } })]);
  assert.equal(checkTxnRequest(store, ai, deep, leaseKeys)?.code, 'PermissionDenied');
  // Lease key listings: TTL with keys and revoke.
  assert.equal(checkLeaseTimeToLive(store, ai, [utf8('r'), utf8('secret')])?.code, 'PermissionDenied', 'PR #15815');
  assert.equal(checkLeaseTimeToLive(store, undefined, [])?.code, 'UserEmpty');
  assert.equal(checkLeaseRevoke(store, ai, [utf8('wb')]), undefined);
});

test("lease key checks: root passes with a current token, not with a stale one (etcd checks each key's revision first)", () => {
  const { store } = advisoryWorld();
  const root: AuthInfo = { username: 'root', revision: store.revision() };
  const keys = [utf8('secret'), utf8('wa')];
  assert.equal(checkLeaseRevoke(store, root, keys), undefined);
  assert.equal(checkLeaseTimeToLive(store, root, keys), undefined);
  assert.equal(checkLeaseRevoke(store, root, []), undefined);
  store.roleAdd({ name: 'another' });
  assert.equal(checkLeaseRevoke(store, root, keys)?.code, 'AuthOldRevision');
  assert.equal(checkLeaseTimeToLive(store, root, keys)?.code, 'AuthOldRevision');
  assert.equal(checkLeaseRevoke(store, root, []), undefined, 'no key, no check');
});

test('header to AuthInfo; authenticated-only RPCs; everything passes with auth off', () => {
  const { store, ai } = advisoryWorld();
  assert.equal(authInfoFromHeader(undefined), undefined);
  assert.equal(authInfoFromHeader(serverpb.RequestHeader.create({ ID: 1n })), undefined);
  assert.deepEqual(authInfoFromHeader(serverpb.RequestHeader.create({ username: 'u0', authRevision: 9 })), { username: 'u0', revision: 9 });
  assert.equal(requireAuthInfo(store, undefined)?.code, 'UserEmpty');
  assert.equal(requireAuthInfo(store, ai), undefined);
  const off = new AuthStore({ backend: new MemoryAuthBackend() });
  const leaseKeys = (): undefined => undefined;
  assert.equal(requireAuthInfo(off, undefined), undefined);
  assert.equal(checkTxnRequest(off, undefined, txnOf([put('anything', { prevKv: true })]), leaseKeys), undefined);
  assert.equal(checkWatchCreate(off, undefined, b(0), b(0)), undefined);
  assert.equal(checkLeaseRevoke(off, undefined, [utf8('k')]), undefined);
  assert.equal(requiresAdmin(serverpb.InternalRaftRequest.create({ request: { case: 'authRoleAdd', value: { name: 'x' } } })), true);
  assert.equal(requiresAdmin(serverpb.InternalRaftRequest.create({ request: { case: 'authenticate', value: { name: 'x', simpleToken: '' } } })), false);
  assert.equal(requiresAdmin(serverpb.InternalRaftRequest.create({})), false);
});

test('a user with 100 write grants: a put check per key, its cost printed (never asserted)', () => {
  const roles = [{ read: [] as Grant[], write: [] as Grant[], both: [] as Grant[] }];
  for (let i = 0; i < 100; i++) {
    const key = utf8(`/app/${String(i * 2).padStart(4, '0')}/`);
    (roles[0] as { write: Grant[] }).write.push({ key, rangeEnd: prefixEnd(key) });
  }
  const w = buildWorld({ roles, users: [[0]], leases: [] });
  const ai: AuthInfo = { username: 'u0', revision: w.store.revision() };
  const keys = Array.from({ length: 1000 }, (_, i) => utf8(`/app/${String((i % 200) * 1).padStart(4, '0')}/key${i}`));
  const leaseKeys = (): undefined => undefined;
  const reqs = keys.map((key) => etcdserverpb.PutRequest.create({ key, value: utf8('v') }));
  let allowed = 0;
  for (const r of reqs) if (checkPutRequest(w.store, ai, r, leaseKeys) === undefined) allowed++;
  assert.equal(allowed, 500, 'even-numbered directories are granted');
  const rounds = 200;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) for (const r of reqs) checkPutRequest(w.store, ai, r, leaseKeys);
  const nsPerCheck = Number(process.hrtime.bigint() - t0) / (rounds * reqs.length);
  console.log(`# put permission check, 100 grants: ${(nsPerCheck / 1000).toFixed(3)} µs`);
});
