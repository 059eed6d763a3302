/**
 * A database's bytes on a peer request or answer (a MsgSnap's db, a pull for
 * a repair), as length-prefixed chunks ended by an empty one:
 *
 *   (u32 BE length > 0, that many bytes)* then u32 0
 *
 * The length of the whole is not known ahead (the sender streams from a read
 * view, and would have to read it all once to count it), and the end of an
 * HTTP/2 stream does not tell a sender that finished from one that failed:
 * Http2Stream.close() ends the writable side before its RST_STREAM, so the
 * peer can see a clean end first. Only the empty chunk says the body is
 * whole.
 */
import type * as http2 from 'node:http2';
import { drainOrClose } from './session.js';

const headerBytes = 4;

/**
 * Writes each piece of `body` as a chunk, then the empty one, honouring flow
 * control; `sent` is told the bytes of each piece. Stops early (returns
 * false) once `settled` says the exchange is over or the stream closed;
 * throws if `body` does (nothing more is written: the caller resets the stream).
 */
export async function writeChunked(
  s: http2.Http2Stream,
  body: AsyncIterable<Uint8Array>,
  sent: (bytes: number) => void,
  settled: () => boolean = () => false,
): Promise<boolean> {
  const over = (): boolean => settled() || s.closed || s.destroyed;
  for await (const piece of body) {
    if (over()) return false;
    if (piece.length === 0) continue;
    const header = Buffer.allocUnsafe(headerBytes);
    header.writeUInt32BE(piece.length, 0);
    s.write(header);
    sent(piece.length);
    if (!s.write(piece)) await drainOrClose(s);
  }
  if (over()) return false;
  s.end(Buffer.alloc(headerBytes));
  return true;
}

/**
 * The payload of a chunked body: `first` (bytes already read past what came
 * before it) then the rest of the stream. Yields views of the stream's
 * buffers; `progress.bytes` counts the payload. Throws `cut(reason)` if the
 * stream ends before the empty chunk or carries bytes after it.
 */
export async function* readChunked(
  first: Uint8Array,
  rest: AsyncIterator<Buffer>,
  progress: { bytes: number },
  cut: (reason: string) => Error,
): AsyncGenerator<Uint8Array> {
  /** Bytes of the current chunk still to come; -1 while reading a header. */
  let left = -1;
  const header = Buffer.alloc(headerBytes);
  let headerHave = 0;
  let ended = false;
  let buf: Uint8Array | undefined = first;
  for (;;) {
    if (buf === undefined) {
      let next: IteratorResult<Buffer>;
      try {
        next = await rest.next();
      } catch (e) {
        throw cut(`cut after ${progress.bytes} bytes: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (next.done === true) break;
      buf = next.value;
    }
    let at = 0;
    while (at < buf.length) {
      if (ended) throw cut(`bytes after the end, ${progress.bytes} bytes in`);
      if (left < 0) {
        const take = Math.min(headerBytes - headerHave, buf.length - at);
        header.set(buf.subarray(at, at + take), headerHave);
        headerHave += take;
        at += take;
        if (headerHave < headerBytes) break;
        headerHave = 0;
        left = header.readUInt32BE(0);
        if (left === 0) {
          ended = true;
          left = -1;
        }
        continue;
      }
      const take = Math.min(left, buf.length - at);
      progress.bytes += take;
      left -= take;
      const piece = buf.subarray(at, at + take);
      at += take;
      if (left === 0) left = -1;
      yield piece;
    }
    buf = undefined;
  }
  if (!ended) throw cut(`cut after ${progress.bytes} bytes, before its end`);
}
