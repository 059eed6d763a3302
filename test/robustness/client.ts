/**
 * A recording KV client for the traffic: each call is one OpRecord, invoked
 * and returned on the monotonic clock, sent over src/grpc with the plain
 * RPC when the request is a single range, put or delete (so those paths are
 * exercised too) and as a Txn otherwise. One client is sequential, as the
 * checkers assume. A client pinned to one member stays there; a cluster-wide
 * client moves to the next endpoint after a failure.
 */
import { fromUtf8, idToHex, utf8 } from '../../src/base/index.js';
import { GrpcChannel, GrpcError, GrpcStatus } from '../../src/grpc/index.js';
import { etcdserverpb, type mvccpb } from '../../src/pb/index.js';
import { delay, methods } from '../harness/index.js';
import { nowMs, padChar, recordedValue, type Kv, type OpRecord, type OpResult, type Request, type Response, type TxnOp, type TxnRequest, type WatchEvent } from './history.js';
import type { Access } from './access.js';

const failurePauseMs = 150;

export function toKv(kv: mvccpb.KeyValue): Kv {
  return {
    key: fromUtf8(kv.key),
    value: recordedValue(fromUtf8(kv.value)),
    createRev: kv.createRevision,
    modRev: kv.modRevision,
    version: kv.version,
    lease: kv.lease.toString(),
  };
}

export function toEvent(e: mvccpb.Event): WatchEvent {
  const kv = toKv(e.kv ?? { key: new Uint8Array(), value: new Uint8Array(), createRevision: 0, modRevision: 0, version: 0, lease: 0n });
  const type = e.type === 1 ? ('delete' as const) : ('put' as const);
  return e.prevKv === undefined ? { type, kv } : { type, kv, prevKv: toKv(e.prevKv) };
}

export function rangeRequest(op: Extract<TxnOp, { type: 'range' }>): etcdserverpb.RangeRequest {
  return etcdserverpb.RangeRequest.create({
    key: utf8(op.key),
    rangeEnd: op.end === undefined ? new Uint8Array() : op.end === '\0' ? new Uint8Array([0]) : utf8(op.end),
    limit: op.limit ?? 0,
    revision: op.revision ?? 0,
    serializable: op.serializable ?? false,
  });
}

export function putRequest(op: Extract<TxnOp, { type: 'put' }>): etcdserverpb.PutRequest {
  return etcdserverpb.PutRequest.create({ key: utf8(op.key), value: utf8(op.pad === undefined ? op.value : op.value + padChar.repeat(op.pad)), lease: BigInt(op.lease ?? '0'), prevKv: op.prevKv ?? false });
}

export function deleteRequest(op: Extract<TxnOp, { type: 'delete' }>): etcdserverpb.DeleteRangeRequest {
  return etcdserverpb.DeleteRangeRequest.create({ key: utf8(op.key) });
}

export function requestOp(op: TxnOp): etcdserverpb.RequestOp {
  switch (op.type) {
    case 'range':
      return etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: rangeRequest(op) } });
    case 'put':
      return etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: putRequest(op) } });
    case 'delete':
      return etcdserverpb.RequestOp.create({ request: { case: 'requestDeleteRange', value: deleteRequest(op) } });
  }
}

export function rangeResult(r: etcdserverpb.RangeResponse): OpResult {
  return { type: 'range', kvs: r.kvs.map(toKv), count: r.count, more: r.more };
}
export function putResult(r: etcdserverpb.PutResponse): OpResult {
  return r.prevKv === undefined ? { type: 'put' } : { type: 'put', prevKv: toKv(r.prevKv) };
}
export function deleteResult(r: etcdserverpb.DeleteRangeResponse): OpResult {
  return { type: 'delete', deleted: r.deleted };
}

/** The history's txn as etcd's TxnRequest (compares: mod_revision == n). */
export function txnRequestPb(txn: TxnRequest): etcdserverpb.TxnRequest {
  return etcdserverpb.TxnRequest.create({
    compare: txn.compares.map((c) =>
      etcdserverpb.Compare.create({ key: utf8(c.key), result: 0, target: 2, targetUnion: { case: 'modRevision', value: c.modRev } }),
    ),
    success: txn.success.map(requestOp),
    failure: txn.failure.map(requestOp),
  });
}

/** A TxnResponse's results in the history's form. */
export function txnResults(r: etcdserverpb.TxnResponse): OpResult[] {
  return r.responses.map((ro): OpResult => {
    const x = ro.response;
    switch (x?.case) {
      case 'responseRange':
        return rangeResult(x.value);
      case 'responsePut':
        return putResult(x.value);
      case 'responseDeleteRange':
        return deleteResult(x.value);
      default:
        throw new Error(`unexpected txn response op ${x?.case ?? 'none'}`);
    }
  });
}

function header(h: etcdserverpb.ResponseHeader | undefined): { revision: number; memberId: string } {
  return { revision: h?.revision ?? 0, memberId: idToHex(h?.memberId ?? 0n) };
}

export interface ClientOptions {
  readonly id: number;
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  /** Where every operation is recorded. */
  readonly ops: OpRecord[];
  readonly nextOpId: () => number;
  readonly access: Access;
}

export class RecordingClient {
  private channel: GrpcChannel | undefined;
  private endpointIndex = 0;
  /** The highest header revision this client saw. */
  lastRevision = 1;
  /** The id of the last op run() recorded. */
  lastOpId = -1;
  /** The error of the last op run() recorded, undefined when it succeeded. */
  lastError: GrpcError | undefined;

  constructor(private readonly opts: ClientOptions) {}

  get id(): number {
    return this.opts.id;
  }
  get endpoint(): string {
    return this.opts.endpoints[this.endpointIndex % this.opts.endpoints.length] as string;
  }

  private chan(): GrpcChannel {
    this.channel ??= this.opts.access.channel(this.endpoint, 'traffic', this.opts.timeoutMs);
    return this.channel;
  }

  private failover(): void {
    if (this.opts.endpoints.length <= 1) return;
    this.channel?.close();
    this.channel = undefined;
    this.endpointIndex++;
  }

  close(): void {
    this.channel?.close();
    this.channel = undefined;
  }

  /**
   * One LeaseKeepAlive round trip on a stream of its own (not a KV op, so not
   * in the history's ops): the TTL the leader answered, 0 when the lease is
   * gone, undefined when the call failed.
   */
  async keepAlive(id: string): Promise<{ invokeMs: number; returnMs: number; ttl: number; memberId: string } | undefined> {
    const invokeMs = nowMs();
    const call = this.chan().bidi(methods.lease.LeaseKeepAlive, { timeoutMs: this.opts.timeoutMs });
    try {
      call.write(etcdserverpb.LeaseKeepAliveRequest.create({ ID: BigInt(id) }));
      const r = await call.read();
      return r === undefined ? undefined : { invokeMs, returnMs: nowMs(), ttl: r.TTL, memberId: idToHex(r.header?.memberId ?? 0n) };
    } catch (e) {
      if (!(e instanceof GrpcError)) throw e;
      this.opts.access.noteError('traffic', e, this.endpoint);
      this.failover();
      return undefined;
    } finally {
      call.cancel();
    }
  }

  /**
   * LeaseTimeToLive's TTL and granted TTL, undefined when the call failed.
   * A lease that is gone answers TTL -1 and granted TTL 0; one past its
   * expiry whose revoke has not applied yet may answer TTL -1 too (etcd
   * truncates the negative time left), with its granted TTL.
   */
  async timeToLive(id: string): Promise<{ ttl: number; grantedTtl: number } | undefined> {
    try {
      const r = await this.chan().unary(methods.lease.LeaseTimeToLive, etcdserverpb.LeaseTimeToLiveRequest.create({ ID: BigInt(id) }), { timeoutMs: this.opts.timeoutMs });
      return { ttl: r.TTL, grantedTtl: r.grantedTTL };
    } catch (e) {
      if (!(e instanceof GrpcError)) throw e;
      this.opts.access.noteError('traffic', e, this.endpoint);
      this.failover();
      return undefined;
    }
  }

  /** Whether the lease is gone (revoked, or expired and its revoke applied); undefined when the call failed. */
  async leaseGone(id: string): Promise<boolean | undefined> {
    const t = await this.timeToLive(id);
    return t === undefined ? undefined : t.ttl === -1 && t.grantedTtl === 0;
  }

  /** Runs a request; the result when it succeeded, undefined when it failed (recorded either way). */
  async run(label: string, req: Request): Promise<Response | undefined> {
    const op: OpRecord = { id: this.opts.nextOpId(), client: this.opts.id, label, endpoint: this.endpoint, invokeMs: nowMs(), req };
    this.opts.ops.push(op);
    this.lastOpId = op.id;
    try {
      const res = await this.send(req);
      op.returnMs = nowMs();
      op.status = 'ok';
      op.res = res;
      this.lastError = undefined;
      this.lastRevision = Math.max(this.lastRevision, res.revision);
      return res;
    } catch (e) {
      if (!(e instanceof GrpcError)) throw e;
      this.opts.access.noteError('traffic', e, this.endpoint);
      this.lastError = e;
      // A write refused with one of these codes did not take effect, and will not: a definite failure the checker holds it to.
      op.status = isRead(req) || refusedCodes.has(e.code) ? 'failed' : 'indeterminate';
      if (op.status === 'failed') op.returnMs = nowMs();
      op.error = `${e.code}: ${e.message}`;
      this.failover();
      // A member that is down refuses at once: do not spin on it.
      await delay(failurePauseMs);
      return undefined;
    }
  }

  private async send(req: Request): Promise<Response> {
    const ch = this.chan();
    const call = { timeoutMs: this.opts.timeoutMs };
    switch (req.kind) {
      case 'leaseGrant': {
        const r = await ch.unary(methods.lease.LeaseGrant, etcdserverpb.LeaseGrantRequest.create({ ID: BigInt(req.id), TTL: req.ttl }), call);
        return { ...header(r.header), leaseTtl: r.TTL, succeeded: true, results: [] };
      }
      case 'leaseRevoke': {
        const r = await ch.unary(methods.lease.LeaseRevoke, etcdserverpb.LeaseRevokeRequest.create({ ID: BigInt(req.id) }), call);
        return { ...header(r.header), succeeded: true, results: [] };
      }
      case 'txn':
        return this.sendTxn(ch, req.txn, call);
    }
  }

  private async sendTxn(ch: GrpcChannel, txn: TxnRequest, call: { timeoutMs: number }): Promise<Response> {
    const single = txn.compares.length === 0 && txn.success.length === 1 && txn.failure.length === 0 ? txn.success[0] : undefined;
    if (single !== undefined) {
      switch (single.type) {
        case 'range': {
          const r = await ch.unary(methods.kv.Range, rangeRequest(single), call);
          return { ...header(r.header), succeeded: true, results: [rangeResult(r)] };
        }
        case 'put': {
          const r = await ch.unary(methods.kv.Put, putRequest(single), call);
          return { ...header(r.header), succeeded: true, results: [putResult(r)] };
        }
        case 'delete': {
          const r = await ch.unary(methods.kv.DeleteRange, deleteRequest(single), call);
          return { ...header(r.header), succeeded: true, results: [deleteResult(r)] };
        }
      }
    }
    const r = await ch.unary(methods.kv.Txn, txnRequestPb(txn), call);
    return { ...header(r.header), succeeded: r.succeeded, results: txnResults(r) };
  }
}

/**
 * The codes etcd refuses a request with before proposing it (validation,
 * authentication, permissions) or when applying it, alike on every member,
 * before it changes anything (an old auth revision, a compacted revision):
 * such a write took no effect. Unavailable, deadline exceeded, canceled and
 * the rest leave it indeterminate. So does resource exhausted: a write
 * that crosses the quota is applied and then answered "database space
 * exceeded", as etcd's quota applier does. And not found: a revoke finding
 * its lease gone may come after the lease expired.
 */
const refusedCodes: ReadonlySet<number> = new Set([
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.PERMISSION_DENIED,
  GrpcStatus.FAILED_PRECONDITION,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNAUTHENTICATED,
]);

export function isRead(req: Request): boolean {
  return req.kind === 'txn' && req.txn.compares.length === 0 && [...req.txn.success, ...req.txn.failure].every((o) => o.type === 'range');
}
