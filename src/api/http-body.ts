import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

/**
 * Reads a request's body up to `limit` bytes. Past the limit, 'truncate'
 * keeps the first `limit` bytes and reads on to the end (as a decoder that
 * stops at its first value would leave the rest unread), while 'refuse'
 * rejects with `tooLarge()` and drops the connection (as Go's
 * MaxBytesReader makes the server do).
 */
export function readRequestBody(req: IncomingMessage | Http2ServerRequest, limit: number, overLimit: 'truncate' | 'refuse', tooLarge: () => Error = () => new Error('request body too large')): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      const room = limit - size;
      size += c.length;
      if (size <= limit) {
        chunks.push(c);
      } else if (overLimit === 'truncate') {
        if (room > 0) chunks.push(c.subarray(0, room));
      } else {
        reject(tooLarge());
        req.destroy();
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
