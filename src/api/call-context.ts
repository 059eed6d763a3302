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
  const waiting = tokenApplied(s, call);
  if (waiting !== undefined) return waiting.then(() => new CallRequestContext(callerAuthInfo(s, call), call));
  return new CallRequestContext(callerAuthInfo(s, call), call);
}

/** Resolves once the entry that issued the call's simple token is applied here; undefined when there is nothing to wait for. */
export function tokenApplied(s: EtcdServer, call: ServerCall): Promise<void> | undefined {
  const token = callToken(call);
  const waitIndex = token === undefined ? undefined : s.auth.tokenWaitIndex(token);
  return waitIndex !== undefined && waitIndex > s.appliedIndex ? s.appliedWait.wait(waitIndex) : undefined;
}

/** The caller's auth info now: from its token (an AuthError if the token is not valid), else its TLS CN. */
export function callerAuthInfo(s: EtcdServer, call: ServerCall): RequestContext['user'] {
  const token = callToken(call);
  if (token !== undefined) return s.auth.authInfoFromToken(token);
  const cn = call.peer.commonName;
  if (cn !== undefined && s.cfg.clientTls.clientCertAuth) {
    // The gateway's loopback connection carries the server's own certificate, never the caller's.
    return s.auth.authInfoFromTls(cn, call.metadata.get('grpcgateway-accept') !== undefined);
  }
  return undefined;
}

/** The call's token; an empty one is a token still (etcd answers it "invalid auth token", auth on or off). */
function callToken(call: ServerCall): string | undefined {
  return call.metadata.get('token') ?? call.metadata.get('authorization');
}

/** Fails the call as etcd's interceptors would, before any work. */
export function checkCall(s: EtcdServer, call: ServerCall, learnerAllowed: boolean): void {
  if (s.isLearner() && !learnerAllowed) throw new ServerError('NotSupportedForLearner');
  if (call.metadata.get('hasleader') === 'true' && s.leaderId === 0n) throw new ServerError('NoLeader');
}

/**
 * etcd's monitorLeader: checks one election timeout apart that must all find
 * no leader before a leader-requiring stream already open is ended. A new
 * call fails at once (checkCall); an open stream is given longer, as
 * reconnecting it costs its client more than a refused call.
 */
const noLeaderChecksMax = 3;

/**
 * For a stream whose caller sent `hasleader: true`: runs onLost once the
 * member has had no leader for noLeaderChecksMax checks in a row, as etcd
 * cancels such streams (its handlers then end them with "etcdserver: no
 * leader"), whether or not a request is pending. The checks stop by
 * themselves once the call is over; the function returned stops them
 * sooner. A stream without the metadata is never ended for this.
 */
export function whenLeaderLost(s: EtcdServer, call: ServerCall, onLost: () => void): () => void {
  if (call.metadata.get('hasleader') !== 'true') return () => undefined;
  let misses = 0;
  const timer = setInterval(() => {
    if (call.closed) {
      clearInterval(timer);
      return;
    }
    misses = s.leaderId === 0n ? misses + 1 : 0;
    if (misses < noLeaderChecksMax) return;
    clearInterval(timer);
    onLost();
  }, Math.max(s.cfg.electionMs, 100));
  return () => clearInterval(timer);
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
