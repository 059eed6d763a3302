// Which calls etcd 3.4.23 answers, with auth on, to a caller without a
// token, with an empty token, with a token it does not know, as an ordinary user and as root,
// against the real etcd, call for call: status and message must be equal.
// 3.4 reads no token at all for Status, MemberList, MoveLeader and the
// lease lookups; it lets anyone grant leases, compact and raise or disarm
// alarms; its Maintenance service returns the auth package's errors
// untranslated (status UNKNOWN, "auth: ..."); the rest refuses as usual.
// Streams too: a Watch's first answer (created, or canceled and why) and a
// LeaseKeepAlive's.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { etcdserverpb, v3electionpb, v3lockpb } from '../../src/pb/index.js';
import type { GrpcChannel } from '../../src/grpc/index.js';
import { etcdMissing, methods, openChannel, useServerPair } from '../harness/index.js';
import { answerLine, enableAndLogIn } from './differential-kit.js';

const P = etcdserverpb;
const te = new TextEncoder();

type Call = (ch: GrpcChannel) => Promise<unknown>;
const opts = { timeoutMs: 5000 };
const calls: readonly (readonly [string, Call])[] = [
  ['Status', (ch) => ch.unary(methods.maintenance.Status, P.StatusRequest.create({}), opts)],
  ['Alarm GET', (ch) => ch.unary(methods.maintenance.Alarm, P.AlarmRequest.create({}), opts)],
  ['Alarm DEACTIVATE', (ch) => ch.unary(methods.maintenance.Alarm, P.AlarmRequest.create({ action: P.AlarmRequest_AlarmAction.DEACTIVATE, memberID: 1n, alarm: P.AlarmType.NOSPACE }), opts)],
  ['HashKV', (ch) => ch.unary(methods.maintenance.HashKV, P.HashKVRequest.create({}), opts)],
  ['Hash', (ch) => ch.unary(methods.maintenance.Hash, P.HashRequest.create({}), opts)],
  ['MoveLeader to a stranger', (ch) => ch.unary(methods.maintenance.MoveLeader, P.MoveLeaderRequest.create({ targetID: 12345n }), opts)],
  ['MemberList', (ch) => ch.unary(methods.cluster.MemberList, P.MemberListRequest.create({}), opts)],
  ['MemberUpdate of a stranger', (ch) => ch.unary(methods.cluster.MemberUpdate, P.MemberUpdateRequest.create({ ID: 12345n, peerURLs: ['http://127.0.0.1:1'] }), opts)],
  ['LeaseGrant', (ch) => ch.unary(methods.lease.LeaseGrant, P.LeaseGrantRequest.create({ TTL: 60 }), opts)],
  ['LeaseRevoke of a stranger', (ch) => ch.unary(methods.lease.LeaseRevoke, P.LeaseRevokeRequest.create({ ID: 999n }), opts)],
  ['LeaseTimeToLive of a stranger', (ch) => ch.unary(methods.lease.LeaseTimeToLive, P.LeaseTimeToLiveRequest.create({ ID: 999n, keys: true }), opts)],
  ['LeaseLeases', (ch) => ch.unary(methods.lease.LeaseLeases, P.LeaseLeasesRequest.create({}), opts)],
  ['Range a', (ch) => ch.unary(methods.kv.Range, P.RangeRequest.create({ key: te.encode('a') }), opts)],
  ['Compact', (ch) => ch.unary(methods.kv.Compact, P.CompactionRequest.create({ revision: 1 }), opts)],
  ['UserList', (ch) => ch.unary(methods.auth.UserList, P.AuthUserListRequest.create({}), opts)],
  ['Defragment', (ch) => ch.unary(methods.maintenance.Defragment, P.DefragmentRequest.create({}), opts)],
  ['MemberRemove of a stranger', (ch) => ch.unary(methods.cluster.MemberRemove, P.MemberRemoveRequest.create({ ID: 12345n }), opts)],
  ['MemberPromote of a stranger', (ch) => ch.unary(methods.cluster.MemberPromote, P.MemberPromoteRequest.create({ ID: 12345n }), opts)],
  ['Put a', (ch) => ch.unary(methods.kv.Put, P.PutRequest.create({ key: te.encode('a'), value: te.encode('v') }), opts)],
  ['Put b', (ch) => ch.unary(methods.kv.Put, P.PutRequest.create({ key: te.encode('b'), value: te.encode('v') }), opts)],
  ['DeleteRange b', (ch) => ch.unary(methods.kv.DeleteRange, P.DeleteRangeRequest.create({ key: te.encode('b') }), opts)],
  ['an empty Txn', (ch) => ch.unary(methods.kv.Txn, P.TxnRequest.create({}), opts)],
  ['UserGet u', (ch) => ch.unary(methods.auth.UserGet, P.AuthUserGetRequest.create({ name: 'u' }), opts)],
  // Refused for its empty name only once the caller's token and admin rights were checked.
  ['UserAdd of an empty name', (ch) => ch.unary(methods.auth.UserAdd, P.AuthUserAddRequest.create({ name: '', password: 'pw' }), opts)],
  ['RoleGet r', (ch) => ch.unary(methods.auth.RoleGet, P.AuthRoleGetRequest.create({ role: 'r' }), opts)],
  // A right password with a wrong token: etcd fails it on the token (its proposal reads it).
  ['Authenticate u', async (ch) => {
    await ch.unary(methods.auth.Authenticate, P.AuthenticateRequest.create({ name: 'u', password: 'pw' }), opts);
    return 'a token';
  }],
  ['UserChangePassword u', (ch) => ch.unary(methods.auth.UserChangePassword, P.AuthUserChangePasswordRequest.create({ name: 'u', password: 'pw' }), opts)],
  ['Lock a/l', (ch) => ch.unary(methods.lock.Lock, v3lockpb.LockRequest.create({ name: te.encode('a/l') }), opts)],
  ['Campaign a/e', (ch) => ch.unary(methods.election.Campaign, v3electionpb.CampaignRequest.create({ name: te.encode('a/e'), value: te.encode('x') }), opts)],
  ['Leader a/e', (ch) => ch.unary(methods.election.Leader, v3electionpb.LeaderRequest.create({ name: te.encode('a/e') }), opts)],
  ['Resign of a stranger', (ch) => ch.unary(methods.election.Resign, v3electionpb.ResignRequest.create({ leader: v3electionpb.LeaderKey.create({ name: te.encode('a/e'), key: te.encode('a/e/1'), rev: 1, lease: 1n }) }), opts)],
  ['Unlock a stranger', (ch) => ch.unary(methods.lock.Unlock, v3lockpb.UnlockRequest.create({ key: te.encode('a/l/1') }), opts)],
  ['Observe a/e', async (ch) => {
    const call = ch.serverStream(methods.election.Observe, v3electionpb.LeaderRequest.create({ name: te.encode('a/e') }));
    try {
      const r = await withTimeout(call.read());
      return r === undefined ? 'stream ended' : r === 'no answer' ? r : `leader ${new TextDecoder().decode(r.kv?.value ?? new Uint8Array())}`;
    } finally {
      call.cancel();
    }
  }],
  ['Snapshot', async (ch) => {
    const call = ch.serverStream(methods.maintenance.Snapshot, P.SnapshotRequest.create({}));
    try {
      const r = await withTimeout(call.read());
      return r === undefined ? 'stream ended' : r === 'no answer' ? r : 'data';
    } finally {
      call.cancel();
    }
  }],
  ['MemberAdd of a bad URL', (ch) => ch.unary(methods.cluster.MemberAdd, P.MemberAddRequest.create({ peerURLs: ['not a url'] }), opts)],
  ['MemberUpdate of a stranger to a bad URL', (ch) => ch.unary(methods.cluster.MemberUpdate, P.MemberUpdateRequest.create({ ID: 12345n, peerURLs: ['not a url'] }), opts)],
  ['Watch a', (ch) => firstWatchResponse(ch, 'a', '')],
  ['Watch b', (ch) => firstWatchResponse(ch, 'b', '')],
  ['Watch every key', (ch) => firstWatchResponse(ch, '\0', '\0')],
  ['LeaseKeepAlive of a stranger', async (ch) => {
    const call = ch.bidi(methods.lease.LeaseKeepAlive);
    try {
      call.write(P.LeaseKeepAliveRequest.create({ ID: 999n }));
      const r = await withTimeout(call.read());
      return r === undefined ? 'stream ended' : r === 'no answer' ? r : `TTL ${r.TTL}`;
    } finally {
      call.cancel();
    }
  }],
  // Last: root's succeeds, and every call after it would meet auth off.
  ['AuthDisable', (ch) => ch.unary(methods.auth.AuthDisable, P.AuthDisableRequest.create({}), opts)],
];

/** A stream's first answer within 3 s, or 'no answer'. */
function withTimeout<T>(p: Promise<T>): Promise<T | 'no answer'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'no answer'>((r) => (timer = setTimeout(() => r('no answer'), 3000)))]).finally(() => clearTimeout(timer));
}

/** Creates one watch and describes the first response: created, or canceled and why. */
async function firstWatchResponse(ch: GrpcChannel, key: string, end: string): Promise<string> {
  const call = ch.bidi(methods.watch.Watch);
  try {
    const create = P.WatchCreateRequest.create({ key: te.encode(key), rangeEnd: te.encode(end) });
    call.write(P.WatchRequest.create({ requestUnion: { case: 'createRequest', value: create } }));
    const r = await withTimeout(call.read());
    if (r === 'no answer' || r === undefined) return r ?? 'stream ended';
    return `created ${String(r.created)} canceled ${String(r.canceled)} ${JSON.stringify(r.cancelReason)}`;
  } finally {
    call.cancel();
  }
}

async function setUp(endpoint: string): Promise<{ user: string; root: string }> {
  const ch = openChannel(endpoint);
  try {
    await ch.unary(methods.auth.UserAdd, P.AuthUserAddRequest.create({ name: 'root', password: 'pw' }), opts);
    await ch.unary(methods.auth.UserGrantRole, P.AuthUserGrantRoleRequest.create({ user: 'root', role: 'root' }), opts);
    await ch.unary(methods.auth.UserAdd, P.AuthUserAddRequest.create({ name: 'u', password: 'pw' }), opts);
    await ch.unary(methods.auth.RoleAdd, P.AuthRoleAddRequest.create({ name: 'r' }), opts);
    const perm = { permType: 2 as const, key: te.encode('a'), rangeEnd: new Uint8Array() };
    await ch.unary(methods.auth.RoleGrantPermission, P.AuthRoleGrantPermissionRequest.create({ name: 'r', perm }), opts);
    await ch.unary(methods.auth.UserGrantRole, P.AuthUserGrantRoleRequest.create({ user: 'u', role: 'r' }), opts);
    const t = await enableAndLogIn(ch, ['u', 'root']);
    return { user: t['u'] ?? '', root: t['root'] ?? '' };
  } finally {
    ch.close();
  }
}

describe('calls with auth on, without a token or with a bad one, against the real etcd', { skip: etcdMissing() }, () => {
  const clusters = useServerPair('auth-anonymous');

  test('the same answer from both servers, for every caller', { timeout: 120_000 }, async () => {
    const endpoints = clusters.map((c) => c.member(0).endpoint);
    const tokens = await Promise.all(endpoints.map(setUp));
    const answers: string[][] = [[], []];
    for (const who of ['none', 'empty', 'bogus', 'user', 'root'] as const) {
      for (const [name, call] of calls) {
        for (let i = 0; i < 2; i++) {
          const t = tokens[i] as { user: string; root: string };
          const token = who === 'none' ? undefined : who === 'empty' ? '' : who === 'bogus' ? 'bogus.1' : t[who];
          answers[i]?.push(await answerLine(endpoints[i] as string, token, `${name} / ${who}`, async (ch) => {
            const r = await call(ch);
            return `ok${typeof r === 'string' ? ` ${r}` : ''}`;
          }));
        }
      }
    }
    assert.deepEqual(answers[1], answers[0]);
  });
});
