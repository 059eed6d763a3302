/**
 * The v3election service (Campaign, Proclaim, Leader, Observe, Resign), as
 * etcd runs clientv3's Election inside the server. Candidates for name each
 * own "name/<lease hex>" (attached to their lease; a new 60 s lease when none
 * is given); the leader is the oldest such key and its value is the proclaimed
 * value. Campaign returns once every older candidate is gone; Proclaim and
 * Resign act only while the leader key still has the creation revision the
 * campaign returned. Observe streams the leader's value each time it changes,
 * and the next leader when one resigns or its lease expires. Failures are
 * UNKNOWN with etcd's message, as etcd's in-process client reports them.
 */
import { serverStreaming, unary, type ServerWritableCall, type ServiceHandlers } from '../grpc/index.js';
import { etcdserverpb, mvccpb, v3electionpb } from '../pb/index.js';
import type { EtcdServer, RequestContext } from '../server/index.js';
import { checkCall, requestContext } from './call-context.js';
import {
  byCreateRequest,
  bytes,
  concat,
  createRevisionIs,
  get,
  ops,
  prefixEnd,
  rangeKvs,
  recipe,
  sessionKey,
  sessionLease,
  txn,
  waitDeletes,
  watchUntil,
} from './recipes.js';

type ElectionMethods = typeof v3electionpb.ElectionService.methods;

const errMissingLeaderKey = (): Error => new Error('"leader" field must be provided');
const errNotLeader = (): Error => new Error('election: not leader');
const errNoLeader = (): Error => new Error('election: no leader');

const prefixOf = (name: Uint8Array): Uint8Array => concat(name, bytes('/'));

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Puts a new value on the leader key if it is still the one created at rev; the txn's header, or undefined when not leader. */
async function proclaim(s: EtcdServer, ctx: RequestContext, key: Uint8Array, rev: number, lease: bigint, value: Uint8Array): Promise<etcdserverpb.ResponseHeader | undefined> {
  const resp = await txn(s, ctx, etcdserverpb.TxnRequest.create({ compare: [createRevisionIs(key, rev)], success: [ops.put(key, value, lease)] }));
  return resp.succeeded ? resp.header : undefined;
}

/** Deletes the leader key if it is still the one created at rev. */
async function resign(s: EtcdServer, ctx: RequestContext, key: Uint8Array, rev: number): Promise<etcdserverpb.TxnResponse> {
  return txn(s, ctx, etcdserverpb.TxnRequest.create({ compare: [createRevisionIs(key, rev)], success: [ops.delete(key)] }));
}

export function electionService(s: EtcdServer): ServiceHandlers<ElectionMethods> {
  return {
    Campaign: unary((req, call) =>
      recipe(async () => {
        checkCall(s, call, false);
        const ctx = await requestContext(s, call);
        const lease = await sessionLease(s, ctx, req.lease);
        const prefix = prefixOf(req.name);
        const key = sessionKey(prefix, lease);
        const resp = await txn(
          s,
          ctx,
          etcdserverpb.TxnRequest.create({ compare: [createRevisionIs(key, 0)], success: [ops.put(key, req.value, lease)], failure: [ops.get(key)] }),
        );
        let rev = resp.header?.revision ?? 0;
        if (!resp.succeeded) {
          // This lease already campaigns: keep its place in line, with the new value.
          const mine = rangeKvs(resp, 0)[0];
          rev = mine?.createRevision ?? 0;
          if (mine !== undefined && !sameBytes(mine.value, req.value)) {
            const done = await proclaim(s, ctx, key, rev, lease, req.value).catch(async (e: unknown) => {
              await resign(s, { user: ctx.user }, key, rev).catch(() => undefined);
              throw e;
            });
            if (done === undefined) throw errNotLeader();
          }
        }
        try {
          await waitDeletes(s, ctx, prefix, rev - 1);
        } catch (e) {
          // The caller gave up: withdraw, so the candidacy does not win later unseen.
          if (ctx.signal?.aborted === true) await resign(s, { user: ctx.user }, key, rev).catch(() => undefined);
          throw e;
        }
        return v3electionpb.CampaignResponse.create({
          header: resp.header,
          leader: v3electionpb.LeaderKey.create({ name: req.name, key, rev, lease }),
        });
      }),
    ),
    Proclaim: unary((req, call) =>
      recipe(async () => {
        checkCall(s, call, false);
        const leader = req.leader;
        if (leader === undefined) throw errMissingLeaderKey();
        const ctx = await requestContext(s, call);
        const lease = await sessionLease(s, ctx, leader.lease);
        const header = await proclaim(s, ctx, leader.key, leader.rev, lease, req.value);
        if (header === undefined) throw errNotLeader();
        return v3electionpb.ProclaimResponse.create({ header });
      }),
    ),
    Leader: unary((req, call) =>
      recipe(async () => {
        checkCall(s, call, false);
        const ctx = await requestContext(s, call);
        const resp = await get(s, ctx, byCreateRequest(prefixOf(req.name), 'first'));
        const kv = resp.kvs[0];
        if (kv === undefined) throw errNoLeader();
        return v3electionpb.LeaderResponse.create({ header: resp.header, kv });
      }),
    ),
    Observe: serverStreaming((req, call) =>
      recipe(async () => {
        checkCall(s, call, false);
        try {
          await observe(s, req, call);
        } catch (e) {
          // As etcd 3.4's observer: a read or watch that fails (no permission, a token it does not
          // know, a compacted revision) closes its channel, and the stream ends without an error.
          s.logger.debug('election observe ended', { error: (e as Error).message });
        }
      }),
    ),
    Resign: unary((req, call) =>
      recipe(async () => {
        checkCall(s, call, false);
        const leader = req.leader;
        if (leader === undefined) throw errMissingLeaderKey();
        const ctx = await requestContext(s, call);
        await sessionLease(s, ctx, leader.lease);
        const resp = await resign(s, ctx, leader.key, leader.rev);
        return v3electionpb.ResignResponse.create({ header: resp.header });
      }),
    ),
  };
}

/** Streams the election's leader, then each new value and each next leader, until the call ends or a read or watch fails. */
async function observe(s: EtcdServer, req: v3electionpb.LeaderRequest, call: ServerWritableCall<v3electionpb.LeaderResponse>): Promise<void> {
  const ctx = await requestContext(s, call);
  const send = async (header: etcdserverpb.ResponseHeader | undefined, kv: mvccpb.KeyValue): Promise<void> => {
    call.write(v3electionpb.LeaderResponse.create({ header, kv }));
    if (call.bufferedBytes > 0 && !call.closed) await call.drained();
  };
  const prefix = prefixOf(req.name);
  while (!call.closed) {
    const current = await get(s, ctx, byCreateRequest(prefix, 'first'));
    let leader = current.kvs[0];
    let header = current.header;
    if (leader === undefined) {
      // No leader yet: the first key put under the prefix is the next one.
      await watchUntil(s, ctx, { key: prefix, rangeEnd: prefixEnd(prefix), startRevision: current.header?.revision ?? 0 }, (b) => {
        const put = b.events.find((e) => e.type === mvccpb.Event_EventType.PUT);
        if (put?.kv === undefined) return false;
        leader = put.kv;
        header = s.header(put.kv.modRevision);
        return true;
      });
    }
    if (leader === undefined) return;
    await send(header, leader);
    // Follow this leader's value until its key goes away, then look for the next leader.
    await watchUntil(s, ctx, { key: leader.key, startRevision: (header?.revision ?? 0) + 1 }, async (b) => {
      for (const e of b.events) {
        if (e.type === mvccpb.Event_EventType.DELETE) return true;
        if (e.kv !== undefined) await send(s.header(b.revision), e.kv);
      }
      return false;
    });
  }
}
