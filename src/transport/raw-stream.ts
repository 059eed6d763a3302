/**
 * Raft message streams on a connection of their own instead of an HTTP/2
 * stream. node:http2 writes a stream's data only on its next turn of the
 * event loop, and nghttp2 does its per-frame work at both ends: every hop of a
 * raft round (append, ack, commit) paid for both. A raw stream's frames
 * (frame.ts) go to the socket as they are written.
 *
 * The connection goes to the peer's listening port, as the HTTP/2 session
 * does; the listener tells the two apart (PeerListener): plain TCP starts with
 * `rawMagic` instead of HTTP/2's preface, TLS negotiates ALPN `rawAlpn`
 * instead of "h2". Then:
 *
 *   client → server   one line: the JSON of the headers the HTTP/2 stream would carry
 *   server → client   one line: {"status": N, "headers": {...}}, as its response would
 *
 * and after status 200 the client writes frames; the server writes nothing
 * more but, when both lines carried x-etcd-ts-stream-keepalive, empty frames
 * that keep the connection's liveness known at both ends (liveness.ts).
 * Refusals carry the same x-etcd-ts-error headers as over HTTP/2, so the
 * sender rebuilds the same typed error. Snapshots, rpcs and pings stay on the
 * HTTP/2 session.
 */
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http2';
import { BadRequestError } from './errors.js';
import { clientTlsOptions, type PeerTlsOptions } from './tls.js';

export const rawMagic = Buffer.from('ETCD-TS-RAFT/1\n', 'latin1');
export const rawAlpn = 'etcd-ts-raft';
/** A header line longer than this is refused: headers are a few hundred bytes. */
const lineBytesMax = 16 * 1024;

/**
 * Reads one '\n'-terminated line of JSON from the socket (after `initial`,
 * bytes already read), with a bound on its size and on the time it takes.
 * Resolves with the parsed value and the bytes after the line; rejects on a
 * malformed or oversized line, a timeout, or the socket closing.
 */
export function readJsonLine(socket: Socket, initial: Buffer, timeoutMs: number): Promise<{ value: unknown; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = initial;
    const done = (err: Error | undefined, value?: unknown, rest?: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err !== undefined) {
        reject(err);
        return;
      }
      socket.pause();
      resolve({ value, rest: rest ?? Buffer.alloc(0) });
    };
    const scan = (): void => {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > lineBytesMax) done(new BadRequestError('raw stream header line too long'));
        return;
      }
      let value: unknown;
      try {
        value = JSON.parse(buf.subarray(0, nl).toString('utf8'));
      } catch {
        done(new BadRequestError('malformed raw stream header line'));
        return;
      }
      done(undefined, value, buf.subarray(nl + 1));
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      scan();
    };
    const onClose = (): void => done(new BadRequestError('connection closed before the raw stream header'));
    const timer = setTimeout(() => done(new BadRequestError(`no raw stream header within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
    scan();
  });
}

/** A header line's fields as an HTTP/2 stream's headers: names lower-cased, string values only. */
export function requestHeaders(value: unknown): IncomingHttpHeaders | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const h: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (typeof v === 'string') h[k.toLowerCase()] = v;
  return h;
}

/** The answer line's status and headers; undefined if it is not one. */
export function responseOf(value: unknown): { status: number; headers: IncomingHttpHeaders } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as { status?: unknown; headers?: unknown };
  const h = requestHeaders(r.headers ?? {});
  return typeof r.status === 'number' && h !== undefined ? { status: r.status, headers: h } : undefined;
}

export function jsonLine(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
}

/** Dials a raw stream connection to a peer URL; the caller writes the header line. */
export function dialRaw(url: string, t: PeerTlsOptions | undefined): Socket {
  const u = new URL(url);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port === '' ? 2380 : Number(u.port);
  if (u.protocol === 'https:') {
    if (t === undefined) throw new BadRequestError(`${url}: https peer URL without peer TLS configuration`);
    return tls.connect({
      ...clientTlsOptions(t),
      host,
      port,
      ...(t.servername === undefined && net.isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: [rawAlpn],
    });
  }
  if (u.protocol !== 'http:') throw new BadRequestError(`${url}: peer URLs must be http:// or https://`);
  const s = net.connect({ host, port, noDelay: true });
  s.write(rawMagic);
  return s;
}
