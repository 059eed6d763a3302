/**
 * The HTTP/JSON gateway on the client port, as etcd 3.4 serves it
 * (grpc-gateway v1): POST /v3/<service>/<method> (and /v3beta/...) with a
 * JSON request body; the gateway calls the member's own gRPC service over a
 * loopback connection, so every check, limit and error is exactly the gRPC
 * one, then answers in jsonpb's JSON (json-pb.ts).
 *
 * - Success: 200, the response message as JSON.
 * - Failure: {"error":msg,"message":msg,"code":grpcCode} with grpc-gateway
 *   v1's HTTP status for the code; a body that does not decode is code 3 (400).
 * - Streams (watch, lease keepalive, election observe, snapshot): one
 *   {"result":…} line per message; a failure mid-stream is one
 *   {"error":{"grpc_code",…}} object. A watch outlives the end of the request
 *   body (as etcd's does); a keepalive stream ends with it. Over HTTP/1 a
 *   watch or keepalive answers nothing until its request body has ended, as
 *   Go's server reads the body to its end before it sends a response head.
 * - The Authorization header is the token; a request through the gateway
 *   never authenticates by the TLS certificate of the loopback connection,
 *   and with client-certificate auth and auth on, one presenting a
 *   certificate with a CN is refused (400), as etcd refuses it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { GrpcChannel, GrpcError, GrpcStatus, HttpBodyError, type ChannelTlsOptions, type ClientReadableCall, type MethodDef, type OutgoingMetadata } from '../grpc/index.js';
import { etcdserverpb, v3electionpb, v3lockpb, type MessageType } from '../pb/index.js';
import type { EtcdServer } from '../server/index.js';
import type { HttpRoute } from './http.js';
import { readRequestBody } from './http-body.js';
import { JsonPbError, fromJson, fromJsonText, goJsonString, splitJsonValues, toJson } from './json-pb.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;
type AnyMethod = MethodDef<object, object> & { requestType: MessageType<object>; responseType: MessageType<object>; requestStream: boolean; responseStream: boolean };

/** Where the gateway's loopback gRPC connection goes. */
export interface GatewayUpstream {
  readonly address: string;
  readonly tls?: ChannelTlsOptions | undefined;
}

/** A request body larger than this is refused before it is decoded (etcd's gRPC limit applies after). */
const bodyBytesMax = 64 * 1024 * 1024;

const kv = etcdserverpb.KVService.methods;
const lease = etcdserverpb.LeaseService.methods;
const cluster = etcdserverpb.ClusterService.methods;
const maint = etcdserverpb.MaintenanceService.methods;
const auth = etcdserverpb.AuthService.methods;
const lock = v3lockpb.LockService.methods;
const election = v3electionpb.ElectionService.methods;

/**
 * Watch as etcd 3.4's gateway calls it: gogoproto's generated code encodes its
 * requests, and it sizes a negative filter as ten bytes but writes one byte
 * (its varint loop never runs for a negative int32). The create request's
 * length prefix then claims more bytes than follow, so the server refuses the
 * message at that prefix ("grpc: failed to unmarshal the received message
 * unexpected EOF") and ends the stream. The server reads nothing past the
 * prefix, so the proper encoding cut as short stands for gogo's bytes.
 */
const gatewayWatch = {
  ...etcdserverpb.WatchService.methods.Watch,
  requestType: {
    ...etcdserverpb.WatchRequest,
    encode(req: etcdserverpb.WatchRequest): Uint8Array {
      const bytes = etcdserverpb.WatchRequest.encode(req);
      const u = req.requestUnion;
      const negatives = u?.case === 'createRequest' ? u.value.filters.filter((f) => f < 0).length : 0;
      return bytes.subarray(0, bytes.length - 9 * negatives);
    },
  },
};

/** etcd 3.4's gateway paths (rpc.proto, v3lock.proto, v3election.proto google.api.http options). */
const routeTable = {
  '/v3/kv/range': kv.Range,
  '/v3/kv/put': kv.Put,
  '/v3/kv/deleterange': kv.DeleteRange,
  '/v3/kv/txn': kv.Txn,
  '/v3/kv/compaction': kv.Compact,
  '/v3/watch': gatewayWatch,
  '/v3/lease/grant': lease.LeaseGrant,
  '/v3/lease/revoke': lease.LeaseRevoke,
  '/v3/kv/lease/revoke': lease.LeaseRevoke,
  '/v3/lease/keepalive': lease.LeaseKeepAlive,
  '/v3/lease/timetolive': lease.LeaseTimeToLive,
  '/v3/kv/lease/timetolive': lease.LeaseTimeToLive,
  '/v3/lease/leases': lease.LeaseLeases,
  '/v3/kv/lease/leases': lease.LeaseLeases,
  '/v3/cluster/member/add': cluster.MemberAdd,
  '/v3/cluster/member/remove': cluster.MemberRemove,
  '/v3/cluster/member/update': cluster.MemberUpdate,
  '/v3/cluster/member/list': cluster.MemberList,
  '/v3/cluster/member/promote': cluster.MemberPromote,
  '/v3/maintenance/alarm': maint.Alarm,
  '/v3/maintenance/status': maint.Status,
  '/v3/maintenance/defragment': maint.Defragment,
  // 3.4 maps Hash and HashKV both here; Hash, registered first, answers.
  '/v3/maintenance/hash': maint.Hash,
  '/v3/maintenance/snapshot': maint.Snapshot,
  '/v3/maintenance/transfer-leadership': maint.MoveLeader,
  '/v3/auth/enable': auth.AuthEnable,
  '/v3/auth/disable': auth.AuthDisable,
  '/v3/auth/authenticate': auth.Authenticate,
  '/v3/auth/user/add': auth.UserAdd,
  '/v3/auth/user/get': auth.UserGet,
  '/v3/auth/user/list': auth.UserList,
  '/v3/auth/user/delete': auth.UserDelete,
  '/v3/auth/user/changepw': auth.UserChangePassword,
  '/v3/auth/user/grant': auth.UserGrantRole,
  '/v3/auth/user/revoke': auth.UserRevokeRole,
  '/v3/auth/role/add': auth.RoleAdd,
  '/v3/auth/role/get': auth.RoleGet,
  '/v3/auth/role/list': auth.RoleList,
  '/v3/auth/role/delete': auth.RoleDelete,
  '/v3/auth/role/grant': auth.RoleGrantPermission,
  '/v3/auth/role/revoke': auth.RoleRevokePermission,
  '/v3/lock/lock': lock.Lock,
  '/v3/lock/unlock': lock.Unlock,
  '/v3/election/campaign': election.Campaign,
  '/v3/election/proclaim': election.Proclaim,
  '/v3/election/leader': election.Leader,
  '/v3/election/observe': election.Observe,
  '/v3/election/resign': election.Resign,
} as const;
const routes = routeTable as unknown as Readonly<Record<string, AnyMethod>>;

/** grpc-gateway v1's HTTPStatusFromCode. */
export function httpStatusOf(code: number): number {
  const c = GrpcStatus;
  switch (code) {
    case c.OK:
      return 200;
    case c.CANCELLED:
      return 408;
    case c.INVALID_ARGUMENT:
    case c.OUT_OF_RANGE:
      return 400;
    case c.DEADLINE_EXCEEDED:
      return 504;
    case c.NOT_FOUND:
      return 404;
    case c.ALREADY_EXISTS:
    case c.ABORTED:
      return 409;
    case c.PERMISSION_DENIED:
      return 403;
    case c.UNAUTHENTICATED:
      return 401;
    case c.RESOURCE_EXHAUSTED:
      return 429;
    case c.FAILED_PRECONDITION:
      return 412;
    case c.UNIMPLEMENTED:
      return 501;
    case c.UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

const httpStatusText: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  412: 'Precondition Failed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function errorOf(e: unknown): { code: number; message: string } {
  if (e instanceof GrpcError) return { code: e.code, message: e.message };
  if (e instanceof JsonPbError) return { code: GrpcStatus.INVALID_ARGUMENT, message: e.message };
  return { code: GrpcStatus.UNKNOWN, message: e instanceof Error ? e.message : String(e) };
}

function errorBody(code: number, message: string): string {
  const m = goJsonString(message);
  return `{"error":${m},"message":${m},"code":${code}}`;
}

/** A stream's failure chunk (grpc-gateway's internal.StreamError). */
function streamErrorChunk(code: number, message: string): string {
  const http = httpStatusOf(code);
  return `{"error":{"grpc_code":${code},"http_code":${http},"message":${goJsonString(message)},"http_status":${goJsonString(httpStatusText[http] ?? '')}}}`;
}

/** Both response kinds write alike; their declared overloads do not unify. */
function write(res: Res, text: string): boolean {
  return (res as ServerResponse).write(text);
}

/** The buffer Go's HTTP/1 server fills before it sends a chunk of a response body. */
const goChunkBufferBytes = 2048;

/**
 * One stream message and its newline, flushed, framed as Go's buffer frames
 * them: together as one chunk, unless the message fills the buffer, which
 * then goes out as its own chunk and the newline as another.
 */
function writeResult(res: Res, json: string): boolean {
  if (Buffer.byteLength(json) < goChunkBufferBytes) return write(res, `${json}\n`);
  write(res, json);
  return write(res, '\n');
}

function plain(res: Res, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(`${text}\n`);
}

/** The metadata grpc-gateway v1 derives from the HTTP request. */
function metadataOf(req: Req): OutgoingMetadata {
  const md: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    const v = Array.isArray(value) ? value.join(', ') : value;
    if (name === 'authorization') md['authorization'] = v;
    else if (name.startsWith('grpc-metadata-')) md[name.slice('grpc-metadata-'.length)] = v;
    else if (name === 'user-agent') md['grpcgateway-user-agent'] = v;
  }
  // Always marked: the loopback connection's certificate must never count as the caller's identity.
  md['grpcgateway-accept'] = typeof req.headers.accept === 'string' ? req.headers.accept : '*/*';
  const from = req.socket.remoteAddress;
  if (from !== undefined) md['x-forwarded-for'] = from;
  const host = req.headers.host ?? req.headers[':authority'];
  if (typeof host === 'string') md['x-forwarded-host'] = host;
  return md;
}

/** Answers to requests whose body broke off for good (HttpBodyError.repeats): the connection closes after them. */
const brokenBodies = new WeakSet<Res>();

/**
 * Go's server closes a connection whose request body broke off for good once
 * it has answered, and says so in the head, after the headers it adds itself
 * (Date; Content-Length for an answer it has whole).
 */
function sayClosing(res: Res, contentLength?: number): void {
  if (!brokenBodies.has(res) || res.headersSent) return;
  res.setHeader('Date', new Date().toUTCString());
  if (contentLength !== undefined) res.setHeader('Content-Length', contentLength);
  res.setHeader('Connection', 'close');
}

/**
 * The request body whole. One that breaks off is refused as one that does
 * not decode (grpc-gateway's decoder got the error), unless the client's EOF
 * broke it: that EOF ends the request's context first ("context canceled").
 */
function readBody(req: Req, signal: AbortSignal): Promise<Uint8Array> {
  return readRequestBody(req, bodyBytesMax, 'refuse', () => new JsonPbError('http: request body too large')).catch((e: unknown) => {
    if (!(e instanceof HttpBodyError)) throw e;
    throw signal.aborted ? new GrpcError(GrpcStatus.CANCELLED, 'context canceled') : new JsonPbError(e.message);
  });
}

/** The verified client certificate's CN on a TLS request, if any. */
function clientCommonName(req: Req): string | undefined {
  const sock = req.socket as Partial<TLSSocket>;
  if (sock.encrypted !== true || sock.authorized !== true || sock.getPeerCertificate === undefined) return undefined;
  const cn = sock.getPeerCertificate().subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

export class Gateway {
  private channel: GrpcChannel | undefined;
  private upstream: GatewayUpstream | undefined;

  constructor(private readonly s: EtcdServer) {}

  /**
   * etcd refuses a gateway request that presents a certificate with a CN when
   * client-certificate auth and auth are on: the CN would silently not be the
   * user (the loopback connection carries the server's own certificate).
   */
  private refusesCommonName(req: Req): boolean {
    const cn = clientCommonName(req);
    return cn !== undefined && cn !== '' && this.s.cfg.clientTls.clientCertAuth && this.s.auth.isEnabled();
  }

  /** Called once the client port listens: the address the gateway calls. */
  setUpstream(u: GatewayUpstream): void {
    this.upstream = u;
  }

  close(): void {
    this.channel?.close();
    this.channel = undefined;
  }

  private conn(): GrpcChannel {
    if (this.channel === undefined) {
      if (this.upstream === undefined) throw new GrpcError(GrpcStatus.UNAVAILABLE, 'etcdserver: server stopped');
      this.channel = new GrpcChannel({ address: this.upstream.address, tls: this.upstream.tls, connectTimeoutMs: 5_000 });
    }
    return this.channel;
  }

  readonly route: HttpRoute = (req, res, path) => {
    const normalized = path.startsWith('/v3beta/') ? `/v3/${path.slice('/v3beta/'.length)}` : path;
    if (!normalized.startsWith('/v3/')) return false;
    if (this.refusesCommonName(req)) {
      // etcd answers before it writes its CORS headers.
      for (const h of ['Access-Control-Allow-Headers', 'Access-Control-Allow-Methods', 'Access-Control-Allow-Origin']) res.removeHeader(h);
      plain(res, 400, 'CommonName of client sending a request against gateway will be ignored and not used as expected');
      return true;
    }
    const method = Object.hasOwn(routes, normalized) ? routes[normalized] : undefined;
    if (method === undefined) {
      plain(res, 404, 'Not Found');
      return true;
    }
    if (req.method !== 'POST') {
      plain(res, 405, 'Method Not Allowed');
      return true;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    req.on('error', (e) => {
      if (e instanceof HttpBodyError && e.repeats) brokenBodies.add(res);
    });
    // A client that half-closes its HTTP/1 connection ends the call's context, as Go's server ends a request's
    // context at the EOF it reads: the call is cancelled (a write not yet proposed is not made), and the
    // answer (408, "context canceled") still goes out on the open half (client-port.ts keeps it open).
    if (req.httpVersionMajor === 1) {
      const socket = req.socket;
      const cancel = (): void => abort.abort();
      socket.once('end', cancel);
      res.once('close', () => socket.removeListener('end', cancel));
    }
    const md = metadataOf(req);
    const served = method.requestStream
      ? this.bidi(method, req, res, md, abort.signal, normalized === '/v3/watch')
      : method.responseStream
        ? this.serverStream(method, req, res, md, abort.signal)
        : this.unary(method, req, res, md, abort.signal);
    void served.catch(() => res.destroy());
    return true;
  };

  private async unary(method: AnyMethod, req: Req, res: Res, metadata: OutgoingMetadata, signal: AbortSignal): Promise<void> {
    let request: object;
    try {
      request = fromJson(method.requestType, await readBody(req, signal));
    } catch (e) {
      return this.fail(res, e, false);
    }
    // A FIN that came with the request is read by the next turn of the loop: see it before anything is
    // proposed, as Go's server ends the request's context at that EOF before its handler calls on.
    if (req.httpVersionMajor === 1) await new Promise<void>((resolve) => setImmediate(resolve));
    let response: object;
    try {
      response = await this.conn().unary(method, request, { metadata, signal });
    } catch (e) {
      // Cancelled here, the call has no trailers to forward: grpc-gateway answers without them.
      return this.fail(res, e, !signal.aborted);
    }
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Grpc-Metadata-Content-Type', 'application/grpc');
    res.end(toJson(method.responseType, response));
  }

  /** A failed unary call; after a gRPC round the body is chunked and trailed, as grpc-gateway writes it. */
  private fail(res: Res, e: unknown, afterCall: boolean): void {
    const { code, message } = errorOf(e);
    if (res.headersSent) return void res.destroy();
    res.statusCode = httpStatusOf(code);
    res.setHeader('Content-Type', 'application/json');
    if (afterCall) {
      res.setHeader('Trailer', 'Grpc-Trailer-Content-Type');
      write(res, errorBody(code, message));
      (res as ServerResponse).addTrailers({ 'Grpc-Trailer-Content-Type': 'application/grpc' });
      res.end();
    } else {
      const body = errorBody(code, message);
      sayClosing(res, Buffer.byteLength(body));
      res.end(body);
    }
  }

  private startStream(res: Res): void {
    if (res.headersSent) return;
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Grpc-Metadata-Content-Type', 'application/grpc');
    sayClosing(res);
  }

  /** Copies a response stream out as {"result":…} lines until it ends or fails. */
  private async pipeResults(method: AnyMethod, res: Res, read: () => Promise<object | undefined>): Promise<void> {
    try {
      for (;;) {
        const msg = await read();
        if (msg === undefined) break;
        this.startStream(res);
        const ok = writeResult(res, `{"result":${toJson(method.responseType, msg)}}`);
        if (!ok) await new Promise<void>((resolve) => res.once('drain', resolve));
      }
    } catch (e) {
      const { code, message } = errorOf(e);
      if (!res.headersSent) {
        res.statusCode = httpStatusOf(code);
        res.setHeader('Content-Type', 'application/json');
        sayClosing(res);
      }
      if (!res.writableEnded) write(res, streamErrorChunk(code, message));
    }
    if (!res.writableEnded) {
      this.startStream(res);
      res.end();
    }
  }

  private async serverStream(method: AnyMethod, req: Req, res: Res, metadata: OutgoingMetadata, signal: AbortSignal): Promise<void> {
    let request: object;
    try {
      request = fromJson(method.requestType, await readBody(req, signal));
    } catch (e) {
      return this.fail(res, e, false);
    }
    const call = this.conn().serverStream(method, request, { metadata, signal });
    if (!(await this.answeredHeaders(call, res, signal))) return;
    await this.pipeResults(method, res, () => call.read());
  }

  /**
   * grpc-gateway waits for a stream's response headers (which come with its
   * first message) before it answers anything: a call cancelled before them,
   * the client gone ("context canceled"), is answered as a failed unary call
   * is, with no stream chunk. False when it was.
   */
  private async answeredHeaders(call: ClientReadableCall<object>, res: Res, signal: AbortSignal): Promise<boolean> {
    try {
      await call.headers();
    } catch (e) {
      if (signal.aborted) {
        this.fail(res, e, false);
        return false;
      }
      // Any other failure is read from the stream, as grpc-gateway reads it.
    }
    return true;
  }

  /**
   * A bidirectional stream: request objects are sent as they arrive in the
   * body. As grpc-gateway v1, the first one is decoded before the call opens:
   * if it does not decode, the answer is that error (code Unknown, 500) and
   * no call is made; a later one that does not decode ends the sending. At
   * the body's end a keepalive stream is half-closed; a watch stays open
   * until the HTTP client goes away, as etcd's watch ignores the end of its
   * requests.
   */
  private async bidi(method: AnyMethod, req: Req, res: Res, metadata: OutgoingMetadata, signal: AbortSignal, outlivesBody: boolean): Promise<void> {
    const body = new StreamBody(method.requestType, req);
    const firstError = await body.first;
    if (firstError !== undefined) {
      req.resume();
      return this.fail(res, new GrpcError(GrpcStatus.UNKNOWN, firstError), false);
    }
    const call = this.conn().bidi(method, { metadata, signal });
    body.pipeTo(
      (msg) => call.write(msg),
      () => {
        if (!outlivesBody) call.end();
      },
    );
    if (!(await this.answeredHeaders(call, res, signal))) return;
    // Go's HTTP/1 server, about to send a response's head, first reads what is left of the request body to
    // its end: over HTTP/1 nothing of the stream goes out while the body is still open. The responses wait
    // in the call meanwhile, bounded by its flow control.
    if (req.httpVersionMajor === 1) await body.read;
    await this.pipeResults(method, res, () => call.read());
  }
}

/**
 * The request objects of a stream body, decoded as they arrive; `first`
 * settles once the first one decoded (undefined), the body ended without
 * one (undefined), or it failed to decode (its error message).
 */
class StreamBody {
  readonly first: Promise<string | undefined>;
  /** Settles once the body was read to its end, or the request went away. */
  readonly read: Promise<void>;
  private settleFirst: ((error: string | undefined) => void) | undefined;
  private pending = '';
  private readonly decoded: object[] = [];
  private finished = false;
  private send: ((msg: object) => void) | undefined;
  private close: (() => void) | undefined;

  constructor(
    private readonly type: MessageType<object>,
    req: Req,
  ) {
    this.first = new Promise((resolve) => (this.settleFirst = resolve));
    this.read = new Promise((resolve) => {
      req.once('end', resolve);
      req.once('close', resolve);
      req.once('error', () => resolve());
    });
    // A body that breaks off (HttpBodyError) is a request that does not decode.
    req.on('error', (e) => {
      if (!this.finished) this.fail(e.message);
    });
    req.on('data', (c: Buffer) => {
      if (this.finished) return;
      this.pending += c.toString('utf8');
      if (this.pending.length > bodyBytesMax) return this.fail('http: request body too large');
      this.decode(false);
    });
    req.on('end', () => {
      if (this.finished) return;
      this.decode(true);
      this.finish();
    });
  }

  /** Hands over what was decoded so far and everything after; close is called when nothing more will come. */
  pipeTo(send: (msg: object) => void, close: () => void): void {
    for (const m of this.decoded.splice(0)) send(m);
    this.send = send;
    this.close = close;
    if (this.finished) close();
  }

  private decode(atEnd: boolean): void {
    const { values, rest } = splitJsonValues(this.pending);
    this.pending = rest;
    // At the end, what is left (a scalar, a truncated value) is one more value for the decoder to refuse.
    if (atEnd && rest.trim() !== '') values.push(rest);
    for (const v of values) {
      let msg: object;
      try {
        msg = fromJsonText(this.type, v);
      } catch (e) {
        return this.fail(errorOf(e).message);
      }
      if (this.send !== undefined) this.send(msg);
      else this.decoded.push(msg);
      this.settleFirst?.(undefined);
      this.settleFirst = undefined;
    }
  }

  private fail(message: string): void {
    if (this.settleFirst !== undefined) {
      this.settleFirst(message);
      this.settleFirst = undefined;
    }
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.settleFirst?.(undefined);
    this.settleFirst = undefined;
    this.close?.();
  }
}
