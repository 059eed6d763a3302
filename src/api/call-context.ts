/**
 * What every RPC does before its handler, as etcd's interceptors: a learner
 * refuses what it may not serve; `hasleader: true` metadata fails fast without
 * a leader; the caller's identity comes from the `token` metadata (or the TLS
 * client certificate's CN); and every failure leaves as a GrpcError with
 * etcd's code and message (errors.ts is the one table).
 */
import { GrpcError, GrpcStatus, type ServerCall } from '../grpc/index.js';
import { type EtcdServer, type RequestContext, ServerError, isAuthError } from '../server/index.js';
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

/** The text of etcd's auth package errors, which some of etcd 3.4's calls return untranslated. */
const rawAuthTexts: Readonly<Record<string, string>> = {
  InvalidAuthToken: 'auth: invalid auth token',
  UserEmpty: 'auth: user name is empty',
  PermissionDenied: 'auth: permission denied',
};

/**
 * Runs fn, answering its token and permission errors as etcd 3.4's
 * Maintenance service does: the auth package's error returned as it is,
 * which gRPC sends as status UNKNOWN with the package's own text ("auth:
 * invalid auth token"), not as etcd's translated gRPC errors.
 */
export async function untranslatedAuthErrors<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const text = isAuthError(e) ? rawAuthTexts[e.code] : undefined;
    if (text !== undefined) throw new GrpcError(GrpcStatus.UNKNOWN, text);
    throw e;
  }
}
