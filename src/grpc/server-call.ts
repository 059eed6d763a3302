/**
 * One server-side call on one HTTP/2 stream: reads request messages with
 * pull-based flow control, runs the handler, writes responses under the
 * stream's backpressure, and ends with trailers (or a trailers-only response
 * when nothing was sent). Every way a call can end goes through finish().
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { H2Stream, StreamSink } from './h2-connection.js';
import { frameHeaderBytes, MessageDeframer, type MessageCodec, type MessageEncoding } from './framing.js';
import { DrainSignal, Inbox } from './flow.js';
import { addMetadataHeaders, Metadata } from './metadata.js';
import {
  cancelledMessage,
  deadlineExceededMessage,
  encodeGrpcMessage,
  GrpcError,
  GrpcStatus,
  toGrpcError,
  type GrpcStatusCode,
  type OutgoingMetadata,
} from './status.js';

/** go-grpc-prometheus's grpc_type label values. */
export type CallType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** Who is on the other end of the connection. */
export interface PeerInfo {
  readonly address: string;
  readonly port: number;
  /** The client certificate's subject CN, when the client presented a verified certificate. */
  readonly commonName: string | undefined;
}

/** The connection a call runs on, as far as the call is concerned. */
export interface CallConnection {
  readonly peer: PeerInfo;
}

/** What every handler sees of its call. */
export interface ServerCall {
  /** The full method path, /package.Service/Method. */
  readonly path: string;
  readonly metadata: Metadata;
  /** Absolute deadline in ms since the epoch (from grpc-timeout), if the client set one. */
  readonly deadlineMs: number | undefined;
  /** Fires on deadline, client cancel, connection loss, or a failed read; reason is a GrpcError. */
  readonly signal: AbortSignal;
  /**
   * The same event without an AbortController (which a unary call on the hot
   * path can do without): fn runs once when the call is aborted, at once if
   * it already was. Returns the function that unregisters fn.
   */
  onAbort(fn: (reason: GrpcError) => void): () => void;
  /** True once the call is over (answered, cancelled or timed out): further writes are dropped. */
  readonly closed: boolean;
  readonly peer: PeerInfo;
  /** Sends the response headers now, with this metadata; otherwise they go with the first message. */
  sendMetadata(metadata?: OutgoingMetadata): void;
  /** Metadata to send in the trailers of a successful call. */
  setTrailers(metadata: OutgoingMetadata): void;
}

export interface ServerWritableCall<Res> extends ServerCall {
  /**
   * Queues a message. Returns false when the stream's buffer is above its high
   * water mark (the peer is not reading fast enough): wait for drained() before
   * writing more. Returns false, dropping the message, once the call is closed.
   * Throws a RESOURCE_EXHAUSTED GrpcError for a message over the send limit.
   */
  write(message: Res): boolean;
  /** Resolves when the buffer has room again, or the call has closed. */
  drained(): Promise<void>;
  /** Bytes written by the handler but not yet taken by HTTP/2 flow control. */
  readonly bufferedBytes: number;
}

export interface ServerReadableCall<Req> extends ServerCall, AsyncIterable<Req> {
  /**
   * The next request message, or undefined when the client has finished
   * sending. Only one read may be outstanding. Rejects with a GrpcError when
   * the call fails (cancel, deadline, malformed message).
   */
  read(): Promise<Req | undefined>;
}

export interface ServerDuplexCall<Req, Res> extends ServerReadableCall<Req>, ServerWritableCall<Res> {}

/**
 * A response a handler has encoded itself (the message's protobuf bytes),
 * sent as it is: a handler that holds parts of the answer already encoded
 * spares decoding and encoding them again.
 */
export class EncodedMessage {
  constructor(readonly bytes: Uint8Array) {}
}

export type UnaryHandler<Req, Res> = (request: Req, call: ServerCall) => Promise<Res | EncodedMessage>;
export type ServerStreamHandler<Req, Res> = (request: Req, call: ServerWritableCall<Res>) => Promise<void>;
export type ClientStreamHandler<Req, Res> = (call: ServerReadableCall<Req>) => Promise<Res>;
export type BidiHandler<Req, Res> = (call: ServerDuplexCall<Req, Res>) => Promise<void>;

/** Which method a call is for. */
export interface CallInfo {
  readonly path: string;
  readonly service: string;
  readonly method: string;
  readonly type: CallType;
}

/** Per-call figures handed to the observer when a call ends. */
export interface CallStats extends CallInfo {
  readonly code: GrpcStatusCode;
  readonly durationMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
}

/** Hooks for metrics (grpc_server_started_total, grpc_server_handled_total, ...). */
export interface CallObserver {
  /** `info` is the registered method itself (the same object for every call of it); `headers` the request's. */
  started?(info: CallInfo, headers: IncomingHttpHeaders): void;
  /**
   * One message of a streaming call (any type but unary), as it is read or written: `bytes` is its
   * length without the frame header. A unary call's messages are in its CallStats only.
   */
  message?(info: CallInfo, direction: 'in' | 'out', bytes: number): void;
  handled?(stats: CallStats): void;
}

/** A registered method, with its handler erased to one calling convention. */
export interface RegisteredMethod extends CallInfo {
  readonly requestType: MessageCodec<unknown>;
  readonly responseType: MessageCodec<unknown>;
  readonly handler: (request: unknown, call: ServerCallImpl) => Promise<unknown>;
}

/** Server-wide settings a call needs. */
export interface CallContext {
  readonly maxReceiveMessageBytes: number;
  readonly maxSendMessageBytes: number;
  readonly observer: CallObserver | undefined;
  readonly onHandlerFault: (path: string, err: unknown) => void;
}

/** setTimeout cannot wait longer than this; longer deadlines simply never fire. */
const timerMsMax = 0x7fff_ffff;

function noop(): void {
  // Unregistering a hook of a call that was already aborted: nothing to undo.
}

/**
 * The headers of every response as grpc-go sends them (no `date`). The common
 * ones are shared, frozen objects, whose header blocks the connection encodes
 * once (h2-connection.ts).
 */
const grpcContentType = 'application/grpc';
const plainHeaders: OutgoingHttpHeaders = Object.freeze({ ':status': 200, 'content-type': grpcContentType });
/** grpc-go always sends grpc-message, empty on success. */
const okTrailers: OutgoingHttpHeaders = Object.freeze({ 'grpc-status': '0', 'grpc-message': '' });

/** The status fields (and trailer metadata) that end a call, as grpc-go orders them. */
function statusFields(target: OutgoingHttpHeaders, code: GrpcStatusCode, message: string, md: OutgoingMetadata | undefined): OutgoingHttpHeaders {
  target['grpc-status'] = String(code);
  target['grpc-message'] = message === '' ? '' : encodeGrpcMessage(message);
  addMetadataHeaders(target, md);
  return target;
}

function onDeadlineTimer(call: ServerCallImpl): void {
  call.onDeadline();
}

export function responseContentType(requestContentType: string | undefined): string {
  return requestContentType !== undefined && requestContentType.startsWith('application/grpc+')
    ? requestContentType
    : grpcContentType;
}

/** A trailers-only response (the call failed, or ended, before any message): headers and status in one block. */
export function trailersOnly(
  requestContentType: string | undefined,
  code: GrpcStatusCode,
  message: string,
  md?: OutgoingMetadata,
): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { ':status': 200, 'content-type': responseContentType(requestContentType) };
  return statusFields(h, code, message, md);
}

export class ServerCallImpl implements ServerDuplexCall<unknown, unknown>, StreamSink {
  readonly path: string;
  readonly deadlineMs: number | undefined;
  private done = false;
  private headersSent = false;
  private trailerMetadata: OutgoingMetadata | undefined;
  private controller: AbortController | undefined;
  private abortHooks: ((reason: GrpcError) => void)[] | undefined;
  private abortReason: GrpcError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly deframer: MessageDeframer;
  private metadataCache: Metadata | undefined;
  /** Client-streaming and bidi requests not yet read by the handler (made on first use for other calls). */
  private inbox: Inbox<unknown> | undefined;
  /** The client has half-closed (END_STREAM seen). */
  private readEnded = false;
  private gotRequest = false;
  /** Made when a handler first waits for the stream to drain. */
  private drain: DrainSignal | undefined;
  private readonly startMs = performance.now();
  /** The deadline on performance.now()'s finer clock (grpc-timeout may be in ns or µs). */
  private readonly deadlinePerf: number | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private messagesIn = 0;
  private messagesOut = 0;

  constructor(
    private readonly ctx: CallContext,
    private readonly stream: H2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly def: RegisteredMethod,
    encoding: MessageEncoding,
    timeoutMs: number | undefined,
    private readonly conn: CallConnection,
  ) {
    this.path = def.path;
    this.deframer = new MessageDeframer(ctx.maxReceiveMessageBytes, encoding);
    if (def.type === 'client_stream' || def.type === 'bidi_stream') this.inbox = new Inbox(stream);
    this.deadlineMs = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    this.deadlinePerf = timeoutMs === undefined ? undefined : this.startMs + timeoutMs;
    if (timeoutMs !== undefined && timeoutMs <= timerMsMax) {
      // Whole milliseconds: Node keeps one timer list per distinct duration, and
      // grpc-timeout in ns or µs would make a new list (a heap insert) per call.
      this.timer = setTimeout(onDeadlineTimer, Math.ceil(timeoutMs), this);
    }
    stream.sink = this;
    ctx.observer?.started?.(def, headers);
  }

  get peer(): PeerInfo {
    return this.conn.peer;
  }

  get metadata(): Metadata {
    this.metadataCache ??= new Metadata(this.headers);
    return this.metadataCache;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  onAbort(fn: (reason: GrpcError) => void): () => void {
    if (this.abortReason !== undefined) {
      fn(this.abortReason);
      return noop;
    }
    (this.abortHooks ??= []).push(fn);
    return () => {
      const i = this.abortHooks?.indexOf(fn) ?? -1;
      if (i >= 0) this.abortHooks?.splice(i, 1);
    };
  }

  get closed(): boolean {
    return this.done;
  }

  get bufferedBytes(): number {
    return this.stream.bufferedBytes;
  }

  sendMetadata(metadata?: OutgoingMetadata): void {
    if (this.done || this.headersSent) return;
    this.sendHeaders(metadata);
  }

  setTrailers(metadata: OutgoingMetadata): void {
    this.trailerMetadata = metadata;
  }

  write(message: unknown): boolean {
    if (this.done) return false;
    const payload = this.encodeResponse(message);
    if (!this.headersSent) this.sendHeaders(undefined);
    this.messagesOut++;
    this.bytesOut += frameHeaderBytes + payload.length;
    this.ctx.observer?.message?.(this.def, 'out', payload.length);
    return this.stream.writeMessage(payload);
  }

  drained(): Promise<void> {
    if (this.done) return Promise.resolve();
    this.drain ??= new DrainSignal(this.stream);
    return this.drain.wait();
  }

  read(): Promise<unknown> {
    return this.requests().read();
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this.requests().iterator();
  }

  /** The inbox, made on first use by a call that does not stream requests (it then only reports the end). */
  private requests(): Inbox<unknown> {
    if (this.inbox === undefined) {
      const inbox = new Inbox<unknown>(this.stream);
      if (this.abortReason !== undefined) inbox.fail(this.abortReason);
      else if (this.done || this.readEnded) inbox.end();
      this.inbox = inbox;
    }
    return this.inbox;
  }

  /** Ends the call with a status; the only way a call ends from this side. */
  finish(code: GrpcStatusCode, message: string, trailers?: OutgoingMetadata, response?: Uint8Array): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const stream = this.stream;
    if (!stream.closed) {
      const md = trailers ?? this.trailerMetadata;
      if (!this.headersSent && response === undefined) {
        this.headersSent = true;
        stream.respond(trailersOnly(this.headers['content-type'], code, message, md), true);
      } else {
        if (!this.headersSent) this.sendHeaders(undefined);
        if (response !== undefined) stream.writeMessage(response);
        stream.sendTrailers(code === GrpcStatus.OK && md === undefined ? okTrailers : statusFields({}, code, message, md));
      }
    }
    if (code === GrpcStatus.OK) {
      this.inbox?.end();
    } else {
      const err = new GrpcError(code, message);
      this.abort(err);
      this.inbox?.fail(err);
    }
    this.drain?.release();
    this.report(code);
  }

  /** Runs the handler's promise to its status. */
  settle(result: Promise<unknown>): void {
    result.then(
      (response) => this.onHandlerDone(response),
      (err: unknown) => this.onHandlerError(err),
    );
  }

  private onHandlerDone(response: unknown): void {
    if (this.done) return;
    const type = this.def.type;
    if (type === 'unary' || type === 'client_stream') {
      let payload: Uint8Array;
      try {
        payload = this.encodeResponse(response);
      } catch (err) {
        this.onHandlerError(err);
        return;
      }
      this.messagesOut++;
      this.bytesOut += frameHeaderBytes + payload.length;
      if (type === 'client_stream') this.ctx.observer?.message?.(this.def, 'out', payload.length);
      this.finish(GrpcStatus.OK, '', undefined, payload);
      return;
    }
    this.finish(GrpcStatus.OK, '');
  }

  private onHandlerError(err: unknown): void {
    if (this.done) return;
    if (!(err instanceof GrpcError)) this.ctx.onHandlerFault(this.path, err);
    const e = toGrpcError(err);
    this.finish(e.code, e.details, e.trailers);
  }

  private encodeResponse(message: unknown): Uint8Array {
    let payload: Uint8Array;
    try {
      payload = message instanceof EncodedMessage ? message.bytes : this.def.responseType.encode(message);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new GrpcError(GrpcStatus.INTERNAL, `grpc: error while marshaling: ${why}`);
    }
    const max = this.ctx.maxSendMessageBytes;
    if (payload.length > max) {
      throw new GrpcError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `grpc: trying to send message larger than max (${payload.length} vs. ${max})`,
      );
    }
    return payload;
  }

  private sendHeaders(metadata: OutgoingMetadata | undefined): void {
    const contentType = responseContentType(this.headers['content-type']);
    let h = plainHeaders;
    if (metadata !== undefined || contentType !== grpcContentType) {
      h = { ':status': 200, 'content-type': contentType };
      addMetadataHeaders(h, metadata);
    }
    this.headersSent = true;
    this.stream.respond(h, false);
  }

  /** StreamSink: request bytes. */
  onData(chunk: Buffer): void {
    if (this.done) return;
    this.bytesIn += chunk.length;
    const err = this.deframer.push(chunk, (payload) => this.onMessage(payload));
    if (err !== undefined) this.finish(err.code, err.details);
  }

  private onMessage(payload: Buffer): void {
    if (this.done) return;
    this.messagesIn++;
    const type = this.def.type;
    if (type !== 'unary') this.ctx.observer?.message?.(this.def, 'in', payload.length);
    if (type === 'unary' || type === 'server_stream') {
      // grpc-go reads exactly one request; anything after it is not looked at.
      if (this.gotRequest) return;
      this.gotRequest = true;
      let request: unknown;
      try {
        request = this.def.requestType.decode(payload);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        // grpc-go decodes a unary request before the handler, a server-streaming one in the handler's RecvMsg.
        const what = type === 'unary' ? 'error unmarshalling request: ' : 'failed to unmarshal the received message ';
        this.finish(GrpcStatus.INTERNAL, `grpc: ${what}${why}`);
        return;
      }
      this.invoke(request);
      return;
    }
    let request: unknown;
    try {
      request = this.def.requestType.decode(payload);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.finish(GrpcStatus.INTERNAL, `grpc: failed to unmarshal the received message ${why}`);
      return;
    }
    this.requests().push(request);
  }

  /** Starts the handler of a streaming-request call (no request message to wait for). */
  startStreaming(): void {
    // Nothing is read until the handler asks.
    this.stream.pause();
    this.invoke(undefined);
  }

  private invoke(request: unknown): void {
    // A deadline past already (grpc-timeout 0n, 1u, or shorter than the wait for the request)
    // runs no handler: the call fails as etcd's, whose handlers see their context done.
    if (this.deadlinePerf !== undefined && performance.now() >= this.deadlinePerf) {
      this.onDeadline();
      return;
    }
    let result: Promise<unknown>;
    try {
      result = this.def.handler(request, this);
    } catch (err) {
      this.onHandlerError(err);
      return;
    }
    this.settle(result);
  }

  /** StreamSink: the client half-closed. */
  onEnd(): void {
    this.readEnded = true;
    if (this.done) return;
    // grpc-go's words, Go's io errors: a unary call fails before its handler
    // (UNKNOWN), a streaming one in the handler's RecvMsg, which makes a cut
    // message INTERNAL and hands a missing one up as it is (UNKNOWN).
    const type = this.def.type;
    if (!this.deframer.idle) {
      this.finish(type === 'unary' ? GrpcStatus.UNKNOWN : GrpcStatus.INTERNAL, 'unexpected EOF');
      return;
    }
    if ((type === 'unary' || type === 'server_stream') && !this.gotRequest) {
      this.finish(GrpcStatus.UNKNOWN, 'EOF');
      return;
    }
    this.inbox?.end();
  }

  /** The deadline timer fired. */
  onDeadline(): void {
    this.timer = undefined;
    if (this.done) return;
    this.abort(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, deadlineExceededMessage));
    this.finish(GrpcStatus.DEADLINE_EXCEEDED, deadlineExceededMessage);
  }

  /** StreamSink: the stream is over. */
  onClose(): void {
    if (!this.done) {
      // The client reset the stream or the connection went away before we answered.
      this.done = true;
      if (this.timer !== undefined) clearTimeout(this.timer);
      const err = new GrpcError(GrpcStatus.CANCELLED, cancelledMessage);
      this.abort(err);
      this.inbox?.fail(err);
      this.report(GrpcStatus.CANCELLED);
    }
    this.drain?.release();
  }

  private abort(reason: GrpcError): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
    const hooks = this.abortHooks;
    this.abortHooks = undefined;
    if (hooks !== undefined) for (const fn of hooks) fn(reason);
  }

  private report(code: GrpcStatusCode): void {
    const observer = this.ctx.observer;
    if (observer?.handled === undefined) return;
    observer.handled({
      path: this.def.path,
      service: this.def.service,
      method: this.def.method,
      type: this.def.type,
      code,
      durationMs: performance.now() - this.startMs,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
    });
  }
}
