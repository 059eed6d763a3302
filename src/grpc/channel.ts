/**
 * GrpcChannel: a client connection to one endpoint (host:port or a unix
 * socket), plain HTTP/2 (h2c) or TLS. It connects lazily, on the first call or
 * connect(). States follow gRPC's connectivity model: IDLE -> CONNECTING ->
 * READY; a dropped READY connection goes back to IDLE and the next call
 * reconnects; a failed connect goes to TRANSIENT_FAILURE, where calls fail
 * fast with UNAVAILABLE until the backoff (1 s doubling-ish to 120 s, with
 * jitter, as gRPC's) expires and a new attempt starts. A session holds the
 * process open only while calls are in flight.
 */
import http2, { type ClientHttp2Session, type OutgoingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import net from 'node:net';
import { assert, nopLogger, type Logger } from '../base/index.js';
import { ClientCall, type CallHost, type CallOptions, type ClientDuplexCall, type ClientReadableCall, type ClientStreamingCall } from './client-call.js';
import { encodeTimeout, frameMessage, messageBytesLimit, type MethodDef } from './framing.js';
import { addMetadataHeaders } from './metadata.js';
import { deadlineExceededMessage, GrpcError, GrpcStatus, type OutgoingMetadata } from './status.js';

export const ConnectivityState = {
  IDLE: 'IDLE',
  CONNECTING: 'CONNECTING',
  READY: 'READY',
  TRANSIENT_FAILURE: 'TRANSIENT_FAILURE',
  SHUTDOWN: 'SHUTDOWN',
} as const;
export type ConnectivityState = (typeof ConnectivityState)[keyof typeof ConnectivityState];

export interface ChannelTlsOptions {
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  /** Name to verify the server certificate against (SNI too); default the host. */
  readonly servername?: string | undefined;
  /** Skip verifying the server certificate (etcdctl --insecure-skip-tls-verify). */
  readonly insecureSkipVerify?: boolean | undefined;
}

export interface ChannelOptions {
  /** "host:port", "[v6]:port", or "unix:/path". */
  readonly address: string;
  readonly tls?: ChannelTlsOptions | undefined;
  /** Default 2^31-1, as etcd's client sets it. */
  readonly maxReceiveMessageBytes?: number;
  /** Default 2^31-1; etcd's client library passes 2 MiB. */
  readonly maxSendMessageBytes?: number;
  /** A connection attempt gives up after this. Default 20 s, gRPC's. */
  readonly connectTimeoutMs?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Ping the server this often while calls are in flight; 0 = never. */
  readonly keepaliveTimeMs?: number;
  /** Close the connection if a keepalive ping is not acknowledged in time. Default 20 s. */
  readonly keepaliveTimeoutMs?: number;
  /** HTTP/2 initial stream window the client advertises. Default 64 KiB - 1. */
  readonly streamWindowBytes?: number;
  /** Connection-level receive window. Default 1 MiB. */
  readonly connectionWindowBytes?: number;
  readonly userAgent?: string;
  /** Jitter source in [0, 1); default Math.random. */
  readonly random?: () => number;
  readonly logger?: Logger;
  /** Per-call credentials: metadata asked for at the start of every call (a call's own metadata wins). */
  readonly callMetadata?: () => OutgoingMetadata | undefined;
}

const backoffMultiplier = 1.6;
const backoffJitter = 0.2;
const defaultUserAgent = 'etcd-ts-grpc/0.1';

/** One HTTP/2 connection and what the channel knows about it. */
class Conn {
  error: Error | undefined;
  ready = false;
  /** A GOAWAY arrived: calls in flight finish, new ones go to a new connection. */
  draining = false;
  activeCalls = 0;
  pingTimer: NodeJS.Timeout | undefined;

  constructor(readonly session: ClientHttp2Session) {}
}

function parseAddress(address: string): { host: string; port: number } | { path: string } {
  if (address.startsWith('unix:')) return { path: address.slice(5).replace(/^\/\//, '') };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (m === null) throw new RangeError(`grpc: bad address ${JSON.stringify(address)}: want host:port or unix:/path`);
  return { host: m[1] ?? '', port: Number(m[2]) };
}

export class GrpcChannel {
  private conn: Conn | undefined;
  private stateValue: ConnectivityState = ConnectivityState.IDLE;
  private readonly listeners = new Set<(state: ConnectivityState) => void>();
  private lastError: Error | undefined;
  private backoffMs: number;
  private backoffTimer: NodeJS.Timeout | undefined;
  private readonly readyWaiters: { resolve: () => void; reject: (e: GrpcError) => void }[] = [];
  private readonly authority: string;
  private readonly target: { host: string; port: number } | { path: string };
  private readonly logger: Logger;
  readonly maxReceiveMessageBytes: number;
  readonly maxSendMessageBytes: number;

  constructor(private readonly options: ChannelOptions) {
    this.target = parseAddress(options.address);
    this.authority = 'path' in this.target ? 'localhost' : options.address;
    this.maxReceiveMessageBytes = options.maxReceiveMessageBytes ?? messageBytesLimit;
    this.maxSendMessageBytes = options.maxSendMessageBytes ?? messageBytesLimit;
    this.backoffMs = options.backoffInitialMs ?? 1000;
    this.logger = options.logger ?? nopLogger;
  }

  get state(): ConnectivityState {
    return this.stateValue;
  }

  /** Calls listener on every state change; returns the function that unsubscribes it. */
  onStateChange(listener: (state: ConnectivityState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Connects now if idle; resolves when READY, rejects with UNAVAILABLE if this attempt fails. */
  connect(): Promise<void> {
    if (this.stateValue === ConnectivityState.READY) return Promise.resolve();
    if (this.stateValue === ConnectivityState.SHUTDOWN) return Promise.reject(closingError());
    if (this.stateValue === ConnectivityState.IDLE) this.startConnect();
    if (this.stateValue === ConnectivityState.TRANSIENT_FAILURE) return Promise.reject(this.unavailable());
    // Someone waits for this connection: it keeps the process alive until it is up or failed (an idle
    // session does not; a TLS handshake takes a few turns, and nothing else may be pending meanwhile).
    this.conn?.session.ref();
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  unary<Req, Res>(method: MethodDef<Req, Res>, request: Req, options?: CallOptions): Promise<Res> {
    const payload = method.requestType.encode(request);
    if (payload.length > this.maxSendMessageBytes) return Promise.reject(this.sendTooLarge(payload.length));
    return this.startCall(method.path, frameMessage(payload), (b) => method.responseType.decode(b), undefined, true, options).response;
  }

  /** A unary call with a request framed in advance by frameMessage(); resolves with the response payload. */
  unaryRaw(path: string, framedRequest: Uint8Array, options?: CallOptions): Promise<Buffer> {
    return this.startCall(path, framedRequest, identity, undefined, true, options).response;
  }

  serverStream<Req, Res>(method: MethodDef<Req, Res>, request: Req, options?: CallOptions): ClientReadableCall<Res> {
    const payload = method.requestType.encode(request);
    if (payload.length > this.maxSendMessageBytes) return failedCall(this.sendTooLarge(payload.length));
    return this.startCall(method.path, frameMessage(payload), (b) => method.responseType.decode(b), undefined, false, options);
  }

  clientStream<Req, Res>(method: MethodDef<Req, Res>, options?: CallOptions): ClientStreamingCall<Req, Res> {
    const encode = (m: unknown): Uint8Array => method.requestType.encode(m as Req);
    return this.startCall(method.path, undefined, (b) => method.responseType.decode(b), encode, true, options);
  }

  bidi<Req, Res>(method: MethodDef<Req, Res>, options?: CallOptions): ClientDuplexCall<Req, Res> {
    const encode = (m: unknown): Uint8Array => method.requestType.encode(m as Req);
    return this.startCall(method.path, undefined, (b) => method.responseType.decode(b), encode, false, options);
  }

  /** Closes the connection; calls in flight fail with UNAVAILABLE/CANCELLED, new calls with CANCELLED. */
  close(): void {
    if (this.stateValue === ConnectivityState.SHUTDOWN) return;
    if (this.backoffTimer !== undefined) clearTimeout(this.backoffTimer);
    const conn = this.conn;
    this.conn = undefined;
    this.setState(ConnectivityState.SHUTDOWN);
    if (conn !== undefined) conn.session.destroy();
  }

  private startCall<Res>(
    path: string,
    framedRequest: Uint8Array | undefined,
    decode: (b: Buffer) => Res,
    encode: ((m: unknown) => Uint8Array) | undefined,
    single: boolean,
    options: CallOptions | undefined,
  ): AnyCall<Res> {
    let timeoutMs: number | undefined = options?.timeoutMs;
    if (options?.deadlineMs !== undefined) {
      const left = options.deadlineMs - Date.now();
      timeoutMs = timeoutMs === undefined ? left : Math.min(timeoutMs, left);
    }
    const conn = this.pickConn();
    if (conn instanceof GrpcError) return failedCall(conn);
    if (options?.signal?.aborted === true) return failedCall(new GrpcError(GrpcStatus.CANCELLED, 'context canceled'));
    if (timeoutMs !== undefined && timeoutMs <= 0) return failedCall(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, deadlineExceededMessage));
    const headers: OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': this.options.userAgent ?? defaultUserAgent,
    };
    if (timeoutMs !== undefined) headers['grpc-timeout'] = encodeTimeout(timeoutMs);
    if (this.options.callMetadata !== undefined) addMetadataHeaders(headers, this.options.callMetadata());
    addMetadataHeaders(headers, options?.metadata);
    let stream;
    try {
      stream = conn.session.request(headers, { endStream: false });
    } catch (err) {
      // The session went away between the check and the request (GOAWAY, destroy).
      this.detach(conn);
      const e = err instanceof Error ? err : new Error(String(err));
      return failedCall(new GrpcError(GrpcStatus.UNAVAILABLE, `connection error: desc = "transport: ${e.message}"`));
    }
    if (conn.activeCalls++ === 0) conn.session.ref();
    const host: CallHost = {
      maxReceiveMessageBytes: this.maxReceiveMessageBytes,
      maxSendMessageBytes: this.maxSendMessageBytes,
      connectionError: () => conn.error,
      connectionReady: () => conn.ready,
      connectionClosed: () => conn.session.closed || conn.session.destroyed,
      release: () => {
        if (--conn.activeCalls === 0 && !conn.session.destroyed) conn.session.unref();
      },
    };
    const call = new ClientCall<Res>(host, stream, decode, encode, single, timeoutMs, options?.signal);
    if (framedRequest !== undefined) stream.end(framedRequest);
    return call;
  }

  private pickConn(): Conn | GrpcError {
    const c = this.conn;
    if (c !== undefined && !c.draining) return c;
    switch (this.stateValue) {
      case ConnectivityState.SHUTDOWN:
        return closingError();
      case ConnectivityState.TRANSIENT_FAILURE:
        return this.unavailable();
      case ConnectivityState.IDLE:
      case ConnectivityState.CONNECTING:
      case ConnectivityState.READY:
        return this.startConnect();
    }
  }

  private startConnect(): Conn {
    assert(this.conn === undefined || this.conn.draining, 'one live connection at a time');
    const session = this.openSession();
    const conn = new Conn(session);
    this.conn = conn;
    this.setState(ConnectivityState.CONNECTING);
    session.unref();
    const connectTimer = setTimeout(() => {
      if (!conn.ready) session.destroy(new Error(`dial ${this.options.address}: i/o timeout`));
    }, this.options.connectTimeoutMs ?? 20_000);
    connectTimer.unref();
    session.on('error', (err: Error) => {
      conn.error ??= err;
    });
    session.once('connect', () => {
      clearTimeout(connectTimer);
      conn.ready = true;
      this.onReady(conn);
    });
    session.on('goaway', (code: number) => {
      conn.draining = true;
      if (code !== http2.constants.NGHTTP2_NO_ERROR) this.logger.info('grpc: server sent GOAWAY', { code });
      this.detach(conn);
    });
    session.once('close', () => {
      clearTimeout(connectTimer);
      if (conn.pingTimer !== undefined) clearInterval(conn.pingTimer);
      this.onConnClosed(conn);
    });
    return conn;
  }

  private openSession(): ClientHttp2Session {
    const t = this.target;
    const settings = { initialWindowSize: this.options.streamWindowBytes ?? 65_535, enablePush: false };
    const base = { settings, maxSessionMemory: 64 };
    const tlsOpts = this.options.tls;
    if (tlsOpts === undefined) {
      if ('path' in t) {
        return http2.connect('http://localhost', { ...base, createConnection: () => net.connect(t.path) });
      }
      return http2.connect(`http://${this.authority}`, base);
    }
    const secure: SecureClientSessionOptions = {
      ...base,
      ca: tlsOpts.ca,
      cert: tlsOpts.cert,
      key: tlsOpts.key,
      servername: tlsOpts.servername ?? ('host' in t && net.isIP(t.host) === 0 ? t.host : undefined),
      rejectUnauthorized: tlsOpts.insecureSkipVerify !== true,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
    };
    if ('path' in t) secure.path = t.path;
    return http2.connect(`https://${this.authority}`, secure);
  }

  private onReady(conn: Conn): void {
    if (this.conn !== conn) return;
    this.backoffMs = this.options.backoffInitialMs ?? 1000;
    const windowBytes = this.options.connectionWindowBytes ?? 1024 * 1024;
    if (windowBytes > 65_535) conn.session.setLocalWindowSize(windowBytes);
    this.startKeepalive(conn);
    this.setState(ConnectivityState.READY);
    for (const w of this.readyWaiters.splice(0)) w.resolve();
    if (conn.activeCalls === 0) conn.session.unref();
  }

  private onConnClosed(conn: Conn): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.stateValue === ConnectivityState.SHUTDOWN) return;
    if (conn.ready) {
      this.setState(ConnectivityState.IDLE);
      return;
    }
    this.lastError = conn.error ?? new Error('connection closed before the handshake');
    this.logger.debug('grpc: connect failed', { address: this.options.address, error: this.lastError });
    this.setState(ConnectivityState.TRANSIENT_FAILURE);
    const err = this.unavailable();
    for (const w of this.readyWaiters.splice(0)) w.reject(err);
    const jitter = 1 + backoffJitter * (2 * (this.options.random ?? Math.random)() - 1);
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (this.stateValue === ConnectivityState.TRANSIENT_FAILURE) this.startConnect();
    }, this.backoffMs * jitter);
    this.backoffTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * backoffMultiplier, this.options.backoffMaxMs ?? 120_000);
  }

  /** Stops routing new calls to conn; it closes once its calls finish. */
  private detach(conn: Conn): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.stateValue !== ConnectivityState.SHUTDOWN) this.setState(ConnectivityState.IDLE);
  }

  private startKeepalive(conn: Conn): void {
    const everyMs = this.options.keepaliveTimeMs ?? 0;
    if (everyMs <= 0) return;
    const timeoutMs = this.options.keepaliveTimeoutMs ?? 20_000;
    conn.pingTimer = setInterval(() => {
      if (conn.activeCalls === 0 || conn.session.destroyed) return;
      const timer = setTimeout(() => conn.session.destroy(new Error('keepalive ping not acknowledged')), timeoutMs);
      timer.unref();
      conn.session.ping((err) => {
        clearTimeout(timer);
        if (err !== null && !conn.session.destroyed) conn.session.destroy(err);
      });
    }, everyMs);
    conn.pingTimer.unref();
  }

  private setState(s: ConnectivityState): void {
    if (this.stateValue === s) return;
    this.stateValue = s;
    for (const l of this.listeners) l(s);
  }

  private unavailable(): GrpcError {
    const why = this.lastError?.message ?? 'connection failed';
    return new GrpcError(GrpcStatus.UNAVAILABLE, `connection error: desc = "transport: Error while dialing ${why}"`);
  }

  private sendTooLarge(bytes: number): GrpcError {
    return new GrpcError(
      GrpcStatus.RESOURCE_EXHAUSTED,
      `trying to send message larger than max (${bytes} vs. ${this.maxSendMessageBytes})`,
    );
  }
}

function identity(b: Buffer): Buffer {
  return b;
}

function closingError(): GrpcError {
  return new GrpcError(GrpcStatus.CANCELLED, 'grpc: the client connection is closing');
}

/** Either kind of call handle, as startCall returns it. */
type AnyCall<Res> = ClientDuplexCall<unknown, Res> & ClientStreamingCall<unknown, Res>;

/** A call that failed before it started: every read, and the response, reject with err. */
function failedCall<Res>(err: GrpcError): AnyCall<Res> {
  return new FailedCall<Res>(err);
}

class FailedCall<Res> implements AnyCall<Res> {
  readonly response: Promise<Res>;
  readonly bufferedBytes = 0;

  constructor(private readonly err: GrpcError) {
    this.response = Promise.reject(err);
    // A caller of a streaming method may never look at `response`.
    this.response.catch(() => undefined);
  }

  write(): boolean {
    return false;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  end(): void {
    // Nothing was started.
  }
  read(): Promise<Res | undefined> {
    return Promise.reject(this.err);
  }
  headers(): Promise<never> {
    return Promise.reject(this.err);
  }
  cancel(): void {
    // Nothing to cancel.
  }
  [Symbol.asyncIterator](): AsyncIterator<Res> {
    return { next: () => Promise.reject(this.err) };
  }
}
