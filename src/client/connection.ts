/**
 * Connection: one GrpcChannel per endpoint, a round-robin picker over the
 * channels that are READY, and the call policy of etcd's Go client (clientv3
 * 3.4's retry interceptor):
 *
 * - A call waits for some endpoint to be READY (gRPC "wait for ready"), up to
 *   its deadline; every endpoint is dialled from the start and redialled with
 *   gRPC's backoff while down.
 * - Repeatable calls (reads, status, member list, ...) are retried on
 *   Unavailable against the next READY endpoint, up to `retriesMax` attempts,
 *   with a short jittered pause once per quorum-size round of attempts. A
 *   read refused by a member named corrupt ("etcdserver: corrupt cluster",
 *   DataLoss) is tried on each other endpoint once (etcd-ts's own: clientv3
 *   gives up at once; the other members serve reads).
 *   Mutations are never retried once sent (write at most once).
 * - With a user name and password the client authenticates first and sends the
 *   token as `token` metadata; "invalid auth token" (or an old auth revision)
 *   makes it authenticate again and retry.
 * - Each failed attempt is reported to the logger, as clientv3 logs
 *   "retrying of unary invoker failed".
 * - A call may be pinned to one endpoint (maintenance calls address a member).
 */
import { randomUUID } from 'node:crypto';
import {
  type ChannelTlsOptions,
  ConnectivityState,
  GrpcChannel,
  GrpcError,
  GrpcStatus,
  type ClientDuplexCall,
  type ClientReadableCall,
  type MethodDef,
} from '../grpc/index.js';
import { etcdserverpb } from '../pb/index.js';
import { endpointUsesTls, parseEndpoint, type ParsedEndpoint } from './endpoint.js';
import {
  canceledError,
  clientFailure,
  ClientError,
  ErrorCode,
  fromGrpcError,
  grpcErrorText,
  isContextError,
  toClientError,
} from './errors.js';

/** TLS for every endpoint: the channel's own options (CA, client certificate, servername, skip-verify). */
export type TlsOptions = ChannelTlsOptions;

export type ClientLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One thing the client has to say (etcd's client logs these through zap). */
export interface ClientLogEntry {
  readonly level: ClientLogLevel;
  readonly msg: string;
  readonly fields: Readonly<Record<string, string | number>>;
}

export type ClientLogger = (entry: ClientLogEntry) => void;

export interface ConnectionOptions {
  readonly endpoints: readonly string[];
  /** TLS for endpoints without an http:// or https:// scheme; undefined = plain. */
  readonly tls?: TlsOptions | undefined;
  /** Bounds the first authentication; 0 or undefined = none. */
  readonly dialTimeoutMs?: number | undefined;
  /** Ping a connection this often while calls are open; 0 = never. */
  readonly keepaliveTimeMs?: number | undefined;
  readonly keepaliveTimeoutMs?: number | undefined;
  /** Default 2 MiB, as clientv3. */
  readonly maxCallSendBytes?: number | undefined;
  /** Default 2^31-1. */
  readonly maxCallRecvBytes?: number | undefined;
  /**
   * The HTTP/2 receive window of each stream: what one call takes in before
   * its reader must have read. Default 1 MiB (a stalled watch stream holds
   * no more, half of the connection's window); larger for a client made for
   * one bulk download, such as a snapshot.
   */
  readonly streamWindowBytes?: number | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly logger?: ClientLogger | undefined;
  /** Attempts per repeatable call; default 100 as clientv3. */
  readonly retriesMax?: number | undefined;
  /** Jitter source in [0, 1); default Math.random. */
  readonly random?: (() => number) | undefined;
}

/** Options of one call. */
export interface CallOptions {
  /** Cancels the call (and a call waiting for an endpoint). */
  readonly signal?: AbortSignal | undefined;
  /** Relative deadline for the whole call, retries included. */
  readonly timeoutMs?: number | undefined;
  /** Absolute deadline in ms since the epoch; the earlier of the two applies. */
  readonly deadlineMs?: number | undefined;
  /** Fail when the serving member has no leader (metadata hasleader=true). */
  readonly requireLeader?: boolean | undefined;
}

export type RetryPolicy = 'repeatable' | 'nonRepeatable';

interface EndpointChannel {
  readonly endpoint: ParsedEndpoint;
  readonly channel: GrpcChannel;
}

const retryPauseMs = 25;
const retryJitter = 0.1;
const clientApiVersion = '3.4';
const sendBytesDefault = 2 * 1024 * 1024;
const recvBytesDefault = 0x7fff_ffff;
/** The channel's own default connection window (GrpcChannel): 1 MiB. */
const connectionWindowDefault = 1024 * 1024;
/**
 * A stream's receive window unless the options say otherwise. HTTP/2's
 * 64 KiB costs a window update's round trip per 32 KiB of a response: a
 * range of ten 100 KiB values went from 123-127 to 283-286 a second with
 * this (etcd's clients, on grpc-go, grow their windows to the measured
 * bandwidth-delay product).
 */
const streamWindowDefault = 1024 * 1024;
const retriesMaxDefault = 100;
/** Bounds the endpoints one client keeps (and the channels it dials). */
const endpointsMax = 1024;
const transientFailureText = 'latest balancer error: all SubConns are in TransientFailure';

export class Connection {
  private readonly byEndpoint = new Map<string, EndpointChannel>();
  /** Channels dialled for a call pinned to an endpoint outside the balanced set. */
  private readonly pinned = new Map<string, EndpointChannel>();
  private endpointList: string[];
  private nextPick = 0;
  private token: string | undefined;
  private tokenFetch: Promise<void> | undefined;
  private closedFlag = false;
  private readonly closeController = new AbortController();
  private readonly random: () => number;
  /** The name clientv3 gives its connection in logs: endpoint://client-<uuid>/<first endpoint>. */
  readonly target: string;
  private readonly targetPrefix: string;

  constructor(private readonly options: ConnectionOptions) {
    if (options.endpoints.length === 0) throw clientFailure('etcdclient: no available endpoints');
    if (options.endpoints.length > endpointsMax) throw clientFailure(`etcdclient: more than ${endpointsMax} endpoints`);
    this.random = options.random ?? Math.random;
    this.endpointList = [...options.endpoints];
    const first = parseEndpoint(this.endpointList[0] ?? '');
    this.targetPrefix = `endpoint://client-${randomUUID()}/`;
    this.target = `${this.targetPrefix}${first.host}`;
    for (const ep of this.endpointList) this.addChannel(ep);
  }

  get endpoints(): readonly string[] {
    return this.endpointList;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Aborted when the connection closes: long-running helpers stop on it. */
  get closeSignal(): AbortSignal {
    return this.closeController.signal;
  }

  get hasCredentials(): boolean {
    return (this.options.username ?? '') !== '' && (this.options.password ?? '') !== '';
  }

  /** Replaces the balanced endpoints (e.g. from MemberList); channels of dropped ones close. */
  setEndpoints(endpoints: readonly string[]): void {
    if (endpoints.length === 0 || endpoints.length > endpointsMax) return;
    const keep = new Set(endpoints);
    for (const [ep, ch] of this.byEndpoint) {
      if (!keep.has(ep)) {
        ch.channel.close();
        this.byEndpoint.delete(ep);
      }
    }
    this.endpointList = [...endpoints];
    for (const ep of this.endpointList) if (!this.byEndpoint.has(ep)) this.addChannel(ep);
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.closeController.abort();
    for (const ch of this.byEndpoint.values()) ch.channel.close();
    for (const ch of this.pinned.values()) ch.channel.close();
    this.byEndpoint.clear();
    this.pinned.clear();
  }

  /**
   * Authenticates when the client has credentials, as clientv3 does while
   * dialling: tries the endpoints in order; "authentication is not enabled"
   * leaves the client without a token.
   */
  async authenticate(options: CallOptions = {}): Promise<void> {
    if (!this.hasCredentials) return;
    try {
      await this.fetchToken(options);
    } catch (err) {
      if (err instanceof ClientError && err.code === ErrorCode.AuthNotEnabled) {
        // As clientv3: dialled without a token, and calls do not try again (one warning, not one per call).
        this.token = '';
        return;
      }
      throw err;
    }
  }

  /**
   * A unary call with clientv3's retry policy; pinned to `endpoint` when given,
   * as a call on a connection dialled to it alone (`direct`, named
   * passthrough:///<endpoint> in logs) or on the client's own.
   */
  async unary<Req, Res>(
    method: MethodDef<Req, Res>,
    request: Req,
    policy: RetryPolicy,
    options: CallOptions = {},
    endpoint?: string,
    direct = false,
  ): Promise<Res> {
    // clientv3 authenticates while dialling: the first call already carries the token.
    await this.ensureToken(options);
    const deadlineMs = deadlineOf(options);
    const signal = this.callSignal(options.signal);
    const quorum = Math.floor(this.endpointList.length / 2) + 1;
    // clientv3's Client.Dial names a member's own connection passthrough:///<endpoint as given>;
    // its client connection is named after the (one) member, under the client's id.
    const target = endpoint === undefined ? this.target : direct ? `passthrough:///${endpoint}` : `${this.targetPrefix}${parseEndpoint(endpoint).host}`;
    const attemptsMax = this.options.retriesMax ?? retriesMaxDefault;
    let lastErr: ClientError = clientFailure('etcdclient: no attempt made');
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      if (attempt > 0 && attempt % quorum === 0) await this.pause(deadlineMs, signal.signal);
      try {
        const ch = await this.pick(endpoint, deadlineMs, signal.signal);
        return await ch.channel.unary(method, request, {
          metadata: this.metadata(options.requireLeader === true),
          deadlineMs,
          signal: signal.signal,
        });
      } catch (err) {
        const rawText = err instanceof GrpcError ? grpcText(err) : String(err);
        lastErr = this.contextAware(toClientError(err), deadlineMs, signal.signal);
        this.log('warn', 'retrying of unary invoker failed', { target, attempt, error: rawText });
        if (isContextError(lastErr)) break;
        if (this.shouldRefreshToken(lastErr)) {
          await this.refreshToken(options);
          continue;
        }
        if (policy !== 'repeatable') break;
        // A member named corrupt refuses reads that the others serve: each other endpoint is tried once.
        const elsewhere = endpoint === undefined && lastErr.grpcCode === GrpcStatus.DATA_LOSS && attempt + 1 < this.endpointList.length;
        if (lastErr.grpcCode !== GrpcStatus.UNAVAILABLE && !elsewhere) break;
      } finally {
        signal.done();
      }
    }
    throw lastErr;
  }

  /** Opens a bidi stream on the next READY endpoint (waiting for one, up to the deadline). */
  async bidi<Req, Res>(
    method: MethodDef<Req, Res>,
    options: CallOptions = {},
    endpoint?: string,
  ): Promise<ClientDuplexCall<Req, Res>> {
    await this.ensureToken(options);
    const deadlineMs = deadlineOf(options);
    const ch = await this.pickOrThrow(endpoint, deadlineMs, options.signal);
    return ch.channel.bidi(method, { metadata: this.metadata(options.requireLeader === true), signal: options.signal, deadlineMs });
  }

  /** Opens a server stream on the next READY endpoint. */
  async serverStream<Req, Res>(
    method: MethodDef<Req, Res>,
    request: Req,
    options: CallOptions = {},
    endpoint?: string,
  ): Promise<ClientReadableCall<Res>> {
    await this.ensureToken(options);
    const deadlineMs = deadlineOf(options);
    const ch = await this.pickOrThrow(endpoint, deadlineMs, options.signal);
    return ch.channel.serverStream(method, request, {
      metadata: this.metadata(options.requireLeader === true),
      signal: options.signal,
      deadlineMs,
    });
  }

  /** Authenticates again: after "invalid auth token" (e.g. the simple token expired). */
  async refreshToken(options: CallOptions = {}): Promise<void> {
    if (!this.hasCredentials) return;
    this.token = undefined;
    try {
      await this.fetchToken(options);
    } catch (err) {
      this.log('warn', 'retrying of unary invoker failed to fetch new auth token', {
        target: this.target,
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  }

  /** After a stream failed with err: authenticates again if the token was the cause; true if it did. */
  async refreshIfTokenRejected(err: ClientError): Promise<boolean> {
    if (!this.shouldRefreshToken(err)) return false;
    await this.refreshToken();
    return true;
  }

  shouldRefreshToken(err: ClientError): boolean {
    if (!this.hasCredentials) return false;
    return err.code === ErrorCode.UserEmpty || err.code === ErrorCode.InvalidAuthToken || err.code === ErrorCode.AuthOldRevision;
  }

  log(level: ClientLogEntry['level'], msg: string, fields: Record<string, string | number>): void {
    this.options.logger?.({ level, msg, fields });
  }

  private async ensureToken(options: CallOptions): Promise<void> {
    if (!this.hasCredentials || this.token !== undefined) return;
    await this.authenticate(options);
  }

  private fetchToken(options: CallOptions): Promise<void> {
    // Concurrent callers share one Authenticate round.
    this.tokenFetch ??= this.authenticateEndpoints(options).finally(() => {
      this.tokenFetch = undefined;
    });
    return this.tokenFetch;
  }

  private async authenticateEndpoints(options: CallOptions): Promise<void> {
    const deadlineMs = deadlineOf({
      ...options,
      timeoutMs: options.timeoutMs ?? (this.options.dialTimeoutMs !== undefined && this.options.dialTimeoutMs > 0 ? this.options.dialTimeoutMs : undefined),
    });
    const req = etcdserverpb.AuthenticateRequest.create({ name: this.options.username ?? '', password: this.options.password ?? '' });
    let lastErr: ClientError = clientFailure('etcdclient: no available endpoints');
    for (const ep of [...this.endpointList]) {
      const signal = this.callSignal(options.signal);
      try {
        const ch = await this.pick(ep, deadlineMs, signal.signal);
        const resp = await ch.channel.unary(etcdserverpb.AuthService.methods.Authenticate, req, {
          metadata: { 'client-api-version': clientApiVersion },
          deadlineMs,
          signal: signal.signal,
        });
        this.token = resp.token;
        return;
      } catch (err) {
        lastErr = this.contextAware(toClientError(err), deadlineMs, signal.signal);
        this.log('warn', 'retrying of unary invoker failed', {
          target: this.target,
          attempt: 0,
          error: err instanceof GrpcError ? grpcText(err) : lastErr.message,
        });
        if (lastErr.code === ErrorCode.AuthNotEnabled || isContextError(lastErr)) throw lastErr;
      } finally {
        signal.done();
      }
    }
    throw lastErr;
  }

  private metadata(requireLeader: boolean): Record<string, string> {
    const md: Record<string, string> = { 'client-api-version': clientApiVersion };
    if (this.token !== undefined && this.token !== '') md['token'] = this.token;
    if (requireLeader) md['hasleader'] = 'true';
    return md;
  }

  private addChannel(raw: string): EndpointChannel {
    const endpoint = parseEndpoint(raw);
    const o = this.options;
    const tls = endpointUsesTls(endpoint, o.tls !== undefined) ? (o.tls ?? {}) : undefined;
    const streamWindowBytes = o.streamWindowBytes ?? streamWindowDefault;
    const channel = new GrpcChannel({
      address: endpoint.address,
      tls,
      maxSendMessageBytes: o.maxCallSendBytes ?? sendBytesDefault,
      maxReceiveMessageBytes: o.maxCallRecvBytes ?? recvBytesDefault,
      keepaliveTimeMs: o.keepaliveTimeMs ?? 0,
      keepaliveTimeoutMs: o.keepaliveTimeoutMs,
      // The connection's window at least twice a stream's, so that one stream never fills it alone.
      streamWindowBytes,
      connectionWindowBytes: Math.max(2 * streamWindowBytes, connectionWindowDefault),
      userAgent: 'etcd-ts-client/0.1',
      random: this.random,
    });
    const ec = { endpoint, channel };
    this.byEndpoint.set(raw, ec);
    // Dial every endpoint from the start, as clientv3's balancer does.
    channel.connect().catch(() => undefined);
    return ec;
  }

  private channelFor(endpoint: string): EndpointChannel {
    const balanced = this.byEndpoint.get(endpoint);
    if (balanced !== undefined) return balanced;
    const pinned = this.pinned.get(endpoint);
    if (pinned !== undefined) return pinned;
    if (this.pinned.size >= endpointsMax) {
      for (const [k, v] of this.pinned) {
        v.channel.close();
        this.pinned.delete(k);
        break;
      }
    }
    const ec = this.addChannel(endpoint);
    this.byEndpoint.delete(endpoint);
    this.pinned.set(endpoint, ec);
    return ec;
  }

  private async pickOrThrow(endpoint: string | undefined, deadlineMs: number | undefined, callerSignal: AbortSignal | undefined): Promise<EndpointChannel> {
    const signal = this.callSignal(callerSignal);
    try {
      return await this.pick(endpoint, deadlineMs, signal.signal);
    } catch (err) {
      throw this.contextAware(toClientError(err), deadlineMs, signal.signal);
    } finally {
      signal.done();
    }
  }

  /** The next READY channel (round robin), waiting for one while all are connecting or backing off. */
  private async pick(endpoint: string | undefined, deadlineMs: number | undefined, signal: AbortSignal): Promise<EndpointChannel> {
    for (;;) {
      if (signal.aborted) throw new GrpcError(GrpcStatus.CANCELLED, 'context canceled');
      if (this.closedFlag) throw new GrpcError(GrpcStatus.CANCELLED, 'grpc: the client connection is closing');
      const candidates = endpoint !== undefined ? [this.channelFor(endpoint)] : [...this.byEndpoint.values()];
      const ready = candidates.filter((c) => c.channel.state === ConnectivityState.READY);
      if (ready.length > 0) {
        const ch = ready[this.nextPick++ % ready.length];
        if (ch !== undefined) return ch;
      }
      for (const c of candidates) {
        if (c.channel.state === ConnectivityState.IDLE) c.channel.connect().catch(() => undefined);
      }
      const outcome = await waitForStateChange(candidates, deadlineMs, signal);
      if (outcome === 'deadline') {
        const allFailed = candidates.every((c) => c.channel.state === ConnectivityState.TRANSIENT_FAILURE);
        throw new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, allFailed ? transientFailureText : 'context deadline exceeded');
      }
    }
  }

  private async pause(deadlineMs: number | undefined, signal: AbortSignal): Promise<void> {
    const ms = retryPauseMs * (1 + retryJitter * (2 * this.random() - 1));
    const left = deadlineMs === undefined ? ms : Math.min(ms, deadlineMs - Date.now());
    if (left <= 0 || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, left);
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Combines the caller's signal with the connection's close. */
  private callSignal(caller: AbortSignal | undefined): { signal: AbortSignal; done: () => void } {
    if (caller === undefined) return { signal: this.closeController.signal, done: noop };
    return { signal: AbortSignal.any([caller, this.closeController.signal]), done: noop };
  }

  /** clientv3's toErr: a deadline/cancel that is the caller's own reads as the context's error. */
  private contextAware(err: ClientError, deadlineMs: number | undefined, signal: AbortSignal): ClientError {
    if (signal.aborted) return this.closedFlag ? new ClientError(ErrorCode.Canceled, GrpcStatus.CANCELLED, 'grpc: the client connection is closing', 'grpc: the client connection is closing') : canceledError();
    if (err.code === ErrorCode.DeadlineExceeded && deadlineMs !== undefined && Date.now() >= deadlineMs - 1) {
      return fromGrpcError(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, 'context deadline exceeded'));
    }
    return err;
  }
}

function noop(): void {
  // Nothing to release.
}

function grpcText(err: GrpcError): string {
  return grpcErrorText(err.code, err.details);
}

export function deadlineOf(options: CallOptions): number | undefined {
  let d = options.deadlineMs;
  if (options.timeoutMs !== undefined) {
    const t = Date.now() + options.timeoutMs;
    d = d === undefined ? t : Math.min(d, t);
  }
  return d;
}

/** Resolves when any channel changes state, the deadline passes, or the signal aborts. */
function waitForStateChange(
  candidates: readonly EndpointChannel[],
  deadlineMs: number | undefined,
  signal: AbortSignal,
): Promise<'changed' | 'deadline' | 'aborted'> {
  return new Promise((resolve) => {
    const unsubs: (() => void)[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (r: 'changed' | 'deadline' | 'aborted'): void => {
      for (const u of unsubs) u();
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const onAbort = (): void => finish('aborted');
    for (const c of candidates) unsubs.push(c.channel.onStateChange(() => finish('changed')));
    signal.addEventListener('abort', onAbort, { once: true });
    if (deadlineMs !== undefined) timer = setTimeout(() => finish('deadline'), Math.max(0, deadlineMs - Date.now()));
  });
}
