/**
 * The building blocks etcd's lock and election services are made of (its
 * clientv3/concurrency package, run inside the server): a session lease,
 * "first/last creator under a prefix" reads, and waiting for a key's delete.
 * Every step runs as the caller (their token's user), through the same
 * checks and the same raft path as a client's own KV requests.
 *
 * etcd's services call these through an in-process client, so any failure
 * reaches the caller as gRPC UNKNOWN with etcd's message (recipeError).
 */
import { rpcErrors, type RpcErrorName } from '../base/index.js';
import { GrpcError, GrpcStatus } from '../grpc/index.js';
import { etcdserverpb, mvccpb } from '../pb/index.js';
import { ServerError, authChecks, type EtcdServer, type RequestContext } from '../server/index.js';
import { check } from './call-context.js';
import { statusOf } from './errors.js';
import { checkQuota, txnCost } from './quota.js';

/** clientv3/concurrency's default session TTL: a lock or campaign without a lease gets one this long. */
export const sessionTtlSeconds = 60;

const encoder = new TextEncoder();
export const bytes = (s: string): Uint8Array => encoder.encode(s);

/** The key a session owns under a prefix: the prefix and the lease id in lower-case hex, as Go's %x. */
export function sessionKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  return concat(prefix, bytes(lease.toString(16)));
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The end of the range of every key starting with prefix (clientv3.GetPrefixRangeEnd). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

/** Any failure as etcd's in-process client hands it back to the service: UNKNOWN with the message. */
export function recipeError(err: unknown): GrpcError {
  if (err instanceof GrpcError) return err;
  return new GrpcError(GrpcStatus.UNKNOWN, statusOf(err).message);
}

/** Runs a recipe, reporting failures as etcd's lock and election services do. */
export async function recipe<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw recipeError(e);
  }
}

/** The session's lease: the one given, or a new one of sessionTtlSeconds (concurrency.NewSession). */
export async function sessionLease(s: EtcdServer, ctx: RequestContext, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  if (s.auth.isEnabled()) check(authChecks.requireAuthInfo(s.auth, ctx.user));
  const resp = await s.leaseGrant(etcdserverpb.LeaseGrantRequest.create({ TTL: sessionTtlSeconds }), ctx);
  return resp.ID;
}

/** A Range as the caller: permission-checked, linearizable. */
export async function get(s: EtcdServer, ctx: RequestContext, req: etcdserverpb.RangeRequest): Promise<etcdserverpb.RangeResponse> {
  check(authChecks.range(s.auth, ctx.user, req));
  return s.range(req);
}

/** The one key under prefix created first (or last), with maxCreateRevision as an upper bound. */
export function byCreateRequest(prefix: Uint8Array, order: 'first' | 'last', maxCreateRevision = 0): etcdserverpb.RangeRequest {
  return etcdserverpb.RangeRequest.create({
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    limit: 1,
    sortTarget: etcdserverpb.RangeRequest_SortTarget.CREATE,
    sortOrder: order === 'first' ? etcdserverpb.RangeRequest_SortOrder.ASCEND : etcdserverpb.RangeRequest_SortOrder.DESCEND,
    maxCreateRevision,
  });
}

/** A Txn as the caller, with the quota check a client's Txn gets. */
export async function txn(s: EtcdServer, ctx: RequestContext, req: etcdserverpb.TxnRequest): Promise<etcdserverpb.TxnResponse> {
  await checkQuota(s, txnCost(req));
  check(authChecks.txn(s.auth, ctx.user, req, (id) => s.lessor.lookup(id)?.keys()));
  return s.txn(req, ctx);
}

export const ops = {
  range: (req: etcdserverpb.RangeRequest): etcdserverpb.RequestOp => etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: req } }),
  get: (key: Uint8Array): etcdserverpb.RequestOp => ops.range(etcdserverpb.RangeRequest.create({ key })),
  put: (key: Uint8Array, value: Uint8Array, lease: bigint): etcdserverpb.RequestOp =>
    etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: etcdserverpb.PutRequest.create({ key, value, lease }) } }),
  delete: (key: Uint8Array): etcdserverpb.RequestOp =>
    etcdserverpb.RequestOp.create({ request: { case: 'requestDeleteRange', value: etcdserverpb.DeleteRangeRequest.create({ key }) } }),
};

export function createRevisionIs(key: Uint8Array, rev: number): etcdserverpb.Compare {
  return etcdserverpb.Compare.create({
    key,
    target: etcdserverpb.Compare_CompareTarget.CREATE,
    result: etcdserverpb.Compare_CompareResult.EQUAL,
    targetUnion: { case: 'createRevision', value: rev },
  });
}

/** The kvs of the i-th response of a txn (a range op's). */
export function rangeKvs(resp: etcdserverpb.TxnResponse, i: number): mvccpb.KeyValue[] {
  const r = resp.responses[i]?.response;
  return r?.case === 'responseRange' ? r.value.kvs : [];
}

/** The watch lost its history to a compaction (clientv3 reports ErrCompacted). */
class WatchCompactedError extends Error {
  readonly code: RpcErrorName = 'Compacted';
  constructor() {
    super(rpcErrors.Compacted.message);
  }
}

/** What a watch delivered: events at a header revision. */
export interface WatchBatch {
  readonly revision: number;
  readonly events: readonly mvccpb.Event[];
}

/**
 * Watches [key, rangeEnd) from startRevision as the caller and hands every
 * batch to onBatch until it returns true. Fails when the history is compacted
 * away or the caller gives up (the signal; a stopping member cancels its calls).
 */
export async function watchUntil(
  s: EtcdServer,
  ctx: RequestContext,
  req: { key: Uint8Array; rangeEnd?: Uint8Array; startRevision: number },
  onBatch: (b: WatchBatch) => boolean | Promise<boolean>,
): Promise<void> {
  check(authChecks.watchCreate(s.auth, ctx.user, req.key, req.rangeEnd ?? new Uint8Array(0)));
  const stream = s.watchable.newWatchStream();
  let wake: (() => void) | undefined;
  const kick = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  stream.onReady = kick;
  const signal = ctx.signal;
  signal?.addEventListener('abort', kick);
  try {
    stream.watch({ key: req.key, rangeEnd: req.rangeEnd ?? new Uint8Array(0), startRevision: req.startRevision });
    for (;;) {
      if (signal?.aborted === true) throw new ServerError('Canceled');
      const r = stream.next();
      if (r === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (stream.pending > 0 || signal?.aborted === true) kick();
        });
        continue;
      }
      if (r.compactRevision !== 0) throw new WatchCompactedError();
      if (await onBatch({ revision: r.revision, events: r.events })) return;
    }
  } finally {
    signal?.removeEventListener('abort', kick);
    stream.close();
  }
}

/** Resolves once key is deleted at or after rev (concurrency's waitDelete). */
export function waitDelete(s: EtcdServer, ctx: RequestContext, key: Uint8Array, rev: number): Promise<void> {
  return watchUntil(s, ctx, { key, startRevision: rev }, (b) => b.events.some((e) => e.type === mvccpb.Event_EventType.DELETE));
}

/**
 * Waits until no key under prefix created at or before maxCreateRevision is
 * left, one delete at a time, newest first (concurrency's waitDeletes).
 * Resolves with the header of the read that found none.
 */
export async function waitDeletes(s: EtcdServer, ctx: RequestContext, prefix: Uint8Array, maxCreateRevision: number): Promise<etcdserverpb.ResponseHeader | undefined> {
  for (;;) {
    const resp = await get(s, ctx, byCreateRequest(prefix, 'last', maxCreateRevision));
    const last = resp.kvs[0];
    if (last === undefined) return resp.header;
    await waitDelete(s, ctx, last.key, resp.header?.revision ?? 0);
  }
}
