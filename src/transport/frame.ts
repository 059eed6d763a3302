/**
 * Message framing on the peer streams. A frame is
 *
 *   u32 big-endian payload length | u32 big-endian CRC-32 (IEEE, zlib) of the payload | payload
 *
 * where the payload is `raftpb.Message.encode(m)`. When the stream was opened
 * without checksums (header `x-etcd-ts-frame-crc: 0`) the CRC word is written as
 * zero and not checked. Many frames go out in one buffer (one write per batch).
 */
import { crc32 } from 'node:zlib';
import { assert, uninitializedBytes } from '../base/index.js';
import { Writer, raftpb } from '../pb/index.js';
import { FrameCorruptError, FrameTooLargeError } from './errors.js';

export const frameHeaderBytes = 8;
/** A u32 length cannot say more than this; frameBytesMax options are checked against it. */
export const frameLengthMax = 0xffff_ffff;

/** A batch's buffer starts at least this large (Node pools allocations below 4 KiB). */
const batchBytesMin = 256;

/**
 * Encodes messages as consecutive frames into one new buffer (never shared
 * scratch: the buffer stays queued in the HTTP/2 stream after this returns).
 * sizeHint: the caller's estimate of the encoded size; a batch of heartbeats
 * then gets a small pooled buffer instead of a fresh 16 KiB one per write.
 */
export function encodeFrames(msgs: readonly raftpb.Message[], crc: boolean, sizeHint = 16 * 1024): Uint8Array {
  const w = new Writer(Math.max(batchBytesMin, sizeHint + frameHeaderBytes * msgs.length));
  for (const m of msgs) {
    w.ensure(frameHeaderBytes);
    const at = w.pos;
    w.pos += frameHeaderBytes;
    raftpb.Message.write(m, w);
    const length = w.pos - at - frameHeaderBytes;
    assert(length <= frameLengthMax, 'frame length overflows u32');
    w.buf.writeUInt32BE(length, at);
    w.buf.writeUInt32BE(crc ? crc32(w.buf.subarray(at + frameHeaderBytes, w.pos)) : 0, at + 4);
  }
  return w.buf.subarray(0, w.pos);
}

/** One frame around already encoded bytes (the snapshot request's leading message). */
export function encodeFrame(payload: Uint8Array, crc: boolean): Uint8Array {
  assert(payload.length <= frameLengthMax, 'frame length overflows u32');
  const out = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc ? crc32(payload) : 0, 4);
  out.set(payload, frameHeaderBytes);
  return out;
}

/**
 * Incremental frame parser. Bytes come in arbitrary chunks; every complete
 * payload is handed out as its own exactly-sized buffer, so that the byte
 * fields decoded from it (entry data, views by design of src/pb) keep only
 * that message alive, not a whole network chunk. A partial frame is held as
 * views of the chunks received so far and copied once when complete: memory
 * follows the bytes that actually arrived (bounded by HTTP/2 flow control),
 * never the length a header claims.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(frameHeaderBytes);
  private headerFilled = 0;
  /** Length of the payload being assembled; -1 while reading a header. */
  private length = -1;
  private readonly parts: Uint8Array[] = [];
  private partsBytes = 0;
  private expectedCrc = 0;

  constructor(
    private readonly frameBytesMax: number,
    private readonly crc: boolean,
  ) {
    assert(frameBytesMax > 0 && frameBytesMax <= frameLengthMax, `bad frameBytesMax ${frameBytesMax}`);
  }

  /** True when no partial frame is buffered (the stream may end here). */
  get idle(): boolean {
    return this.headerFilled === 0 && this.length < 0;
  }

  /**
   * Consumes chunk and calls onFrame for every completed payload. Returns the
   * number of bytes of chunk consumed: all of them unless `stopAfterOne` asked
   * to stop after the first frame (the snapshot body follows it). Throws
   * FrameTooLargeError / FrameCorruptError; the decoder is then unusable.
   */
  push(chunk: Uint8Array, onFrame: (payload: Uint8Array) => void, stopAfterOne = false): number {
    let at = 0;
    // A zero-length payload completes with its header, so the loop also runs
    // when the chunk is used up but a complete (empty) payload is pending.
    while (at < chunk.length || this.length === 0) {
      if (this.length < 0) {
        const take = Math.min(frameHeaderBytes - this.headerFilled, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerFilled);
        this.headerFilled += take;
        at += take;
        if (this.headerFilled < frameHeaderBytes) break;
        const length = this.header.readUInt32BE(0);
        if (length > this.frameBytesMax) throw new FrameTooLargeError(length, this.frameBytesMax);
        this.expectedCrc = this.header.readUInt32BE(4);
        this.length = length;
      }
      const take = Math.min(this.length - this.partsBytes, chunk.length - at);
      if (take > 0) this.parts.push(chunk.subarray(at, at + take));
      this.partsBytes += take;
      at += take;
      if (this.partsBytes < this.length) break;
      const done = this.assemble();
      if (this.crc && crc32(done) !== this.expectedCrc) {
        throw new FrameCorruptError(`frame checksum mismatch (${done.length} bytes)`);
      }
      onFrame(done);
      if (stopAfterOne) break;
    }
    return at;
  }

  /** The completed payload in a buffer of its own; resets for the next header. */
  private assemble(): Uint8Array {
    const done = uninitializedBytes(this.length);
    let off = 0;
    for (const p of this.parts) {
      done.set(p, off);
      off += p.length;
    }
    this.parts.length = 0;
    this.partsBytes = 0;
    this.length = -1;
    this.headerFilled = 0;
    return done;
  }
}
