/**
 * GrpcServer: the method table, per-connection policy (keepalive pings both
 * ways, ping-flood enforcement) and the dispatch of each HTTP/2 stream to a
 * ServerCallImpl. It owns no socket: ClientPortServer hands it sessions and
 * streams, so the same server can sit behind plain TCP, TLS or a unix socket.
 */
import {
  constants as h2,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type ServerOptions,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { assert, nopLogger, type Logger } from '../base/index.js';
import { decodeTimeout, messageBytesLimit, parseEncoding, type MethodDef } from './framing.js';
import {
  closeLingering,
  ServerCallImpl,
  trailersOnly,
  trailersOnlyOptions,
  type BidiHandler,
  type CallConnection,
  type CallContext,
  type CallObserver,
  type CallType,
  type ClientStreamHandler,
  type PeerInfo,
  type RegisteredMethod,
  type ServerStreamHandler,
  type UnaryHandler,
} from './server-call.js';
import { GrpcError, GrpcStatus, type GrpcStatusCode } from './status.js';

export interface GrpcServerOptions {
  /** Largest request message accepted (etcd: --max-request-bytes + 512 KiB). Default 4 MiB, grpc's. */
  readonly maxReceiveMessageBytes?: number;
  /** Largest response message sent. Default 2^31-1 (etcd sets math.MaxInt32). */
  readonly maxSendMessageBytes?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. Default 2^32-1, etcd's. */
  readonly maxConcurrentStreams?: number;
  /** A client pinging more often than this gets strikes, then GOAWAY "too_many_pings". Default 5 s, etcd's. */
  readonly keepaliveMinTimeMs?: number;
  /** Allow client pings on connections with no call in flight. Default false, as etcd. */
  readonly keepalivePermitWithoutStream?: boolean;
  /** The server pings each connection this often. Default 2 h, etcd's --grpc-keepalive-interval. */
  readonly keepaliveIntervalMs?: number;
  /** A connection whose ping is not acknowledged within this is closed. Default 20 s. */
  readonly keepaliveTimeoutMs?: number;
  /** HTTP/2 initial stream window (SETTINGS_INITIAL_WINDOW_SIZE). Default 64 KiB - 1, HTTP/2's. */
  readonly streamWindowBytes?: number;
  /** Connection-level receive window. Default 1 MiB. */
  readonly connectionWindowBytes?: number;
  /** Node's per-session memory cap (outbound queue, header tables), in MB. Default 64. */
  readonly maxSessionMemoryMb?: number;
  readonly logger?: Logger;
  readonly onCall?: CallObserver;
}

/** A handler tagged with its calling convention, checked against the method's streaming flags. */
export type MethodHandler<Req, Res> =
  | { readonly type: 'unary'; readonly fn: UnaryHandler<Req, Res> }
  | { readonly type: 'server_stream'; readonly fn: ServerStreamHandler<Req, Res> }
  | { readonly type: 'client_stream'; readonly fn: ClientStreamHandler<Req, Res> }
  | { readonly type: 'bidi_stream'; readonly fn: BidiHandler<Req, Res> };

export function unary<Req, Res>(fn: UnaryHandler<Req, Res>): MethodHandler<Req, Res> {
  return { type: 'unary', fn };
}
export function serverStreaming<Req, Res>(fn: ServerStreamHandler<Req, Res>): MethodHandler<Req, Res> {
  return { type: 'server_stream', fn };
}
export function clientStreaming<Req, Res>(fn: ClientStreamHandler<Req, Res>): MethodHandler<Req, Res> {
  return { type: 'client_stream', fn };
}
export function bidiStreaming<Req, Res>(fn: BidiHandler<Req, Res>): MethodHandler<Req, Res> {
  return { type: 'bidi_stream', fn };
}

/** Handlers for some or all methods of a service, keyed like the service's `methods` object. */
export type ServiceHandlers<M> = {
  readonly [K in keyof M]?: M[K] extends MethodDef<infer Req, infer Res> ? MethodHandler<Req, Res> : never;
};

const defaultMaxReceiveBytes = 4 * 1024 * 1024;
const defaultKeepaliveMinTimeMs = 5000;
const defaultKeepaliveIntervalMs = 2 * 3600 * 1000;
const defaultKeepaliveTimeoutMs = 20_000;
/** grpc-go's ping enforcement: without a call in flight, pings closer than this are strikes. */
const idlePingMinTimeMs = 2 * 3600 * 1000;
/** grpc-go's maxPingStrikes: the third bad ping closes the connection. */
const pingStrikesMax = 2;
const timerMsMax = 0x7fff_ffff;

function callType(def: MethodDef<unknown, unknown>): CallType {
  if (def.requestStream) return def.responseStream ? 'bidi_stream' : 'client_stream';
  return def.responseStream ? 'server_stream' : 'unary';
}

/** Per-connection state. */
class SessionState implements CallConnection {
  wrote = false;
  activeStreams = 0;
  maxStreamId = 0;
  pingStrikes = 0;
  lastPingAtMs = Number.NEGATIVE_INFINITY;
  keepaliveTimer: NodeJS.Timeout | undefined;

  constructor(readonly peer: PeerInfo) {}
}

/** A stream's connection state, kept on the stream so that one shared listener counts its close. */
const sessionKey = Symbol('grpc.session');
type SessionStream = ServerHttp2Stream & { [sessionKey]: SessionState };

function onSessionStreamClose(this: SessionStream): void {
  this[sessionKey].activeStreams--;
}

function peerOf(socket: Socket): PeerInfo {
  let commonName: string | undefined;
  if ((socket as Partial<TLSSocket>).encrypted === true) {
    const tls = socket as TLSSocket;
    if (tls.authorized) {
      const cn = tls.getPeerCertificate().subject?.CN;
      commonName = Array.isArray(cn) ? cn[0] : cn;
    }
  }
  return { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, commonName };
}

export class GrpcServer {
  private readonly methods = new Map<string, RegisteredMethod>();
  private readonly services = new Set<string>();
  private readonly sessions = new WeakMap<ServerHttp2Session, SessionState>();
  private readonly ctx: CallContext;
  private readonly logger: Logger;
  private readonly keepaliveMinTimeMs: number;
  private readonly permitWithoutStream: boolean;
  private readonly keepaliveIntervalMs: number;
  private readonly keepaliveTimeoutMs: number;

  constructor(private readonly options: GrpcServerOptions = {}) {
    const maxReceive = options.maxReceiveMessageBytes ?? defaultMaxReceiveBytes;
    const maxSend = options.maxSendMessageBytes ?? messageBytesLimit;
    assert(maxReceive > 0 && maxReceive <= messageBytesLimit, 'maxReceiveMessageBytes out of range');
    assert(maxSend > 0 && maxSend <= messageBytesLimit, 'maxSendMessageBytes out of range');
    this.logger = options.logger ?? nopLogger;
    this.keepaliveMinTimeMs = options.keepaliveMinTimeMs ?? defaultKeepaliveMinTimeMs;
    this.permitWithoutStream = options.keepalivePermitWithoutStream ?? false;
    this.keepaliveIntervalMs = options.keepaliveIntervalMs ?? defaultKeepaliveIntervalMs;
    this.keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? defaultKeepaliveTimeoutMs;
    this.ctx = {
      maxReceiveMessageBytes: maxReceive,
      maxSendMessageBytes: maxSend,
      observer: options.onCall,
      onHandlerFault: (path, err) => this.logger.warn('grpc handler failed', { method: path, error: err }),
    };
  }

  /**
   * Registers handlers for a service's methods (`methods` is a generated
   * `XService.methods` object). A handler's tag must match the method's
   * streaming flags. Methods without a handler answer UNIMPLEMENTED.
   */
  addService<M extends Readonly<Record<string, MethodDef<unknown, unknown>>>>(
    methods: M,
    handlers: ServiceHandlers<M>,
  ): void {
    for (const key of Object.keys(methods)) {
      const def = methods[key] as unknown as MethodDef<unknown, unknown>;
      const slash = def.path.lastIndexOf('/');
      assert(def.path.startsWith('/') && slash > 1, `bad method path ${def.path}`);
      const service = def.path.slice(1, slash);
      this.services.add(service);
      const h = (handlers as Readonly<Record<string, MethodHandler<unknown, unknown> | undefined>>)[key];
      if (h === undefined) continue;
      const type = callType(def);
      assert(h.type === type, `${def.path} is ${type}, handler is ${h.type}`);
      assert(!this.methods.has(def.path), `${def.path} registered twice`);
      this.methods.set(def.path, {
        path: def.path,
        service,
        method: def.path.slice(slash + 1),
        type,
        requestType: def.requestType,
        responseType: def.responseType,
        handler: erase(h),
      });
    }
  }

  /** Options for the node:http2 server that carries this gRPC server's connections. */
  http2Options(): ServerOptions {
    return {
      maxSessionMemory: this.options.maxSessionMemoryMb ?? 64,
      settings: {
        maxConcurrentStreams: this.options.maxConcurrentStreams ?? 0xffff_ffff,
        initialWindowSize: this.options.streamWindowBytes ?? 65_535,
      },
    };
  }

  /**
   * Takes a new HTTP/2 connection: keepalive pings and ping enforcement.
   * socket: the connection's own socket, when the session runs over a stream
   * in between (whose address and certificate would be missing).
   */
  acceptSession(session: ServerHttp2Session, socket: Socket = session.socket): void {
    const state = new SessionState(peerOf(socket));
    this.sessions.set(session, state);
    session.on('error', (err) => this.logger.debug('grpc session error', { error: err }));
    session.on('ping', () => this.onPing(session, state));
    const windowBytes = this.options.connectionWindowBytes ?? 1024 * 1024;
    if (windowBytes > 65_535) {
      try {
        session.setLocalWindowSize(windowBytes);
      } catch {
        // A session that closed at once has no window to set.
      }
    }
    if (this.keepaliveIntervalMs <= timerMsMax) {
      state.keepaliveTimer = setInterval(() => this.keepalive(session), this.keepaliveIntervalMs);
      state.keepaliveTimer.unref();
      session.once('close', () => clearInterval(state.keepaliveTimer));
    }
  }

  /** Runs one gRPC stream (the caller has checked the content-type is application/grpc*). */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const session = stream.session as ServerHttp2Session | undefined;
    const state = session === undefined ? undefined : this.sessions.get(session);
    if (state !== undefined) {
      state.activeStreams++;
      const id = stream.id ?? 0;
      if (id > state.maxStreamId) state.maxStreamId = id;
      (stream as SessionStream)[sessionKey] = state;
      stream.on('close', onSessionStreamClose);
    }
    const path = headers[':path'] ?? '';
    const def = this.methods.get(path);
    if (def === undefined) {
      this.rejectUnknown(stream, headers, path);
      return;
    }
    const encoding = parseEncoding(headers['grpc-encoding'] as string | undefined);
    if (encoding === undefined) {
      const enc = String(headers['grpc-encoding']);
      respondStatus(stream, headers, GrpcStatus.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(enc)}`, {
        'grpc-accept-encoding': 'identity,gzip',
      });
      return;
    }
    let timeoutMs: number | undefined;
    const timeoutHeader = headers['grpc-timeout'];
    if (typeof timeoutHeader === 'string') {
      const t = decodeTimeout(timeoutHeader);
      if (t instanceof GrpcError) {
        respondStatus(stream, headers, t.code, t.details);
        return;
      }
      timeoutMs = t;
    }
    const conn = state ?? { peer: { address: '', port: 0, commonName: undefined }, wrote: false };
    const call = new ServerCallImpl(this.ctx, stream, headers, def, encoding, timeoutMs, conn);
    if (def.type === 'client_stream' || def.type === 'bidi_stream') call.startStreaming();
  }

  private rejectUnknown(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string): void {
    const sm = path.startsWith('/') ? path.slice(1) : path;
    const pos = sm.lastIndexOf('/');
    if (pos < 0) {
      respondStatus(stream, headers, GrpcStatus.RESOURCE_EXHAUSTED, `malformed method name: ${JSON.stringify(path)}`);
      return;
    }
    const service = sm.slice(0, pos);
    const method = sm.slice(pos + 1);
    const text = this.services.has(service)
      ? `unknown method ${method} for service ${service}`
      : `unknown service ${service}`;
    respondStatus(stream, headers, GrpcStatus.UNIMPLEMENTED, text);
  }

  /** grpc-go's policy: a ping too soon after the last one, with nothing sent in between, is a strike. */
  private onPing(session: ServerHttp2Session, state: SessionState): void {
    const now = performance.now();
    const last = state.lastPingAtMs;
    state.lastPingAtMs = now;
    if (state.wrote) {
      // Headers or data went out since the last ping: the client's pings are answering traffic.
      state.wrote = false;
      state.pingStrikes = 0;
      return;
    }
    const minMs = state.activeStreams < 1 && !this.permitWithoutStream ? idlePingMinTimeMs : this.keepaliveMinTimeMs;
    if (now - last < minMs) state.pingStrikes++;
    if (state.pingStrikes > pingStrikesMax) {
      this.logger.warn('grpc: too many pings from client, closing the connection', {
        remote: `${state.peer.address}:${state.peer.port}`,
      });
      goawayAndClose(session, h2.NGHTTP2_ENHANCE_YOUR_CALM, state.maxStreamId, 'too_many_pings');
    }
  }

  private keepalive(session: ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    const timer = setTimeout(() => {
      this.logger.info('grpc: keepalive ping not acknowledged, closing the connection');
      session.destroy();
    }, this.keepaliveTimeoutMs);
    timer.unref();
    try {
      session.ping((err) => {
        clearTimeout(timer);
        if (err !== null) session.destroy();
      });
    } catch {
      clearTimeout(timer);
    }
  }
}

function erase<Req, Res>(h: MethodHandler<Req, Res>): RegisteredMethod['handler'] {
  switch (h.type) {
    case 'unary':
    case 'server_stream': {
      const fn = h.fn as (request: unknown, call: ServerCallImpl) => Promise<unknown>;
      return fn;
    }
    case 'client_stream':
    case 'bidi_stream': {
      const fn = h.fn as (call: ServerCallImpl) => Promise<unknown>;
      return (_request, call) => fn(call);
    }
  }
}

/** Answers a call that never reached a handler with a trailers-only response. */
function respondStatus(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  code: GrpcStatusCode,
  message: string,
  extra?: Readonly<Record<string, string>>,
): void {
  stream.on('error', () => undefined);
  if (stream.closed || stream.destroyed) return;
  try {
    stream.respond({ ...trailersOnly(headers['content-type'], code, message), ...extra }, trailersOnlyOptions);
    if (stream.state.remoteClose !== 1) closeLingering(stream);
  } catch {
    // The client went away first.
  }
}

/** Sends GOAWAY with a reason and closes the connection once the frame is out. */
export function goawayAndClose(session: ServerHttp2Session, code: number, lastStreamId: number, debug: string): void {
  if (session.closed || session.destroyed) return;
  try {
    session.goaway(code, lastStreamId, Buffer.from(debug));
  } catch {
    return;
  }
  // destroy() would race the GOAWAY out of the socket; give the write a turn of the loop.
  setImmediate(() => session.destroy());
}
