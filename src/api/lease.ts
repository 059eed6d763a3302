/**
 * The Lease service. Grant and Revoke go through raft (even a grant whose TTL
 * is too large: the lessor refuses it at apply, as etcd's does); KeepAlive renews on the
 * leader (a follower forwards) and answers TTL 0 for a lease that is gone,
 * never an error; TimeToLive answers TTL -1 for an unknown lease.
 */
import { bidiStreaming, unary, type ServiceHandlers } from '../grpc/index.js';
import { etcdserverpb } from '../pb/index.js';
import { ServerError, authChecks, isAuthError, type EtcdServer, type RequestContext } from '../server/index.js';
import { check, checkCall, guard, requestContext, whenLeaderLost } from './call-context.js';
import { checkQuota, leaseGrantCost } from './quota.js';

type LeaseMethods = typeof etcdserverpb.LeaseService.methods;

/** Keepalive requests queued per stream before the stream stops reading (HTTP/2 flow control holds the client). */
const keepAlivesInflightMax = 64;

export function leaseService(s: EtcdServer): ServiceHandlers<LeaseMethods> {
  /** The caller of a lookup etcd 3.4 answers without reading the token: a token it does not know is no caller. */
  const lookupUser = async (call: Parameters<typeof requestContext>[1]): Promise<RequestContext['user']> => {
    try {
      return (await requestContext(s, call)).user;
    } catch (e) {
      if (isAuthError(e, 'InvalidAuthToken')) return undefined;
      throw e;
    }
  };
  return {
    LeaseGrant: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        // Any caller may grant a lease in etcd 3.4 (a bad token is still refused).
        const ctx = await requestContext(s, call);
        // A too-large TTL is refused by the lessor when the grant applies: etcd
        // proposes it like any grant (it takes a raft entry), so does etcd-ts.
        await checkQuota(s, leaseGrantCost());
        return s.leaseGrant(req, ctx);
      }),
    ),
    LeaseRevoke: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        const ctx = await requestContext(s, call);
        // As etcd 3.4: each attached key must be writable by the caller; a lease without keys, anyone may revoke.
        const keys = s.lessor.lookup(req.ID)?.keys() ?? [];
        if (s.auth.isEnabled() && keys.length > 0) check(authChecks.leaseRevoke(s.auth, ctx.user, keys));
        return s.leaseRevoke(req, ctx);
      }),
    ),
    LeaseKeepAlive: bidiStreaming((call) =>
      guard(async () => {
        checkCall(s, call, false);
        // etcd 3.4.23 reads no token here: anyone may keep a lease alive, as anyone may grant one.
        const inflight = new Set<Promise<void>>();
        // As etcd's: a renewal that fails (no leader within the request timeout, a timeout, the
        // member stopping) ends the stream with its error; an unknown lease is answered TTL 0.
        let fail: ((e: unknown) => void) | undefined;
        const failed = new Promise<never>((_, reject) => (fail = reject));
        failed.catch(() => undefined);
        // A caller that requires a leader (clientv3's keep-alives do) has its stream ended once the
        // member has been without one for a while, a renewal pending or not, as etcd does: the
        // client then renews through another member before its lease runs out.
        whenLeaderLost(s, call, () => fail?.(new ServerError('NoLeader')));
        // Answered in the order asked, as etcd answers each keep-alive before it reads the next
        // (a JSON gateway client pairs answers with requests by position); the renewals
        // themselves overlap, as a stream may carry the keep-alives of many leases.
        let previous: Promise<void> = Promise.resolve();
        let broken = false;
        const requests = call[Symbol.asyncIterator]();
        for (;;) {
          const next = requests.next();
          next.catch(() => undefined);
          const r = await Promise.race([next, failed]);
          if (r.done === true) break;
          const req = r.value;
          // Taken before the renewal, as etcd does: the revision answered is never past the
          // renewal, so a lease revoked while its keep-alive waited is answered TTL 0 at a
          // revision from before the revoke.
          const header = s.header();
          const renewal = s.leaseRenew(req.ID);
          renewal.catch(() => undefined);
          // After a failed renewal the stream ends with its error: nothing asked after it is answered.
          const renewed = previous.then(() => renewal).then(
            (ttl) => {
              if (!broken && !call.closed) call.write(etcdserverpb.LeaseKeepAliveResponse.create({ header, ID: req.ID, TTL: ttl }));
            },
            (e: unknown) => {
              if (broken) return;
              broken = true;
              s.logger.debug('lease keepalive failed', { lease: req.ID.toString(16), error: (e as Error).message });
              fail?.(e);
            },
          );
          previous = renewed;
          inflight.add(renewed);
          void renewed.finally(() => inflight.delete(renewed));
          if (inflight.size >= keepAlivesInflightMax) await Promise.race([renewed, failed]);
          if (call.bufferedBytes > 0) await Promise.race([call.drained(), failed]);
        }
        // The sender half-closed (the JSON gateway does at the end of its body): etcd answers
        // each keep-alive before it reads the next, so every one sent is answered before the end.
        await Promise.race([Promise.all(inflight), failed]);
      }),
    ),
    LeaseTimeToLive: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        // etcd 3.4.23 reads no token here. Keys it would show are checked as
        // later etcd releases do (etcd PR #15815): the caller must read them.
        const keys = req.keys ? (s.lessor.lookup(req.ID)?.keys() ?? []) : [];
        if (s.auth.isEnabled() && keys.length > 0) check(authChecks.leaseTimeToLive(s.auth, await lookupUser(call), keys));
        return s.leaseTimeToLive(req);
      }),
    ),
    LeaseLeases: unary((_req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        // As LeaseTimeToLive: no token read unless some lease has keys, which the caller must read.
        const all = s.auth.isEnabled() ? s.lessor.leases().flatMap((l) => l.keys()) : [];
        if (all.length > 0) check(authChecks.leaseLeases(s.auth, await lookupUser(call), all));
        return s.leaseLeases();
      }),
    ),
  };
}
