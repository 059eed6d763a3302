/**
 * The gRPC message framing inside HTTP/2 DATA frames: each message is a
 * 1-byte compressed flag, a 4-byte big-endian length, then the payload.
 * Also the grpc-timeout header codec and request decompression.
 */
import { gunzipSync } from 'node:zlib';
import { assert } from '../base/index.js';
import { GrpcError, GrpcStatus } from './status.js';

export const frameHeaderBytes = 5;
/** The length field is 32 bits; Node buffers and our limits stay below 2^31. */
export const messageBytesLimit = 0x7fff_ffff;

/** A message codec: what src/pb's generated MessageType provides. */
export interface MessageCodec<T> {
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** One RPC method: structurally the same as src/pb's MethodInfo. */
export interface MethodDef<Req, Res> {
  readonly name: string;
  /** The gRPC path, /package.Service/Method. */
  readonly path: string;
  readonly requestType: MessageCodec<Req>;
  readonly responseType: MessageCodec<Res>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** Frames one uncompressed message: a single buffer, header then payload. */
export function frameMessage(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  out[0] = 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, frameHeaderBytes);
  return out;
}

/** The message a limit breach produces on the receiving side (grpc-go's text). */
export function receiveTooLarge(sizeBytes: number, maxBytes: number): GrpcError {
  return new GrpcError(
    GrpcStatus.RESOURCE_EXHAUSTED,
    `grpc: received message larger than max (${sizeBytes} vs. ${maxBytes})`,
  );
}

/** The supported request encodings; anything else is UNIMPLEMENTED at the start of the call. */
export type MessageEncoding = 'identity' | 'gzip';

export function parseEncoding(value: string | undefined): MessageEncoding | undefined {
  if (value === undefined || value === '' || value === 'identity') return 'identity';
  if (value === 'gzip') return 'gzip';
  return undefined;
}

/**
 * Splits a byte stream into messages. Chunks are kept as they arrive and joined
 * only when a message spans several, so memory follows what the peer has sent
 * (bounded by the HTTP/2 window), never the length it claims.
 */
export class MessageDeframer {
  /** A header split over chunks is gathered here (made on first need: most headers arrive whole). */
  private header: Buffer | undefined;
  private headerFilled = 0;
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Payload length of the message being read; -1 while reading its header. */
  private expected = -1;
  private flag = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly encoding: MessageEncoding,
  ) {
    assert(maxMessageBytes >= 0 && maxMessageBytes <= messageBytesLimit, 'message limit out of range');
  }

  /** True when no partial message is pending. */
  get idle(): boolean {
    return this.expected < 0 && this.headerFilled === 0;
  }

  /** Feeds a chunk; calls onMessage per complete payload. Returns the error that ends the stream, if any. */
  push(chunk: Buffer, onMessage: (payload: Buffer) => void): GrpcError | undefined {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.expected < 0) {
        // Fast path: a whole header in this chunk, with nothing partial before it.
        if (this.headerFilled === 0 && n - pos >= frameHeaderBytes) {
          this.flag = chunk[pos] ?? 0;
          this.expected = chunk.readUInt32BE(pos + 1);
          pos += frameHeaderBytes;
        } else {
          const take = Math.min(frameHeaderBytes - this.headerFilled, n - pos);
          const header = (this.header ??= Buffer.alloc(frameHeaderBytes));
          chunk.copy(header, this.headerFilled, pos, pos + take);
          this.headerFilled += take;
          pos += take;
          if (this.headerFilled < frameHeaderBytes) break;
          this.flag = header[0] ?? 0;
          this.expected = header.readUInt32BE(1);
          this.headerFilled = 0;
        }
        const err = this.checkHeader();
        if (err !== undefined) return err;
      }
      const need = this.expected - this.partsBytes;
      const avail = n - pos;
      if (this.partsBytes === 0 && avail >= need) {
        const err = this.emit(chunk.subarray(pos, pos + need), onMessage);
        if (err !== undefined) return err;
        pos += need;
        continue;
      }
      const take = Math.min(need, avail);
      this.parts.push(chunk.subarray(pos, pos + take));
      this.partsBytes += take;
      pos += take;
      if (this.partsBytes === this.expected) {
        const whole = Buffer.concat(this.parts, this.partsBytes);
        this.parts = [];
        this.partsBytes = 0;
        const err = this.emit(whole, onMessage);
        if (err !== undefined) return err;
      }
    }
    return undefined;
  }

  private checkHeader(): GrpcError | undefined {
    if (this.flag > 1) {
      return new GrpcError(GrpcStatus.INTERNAL, `grpc: received unexpected payload format ${this.flag}`);
    }
    if (this.flag === 1 && this.encoding === 'identity') {
      return new GrpcError(GrpcStatus.INTERNAL, 'grpc: compressed flag set with identity or empty encoding');
    }
    if (this.expected > this.maxMessageBytes) return receiveTooLarge(this.expected, this.maxMessageBytes);
    return undefined;
  }

  private emit(payload: Buffer, onMessage: (payload: Buffer) => void): GrpcError | undefined {
    const compressed = this.flag === 1;
    this.expected = -1;
    if (!compressed) {
      onMessage(payload);
      return undefined;
    }
    let plain: Buffer;
    try {
      // One byte over the limit is enough to know it is too large (as grpc-go reads max+1).
      plain = gunzipSync(payload, { maxOutputLength: this.maxMessageBytes + 1 });
    } catch (err) {
      if (err instanceof RangeError) return receiveTooLarge(this.maxMessageBytes + 1, this.maxMessageBytes);
      const why = err instanceof Error ? err.message : String(err);
      return new GrpcError(GrpcStatus.INTERNAL, `grpc: failed to decompress the received message ${why}`);
    }
    if (plain.length > this.maxMessageBytes) return receiveTooLarge(plain.length, this.maxMessageBytes);
    onMessage(plain);
    return undefined;
  }
}

// ---- grpc-timeout: at most 8 digits and a unit ----

const timeoutDigitsMax = 8;
const timeoutValueMax = 99_999_999;
const unitMs: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** Parses a grpc-timeout value into milliseconds (fractional below 1 ms). */
export function decodeTimeout(value: string): number | GrpcError {
  const size = value.length;
  const malformed = (why: string): GrpcError =>
    new GrpcError(GrpcStatus.INTERNAL, `transport: malformed time-out: transport: ${why}: ${JSON.stringify(value)}`);
  if (size < 2) return malformed('timeout string is too short');
  if (size > timeoutDigitsMax + 1) return malformed('timeout string is too long');
  const scale = unitMs[value.charAt(size - 1)];
  if (scale === undefined) return malformed('timeout unit is not recognized');
  const digits = value.slice(0, size - 1);
  if (!/^[0-9]+$/.test(digits)) {
    return new GrpcError(
      GrpcStatus.INTERNAL,
      `transport: malformed time-out: strconv.ParseInt: parsing ${JSON.stringify(digits)}: invalid syntax`,
    );
  }
  return Number(digits) * scale;
}

/** Encodes milliseconds as grpc-timeout with the finest unit that fits, rounding up. */
export function encodeTimeout(ms: number): string {
  if (!(ms > 0)) return '0n';
  const ns = Math.ceil(ms * 1_000_000);
  if (ns <= timeoutValueMax) return `${ns}n`;
  const us = Math.ceil(ms * 1000);
  if (us <= timeoutValueMax) return `${us}u`;
  const whole = Math.ceil(ms);
  if (whole <= timeoutValueMax) return `${whole}m`;
  const s = Math.ceil(ms / 1000);
  if (s <= timeoutValueMax) return `${s}S`;
  const m = Math.ceil(ms / 60_000);
  if (m <= timeoutValueMax) return `${m}M`;
  return `${Math.min(Math.ceil(ms / 3_600_000), timeoutValueMax)}H`;
}

/** A gRPC content-type: application/grpc, alone or with +format or parameters. */
export function isGrpcContentType(ct: string | undefined): boolean {
  return ct !== undefined && ct.startsWith('application/grpc') && (ct.length === 16 || ct[16] === '+' || ct[16] === ';');
}
