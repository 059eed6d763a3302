/**
 * The KV service: Range, Put, DeleteRange, Txn, Compact. Requests are checked
 * as etcd's v3rpc checks them (empty key, txn limits and duplicate keys, sort
 * options) before anything is proposed, and writes that would grow the store
 * past its quota raise NOSPACE instead (etcd's quota KV server).
 */
import { EncodedMessage, unary, type ServiceHandlers } from '../grpc/index.js';
import { etcdserverpb } from '../pb/index.js';
import { authChecks, kvChecks, type EtcdServer } from '../server/index.js';
import { check, checkCall, guard, requestContext } from './call-context.js';
import { checkQuota, putCost, txnCost } from './quota.js';

type KVMethods = typeof etcdserverpb.KVService.methods;

export function kvService(s: EtcdServer): ServiceHandlers<KVMethods> {
  const leaseKeys = (id: bigint): readonly Uint8Array[] | undefined => s.lessor.lookup(id)?.keys();
  return {
    Range: unary<etcdserverpb.RangeRequest, etcdserverpb.RangeResponse>((req, call) =>
      guard(async () => {
        checkCall(s, call, req.serializable);
        check(kvChecks.range(req));
        const ctx = await requestContext(s, call);
        check(authChecks.range(s.auth, ctx.user, req));
        return new EncodedMessage(await s.rangeBytes(req, ctx.user));
      }),
    ),
    Put: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        check(kvChecks.put(req));
        await checkQuota(s, putCost(req));
        return s.put(req, await requestContext(s, call));
      }),
    ),
    DeleteRange: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        check(kvChecks.deleteRange(req));
        return s.deleteRange(req, await requestContext(s, call));
      }),
    ),
    Txn: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        check(kvChecks.txn(req, s.cfg.maxTxnOps));
        await checkQuota(s, txnCost(req));
        const ctx = await requestContext(s, call);
        // Read-only txns are served here, not through raft: check them here.
        check(authChecks.txn(s.auth, ctx.user, req, leaseKeys));
        return s.txn(req, ctx);
      }),
    ),
    Compact: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        // etcd 3.4 lets any caller compact (a bad token is still refused).
        const ctx = await requestContext(s, call);
        return s.compact(req, ctx);
      }),
    ),
  };
}
