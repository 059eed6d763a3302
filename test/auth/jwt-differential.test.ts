// JWT tokens against the real etcd 3.4.23, call for call: a JWT outlives an
// auth disable (it needs no server state), so etcd's check after a local
// read refuses it for its old auth revision ("revision of auth store is
// old"), auth off as on, while writes go through; a token the server
// cannot verify and an empty one are "invalid auth token" either way.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { etcdserverpb } from '../../src/pb/index.js';
import type { GrpcChannel } from '../../src/grpc/index.js';
import { etcdMissing, methods, openChannel, useWorkspace, type Cluster } from '../harness/index.js';
import { answerLine, enableAndLogIn } from './differential-kit.js';

const P = etcdserverpb;
const te = new TextEncoder();
const opts = { timeoutMs: 5000 };

type Call = (ch: GrpcChannel) => Promise<unknown>;
const calls: readonly (readonly [string, Call])[] = [
  ['Range a', (ch) => ch.unary(methods.kv.Range, P.RangeRequest.create({ key: te.encode('a') }), opts)],
  ['Range a serializable', (ch) => ch.unary(methods.kv.Range, P.RangeRequest.create({ key: te.encode('a'), serializable: true }), opts)],
  ['read-only Txn', (ch) => ch.unary(methods.kv.Txn, P.TxnRequest.create({ success: [P.RequestOp.create({ request: { case: 'requestRange', value: P.RangeRequest.create({ key: te.encode('a') }) } })] }), opts)],
  // A local read refused for its revision: a stale token's refusal comes first, as etcd's check after the read.
  ['Range a at a future revision', (ch) => ch.unary(methods.kv.Range, P.RangeRequest.create({ key: te.encode('a'), revision: 1000 }), opts)],
  ['read-only Txn at a future revision', (ch) => ch.unary(methods.kv.Txn, P.TxnRequest.create({ success: [P.RequestOp.create({ request: { case: 'requestRange', value: P.RangeRequest.create({ key: te.encode('a'), revision: 1000 }) } })] }), opts)],
  // Not read-only to etcd (an op that is no range): proposed and applied, without the check after a local read.
  ['Txn of a nested read-only Txn', (ch) => ch.unary(methods.kv.Txn, P.TxnRequest.create({ success: [P.RequestOp.create({ request: { case: 'requestTxn', value: P.TxnRequest.create() } })] }), opts)],
  ['Txn of an empty op', (ch) => ch.unary(methods.kv.Txn, P.TxnRequest.create({ failure: [P.RequestOp.create({})] }), opts)],
  ['Put a', (ch) => ch.unary(methods.kv.Put, P.PutRequest.create({ key: te.encode('a'), value: te.encode('v') }), opts)],
  ['LeaseGrant', (ch) => ch.unary(methods.lease.LeaseGrant, P.LeaseGrantRequest.create({ TTL: 60 }), opts)],
  ['MemberList', (ch) => ch.unary(methods.cluster.MemberList, P.MemberListRequest.create({}), opts)],
];

describe('JWT tokens against the real etcd', { skip: etcdMissing() }, () => {
  const ws = useWorkspace('auth-jwt');
  const keys = mkdtempSync(join(tmpdir(), 'etcd-ts-jwt-diff-'));
  let pair: Cluster[] = [];
  before(async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(keys, 'jwt.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(keys, 'jwt.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const extraFlags = ['--auth-token', `jwt,pub-key=${join(keys, 'jwt.pub')},priv-key=${join(keys, 'jwt.key')},sign-method=ES256,ttl=1h`];
    pair = await Promise.all([ws.startCluster({ kind: 'etcd', extraFlags }), ws.startCluster({ kind: 'etcd-ts', extraFlags })]);
  });
  after(async () => {
    for (const c of pair) await c.close();
    rmSync(keys, { recursive: true, force: true });
  });

  test('a token from before an auth disable, an empty one, a forged one: the same answers', { timeout: 120_000 }, async () => {
    const endpoints = pair.map((c) => c.member(0).endpoint);
    const tokens = await Promise.all(
      endpoints.map(async (ep) => {
        const ch = openChannel(ep);
        try {
          await ch.unary(methods.auth.UserAdd, P.AuthUserAddRequest.create({ name: 'root', password: 'pw' }), opts);
          await ch.unary(methods.auth.UserGrantRole, P.AuthUserGrantRoleRequest.create({ user: 'root', role: 'root' }), opts);
          return (await enableAndLogIn(ch, ['root']))['root'] ?? '';
        } finally {
          ch.close();
        }
      }),
    );
    const answers: string[][] = [[], []];
    const round = async (phase: string): Promise<void> => {
      for (const who of ['root', 'empty', 'forged'] as const) {
        for (const [name, call] of calls) {
          for (let i = 0; i < 2; i++) {
            const root = tokens[i] ?? '';
            const token = who === 'root' ? root : who === 'empty' ? '' : `${root.slice(0, -4)}AAAA`;
            answers[i]?.push(await answerLine(endpoints[i] as string, token, `${phase}: ${name} / ${who}`, async (ch) => {
              const r = (await call(ch)) as { header?: unknown; kvs?: unknown[]; ID?: bigint };
              return `ok${r.kvs !== undefined ? ` ${r.kvs.length} kvs` : ''}`;
            }));
          }
        }
      }
    };
    await round('auth on');
    for (let i = 0; i < 2; i++) {
      const ch = openChannel(endpoints[i] as string, 2000, () => ({ token: tokens[i] ?? '' }));
      try {
        await ch.unary(methods.auth.AuthDisable, P.AuthDisableRequest.create({}), opts);
      } finally {
        ch.close();
      }
    }
    await round('auth off');
    assert.deepEqual(answers[1], answers[0]);
    assert.ok(answers[1]?.includes('auth off: Range a / root: 3 etcdserver: revision of auth store is old'), answers[1]?.join('\n'));
    assert.ok(answers[1]?.includes('auth off: Put a / root: ok'), answers[1]?.join('\n'));
  });
});
