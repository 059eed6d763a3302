/**
 * GrpcServer: the method table, per-connection policy (keepalive pings both
 * ways, ping-flood enforcement) and the dispatch of each HTTP/2 stream to a
 * ServerCallImpl. It listens on nothing: ClientPortServer hands it each
 * connection whose first request is a gRPC call (serveConnection), plain TCP,
 * TLS or a unix socket alike, and an H2Connection frames it.
 */
import type { IncomingHttpHeaders, ServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { assert, nopLogger, type Logger } from '../base/index.js';
import { decodeTimeout, isGrpcContentType, messageBytesLimit, parseEncoding, type MessageEncoding, type MethodDef } from './framing.js';
import { H2Connection, h2Error, type H2ConnectionOptions, type H2Stream } from './h2-connection.js';
import {
  ServerCallImpl,
  trailersOnly,
  type BidiHandler,
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
  /**
   * node:http2's per-session memory cap, in MB, for the client port's non-gRPC
   * HTTP/2 connections. Default 64. (A gRPC connection is dropped past 64 MiB unsent.)
   */
  readonly maxSessionMemoryMb?: number;
  /**
   * The grpc-encodings requests may use. Default identity and gzip; etcd 3.4
   * registers no decompressor, so its client port takes identity only.
   */
  readonly requestEncodings?: readonly MessageEncoding[];
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

function peerOf(socket: Socket): PeerInfo {
  let commonName: string | undefined;
  if ((socket as Partial<TLSSocket>).encrypted === true) {
    const tls = socket as TLSSocket;
    if (tls.authorized) {
      // A verified certificate without a CN has the empty one (Go's Subject.CommonName).
      const cn = tls.getPeerCertificate().subject?.CN;
      commonName = (Array.isArray(cn) ? cn[0] : cn) ?? '';
    }
  }
  return { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, commonName };
}

export class GrpcServer {
  private readonly methods = new Map<string, RegisteredMethod>();
  private readonly services = new Set<string>();
  private readonly ctx: CallContext;
  private readonly logger: Logger;
  private readonly keepaliveMinTimeMs: number;
  private readonly permitWithoutStream: boolean;
  private readonly keepaliveIntervalMs: number;
  private readonly keepaliveTimeoutMs: number;
  private readonly requestEncodings: readonly MessageEncoding[];

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
    this.requestEncodings = options.requestEncodings ?? ['identity', 'gzip'];
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

  /**
   * Options for the node:http2 server of the client port's other HTTP/2
   * connections (those whose first request is not a gRPC call).
   */
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
   * Serves a new HTTP/2 connection whose client preface (and maybe more) is in
   * `received`, after the server's empty SETTINGS frame was sent and
   * acknowledged (authority-shim.ts): keepalive pings, ping enforcement, and
   * every stream as a gRPC call.
   */
  serveConnection(socket: Socket, received: Buffer): H2Connection {
    const opts: H2ConnectionOptions = {
      maxConcurrentStreams: this.options.maxConcurrentStreams ?? 0xffff_ffff,
      streamWindowBytes: this.options.streamWindowBytes ?? 65_535,
      connectionWindowBytes: Math.max(65_535, this.options.connectionWindowBytes ?? 1024 * 1024),
      onStream: (stream, headers) => this.handleStream(stream, headers),
      onPing: (c) => this.onPing(c),
      onClose: (c) => clearInterval(c.keepaliveTimer),
    };
    const conn = new H2Connection(socket, peerOf(socket), opts);
    if (this.keepaliveIntervalMs <= timerMsMax) {
      conn.keepaliveTimer = setInterval(() => this.keepalive(conn), this.keepaliveIntervalMs);
      conn.keepaliveTimer.unref();
    }
    conn.start(received);
    return conn;
  }

  /** Runs one stream as a gRPC call. */
  private handleStream(stream: H2Stream, headers: IncomingHttpHeaders): void {
    const contentType = headers['content-type'];
    if (!isGrpcContentType(contentType)) {
      // As grpc-go's transport: a connection that began with a gRPC call carries only gRPC calls.
      stream.respond(
        {
          ':status': 415,
          'content-type': 'text/plain',
          'grpc-status': String(GrpcStatus.INTERNAL),
          'grpc-message': `invalid gRPC request content-type ${JSON.stringify(contentType ?? '')}`,
        },
        true,
      );
      return;
    }
    const path = headers[':path'] ?? '';
    const def = this.methods.get(path);
    if (def === undefined) {
      this.rejectUnknown(stream, headers, path);
      return;
    }
    const encoding = parseEncoding(headers['grpc-encoding'] as string | undefined);
    if (encoding === undefined || !this.requestEncodings.includes(encoding)) {
      const enc = String(headers['grpc-encoding']);
      // What else is accepted, when there is anything besides identity (grpc-go says nothing).
      const accepted = this.requestEncodings.length > 1 ? { 'grpc-accept-encoding': this.requestEncodings.join(',') } : undefined;
      respondStatus(stream, headers, GrpcStatus.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(enc)}`, accepted);
      return;
    }
    let timeoutMs: number | undefined;
    const timeoutHeader = headers['grpc-timeout'];
    if (typeof timeoutHeader === 'string') {
      const t = decodeTimeout(timeoutHeader);
      if (t instanceof GrpcError) {
        // grpc-go (as etcd 3.4 has it) resets such a stream, PROTOCOL_ERROR, with no status.
        this.logger.debug('malformed grpc-timeout', { error: t.details });
        stream.reset(h2Error.PROTOCOL_ERROR);
        return;
      }
      timeoutMs = t;
    }
    const call = new ServerCallImpl(this.ctx, stream, headers, def, encoding, timeoutMs, stream.conn);
    if (def.type === 'client_stream' || def.type === 'bidi_stream') call.startStreaming();
  }

  private rejectUnknown(stream: H2Stream, headers: IncomingHttpHeaders, path: string): void {
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
  private onPing(conn: H2Connection): void {
    const now = performance.now();
    const last = conn.lastPingAtMs;
    conn.lastPingAtMs = now;
    if (conn.wrote) {
      // Headers or data went out since the last ping: the client's pings are answering traffic.
      conn.wrote = false;
      conn.pingStrikes = 0;
      return;
    }
    const minMs = conn.activeStreams < 1 && !this.permitWithoutStream ? idlePingMinTimeMs : this.keepaliveMinTimeMs;
    if (now - last < minMs) conn.pingStrikes++;
    if (conn.pingStrikes > pingStrikesMax) {
      this.logger.warn('grpc: too many pings from client, closing the connection', {
        remote: `${conn.peer.address}:${conn.peer.port}`,
      });
      conn.goAwayAndClose(h2Error.ENHANCE_YOUR_CALM, 'too_many_pings');
    }
  }

  private keepalive(conn: H2Connection): void {
    const timer = setTimeout(() => {
      this.logger.info('grpc: keepalive ping not acknowledged, closing the connection');
      conn.destroy();
    }, this.keepaliveTimeoutMs);
    timer.unref();
    conn.ping((acked) => {
      clearTimeout(timer);
      if (!acked) conn.destroy();
    });
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
  stream: H2Stream,
  headers: IncomingHttpHeaders,
  code: GrpcStatusCode,
  message: string,
  extra?: Readonly<Record<string, string>>,
): void {
  stream.respond({ ...trailersOnly(headers['content-type'], code, message), ...extra }, true);
}
