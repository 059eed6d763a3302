// RBAC on a live etcd-ts member, as a property: random grants (keys and
// prefixes, read / write / readwrite) for two users, then random requests
// from them (ranges, puts and deletes with prev_kv, nested txns, watches).
// A request succeeds exactly when a naive model of the grants allows every
// key it touches, and one that is refused changes nothing. (The same
// property over far more cases runs in-process in src/auth.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { GrpcChannel } from '../../src/grpc/index.js';
import { authpb, etcdserverpb } from '../../src/pb/index.js';
import { methods, openChannel, outcome, useWorkspace, type Cluster } from '../harness/index.js';

const runs = Number(process.env['AUTH_E2E_PROPERTY_RUNS'] ?? 20);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const o = { timeoutMs: 10_000 };

type Shape = { readonly key: string; readonly prefix: boolean };
type PermKind = 'READ' | 'WRITE' | 'READWRITE';
interface Grant extends Shape {
  readonly perm: PermKind;
}
type Need = Shape & { readonly access: 'read' | 'write' };

const keys = ['a', 'b', 'aa', 'ab', 'ba'];
const shapeArb: fc.Arbitrary<Shape> = fc.record({ key: fc.constantFrom(...keys), prefix: fc.boolean() });
const grantArb: fc.Arbitrary<Grant> = fc.record({ key: fc.constantFrom(...keys), prefix: fc.boolean(), perm: fc.constantFrom<PermKind>('READ', 'WRITE', 'READWRITE') });

function prefixEnd(k: string): string {
  return k.slice(0, -1) + String.fromCharCode(k.charCodeAt(k.length - 1) + 1);
}
const rangeEnd = (s: Shape): Uint8Array => (s.prefix ? enc(prefixEnd(s.key)) : new Uint8Array(0));

type Req =
  | { readonly kind: 'range'; readonly at: Shape }
  | { readonly kind: 'put'; readonly key: string; readonly prevKv: boolean }
  | { readonly kind: 'delete'; readonly at: Shape; readonly prevKv: boolean }
  | { readonly kind: 'txn'; readonly compare: readonly string[]; readonly success: readonly Req[]; readonly failure: readonly Req[] }
  | { readonly kind: 'watch'; readonly at: Shape };

const opArb = fc.letrec<{ op: Req; txn: Req }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    shapeArb.map((at): Req => ({ kind: 'range', at })),
    fc.record({ key: fc.constantFrom(...keys), prevKv: fc.boolean() }).map((r): Req => ({ kind: 'put', ...r })),
    fc.record({ at: shapeArb, prevKv: fc.boolean() }).map((r): Req => ({ kind: 'delete', ...r })),
    tie('txn'),
  ),
  txn: fc
    .record({
      compare: fc.array(fc.constantFrom(...keys), { maxLength: 2 }),
      success: fc.array(tie('op'), { maxLength: 2 }),
      failure: fc.array(tie('op'), { maxLength: 2 }),
    })
    .map((t): Req => ({ kind: 'txn', ...t })),
}));
// A txn never writes a key twice in a branch (etcd refuses that before any permission check).
const reqArb: fc.Arbitrary<Req> = fc.oneof(opArb.op, shapeArb.map((at): Req => ({ kind: 'watch', at }))).filter((r) => !writesTwice(r));

function writesTwice(r: Req): boolean {
  if (r.kind !== 'txn') return false;
  // A branch's writes include those of its nested txns: etcd refuses a put in
  // a nested txn on a key the enclosing branch deletes (duplicate key).
  const writes = (ops: readonly Req[]): { readonly at: Shape; readonly put: boolean }[] =>
    ops.flatMap((op) =>
      op.kind === 'put' ? [{ at: { key: op.key, prefix: false }, put: true }] : op.kind === 'delete' ? [{ at: op.at, put: false }] : op.kind === 'txn' ? writes([...op.success, ...op.failure]) : [],
    );
  const branch = (ops: readonly Req[]): boolean => {
    const written = writes(ops);
    const overlap = written.some((p, i) => p.put && written.some((w, j) => j !== i && (w.at.prefix ? p.at.key.startsWith(w.at.key) : p.at.key === w.at.key)));
    return overlap || ops.some(writesTwice);
  };
  return branch(r.success) || branch(r.failure);
}

/** Every key range the request reads or writes. */
function needs(r: Req): Need[] {
  switch (r.kind) {
    case 'range':
    case 'watch':
      return [{ ...r.at, access: 'read' }];
    case 'put':
      return [{ key: r.key, prefix: false, access: 'write' }, ...(r.prevKv ? [{ key: r.key, prefix: false, access: 'read' as const }] : [])];
    case 'delete':
      return [{ ...r.at, access: 'write' }, ...(r.prevKv ? [{ ...r.at, access: 'read' as const }] : [])];
    case 'txn':
      return [...r.compare.map((key): Need => ({ key, prefix: false, access: 'read' })), ...r.success.flatMap(needs), ...r.failure.flatMap(needs)];
  }
}

/** The naive model: a key or prefix is covered by a grant of the right kind on it or on a prefix of it. */
function allowed(grants: readonly Grant[], r: Req): boolean {
  return needs(r).every((n) =>
    grants.some((g) => {
      const kindOk = g.perm === 'READWRITE' || (g.perm === 'READ') === (n.access === 'read');
      const within = g.prefix ? n.key.startsWith(g.key) : !n.prefix && n.key === g.key;
      return kindOk && within;
    }),
  );
}

function toOp(r: Req): etcdserverpb.RequestOp {
  switch (r.kind) {
    case 'range':
    case 'watch':
      return etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: etcdserverpb.RangeRequest.create({ key: enc(r.at.key), rangeEnd: rangeEnd(r.at) }) } });
    case 'put':
      return etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key: enc(r.key), value: enc('v'), prevKv: r.prevKv }) } });
    case 'delete':
      return etcdserverpb.RequestOp.create({
        request: { case: 'requestDeleteRange', value: etcdserverpb.DeleteRangeRequest.create({ key: enc(r.at.key), rangeEnd: rangeEnd(r.at), prevKv: r.prevKv }) },
      });
    case 'txn':
      return etcdserverpb.RequestOp.create({ request: { case: 'requestTxn', value: toTxn(r) } });
  }
}

function toTxn(r: Req & { kind: 'txn' }): etcdserverpb.TxnRequest {
  return etcdserverpb.TxnRequest.create({
    compare: r.compare.map((key) =>
      etcdserverpb.Compare.create({ key: enc(key), target: etcdserverpb.Compare_CompareTarget.VERSION, result: etcdserverpb.Compare_CompareResult.GREATER, targetUnion: { case: 'version', value: 0 } }),
    ),
    success: r.success.map(toOp),
    failure: r.failure.map(toOp),
  });
}

/** Sends the request as the token's user: true when served, false when refused for permission; anything else fails the test. */
async function send(ch: GrpcChannel, token: string, r: Req): Promise<boolean> {
  const md = { ...o, metadata: { token } };
  if (r.kind === 'watch') {
    const call = ch.bidi(methods.watch.Watch, md);
    call.write(etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: etcdserverpb.WatchCreateRequest.create({ key: enc(r.at.key), rangeEnd: rangeEnd(r.at) }) } }));
    const first = await call.read();
    call.cancel();
    assert.equal(first?.created, true);
    if (first?.canceled === true) assert.equal(first.cancelReason, 'rpc error: code = PermissionDenied desc = etcdserver: permission denied');
    return first?.canceled !== true;
  }
  const op = toOp(r).request;
  assert.ok(op !== undefined);
  const call =
    op.case === 'requestRange'
      ? ch.unary(methods.kv.Range, op.value, md)
      : op.case === 'requestPut'
        ? ch.unary(methods.kv.Put, op.value, md)
        : op.case === 'requestDeleteRange'
          ? ch.unary(methods.kv.DeleteRange, op.value, md)
          : ch.unary(methods.kv.Txn, op.value, md);
  const res = await outcome<unknown>(call);
  if (res.ok) return true;
  assert.deepEqual([res.code, res.message], [7, 'etcdserver: permission denied']);
  return false;
}

describe('RBAC on a live member', () => {
  const ws = useWorkspace('auth-property');
  let c: Cluster;
  let ch: GrpcChannel;
  let rootToken: string;
  const users = ['u0', 'u1'];
  const tokens = new Map<string, string>();

  const asRoot = { ...o, get metadata(): { token: string } {
    return { token: rootToken };
  } };

  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts', extraFlags: ['--bcrypt-cost', '4'] });
    ch = openChannel(c.member(0).endpoint);
    const a = methods.auth;
    await ch.unary(a.UserAdd, etcdserverpb.AuthUserAddRequest.create({ name: 'root', password: 'rootpw' }), o);
    await ch.unary(a.UserGrantRole, etcdserverpb.AuthUserGrantRoleRequest.create({ user: 'root', role: 'root' }), o);
    for (const u of users) {
      await ch.unary(a.UserAdd, etcdserverpb.AuthUserAddRequest.create({ name: u, password: `${u}pw` }), o);
      await ch.unary(a.RoleAdd, etcdserverpb.AuthRoleAddRequest.create({ name: `role-${u}` }), o);
      await ch.unary(a.UserGrantRole, etcdserverpb.AuthUserGrantRoleRequest.create({ user: u, role: `role-${u}` }), o);
    }
    await ch.unary(a.AuthEnable, etcdserverpb.AuthEnableRequest.create({}), o);
    rootToken = (await ch.unary(a.Authenticate, etcdserverpb.AuthenticateRequest.create({ name: 'root', password: 'rootpw' }), o)).token;
    for (const u of users) tokens.set(u, (await ch.unary(a.Authenticate, etcdserverpb.AuthenticateRequest.create({ name: u, password: `${u}pw` }), o)).token);
  });
  after(() => ch.close());

  /** Replaces the user's role's permissions with these grants. */
  async function setGrants(u: string, grants: readonly Grant[]): Promise<void> {
    const role = `role-${u}`;
    const current = await ch.unary(methods.auth.RoleGet, etcdserverpb.AuthRoleGetRequest.create({ role }), asRoot);
    for (const p of current.perm) {
      await ch.unary(methods.auth.RoleRevokePermission, etcdserverpb.AuthRoleRevokePermissionRequest.create({ role, key: p.key, rangeEnd: p.rangeEnd }), asRoot);
    }
    for (const g of grants) {
      const perm = authpb.Permission.create({ permType: authpb.Permission_Type[g.perm], key: enc(g.key), rangeEnd: rangeEnd(g) });
      await ch.unary(methods.auth.RoleGrantPermission, etcdserverpb.AuthRoleGrantPermissionRequest.create({ name: role, perm }), asRoot);
    }
  }

  const storeRevision = async (): Promise<number> =>
    (await ch.unary(methods.kv.Range, etcdserverpb.RangeRequest.create({ key: enc('a'), countOnly: true }), asRoot)).header?.revision ?? 0;

  test('a request is served exactly when the grants cover it; a refused one changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(grantArb, { maxLength: 4 }), fc.array(grantArb, { maxLength: 4 }), fc.array(fc.tuple(fc.constantFrom(0, 1), reqArb), { minLength: 1, maxLength: 4 }), async (g0, g1, reqs) => {
        // A later grant on the same key and range end replaces an earlier one, as etcd's RoleGrantPermission does.
        const dedupe = (gs: Grant[]): Grant[] => [...new Map(gs.map((g) => [`${g.key}|${String(g.prefix)}`, g])).values()];
        const grants = [dedupe(g0), dedupe(g1)];
        await setGrants('u0', grants[0] ?? []);
        await setGrants('u1', grants[1] ?? []);
        for (const [who, r] of reqs) {
          const user = users[who] ?? 'u0';
          const before = await storeRevision();
          const served = await send(ch, tokens.get(user) ?? '', r);
          assert.equal(served, allowed(grants[who] ?? [], r), `${user} with ${JSON.stringify(grants[who])}: ${JSON.stringify(r)}`);
          if (!served) assert.equal(await storeRevision(), before, 'a refused request changed the store');
        }
      }),
      { numRuns: runs },
    );
  });
});
