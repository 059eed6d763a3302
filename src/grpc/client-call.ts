/**
 * One client-side call on one HTTP/2 stream. The status comes from the
 * trailers, or the headers of a trailers-only response; without either it is
 * derived as grpc-go derives it (HTTP status, RST_STREAM code, connection
 * error). Responses are read pull-based: the stream pauses while a decoded
 * message waits for the caller, so HTTP/2 flow control holds the server back.
 */
import { constants as h2, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { assert } from '../base/index.js';
import { DrainSignal, Inbox } from './flow.js';
import { frameMessage, MessageDeframer, parseEncoding } from './framing.js';
import { Metadata } from './metadata.js';
import {
  cancelledMessage,
  deadlineExceededMessage,
  decodeGrpcMessage,
  GrpcError,
  GrpcStatus,
  http2ErrorName,
  isGrpcStatusCode,
  statusFromHttpStatus,
  statusFromRstCode,
  type GrpcStatusCode,
  type OutgoingMetadata,
} from './status.js';

export interface CallOptions {
  readonly metadata?: OutgoingMetadata;
  /** Absolute deadline in ms since the epoch. */
  readonly deadlineMs?: number;
  /** Relative timeout; with deadlineMs too, the earlier one applies. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** A response stream: async-iterate it, or read() message by message. */
export interface ClientReadableCall<Res> extends AsyncIterable<Res> {
  /** The next message; undefined after an OK status; rejects with the GrpcError of a failed call. */
  read(): Promise<Res | undefined>;
  /** Response headers (metadata), once they arrive; rejects if the call fails first. */
  headers(): Promise<Metadata>;
  /** Cancels the call: RST_STREAM(CANCEL); reads then reject with CANCELLED. */
  cancel(): void;
}

export interface ClientWritable<Req> {
  /** Queues a request; false means wait for drained() (HTTP/2 flow control is holding it). */
  write(message: Req): boolean;
  drained(): Promise<void>;
  /** Half-closes: no more requests. */
  end(): void;
  readonly bufferedBytes: number;
}

export interface ClientDuplexCall<Req, Res> extends ClientReadableCall<Res>, ClientWritable<Req> {}

export interface ClientStreamingCall<Req, Res> extends ClientWritable<Req> {
  readonly response: Promise<Res>;
  cancel(): void;
}

/** What a call needs from its channel and connection. */
export interface CallHost {
  readonly maxReceiveMessageBytes: number;
  readonly maxSendMessageBytes: number;
  /** The connection's failure, if it has failed; turns a stream loss into UNAVAILABLE. */
  connectionError(): Error | undefined;
  /** Whether the connection ever completed its handshake (a failure before is a dial error). */
  connectionReady(): boolean;
  /** Whether the connection is closing or gone (a stream's session is detached by then). */
  connectionClosed(): boolean;
  /** Called exactly once when the call is over. */
  release(): void;
}

const timerMsMax = 0x7fff_ffff;

function noop(): void {
  // Errors surface through 'close'.
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** grpc-go's message for a response that is not gRPC. */
function httpStatusOf(headers: IncomingHttpHeaders): number | undefined {
  // Node hands :status over as a number, whatever the header type says.
  const raw: unknown = headers[':status'];
  return raw === undefined ? undefined : Number(raw);
}

function httpError(headers: IncomingHttpHeaders): GrpcError {
  const status = httpStatusOf(headers);
  const ct = headerString(headers['content-type']);
  const parts: string[] = [];
  const statusCodes: Readonly<Record<number, string>> = {
    200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
    429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  if (status === undefined) parts.push('malformed header: missing HTTP status');
  else parts.push(`${statusCodes[status] ?? ''}: HTTP status code ${status}`);
  parts.push(ct === undefined ? 'transport: missing content-type field' : `transport: received the unexpected content-type ${JSON.stringify(ct)}`);
  return new GrpcError(status === undefined ? GrpcStatus.INTERNAL : statusFromHttpStatus(status), parts.join('; '));
}

function isGrpcResponse(headers: IncomingHttpHeaders): boolean {
  const ct = headerString(headers['content-type']);
  return httpStatusOf(headers) === 200 && ct !== undefined && ct.startsWith('application/grpc');
}

/** Reads grpc-status and grpc-message; null means OK. */
function statusOf(h: IncomingHttpHeaders): GrpcError | null {
  const raw = headerString(h['grpc-status']);
  const message = decodeGrpcMessage(headerString(h['grpc-message']) ?? '');
  const n = raw === undefined ? GrpcStatus.UNKNOWN : Number(raw);
  if (!Number.isInteger(n)) {
    return new GrpcError(GrpcStatus.INTERNAL, `transport: malformed grpc-status: strconv.ParseInt: parsing ${JSON.stringify(raw)}: invalid syntax`);
  }
  const code: GrpcStatusCode = isGrpcStatusCode(n) ? n : GrpcStatus.UNKNOWN;
  if (code === GrpcStatus.OK) return null;
  const trailers: Record<string, string> = {};
  for (const k of Object.keys(h)) {
    if (k.startsWith(':') || k.startsWith('grpc-') || k === 'content-type') continue;
    const v = headerString(h[k]);
    if (v !== undefined) trailers[k] = v;
  }
  return new GrpcError(code, message, trailers);
}

export class ClientCall<Res> implements ClientDuplexCall<unknown, Res>, ClientStreamingCall<unknown, Res> {
  /** undefined while running; null for OK; the error otherwise. */
  private final: GrpcError | null | undefined;
  private status: GrpcError | null | undefined;
  private protocolError: GrpcError | undefined;
  private deframer: MessageDeframer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private single: Res | undefined;
  private gotSingle = false;
  private readonly inbox: Inbox<Res>;
  private responseHeaders: Metadata | undefined;
  private headerWaiters: { resolve: (m: Metadata) => void; reject: (e: GrpcError) => void }[] | undefined;
  private readonly drain: DrainSignal;
  private resolveResponse: (r: Res) => void = noop;
  private rejectResponse: (e: GrpcError) => void = noop;
  private onAbort: (() => void) | undefined;
  private signal: AbortSignal | undefined;
  private streamError: (Error & { code?: unknown }) | undefined;
  readonly response: Promise<Res>;

  constructor(
    private readonly host: CallHost,
    private readonly stream: ClientHttp2Stream,
    private readonly decode: (bytes: Buffer) => Res,
    private readonly encode: ((message: unknown) => Uint8Array) | undefined,
    /** True for unary and client-streaming calls: one response, delivered through `response`. */
    private readonly singleResponse: boolean,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.response = singleResponse
      ? new Promise<Res>((resolve, reject) => {
          this.resolveResponse = resolve;
          this.rejectResponse = reject;
        })
      : Promise.resolve(undefined as Res);
    this.inbox = new Inbox(stream);
    this.drain = new DrainSignal(stream);
    stream.on('error', (err: Error) => {
      this.streamError ??= err;
    });
    stream.once('response', (headers: IncomingHttpHeaders) => this.onResponse(headers));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.once('trailers', (trailers: IncomingHttpHeaders) => this.onTrailers(trailers));
    stream.once('end', () => this.onEnd());
    stream.once('close', () => this.onClose());
    if (timeoutMs !== undefined && timeoutMs <= timerMsMax) {
      this.timer = setTimeout(() => this.abortLocally(GrpcStatus.DEADLINE_EXCEEDED, deadlineExceededMessage), timeoutMs);
    }
    if (signal !== undefined) {
      this.onAbort = () => this.abortLocally(GrpcStatus.CANCELLED, cancelledMessage);
      signal.addEventListener('abort', this.onAbort, { once: true });
      this.signal = signal;
    }
  }

  // ---- requests ----

  write(message: unknown): boolean {
    if (this.final !== undefined) return false;
    assert(this.encode !== undefined, 'write on a call without a request encoder');
    const payload = this.encode(message);
    const max = this.host.maxSendMessageBytes;
    if (payload.length > max) {
      throw new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, `trying to send message larger than max (${payload.length} vs. ${max})`);
    }
    return this.stream.write(frameMessage(payload));
  }

  drained(): Promise<void> {
    return this.final !== undefined ? Promise.resolve() : this.drain.wait();
  }

  end(): void {
    if (this.final === undefined && !this.stream.writableEnded) this.stream.end();
  }

  get bufferedBytes(): number {
    return this.stream.writableLength;
  }

  // ---- responses ----

  read(): Promise<Res | undefined> {
    return this.inbox.read();
  }

  [Symbol.asyncIterator](): AsyncIterator<Res> {
    // Leaving a for-await loop early cancels the call, so the stream is not left open.
    return this.inbox.iterator(() => this.cancel());
  }

  headers(): Promise<Metadata> {
    if (this.responseHeaders !== undefined) return Promise.resolve(this.responseHeaders);
    if (this.final === null) return Promise.resolve(new Metadata({}));
    if (this.final !== undefined) return Promise.reject(this.final);
    return new Promise((resolve, reject) => {
      (this.headerWaiters ??= []).push({ resolve, reject });
    });
  }

  cancel(): void {
    this.abortLocally(GrpcStatus.CANCELLED, cancelledMessage);
  }

  private abortLocally(code: GrpcStatusCode, message: string): void {
    if (this.final !== undefined) return;
    this.complete(new GrpcError(code, message));
    if (!this.stream.closed && !this.stream.destroyed) this.stream.close(h2.NGHTTP2_CANCEL);
  }

  private onResponse(headers: IncomingHttpHeaders): void {
    if (!isGrpcResponse(headers)) {
      this.protocolError = httpError(headers);
      return;
    }
    if (headers['grpc-status'] !== undefined) {
      // Trailers-only: the status is in the headers and END_STREAM follows.
      this.status = statusOf(headers);
      return;
    }
    const enc = parseEncoding(headerString(headers['grpc-encoding']));
    this.deframer = new MessageDeframer(this.host.maxReceiveMessageBytes, enc ?? 'identity');
    this.responseHeaders = new Metadata(headers);
    const ws = this.headerWaiters;
    if (ws !== undefined) {
      this.headerWaiters = undefined;
      for (const w of ws) w.resolve(this.responseHeaders);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.final !== undefined) return;
    const d = this.deframer;
    if (d === undefined) {
      this.protocolError ??= new GrpcError(GrpcStatus.INTERNAL, 'grpc: received data before response headers');
      this.stream.close(h2.NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    const err = d.push(chunk, (payload) => this.onMessage(payload));
    if (err !== undefined) {
      this.complete(err);
      this.stream.close(h2.NGHTTP2_CANCEL);
    }
  }

  private onMessage(payload: Buffer): void {
    if (this.final !== undefined) return;
    let m: Res;
    try {
      m = this.decode(payload);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.complete(new GrpcError(GrpcStatus.INTERNAL, `grpc: failed to unmarshal the received message ${why}`));
      this.stream.close(h2.NGHTTP2_CANCEL);
      return;
    }
    if (this.singleResponse) {
      this.single = m;
      this.gotSingle = true;
      return;
    }
    this.inbox.push(m);
  }

  private onTrailers(trailers: IncomingHttpHeaders): void {
    this.status = statusOf(trailers);
  }

  /** Every message has been taken and the server has ended its side: the call is over. */
  private onEnd(): void {
    if (this.final !== undefined) return;
    if (this.status === undefined && this.protocolError === undefined) return;
    this.complete(this.closeStatus());
    // Like grpc-go: if we were still sending, tell the server we are done with the stream. Not
    // otherwise: nghttp2 servers (node:http2's too) count RST_STREAMs received, and a burst of
    // about a thousand closes the connection (GOAWAY INTERNAL_ERROR, the Rapid Reset defence).
    if (!this.stream.writableEnded && !this.stream.closed && !this.stream.destroyed) this.stream.close(h2.NGHTTP2_NO_ERROR);
  }

  private onClose(): void {
    if (this.final !== undefined) {
      this.drain.release();
      return;
    }
    this.complete(this.closeStatus());
  }

  /** The status of a stream that closed on its own. */
  private closeStatus(): GrpcError | null {
    if (this.status !== undefined) {
      if (this.status === null && this.singleResponse && !this.gotSingle) {
        return new GrpcError(GrpcStatus.INTERNAL, 'grpc: the server sent no response message');
      }
      return this.status;
    }
    if (this.protocolError !== undefined) return this.protocolError;
    const connErr = this.connectionFailure();
    if (connErr !== undefined) {
      const dial = this.host.connectionReady() ? '' : 'Error while dialing ';
      return new GrpcError(GrpcStatus.UNAVAILABLE, `connection error: desc = "transport: ${dial}${connErr.message.trim()}"`);
    }
    const rst = this.stream.rstCode;
    // The stream's own session (detached from it by now when it closed with the connection).
    const sessionGone = this.host.connectionClosed();
    // node:http2 closes every open stream with CANCEL when the socket closes (a server that died
    // sends no RST_STREAM): that is the transport going away, as grpc-go reports it, not a cancel.
    if (rst === h2.NGHTTP2_CANCEL && sessionGone) return new GrpcError(GrpcStatus.UNAVAILABLE, 'transport is closing');
    if (rst !== undefined && rst !== h2.NGHTTP2_NO_ERROR) {
      return new GrpcError(statusFromRstCode(rst), `stream terminated by RST_STREAM with error code: ${http2ErrorName(rst)}`);
    }
    if (sessionGone) {
      return new GrpcError(GrpcStatus.UNAVAILABLE, 'transport is closing');
    }
    return new GrpcError(GrpcStatus.INTERNAL, 'server closed the stream without sending trailers');
  }

  /** The connection-level error that took this stream down, if that is what happened. */
  private connectionFailure(): Error | undefined {
    const e = this.streamError;
    // A reset from the peer is a stream matter, reported by its RST_STREAM code.
    if (e !== undefined && e.code !== 'ERR_HTTP2_STREAM_ERROR') return e.cause instanceof Error ? e.cause : e;
    return this.host.connectionError();
  }

  /** Settles everything that waits on this call; runs once. */
  private complete(result: GrpcError | null): void {
    if (this.final !== undefined) return;
    this.final = result;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    if (this.singleResponse) {
      if (result === null) this.resolveResponse(this.single as Res);
      else this.rejectResponse(result);
    }
    if (result === null) this.inbox.end();
    else this.inbox.fail(result);
    const ws = this.headerWaiters;
    if (ws !== undefined) {
      this.headerWaiters = undefined;
      for (const hw of ws) {
        if (result === null) hw.resolve(this.responseHeaders ?? new Metadata({}));
        else hw.reject(result);
      }
    }
    this.drain.release();
    this.host.release();
  }
}

