/**
 * What every RPC does before its handler, as etcd's interceptors: a learner
 * refuses what it may not serve; `hasleader: true` metadata fails fast without
 * a leader; the caller's identity comes from the `token` metadata (or the TLS
 * client certificate's CN); and every failure leaves as a GrpcError with
 * etcd's code and message (errors.ts is the one table).
 */
import { GrpcError, type ServerCall } from '../grpc/index.js';
import { type EtcdServer, type RequestContext, ServerError } from '../server/index.js';
import { statusOf } from './errors.js';

/**
 * A call's RequestContext. The signal is the call's, taken only when the
 * server asks for it: a call's AbortSignal is made on first use and costs an
 * AbortController. A proposal needs only the abort event (onAbort).
 */
class CallRequestContext implements RequestContext {
  constructor(
    readonly user: RequestContext['user'],
    private readonly call: ServerCall,
  ) {}

  get signal(): AbortSignal {
    return this.call.signal;
  }

  onAbort(fn: () => void): () => void {
    return this.call.onAbort(fn);
  }
}

/**
 * The caller's auth info and cancellation, for the server's operations.
 * A promise only when a token must wait for the entry that issued it.
 */
export function requestContext(s: EtcdServer, call: ServerCall): RequestContext | Promise<RequestContext> {
  const token = call.metadata.get('token') ?? call.metadata.get('authorization');
  if (token !== undefined && token !== '') {
    const waitIndex = s.auth.tokenWaitIndex(token);
    // A simple token is known once the entry that issued it is applied here.
    if (waitIndex !== undefined && waitIndex > s.appliedIndex) {
      return s.appliedWait.wait(waitIndex).then(() => new CallRequestContext(s.auth.authInfoFromToken(token), call));
    }
    return new CallRequestContext(s.auth.authInfoFromToken(token), call);
  }
  const cn = call.peer.commonName;
  if (cn !== undefined && s.cfg.clientTls.clientCertAuth) {
    // The gateway's loopback connection carries the server's own certificate, never the caller's.
    const user = s.auth.authInfoFromTls(cn, call.metadata.get('grpcgateway-accept') !== undefined);
    if (user !== undefined) return new CallRequestContext(user, call);
  }
  return new CallRequestContext(undefined, call);
}

/** Fails the call as etcd's interceptors would, before any work. */
export function checkCall(s: EtcdServer, call: ServerCall, learnerAllowed: boolean): void {
  if (s.isLearner() && !learnerAllowed) throw new ServerError('NotSupportedForLearner');
  if (call.metadata.get('hasleader') === 'true' && s.leaderId === 0n) throw new ServerError('NoLeader');
}

/** Any failure as the GrpcError clients expect. */
export function toGrpc(err: unknown): GrpcError {
  if (err instanceof GrpcError) return err;
  const { status, message } = statusOf(err);
  return new GrpcError(status, message);
}

/** Runs a handler body, mapping whatever it throws to etcd's gRPC error. */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toGrpc(e);
  }
}

/** Throws a validation failure (a typed error) when there is one. */
export function check(err: Error | undefined): void {
  if (err !== undefined) throw err;
}
