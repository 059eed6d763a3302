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

/** The caller's auth info and cancellation, for the server's operations. */
export async function requestContext(s: EtcdServer, call: ServerCall): Promise<RequestContext> {
  const token = call.metadata.get('token') ?? call.metadata.get('authorization');
  if (token !== undefined && token !== '') {
    const waitIndex = s.auth.tokenWaitIndex(token);
    // A simple token is known once the entry that issued it is applied here.
    if (waitIndex !== undefined && waitIndex > s.appliedIndex) await s.appliedWait.wait(waitIndex);
    return { user: s.auth.authInfoFromToken(token), signal: call.signal };
  }
  const cn = call.peer.commonName;
  if (cn !== undefined && s.cfg.clientTls.clientCertAuth) {
    // The gateway's loopback connection carries the server's own certificate, never the caller's.
    const user = s.auth.authInfoFromTls(cn, call.metadata.get('grpcgateway-accept') !== undefined);
    if (user !== undefined) return { user, signal: call.signal };
  }
  return { signal: call.signal };
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
