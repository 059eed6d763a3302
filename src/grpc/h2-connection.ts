/**
 * H2Connection: the server side of one HTTP/2 connection (RFC 9113) that
 * carries gRPC calls, framed in JavaScript directly over the socket.
 *
 * node:http2 makes an Http2Stream (a Duplex, with its header objects, timers
 * and nghttp2 callbacks) per call, and that machinery cost more CPU per unary
 * call than the whole member behind it. Here a call is a small object, a
 * request's frames are parsed in place from the socket's chunk, and every
 * response frame written in one tick of the event loop leaves in one socket
 * write.
 *
 * What a gRPC server needs of HTTP/2, and no more:
 * - SETTINGS both ways; PING answered (and sent, for keepalive); GOAWAY both
 *   ways; RST_STREAM both ways; PRIORITY and unknown frame types ignored.
 * - HPACK decoding with the dynamic table (hpack.ts); responses are encoded
 *   with literals only, so the client's table for our blocks stays empty.
 * - Flow control both ways: request DATA is credited back as it is consumed
 *   (per stream only while the call reads, see H2Stream.pause), response DATA
 *   waits for the client's windows; a stream's frames keep their order.
 * - A protocol fault is a connection error: GOAWAY with its code, then close.
 *
 * The connection starts from bytes the client port already read (the client
 * preface and the frames up to the first request, see authority-shim.ts),
 * after an empty SETTINGS frame from the server was sent and acknowledged.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { frameMessage } from './framing.js';
import { encodeHeaderFields, HpackDecoder, HpackError, type HeaderField } from './hpack.js';
import { isReservedHeader } from './metadata.js';
import type { CallConnection, PeerInfo } from './server-call.js';

const frameHeaderBytes = 9;
const prefaceBytes = 24;

const frameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

const flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

/** HTTP/2 error codes (RFC 9113 §7). */
export const h2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

const setting = { HEADER_TABLE_SIZE: 0x1, MAX_CONCURRENT_STREAMS: 0x3, INITIAL_WINDOW_SIZE: 0x4, MAX_FRAME_SIZE: 0x5 } as const;

const defaultWindowBytes = 65_535;
const windowMax = 0x7fff_ffff;
/** The frame size every endpoint accepts; we announce no larger one. */
const frameBytesDefault = 16_384;
const frameBytesMax = 16_777_215;
/** A request's header block (all its HEADERS and CONTINUATION frames) may not exceed this. */
const headerBlockBytesMax = 1024 * 1024;
/** A message this large or smaller that must queue is copied behind its prefix; a larger one is not. */
const copyMessageBytesMax = 64 * 1024;
/** A stream's unsent response bytes above this make write() ask the writer to wait for drain. */
const streamHighWaterBytes = 64 * 1024;
/** Socket bytes not yet taken by the kernel above this make every stream's write() ask to wait. */
const socketHighWaterBytes = 1024 * 1024;
/**
 * Frames queued in one turn are copied into one buffer for one write up to
 * this many bytes; above it they are handed to the socket as they are, and
 * it writes them with one writev.
 */
const concatBytesMax = 16 * 1024;
/**
 * A client that grants windows but does not read its socket would make the
 * server buffer without end: past this the connection is dropped (as
 * node:http2's maxSessionMemory does).
 */
const socketBufferBytesMax = 64 * 1024 * 1024;

/** How long a connection we ended waits for the client to close its side. */
const endGraceMs = 1000;

/**
 * The request headers as node:http2 would give them, but for metadata: the
 * protocol's own repeats are joined with ", ", some kept once, and a metadata
 * key sent more than once has each value, in order (see onBlock).
 */
const singleValued = new Set(['content-type', 'user-agent', 'authorization', 'content-length', 'host']);

export interface H2ConnectionOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS announced and enforced. */
  readonly maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE announced: how much request data a stream may send ahead. */
  readonly streamWindowBytes: number;
  /** The connection's receive window. */
  readonly connectionWindowBytes: number;
  /** A new stream, its request headers decoded. The handler must set stream.sink before returning. */
  readonly onStream: (stream: H2Stream, headers: IncomingHttpHeaders) => void;
  /** A PING (not an ack) came in; it has been answered. */
  readonly onPing: (conn: H2Connection) => void;
  /** The connection is gone (socket closed); every stream has been closed first. */
  readonly onClose?: (conn: H2Connection) => void;
}

/** What a stream's owner (the call) hears from it. */
export interface StreamSink {
  /** Request bytes, in order (gRPC length-prefixed messages, cut anywhere). */
  onData(chunk: Buffer): void;
  /** The client half-closed: no more data. */
  onEnd(): void;
  /** The stream is over: answered and ended both ways, reset by either side, or the connection is gone. */
  onClose(): void;
}

const nullSink: StreamSink = {
  onData: () => undefined,
  onEnd: () => undefined,
  onClose: () => undefined,
};

function frameHead(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(streamId, at + 5);
}

function frame(type: number, flags: number, streamId: number, payload: Buffer | undefined): Buffer {
  const n = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(frameHeaderBytes + n);
  frameHead(out, 0, n, type, flags, streamId);
  if (payload !== undefined) payload.copy(out, frameHeaderBytes);
  return out;
}

function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** A connection error: the connection ends with GOAWAY carrying this code. */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Header fields for the encoder, from node-style header objects; `:status` first. */
function headerFields(headers: OutgoingHttpHeaders): HeaderField[] {
  const fields: HeaderField[] = [];
  const status = headers[':status'];
  if (status !== undefined) fields.push({ name: ':status', value: String(status) });
  for (const name of Object.keys(headers)) {
    if (name === ':status') continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) fields.push({ name, value: String(item) });
    else fields.push({ name, value: String(v) });
  }
  return fields;
}

/** Constant blocks of the common responses, encoded once. */
const blockCache = new WeakMap<OutgoingHttpHeaders, Buffer>();

function encodeBlock(headers: OutgoingHttpHeaders): Buffer {
  let block = blockCache.get(headers);
  if (block !== undefined) return block;
  block = encodeHeaderFields(headerFields(headers));
  if (Object.isFrozen(headers)) blockCache.set(headers, block);
  return block;
}

export class H2Stream {
  /** Set by whoever takes the stream (GrpcServer), before onStream returns. */
  sink: StreamSink = nullSink;
  /** The client sent END_STREAM. */
  remoteEnded = false;
  /** We queued our END_STREAM (the trailers, or headers ending the stream). */
  localEnded = false;
  /** Closed: no frame goes out on it any more. */
  closed = false;
  /** Response frames waiting for flow-control window: DATA payloads, then possibly the final block. */
  private readonly queued: Buffer[] = [];
  private queuedBytes = 0;
  private finalBlock: Buffer | undefined;
  sendWindow: number;
  /** Request bytes the client may still send before we credit more. */
  recvWindow: number;
  /** Request bytes consumed but not yet credited back. */
  private recvUncredited = 0;
  private paused = false;
  private drainWaiters: (() => void)[] | undefined;

  constructor(
    readonly conn: H2Connection,
    readonly id: number,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Response bytes not yet handed to the socket (waiting for the client's window). */
  get bufferedBytes(): number {
    return this.queuedBytes;
  }

  /** A writer should wait for 'drain' before writing more. */
  get writableNeedDrain(): boolean {
    return !this.closed && (this.queuedBytes > streamHighWaterBytes || this.conn.socketBacklogged);
  }

  /** The response headers; endStream makes them the whole response (trailers-only). */
  respond(headers: OutgoingHttpHeaders, endStream: boolean): void {
    if (this.closed || this.localEnded) return;
    const block = encodeBlock(headers);
    if (endStream) {
      this.localEnded = true;
      this.finalBlock = block;
      if (this.flush()) this.conn.markBlocked(this);
      return;
    }
    this.conn.writeHeaders(this.id, block, false);
  }

  /** Queues response bytes as DATA; false when the writer should wait for 'drain'. */
  write(data: Buffer): boolean {
    if (this.closed || this.localEnded) return false;
    if (this.fitsNow(data.length)) {
      this.take(data.length);
      this.conn.writeData(this.id, data, false);
    } else {
      this.queued.push(data);
      this.queuedBytes += data.length;
      if (this.flush()) this.conn.markBlocked(this);
    }
    return !this.writableNeedDrain;
  }

  /**
   * One uncompressed gRPC message as DATA: its 5-byte prefix and the payload,
   * written straight into one frame when the windows allow (the usual case).
   * Otherwise it queues: a small message copied into one buffer, a large one
   * as its prefix and the payload itself.
   */
  writeMessage(payload: Uint8Array): boolean {
    if (this.closed || this.localEnded) return false;
    const n = 5 + payload.length;
    if (this.fitsNow(n)) {
      this.take(n);
      this.conn.writeMessageFrame(this.id, payload);
      return !this.writableNeedDrain;
    }
    if (payload.length <= copyMessageBytesMax) return this.write(frameMessage(payload));
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(payload.length, 1);
    this.write(prefix);
    return this.write(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  /** n bytes of DATA can go out at once, in one frame, with nothing queued before them. */
  private fitsNow(n: number): boolean {
    const conn = this.conn;
    return this.queuedBytes === 0 && n <= this.sendWindow && n <= conn.sendWindow && n <= conn.peerMaxFrameBytes;
  }

  /** Debits n bytes from the stream's and the connection's send windows. */
  private take(n: number): void {
    this.sendWindow -= n;
    this.conn.sendWindow -= n;
  }

  /** Ends the response with this trailer block, after every queued DATA frame. */
  sendTrailers(trailers: OutgoingHttpHeaders): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.finalBlock = encodeBlock(trailers);
    if (this.flush()) this.conn.markBlocked(this);
  }

  /** Resets the stream (RST_STREAM with code) and closes it. */
  reset(code: number): void {
    if (this.closed) return;
    this.conn.writeRst(this.id, code);
    this.close();
  }

  /** Stops crediting request bytes back: the client stops sending once the window is used. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.creditRecv(0);
  }

  once(event: 'drain', fn: () => void): void {
    (this.drainWaiters ??= []).push(fn);
  }

  /** For H2Connection: request bytes for this stream. */
  receive(payload: Buffer, dataBytes: number): void {
    this.recvWindow -= dataBytes;
    if (payload.length > 0) this.sink.onData(payload);
    if (!this.closed) this.creditRecv(dataBytes);
  }

  private creditRecv(consumed: number): void {
    this.recvUncredited += consumed;
    if (this.paused || this.remoteEnded || this.closed) return;
    // Credit in halves of the window, so a large request streams without a round trip per frame.
    if (this.recvUncredited > 0 && this.recvUncredited >= this.conn.streamWindowBytes / 2) {
      this.conn.writeWindowUpdate(this.id, this.recvUncredited);
      this.recvWindow += this.recvUncredited;
      this.recvUncredited = 0;
    }
  }

  /** For H2Connection: the client half-closed. */
  endRemote(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.sink.onEnd();
  }

  /** Sends what the windows allow; true if something is still waiting for window. */
  flush(): boolean {
    if (this.closed) return false;
    const conn = this.conn;
    while (this.queued.length > 0) {
      const room = Math.min(this.sendWindow, conn.sendWindow, conn.peerMaxFrameBytes);
      if (room <= 0) return true;
      let head = this.queued[0] as Buffer;
      if (head.length > room) {
        this.queued[0] = head.subarray(room);
        head = head.subarray(0, room);
      } else {
        this.queued.shift();
      }
      this.queuedBytes -= head.length;
      this.take(head.length);
      conn.writeData(this.id, head, false);
    }
    const block = this.finalBlock;
    if (block !== undefined) {
      this.finalBlock = undefined;
      conn.writeHeaders(this.id, block, true);
      if (!this.remoteEnded) {
        // The response is complete; a client still sending is told to stop, without error (RFC 9113 §8.1).
        conn.writeRst(this.id, h2Error.NO_ERROR);
      }
      this.close();
      return false;
    }
    if (this.drainWaiters !== undefined && !this.writableNeedDrain) this.drained();
    return false;
  }

  /** For H2Connection: wakes writers waiting for drain. */
  drained(): void {
    const waiters = this.drainWaiters;
    if (waiters === undefined) return;
    this.drainWaiters = undefined;
    for (const fn of waiters) fn();
  }

  /** For H2Connection and the above: the stream is over. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queued.length = 0;
    this.queuedBytes = 0;
    this.finalBlock = undefined;
    this.conn.forget(this);
    this.sink.onClose();
    this.drained();
  }
}

export class H2Connection implements CallConnection {
  /**
   * Set whenever a HEADERS or DATA frame goes out (grpc-go resets ping
   * strikes on each one it writes): a large response leaves in many frames,
   * as the client's window allows, and the client's bandwidth pings that
   * come between them answer that traffic.
   */
  wrote = false;
  pingStrikes = 0;
  lastPingAtMs = Number.NEGATIVE_INFINITY;
  sendWindow = defaultWindowBytes;
  peerMaxFrameBytes = frameBytesDefault;
  readonly streamWindowBytes: number;
  private peerInitialWindow = defaultWindowBytes;
  private readonly streams = new Map<number, H2Stream>();
  /** Streams with response bytes waiting for window. */
  private readonly blocked = new Set<H2Stream>();
  private readonly hpack = new HpackDecoder();
  private recvWindow: number;
  private recvUncredited = 0;
  private lastStreamId = 0;
  private pending: Buffer | undefined;
  private prefaceSeen = false;
  /** A header block being gathered: its stream, flags of the HEADERS frame, fragments. */
  private block: { id: number; endStream: boolean; fragments: Buffer[]; bytes: number } | undefined;
  private readonly out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private goingAway = false;
  /** We ended our side of the socket: nothing more is written. */
  private ended = false;
  private closed = false;
  private pingAcks: Map<bigint, (acked: boolean) => void> | undefined;
  private pingSeq = 0n;
  socketBacklogged = false;
  private readonly onSocketData = (chunk: Buffer): void => this.receive(chunk);
  private readonly flushNow = (): void => this.flushOut();

  /** The server's keepalive timer for this connection, if it runs one. */
  keepaliveTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    readonly peer: PeerInfo,
    private readonly opts: H2ConnectionOptions,
  ) {
    this.streamWindowBytes = opts.streamWindowBytes;
    this.recvWindow = opts.connectionWindowBytes;
  }

  /** Starts serving: our SETTINGS out, then the bytes already read from the socket, then the socket. */
  start(received: Buffer): void {
    const opts = this.opts;
    const socket = this.socket;
    const settings = Buffer.allocUnsafe(12);
    settings.writeUInt16BE(setting.MAX_CONCURRENT_STREAMS, 0);
    settings.writeUInt32BE(Math.min(opts.maxConcurrentStreams, 0xffff_ffff) >>> 0, 2);
    settings.writeUInt16BE(setting.INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(opts.streamWindowBytes, 8);
    this.push(frame(frameType.SETTINGS, 0, 0, settings));
    if (opts.connectionWindowBytes > defaultWindowBytes) this.writeWindowUpdate(0, opts.connectionWindowBytes - defaultWindowBytes);
    socket.on('data', this.onSocketData);
    socket.on('drain', () => this.onSocketDrain());
    socket.once('close', () => this.onSocketClose());
    socket.on('error', () => undefined);
    this.receive(received);
    socket.resume();
  }

  /** Streams open now. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** The highest stream ID the client opened. */
  get maxStreamId(): number {
    return this.lastStreamId;
  }

  /** Graceful close: GOAWAY, no new streams; the socket ends when the last stream does. */
  close(): void {
    if (this.closed) return;
    if (!this.goingAway) this.goAway(h2Error.NO_ERROR, '');
    if (this.streams.size === 0) this.endSocket();
  }

  /** Sends GOAWAY with a code and debug text and stops taking streams. */
  goAway(code: number, debug: string): void {
    if (this.closed) return;
    this.goingAway = true;
    const d = Buffer.from(debug, 'latin1');
    const payload = Buffer.allocUnsafe(8 + d.length);
    payload.writeUInt32BE(this.lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    d.copy(payload, 8);
    this.push(frame(frameType.GOAWAY, 0, 0, payload));
  }

  /** GOAWAY with an error, then the connection ends once the frame is out. */
  goAwayAndClose(code: number, debug: string): void {
    this.goAway(code, debug);
    this.endSocket();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Sends a PING; cb(true) on its ACK, cb(false) if the connection closes first. */
  ping(cb: (acked: boolean) => void): void {
    if (this.closed) {
      cb(false);
      return;
    }
    const id = ++this.pingSeq;
    const payload = Buffer.allocUnsafe(8);
    payload.writeBigUInt64BE(id, 0);
    (this.pingAcks ??= new Map()).set(id, cb);
    this.push(frame(frameType.PING, 0, 0, payload));
  }

  // ------------------------------------------------------------ output

  writeHeaders(id: number, block: Buffer, endStream: boolean): void {
    this.wrote = true;
    const max = this.peerMaxFrameBytes;
    if (block.length <= max) {
      const out = Buffer.allocUnsafe(frameHeaderBytes + block.length);
      frameHead(out, 0, block.length, frameType.HEADERS, flag.END_HEADERS | (endStream ? flag.END_STREAM : 0), id);
      block.copy(out, frameHeaderBytes);
      this.push(out);
      return;
    }
    this.push(frame(frameType.HEADERS, endStream ? flag.END_STREAM : 0, id, block.subarray(0, max)));
    for (let at = max; at < block.length; at += max) {
      const end = Math.min(block.length, at + max);
      this.push(frame(frameType.CONTINUATION, end === block.length ? flag.END_HEADERS : 0, id, block.subarray(at, end)));
    }
  }

  writeData(id: number, data: Buffer, endStream: boolean): void {
    this.wrote = true;
    if (data.length <= 4096) {
      const out = Buffer.allocUnsafe(frameHeaderBytes + data.length);
      frameHead(out, 0, data.length, frameType.DATA, endStream ? flag.END_STREAM : 0, id);
      data.copy(out, frameHeaderBytes);
      this.push(out);
      return;
    }
    const head = Buffer.allocUnsafe(frameHeaderBytes);
    frameHead(head, 0, data.length, frameType.DATA, endStream ? flag.END_STREAM : 0, id);
    this.push(head);
    this.push(data);
  }

  /** A DATA frame holding one gRPC message (the caller checked the windows and the frame size). */
  writeMessageFrame(id: number, payload: Uint8Array): void {
    this.wrote = true;
    const out = Buffer.allocUnsafe(frameHeaderBytes + 5 + payload.length);
    frameHead(out, 0, 5 + payload.length, frameType.DATA, 0, id);
    out[frameHeaderBytes] = 0;
    out.writeUInt32BE(payload.length, frameHeaderBytes + 1);
    out.set(payload, frameHeaderBytes + 5);
    this.push(out);
  }

  writeRst(id: number, code: number): void {
    this.push(frame(frameType.RST_STREAM, 0, id, u32(code)));
  }

  writeWindowUpdate(id: number, increment: number): void {
    this.push(frame(frameType.WINDOW_UPDATE, 0, id, u32(increment)));
  }

  private push(b: Buffer): void {
    if (this.closed || this.ended) return;
    this.out.push(b);
    this.outBytes += b.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.flushNow);
    }
  }

  private flushOut(): void {
    this.flushQueued = false;
    if (this.out.length === 0 || this.closed || this.ended) return;
    let accepted: boolean;
    if (this.out.length === 1 || this.outBytes <= concatBytesMax) {
      accepted = this.socket.write(this.out.length === 1 ? (this.out[0] as Buffer) : Buffer.concat(this.out, this.outBytes));
    } else {
      // Large payloads go out as they are, in one writev, rather than copied into one more buffer.
      this.socket.cork();
      accepted = true;
      for (const b of this.out) accepted = this.socket.write(b) && accepted;
      this.socket.uncork();
    }
    this.out.length = 0;
    this.outBytes = 0;
    if (!accepted || this.socket.writableLength > socketHighWaterBytes) this.socketBacklogged = true;
    if (this.socket.writableLength > socketBufferBytesMax) this.socket.destroy();
  }

  private onSocketDrain(): void {
    if (!this.socketBacklogged) return;
    this.socketBacklogged = false;
    for (const s of this.streams.values()) if (!s.writableNeedDrain) s.drained();
  }

  private endSocket(): void {
    if (this.ended) return;
    // end() after the queued frames: flush them first, in this tick.
    this.flushOut();
    this.ended = true;
    this.socket.end();
    // A client that never closes its side is not waited for.
    setTimeout(() => this.socket.destroy(), endGraceMs).unref();
  }

  /** For H2Stream. */
  forget(stream: H2Stream): void {
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    if (this.goingAway && this.streams.size === 0 && !this.closed) this.endSocket();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    // Frames still queued cannot go out any more, nor can any the streams' owners write as they close.
    this.closed = true;
    this.out.length = 0;
    this.outBytes = 0;
    for (const s of [...this.streams.values()]) s.close();
    const acks = this.pingAcks;
    this.pingAcks = undefined;
    if (acks !== undefined) for (const cb of acks.values()) cb(false);
    this.opts.onClose?.(this);
  }

  // ------------------------------------------------------------ input

  private receive(chunk: Buffer): void {
    if (this.closed || chunk.length === 0) return;
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    let at = 0;
    try {
      if (!this.prefaceSeen) {
        if (buf.length < prefaceBytes) {
          this.pending = buf;
          return;
        }
        // The client port checked the preface before handing the connection over.
        at = prefaceBytes;
        this.prefaceSeen = true;
      }
      while (buf.length - at >= frameHeaderBytes) {
        const length = buf.readUIntBE(at, 3);
        if (length > frameBytesDefault) throw new ConnectionError(h2Error.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
        const end = at + frameHeaderBytes + length;
        if (end > buf.length) break;
        const type = buf[at + 3] ?? 0;
        const flags = buf[at + 4] ?? 0;
        const id = buf.readUInt32BE(at + 5) & 0x7fff_ffff;
        const payload = buf.subarray(at + frameHeaderBytes, end);
        at = end;
        this.onFrame(type, flags, id, payload);
        if (this.closed) return;
      }
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.goAwayAndClose(err.code, err.message);
      return;
    }
    if (at < buf.length) this.pending = buf.subarray(at);
    if (this.recvUncredited >= this.opts.connectionWindowBytes / 2) {
      this.writeWindowUpdate(0, this.recvUncredited);
      this.recvWindow += this.recvUncredited;
      this.recvUncredited = 0;
    }
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.block !== undefined && type !== frameType.CONTINUATION) {
      throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'expected CONTINUATION');
    }
    switch (type) {
      case frameType.DATA:
        this.onData(flags, id, payload);
        return;
      case frameType.HEADERS:
        this.onHeaders(flags, id, payload);
        return;
      case frameType.CONTINUATION:
        this.onContinuation(flags, id, payload);
        return;
      case frameType.PRIORITY:
        if (id === 0) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        return;
      case frameType.RST_STREAM:
        if (id === 0 || payload.length !== 4) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'bad RST_STREAM');
        if (id > this.lastStreamId) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
        this.streams.get(id)?.close();
        return;
      case frameType.SETTINGS:
        this.onSettings(flags, id, payload);
        return;
      case frameType.PUSH_PROMISE:
        throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case frameType.PING:
        if (id !== 0 || payload.length !== 8) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'bad PING');
        if (flags & flag.ACK) {
          const seq = payload.readBigUInt64BE(0);
          const ack = this.pingAcks?.get(seq);
          if (ack !== undefined) {
            this.pingAcks?.delete(seq);
            ack(true);
          }
          return;
        }
        this.push(frame(frameType.PING, flag.ACK, 0, payload));
        this.opts.onPing(this);
        return;
      case frameType.GOAWAY:
        if (id !== 0 || payload.length < 8) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'bad GOAWAY');
        // The client opens no more streams; those open finish, and the client closes the socket.
        this.goingAway = true;
        if (this.streams.size === 0) this.endSocket();
        return;
      case frameType.WINDOW_UPDATE:
        this.onWindowUpdate(id, payload);
        return;
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & flag.ACK) {
      if (payload.length !== 0) throw new ConnectionError(h2Error.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(h2Error.FRAME_SIZE_ERROR, 'SETTINGS length');
    for (let at = 0; at < payload.length; at += 6) {
      const key = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (key === setting.INITIAL_WINDOW_SIZE) {
        if (value > windowMax) throw new ConnectionError(h2Error.FLOW_CONTROL_ERROR, 'initial window too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) s.sendWindow += delta;
      } else if (key === setting.MAX_FRAME_SIZE) {
        if (value < frameBytesDefault || value > frameBytesMax) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'bad max frame size');
        this.peerMaxFrameBytes = value;
      }
      // HEADER_TABLE_SIZE: our blocks use no dynamic table. The others do not apply to a server.
    }
    this.push(frame(frameType.SETTINGS, flag.ACK, 0, undefined));
    this.flushBlocked();
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(h2Error.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length');
    const increment = payload.readUInt32BE(0) & 0x7fff_ffff;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > windowMax) throw new ConnectionError(h2Error.FLOW_CONTROL_ERROR, 'window overflow');
      this.flushBlocked();
      return;
    }
    const s = this.streams.get(id);
    if (s === undefined) {
      if (id > this.lastStreamId) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (increment === 0) {
      s.reset(h2Error.PROTOCOL_ERROR);
      return;
    }
    s.sendWindow += increment;
    if (s.sendWindow > windowMax) {
      s.reset(h2Error.FLOW_CONTROL_ERROR);
      return;
    }
    if (s.flush()) this.blocked.add(s);
    else this.blocked.delete(s);
  }

  private flushBlocked(): void {
    for (const s of [...this.blocked]) {
      if (this.sendWindow <= 0) return;
      if (!s.flush()) this.blocked.delete(s);
    }
  }

  /** For H2Stream: a stream whose frames wait for window. */
  markBlocked(s: H2Stream): void {
    this.blocked.add(s);
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'DATA on stream 0');
    const dataBytes = payload.length;
    if (dataBytes > this.recvWindow) throw new ConnectionError(h2Error.FLOW_CONTROL_ERROR, 'connection window exceeded');
    this.recvWindow -= dataBytes;
    this.recvUncredited += dataBytes;
    let body = payload;
    if (flags & flag.PADDED) {
      const pad = payload[0] ?? 0;
      if (payload.length < 1 || pad >= payload.length) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'bad padding');
      body = payload.subarray(1, payload.length - pad);
    }
    const s = this.streams.get(id);
    if (s === undefined) {
      if (id > this.lastStreamId) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'DATA on an idle stream');
      // A stream we closed or reset: its frames are dropped (RFC 9113 §5.4.2).
      return;
    }
    if (s.remoteEnded) {
      s.reset(h2Error.STREAM_CLOSED);
      return;
    }
    if (dataBytes > s.recvWindow) {
      s.reset(h2Error.FLOW_CONTROL_ERROR);
      return;
    }
    s.receive(body, dataBytes);
    if (flags & flag.END_STREAM) s.endRemote();
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let at = 0;
    let end = payload.length;
    if (flags & flag.PADDED) {
      end -= payload[0] ?? 0;
      at = 1;
    }
    if (flags & flag.PRIORITY) at += 5;
    if (at > end) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'bad HEADERS padding');
    const fragment = payload.subarray(at, end);
    const endStream = (flags & flag.END_STREAM) !== 0;
    if (flags & flag.END_HEADERS) {
      this.onBlock(id, endStream, fragment);
      return;
    }
    this.block = { id, endStream, fragments: [Buffer.from(fragment)], bytes: fragment.length };
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const b = this.block;
    if (b === undefined || b.id !== id) throw new ConnectionError(h2Error.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    b.fragments.push(Buffer.from(payload));
    b.bytes += payload.length;
    if (b.bytes > headerBlockBytesMax) throw new ConnectionError(h2Error.ENHANCE_YOUR_CALM, 'header block too large');
    if ((flags & flag.END_HEADERS) === 0) return;
    this.block = undefined;
    this.onBlock(id, b.endStream, Buffer.concat(b.fragments));
  }

  private onBlock(id: number, endStream: boolean, block: Buffer): void {
    let fields: HeaderField[];
    try {
      fields = this.hpack.decode(block).fields;
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      throw new ConnectionError(h2Error.COMPRESSION_ERROR, err.message);
    }
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers from the client: they must end the stream.
      if (!endStream || existing.remoteEnded) existing.reset(h2Error.PROTOCOL_ERROR);
      else existing.endRemote();
      return;
    }
    if (id % 2 === 0 || id <= this.lastStreamId) throw new ConnectionError(h2Error.PROTOCOL_ERROR, `HEADERS opening stream ${id}`);
    this.lastStreamId = id;
    if (this.goingAway || this.streams.size >= this.opts.maxConcurrentStreams) {
      this.writeRst(id, h2Error.REFUSED_STREAM);
      return;
    }
    const headers: IncomingHttpHeaders = {};
    for (const f of fields) {
      const prev = headers[f.name];
      if (prev === undefined) headers[f.name] = f.value;
      else if (singleValued.has(f.name) || f.name.charCodeAt(0) === 0x3a) continue;
      else if (isReservedHeader(f.name)) headers[f.name] = `${String(prev)}, ${f.value}`;
      // Metadata keeps each value apart, as grpc-go's server does: etcd reads the first "token" of a call,
      // and a client may send one twice (Python's grpcio, when a token goes both as call credentials
      // and as the call's metadata). Joined, the token read would be "t, t", an invalid token.
      else if (typeof prev === 'string') headers[f.name] = [prev, f.value];
      else prev.push(f.value);
    }
    const s = new H2Stream(this, id, this.peerInitialWindow, this.streamWindowBytes);
    this.streams.set(id, s);
    this.opts.onStream(s, headers);
    if (endStream && !s.closed) s.endRemote();
  }
}
