/**
 * The v3lock service (Lock, Unlock), as etcd runs clientv3's Mutex inside the
 * server: the lock on name is held by the oldest key under "name/"; a locker
 * puts "name/<lease hex>" attached to its lease (a new 60 s lease when none is
 * given) and waits until every older key is gone. Unlock deletes the key.
 * The key lives and dies with the lease, so a crashed holder frees the lock
 * when its lease expires. Failures are UNKNOWN with etcd's message, as etcd's
 * in-process client reports them.
 */
import { unary, type ServiceHandlers } from '../grpc/index.js';
import { etcdserverpb, v3lockpb } from '../pb/index.js';
import { kvChecks, type EtcdServer } from '../server/index.js';
import { check, checkCall, requestContext } from './call-context.js';
import { bytes, byCreateRequest, concat, createRevisionIs, ops, rangeKvs, recipe, sessionKey, sessionLease, txn, waitDeletes } from './recipes.js';

type LockMethods = typeof v3lockpb.LockService.methods;

export function lockService(s: EtcdServer): ServiceHandlers<LockMethods> {
  return {
    Lock: unary((req, call) =>
      recipe(async () => {
        checkCall(s, call, false);
        const ctx = await requestContext(s, call);
        const lease = await sessionLease(s, ctx, req.lease);
        const prefix = concat(req.name, bytes('/'));
        const key = sessionKey(prefix, lease);
        const owner = ops.range(byCreateRequest(prefix, 'first'));
        // Join the waiters (or find the key this lease already has), and learn the holder, in one round.
        const resp = await txn(
          s,
          ctx,
          etcdserverpb.TxnRequest.create({
            compare: [createRevisionIs(key, 0)],
            success: [ops.put(key, new Uint8Array(0), lease), owner],
            failure: [ops.get(key), owner],
          }),
        );
        const myRev = resp.succeeded ? (resp.header?.revision ?? 0) : (rangeKvs(resp, 0)[0]?.createRevision ?? 0);
        const holder = rangeKvs(resp, 1)[0];
        if (holder === undefined || holder.createRevision === myRev) return v3lockpb.LockResponse.create({ header: resp.header, key });
        try {
          const header = await waitDeletes(s, ctx, prefix, myRev - 1);
          return v3lockpb.LockResponse.create({ header, key });
        } catch (e) {
          // Gave up waiting: leave the queue so later lockers are not held behind a dead waiter.
          await s.deleteRange(etcdserverpb.DeleteRangeRequest.create({ key }), { user: ctx.user }).catch(() => undefined);
          throw e;
        }
      }),
    ),
    Unlock: unary((req, call) =>
      recipe(async () => {
        checkCall(s, call, false);
        const ctx = await requestContext(s, call);
        const del = etcdserverpb.DeleteRangeRequest.create({ key: req.key });
        check(kvChecks.deleteRange(del));
        const resp = await s.deleteRange(del, ctx);
        return v3lockpb.UnlockResponse.create({ header: resp.header });
      }),
    ),
  };
}
