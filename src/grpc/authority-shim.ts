/**
 * authority-shim: lets clients whose `:authority` nghttp2 refuses talk to the
 * node:http2 server anyway.
 *
 * grpc-go sends a connection's dial target as :authority. clientv3's
 * Client.Dial (etcdctl 3.4 `endpoint status`, `endpoint hash-kv`, `--cluster`,
 * `move-leader`) dials the whole endpoint URL, so the value is e.g.
 * "http://127.0.0.1:2379". nghttp2 allows only RFC 3986 authority characters
 * there and resets each such stream with PROTOCOL_ERROR; Go servers, etcd
 * included, accept it. node:http2 has no option that relaxes the check.
 *
 * Each new HTTP/2 connection is watched (watchFirstRequest), in JS, only until
 * its first request's header block:
 * - The server preface (an empty SETTINGS frame) is sent from here, because
 *   grpc-go sends no request before it has one. The client's ACK of it is
 *   dropped (nghttp2 did not send that SETTINGS and would fail the connection
 *   on an ACK it does not expect), and PINGs meanwhile are answered here.
 * - If the first block's :authority is acceptable, the bytes read are put back
 *   and the socket goes to node:http2 untouched. The normal path thus costs a
 *   look at a connection's first frames, and nothing per call.
 * - Otherwise the connection runs through an AuthorityRewriter: a Duplex that
 *   passes frames through and gives every header block's :authority an
 *   acceptable value of the same length (so nghttp2's HPACK table and the
 *   client's keep equal entry sizes and stay in step), re-framing the block.
 *
 * A connection whose first request has a good authority and a later one a bad
 * one is not rewritten; grpc clients use one authority per connection.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { isGrpcContentType } from './framing.js';
import { HpackDecoder, HpackError } from './hpack.js';

/** Octets nghttp2 accepts in :authority (nghttp2_check_authority): RFC 3986's, '@' included. */
const authorityOctetOk = (() => {
  const ok = new Uint8Array(256);
  for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@[]%") ok[c.charCodeAt(0)] = 1;
  return ok;
})();
/** What replaces each octet nghttp2 would refuse. */
const authorityFiller = '-';

export function isAcceptedAuthority(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (authorityOctetOk[value.charCodeAt(i)] !== 1) return false;
  return true;
}

/** The value with every refused octet replaced: same length, so the same HPACK entry size. */
export function acceptableAuthority(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) out += authorityOctetOk[value.charCodeAt(i)] === 1 ? value[i] : authorityFiller;
  return out;
}

function fixAuthority(name: string, value: string): string | undefined {
  return name === ':authority' && !isAcceptedAuthority(value) ? acceptableAuthority(value) : undefined;
}

// ---------------------------------------------------------------- frames

const frameHeaderBytes = 9;
const frameType = { HEADERS: 0x1, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, CONTINUATION: 0x9 } as const;
const flag = { ACK: 0x1, END_STREAM: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
/** SETTINGS_MAX_FRAME_SIZE's floor: every HTTP/2 endpoint takes frames this large. */
const frameBytesMin = 16_384;
/** A header block longer than this is passed on untouched (nghttp2 refuses far smaller ones). */
const headerBlockBytesMax = 256 * 1024;
/** The client preface, the server's SETTINGS and the frames before the first request stay under this. */
const watchBytesMax = 256 * 1024;

export const clientPreface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const emptySettings = frame(frameType.SETTINGS, 0, 0, Buffer.alloc(0));

interface FrameHeader {
  readonly length: number;
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
}

function readFrameHeader(buf: Buffer, at: number): FrameHeader {
  return {
    length: buf.readUIntBE(at, 3),
    type: buf[at + 3] ?? 0,
    flags: buf[at + 4] ?? 0,
    streamId: buf.readUInt32BE(at + 5) & 0x7fff_ffff,
  };
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId, 5);
  payload.copy(out, frameHeaderBytes);
  return out;
}

/**
 * A header block being gathered from HEADERS and CONTINUATION frames, with the
 * frames themselves, which go on unchanged when the block needs no rewrite.
 */
class HeaderBlock {
  readonly frames: Buffer[] = [];
  readonly fragments: Buffer[] = [];
  bytes = 0;

  private constructor(
    readonly streamId: number,
    readonly flags: number,
    readonly priority: Buffer | undefined,
  ) {}

  /** Starts a block from a HEADERS frame; undefined if the frame is malformed. */
  static start(h: FrameHeader, raw: Buffer): HeaderBlock | undefined {
    let at = frameHeaderBytes;
    let end = raw.length;
    if (h.flags & flag.PADDED) {
      end -= raw[at] ?? 0;
      at++;
    }
    let priority: Buffer | undefined;
    if (h.flags & flag.PRIORITY) {
      priority = raw.subarray(at, at + 5);
      at += 5;
    }
    if (at > end || h.streamId === 0) return undefined;
    const b = new HeaderBlock(h.streamId, h.flags, priority);
    b.add(raw, raw.subarray(at, end));
    return b;
  }

  add(raw: Buffer, fragment: Buffer): void {
    this.frames.push(raw);
    this.fragments.push(fragment);
    this.bytes += fragment.length;
  }

  block(): Buffer {
    return this.fragments.length === 1 ? (this.fragments[0] ?? Buffer.alloc(0)) : Buffer.concat(this.fragments);
  }

  /** The block as HEADERS (+ CONTINUATION) frames, unpadded, with the original END_STREAM and priority. */
  reframe(block: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const prefix = this.priority ?? Buffer.alloc(0);
    let first = Math.min(block.length, frameBytesMin - prefix.length);
    let flags = (this.flags & (flag.END_STREAM | flag.PRIORITY)) | (first === block.length ? flag.END_HEADERS : 0);
    out.push(frame(frameType.HEADERS, flags, this.streamId, Buffer.concat([prefix, block.subarray(0, first)])));
    while (first < block.length) {
      const next = Math.min(block.length, first + frameBytesMin);
      flags = next === block.length ? flag.END_HEADERS : 0;
      out.push(frame(frameType.CONTINUATION, flags, this.streamId, block.subarray(first, next)));
      first = next;
    }
    return out;
  }
}

// ---------------------------------------------------------------- rewriting

/**
 * Rewrites the :authority of every header block in a client's byte stream
 * (after the preface). Frames other than HEADERS and CONTINUATION stream
 * through without being buffered. On anything it cannot follow (a malformed
 * frame sequence or header block, an oversized block) it stops rewriting and
 * passes everything on as it came, so nghttp2 sees the fault and answers it.
 */
export class FrameRewriter {
  private readonly hpack = new HpackDecoder();
  private head = Buffer.alloc(0);
  private current: FrameHeader | undefined;
  private payload: Buffer[] = [];
  private payloadBytes = 0;
  private passBytes = 0;
  private block: HeaderBlock | undefined;
  private gaveUp = false;
  /** Header blocks rewritten so far. */
  rewrites = 0;

  /** The bytes to hand on for this chunk of input. */
  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.gaveUp) {
        out.push(chunk.subarray(at));
        break;
      }
      if (this.passBytes > 0) {
        const n = Math.min(this.passBytes, chunk.length - at);
        out.push(chunk.subarray(at, at + n));
        this.passBytes -= n;
        at += n;
        continue;
      }
      if (this.current === undefined) {
        const n = Math.min(frameHeaderBytes - this.head.length, chunk.length - at);
        this.head = Buffer.concat([this.head, chunk.subarray(at, at + n)]);
        at += n;
        if (this.head.length === frameHeaderBytes) this.onFrameHeader(readFrameHeader(this.head, 0), out);
        continue;
      }
      const n = Math.min(this.current.length - this.payloadBytes, chunk.length - at);
      this.payload.push(chunk.subarray(at, at + n));
      this.payloadBytes += n;
      at += n;
      if (this.payloadBytes === this.current.length) this.onHeaderFrame(this.current, out);
    }
    return out;
  }

  private onFrameHeader(h: FrameHeader, out: Buffer[]): void {
    const isBlockFrame = h.type === frameType.HEADERS || h.type === frameType.CONTINUATION;
    if (isBlockFrame && h.length <= headerBlockBytesMax) {
      this.current = h;
      if (h.length === 0) this.onHeaderFrame(h, out);
      return;
    }
    // HTTP/2 allows no other frame between HEADERS and the CONTINUATION that ends its block.
    if (this.block !== undefined || isBlockFrame) this.giveUp(out);
    out.push(this.head);
    this.head = Buffer.alloc(0);
    this.passBytes = h.length;
  }

  private onHeaderFrame(h: FrameHeader, out: Buffer[]): void {
    const raw = Buffer.concat([this.head, ...this.payload]);
    this.head = Buffer.alloc(0);
    this.current = undefined;
    this.payload = [];
    this.payloadBytes = 0;
    if (h.type === frameType.HEADERS && this.block === undefined) {
      this.block = HeaderBlock.start(h, raw);
      if (this.block === undefined) {
        out.push(raw);
        this.giveUp(out);
        return;
      }
    } else if (h.type === frameType.CONTINUATION && this.block?.streamId === h.streamId) {
      this.block.add(raw, raw.subarray(frameHeaderBytes));
    } else {
      this.giveUp(out);
      out.push(raw);
      return;
    }
    if (this.block.bytes > headerBlockBytesMax) {
      this.giveUp(out);
      return;
    }
    if (h.flags & flag.END_HEADERS) this.endBlock(this.block, out);
  }

  private endBlock(b: HeaderBlock, out: Buffer[]): void {
    this.block = undefined;
    let rewritten: Buffer | undefined;
    try {
      rewritten = this.hpack.decode(b.block(), fixAuthority).rewritten;
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      out.push(...b.frames);
      this.giveUp(out);
      return;
    }
    if (rewritten === undefined) {
      out.push(...b.frames);
      return;
    }
    this.rewrites++;
    out.push(...b.reframe(rewritten));
  }

  /** From here on everything passes unchanged; a block being gathered goes out as it came. */
  private giveUp(out: Buffer[]): void {
    if (this.block !== undefined) out.push(...this.block.frames);
    this.block = undefined;
    this.gaveUp = true;
  }
}

/**
 * The socket as node:http2 should see it: client bytes pass through a
 * FrameRewriter, server bytes go out untouched.
 */
export class AuthorityRewriter extends Duplex {
  private readonly frames = new FrameRewriter();
  private readonly onData = (chunk: Buffer): void => this.forward(this.frames.feed(chunk));

  /** received: what was read from the socket already, starting with the client preface. */
  constructor(
    readonly socket: Socket,
    received: Buffer,
  ) {
    super();
    this.push(received.subarray(0, clientPreface.length));
    this.forward(this.frames.feed(received.subarray(clientPreface.length)));
    socket.on('data', this.onData);
    socket.once('end', () => this.push(null));
    socket.once('close', () => this.destroy());
    socket.on('error', (err) => this.destroy(err));
    socket.resume();
  }

  get rewrites(): number {
    return this.frames.rewrites;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.socket.write(chunk)) done();
    else this.socket.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.off('data', this.onData);
    this.socket.destroy();
    done(err);
  }

  private forward(bufs: Buffer[]): void {
    let more = true;
    for (const b of bufs) if (b.length > 0) more = this.push(b);
    if (!more) this.socket.pause();
  }
}

// ---------------------------------------------------------------- watching

/**
 * How a watched connection goes on: to the gRPC server's own HTTP/2
 * connection (its first request is a gRPC call; `received` is every byte to
 * replay from the client preface on), or to node:http2 untouched, or through
 * a rewriter.
 */
export type Handoff =
  | { readonly kind: 'grpc'; readonly received: Buffer }
  | { readonly kind: 'plain' }
  | { readonly kind: 'rewrite'; readonly transport: AuthorityRewriter };

export interface FirstRequestWatch {
  /** Ends the watch with a GOAWAY (the server is closing); the callback is not called. */
  goAway(): void;
}

export interface WatchOptions {
  /** Time for the client to acknowledge the server preface. */
  readonly ackTimeoutMs: number;
}

/**
 * Watches a new HTTP/2 connection whose client preface has been read (and is
 * the start of `received`) until its first request, then calls `handoff` with
 * the socket paused and every byte not consumed here put back (plain) or
 * owned by the rewriter. A client that does not acknowledge the preface in
 * time is disconnected and `handoff` is not called.
 */
export function watchFirstRequest(
  socket: Socket,
  received: Buffer,
  opts: WatchOptions,
  handoff: (h: Handoff) => void,
): FirstRequestWatch {
  let buf = received;
  let parsedTo = clientPreface.length;
  const kept: Buffer[] = [clientPreface];
  let ackSeen = false;
  let requestSeen = false;
  let rewrite = false;
  let grpc = false;
  let block: HeaderBlock | undefined;
  const hpack = new HpackDecoder();
  let done = false;

  const finish = (): void => {
    done = true;
    clearTimeout(ackTimer);
    socket.off('data', onData);
    socket.pause();
    const rest = Buffer.concat([...kept, buf.subarray(parsedTo)]);
    if (grpc) {
      handoff({ kind: 'grpc', received: rest });
    } else if (rewrite) {
      handoff({ kind: 'rewrite', transport: new AuthorityRewriter(socket, rest) });
    } else {
      socket.unshift(rest);
      handoff({ kind: 'plain' });
    }
  };

  /** Looks at one whole frame; false if it is not to be replayed to nghttp2. */
  const inspect = (h: FrameHeader, raw: Buffer): boolean => {
    switch (h.type) {
      case frameType.SETTINGS:
        if ((h.flags & flag.ACK) !== 0 && !ackSeen) {
          ackSeen = true;
          return false;
        }
        return true;
      case frameType.PING:
        if ((h.flags & flag.ACK) !== 0 || h.length !== 8) return true;
        socket.write(frame(frameType.PING, flag.ACK, 0, raw.subarray(frameHeaderBytes)));
        return false;
      case frameType.HEADERS:
        // A HEADERS inside another block, or a malformed one, is nghttp2's to answer.
        block = block === undefined ? HeaderBlock.start(h, raw) : undefined;
        if (block === undefined) requestSeen = true;
        else endOfBlock(h);
        return true;
      case frameType.CONTINUATION:
        if (block?.streamId === h.streamId) {
          block.add(raw, raw.subarray(frameHeaderBytes));
          endOfBlock(h);
        } else {
          requestSeen = true;
        }
        return true;
      case frameType.GOAWAY:
        requestSeen = true;
        ackSeen = true;
        return true;
      default:
        return true;
    }
  };

  const endOfBlock = (h: FrameHeader): void => {
    if (block === undefined || (h.flags & flag.END_HEADERS) === 0) return;
    try {
      const decoded = hpack.decode(block.block(), fixAuthority);
      if (decoded.rewritten !== undefined) rewrite = true;
      grpc = isGrpcContentType(decoded.fields.find((f) => f.name === 'content-type')?.value);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      // nghttp2 will find the same fault and fail the connection.
    }
    block = undefined;
    requestSeen = true;
  };

  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    scan();
  };

  const scan = (): void => {
    while (!done && buf.length - parsedTo >= frameHeaderBytes) {
      const h = readFrameHeader(buf, parsedTo);
      const end = parsedTo + frameHeaderBytes + h.length;
      if (end > buf.length) break;
      const raw = buf.subarray(parsedTo, end);
      if (inspect(h, raw)) kept.push(raw);
      parsedTo = end;
      if (requestSeen && ackSeen && block === undefined) finish();
    }
    // A client that floods before its first request is nghttp2's to judge.
    if (!done && buf.length > watchBytesMax) {
      ackSeen = true;
      finish();
    }
  };

  const ackTimer = setTimeout(() => {
    if (!ackSeen) socket.destroy();
  }, opts.ackTimeoutMs);

  socket.write(emptySettings);
  socket.on('data', onData);
  socket.resume();
  scan();
  return {
    goAway(): void {
      if (done) return;
      done = true;
      clearTimeout(ackTimer);
      socket.off('data', onData);
      // GOAWAY, last stream 0 (nothing was processed), NO_ERROR.
      socket.end(frame(frameType.GOAWAY, 0, 0, Buffer.alloc(8)));
    },
  };
}
