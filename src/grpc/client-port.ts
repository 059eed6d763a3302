/**
 * ClientPortServer: etcd's client port, where gRPC and HTTP/1.1 share one
 * listener (etcd uses cmux for this).
 *
 * - Plain TCP: the first bytes decide. The HTTP/2 connection preface
 *   (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`) means HTTP/2 with prior knowledge (h2c);
 *   anything else is HTTP/1.1.
 * - TLS: ALPN decides: `h2` is HTTP/2, `http/1.1` or none is HTTP/1.1.
 * - Every HTTP/2 connection is watched until its first request
 *   (authority-shim.ts), which decides, as etcd's cmux does, what serves the
 *   whole connection. A gRPC call (content-type application/grpc*): the gRPC
 *   server's own HTTP/2 connection (h2-connection.ts). Anything else
 *   (curl --http2-prior-knowledge): node:http2, each stream to the HTTP
 *   handler through Node's compatibility request/response objects; if the
 *   request's :authority is one nghttp2 would refuse, through an
 *   AuthorityRewriter.
 * - An HTTP/1.1 request body that breaks off while its handler reads it is
 *   that handler's to answer (HttpBodyError), as a Go handler answers the
 *   error of its body's reader; any other request the parser refuses gets
 *   Go's plain answer.
 *
 * Bounds: a connection must send its first bytes (plain) or finish its TLS
 * handshake within `handshakeTimeoutMs` (GHSA-6vch-q96h-7gc3); close() sends
 * GOAWAY and lets calls finish for `graceMs`, then destroys what remains.
 */
import { readFileSync, statSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, {
  Http2ServerRequest,
  Http2ServerResponse,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { assert, nopLogger, sniffPreface, type Logger } from '../base/index.js';
import type { H2Connection } from './h2-connection.js';
import { clientPreface, watchFirstRequest, type FirstRequestWatch, type Handoff } from './authority-shim.js';
import type { GrpcServer } from './server.js';

/**
 * An HTTP/1.1 request body the parser gave up on mid-way (bad chunk framing,
 * the client's EOF before its end), in the words of Go's body reader. It is
 * emitted as 'error' on the request, whose handler answers; the connection
 * closes after that answer.
 */
export class HttpBodyError extends Error {
  constructor(
    message: string,
    /**
     * Whether later reads fail too, as Go's chunked reader repeats its error:
     * Go's server then answers with "Connection: close". A body cut short
     * before its Content-Length reads as ended after its first error.
     */
    readonly repeats: boolean,
  ) {
    super(message);
  }
}

/** Go's words for why a body could not be read, from Node's parser error. */
function goBodyErrorText(err: NodeJS.ErrnoException & { reason?: string }): string {
  switch (err.code) {
    case 'HPE_INVALID_CHUNK_SIZE':
      return /overflow/i.test(err.reason ?? '') ? 'http chunk length too large' : 'invalid byte in chunk length';
    case 'HPE_INVALID_EOF_STATE':
      return 'unexpected EOF';
    default:
      return 'malformed chunked encoding';
  }
}

/** Handles a plain HTTP request, HTTP/1.1 or HTTP/2 (through Node's compatibility API). */
export type HttpHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

export interface ClientPortTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** Trusted CAs for client certificates. */
  readonly ca?: string | Buffer | undefined;
  /** --client-cert-auth: require a client certificate signed by `ca`. */
  readonly clientCertAuth?: boolean;
  readonly minVersion?: tls.SecureVersion;
  readonly ciphers?: string;
  /** Why a verified client certificate is still refused (etcd's allowed hostname), or undefined to serve it. */
  readonly refuseClient?: (socket: TLSSocket) => string | undefined;
  /** Revoked client certificates (PEM CRL, --client-crl-file): refused at the handshake. */
  readonly crl?: Buffer;
  /** The CRL's file: read again when it changes (etcd reads it at every connection). */
  readonly crlFile?: string;
}

export interface ClientPortOptions {
  readonly grpc: GrpcServer;
  /** HTTP/1.1 and non-gRPC HTTP/2 requests; without it they get 404. */
  readonly http?: HttpHandler;
  readonly tls?: ClientPortTlsOptions;
  /** Time for a TLS handshake, or for a plain connection's first bytes. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** HTTP/1.1 keep-alive idle timeout. Default 5 s, Node's. */
  readonly http1KeepAliveTimeoutMs?: number;
  /** Connections open at once, all kinds together. Default 100,000. */
  readonly connectionsMax?: number;
  readonly logger?: Logger;
}

export type ListenTarget = { readonly host: string; readonly port: number } | { readonly path: string };

const defaultHandshakeTimeoutMs = 10_000;
const defaultConnectionsMax = 100_000;
const watchKeepaliveMs = 60_000;

function notFound(_req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  res.statusCode = 404;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end('404 page not found\n');
}


/** What Go's HTTP server writes itself, before any handler, for a request it refuses: the status, as status line and body. */
function goPlainAnswer(status: string): string {
  return `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${status}`;
}

export class ClientPortServer {
  private readonly listeners: (net.Server | tls.Server)[] = [];
  private readonly h2: http2.Http2Server;
  private readonly h1: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly grpcConnections = new Set<H2Connection>();
  private readonly watches = new Set<FirstRequestWatch>();
  /** The HTTP/1.1 request being served on a connection, until its answer is over. */
  private readonly serving = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
  /** Connections whose parser failed while a request was served: nothing more is read on them (the parser repeats its error). */
  private readonly parserFailed = new WeakSet<Socket>();
  private rewritingCount = 0;
  private readonly logger: Logger;
  private readonly handshakeTimeoutMs: number;
  private readonly connectionsMax: number;
  private closing = false;
  private onAllClosed: (() => void) | undefined;

  constructor(private readonly options: ClientPortOptions) {
    this.logger = options.logger ?? nopLogger;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? defaultHandshakeTimeoutMs;
    this.connectionsMax = options.connectionsMax ?? defaultConnectionsMax;
    const handler = options.http ?? notFound;
    this.h2 = http2.createServer(options.grpc.http2Options());
    this.h2.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) =>
      this.onStream(stream, headers, raw, handler),
    );
    // Node would answer a missing Host on its own, in its words; Go's are below.
    this.h1 = http.createServer({ keepAliveTimeout: options.http1KeepAliveTimeoutMs ?? 5000, requireHostHeader: false });
    // A client that half-closes after its request still gets the answer, then the close, as from Go's server.
    // Node's default drops the request at the client's EOF and closes without a word
    // (http.Server's httpAllowHalfOpen, read in its socket 'end' handler).
    (this.h1 as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.h1.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.httpVersion === '1.1' && req.headers.host === undefined) {
        req.socket.end(goPlainAnswer('400 Bad Request: missing required Host header'));
        return;
      }
      // While closing, answer and then close the connection instead of keeping it alive.
      if (this.closing) res.shouldKeepAlive = false;
      // Go's server says nothing of a connection it keeps alive; Node would add "Connection: keep-alive" and
      // "Keep-Alive: timeout=5". "Connection: close" is still sent when the connection is to close.
      else if (!/\bclose\b/i.test(req.headers.connection ?? '')) res.removeHeader('Connection');
      // A client that half-closed gets its answer, then the close (Go's server closes once it has answered).
      const socket = req.socket;
      const halfClosed = (): void => {
        if (!res.headersSent) res.shouldKeepAlive = false;
      };
      socket.once('end', halfClosed);
      this.serving.set(socket, { req, res });
      res.once('close', () => {
        socket.removeListener('end', halfClosed);
        if (this.serving.get(socket)?.res === res) this.serving.delete(socket);
      });
      handler(req, res);
    });
    this.h1.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket) => {
      this.logger.debug('http client error', { error: err });
      // A body that breaks off while its request is served: as from Go's body reader, the request's
      // reader gets the error and the handler answers; no further request is read on the connection.
      const sock = socket as Socket;
      if (this.parserFailed.has(sock)) return;
      const current = this.serving.get(sock);
      if (current !== undefined && !current.req.complete && current.req.listenerCount('error') > 0) {
        this.parserFailed.add(sock);
        if (!current.res.headersSent) current.res.shouldKeepAlive = false;
        const chunked = current.req.headers['transfer-encoding'] !== undefined;
        current.req.emit('error', new HttpBodyError(goBodyErrorText(err), chunked));
        return;
      }
      const answer = goPlainAnswer(err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request');
      // While a request is served, Go's server reads nothing more until it is answered (a watch's answer
      // never ends); then it refuses the request that follows, or closes if the body it did not read broke off.
      if (current !== undefined && err.code !== 'ECONNRESET') {
        this.parserFailed.add(sock);
        const { req, res } = current;
        res.once('close', () => {
          if (!res.writableFinished || !socket.writable) socket.destroy();
          else socket.end(req.complete ? answer : undefined);
        });
        return;
      }
      // A request Go's server cannot parse gets its plain answer before the close,
      // unless an answer went out already (bytes after it would corrupt the exchange).
      if (socket.writable && (socket as net.Socket).bytesWritten === 0 && err.code !== 'ECONNRESET' && err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
        socket.end(answer);
        return;
      }
      socket.destroy();
    });
  }

  /** Starts listening; resolves with the bound address (a port for TCP, the path for a unix socket). */
  listen(target: ListenTarget): Promise<AddressInfo | string> {
    assert(!this.closing, 'listen after close');
    const server = this.options.tls === undefined ? this.plainServer() : this.tlsServer(this.options.tls);
    this.listeners.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        server.on('error', (err) => this.logger.error('client port listener error', { error: err }));
        const addr = server.address();
        assert(addr !== null, 'listening server has an address');
        resolve(addr);
      };
      if ('path' in target) server.listen(target.path, done);
      else server.listen(target.port, target.host, done);
    });
  }

  /** Open connections (plain sockets and TLS sockets). */
  get connections(): number {
    return this.sockets.size;
  }

  /** Connections that have been running through an AuthorityRewriter, since start. */
  get rewritingConnections(): number {
    return this.rewritingCount;
  }

  /**
   * Stops accepting, sends GOAWAY on every HTTP/2 connection and closes idle
   * HTTP/1.1 ones; after graceMs destroys whatever is still open.
   */
  async close(graceMs = 2000): Promise<void> {
    this.closing = true;
    const closed = this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve())));
    for (const s of this.sessions) s.close();
    for (const c of this.grpcConnections) c.close();
    for (const w of this.watches) w.goAway();
    this.watches.clear();
    // Busy HTTP/1.1 connections close after their response (see the 'request' hook).
    this.h1.closeIdleConnections();
    if (this.sockets.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.onAllClosed = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const s of this.sessions) s.destroy();
    for (const sock of this.sockets) sock.destroy();
    await Promise.all(closed);
  }

  private track(socket: Socket): boolean {
    if (this.closing || this.sockets.size >= this.connectionsMax) {
      socket.destroy();
      return false;
    }
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.onAllClosed?.();
    });
    socket.on('error', (err) => this.logger.debug('client connection error', { error: err }));
    return true;
  }

  private plainServer(): net.Server {
    return net.createServer({ noDelay: true }, (socket) => {
      if (!this.track(socket)) return;
      // Until the protocol is known: an HTTP/1.1 request followed at once by the client's FIN must not have
      // its answer's half closed under it while the preface is sniffed (see httpAllowHalfOpen).
      socket.allowHalfOpen = true;
      this.sniff(socket);
    });
  }

  private tlsServer(opts: ClientPortTlsOptions): tls.Server {
    const context = (crl: Buffer | undefined): tls.SecureContextOptions => ({
      cert: opts.cert,
      key: opts.key,
      ca: opts.ca,
      minVersion: opts.minVersion ?? 'TLSv1.2',
      ...(opts.ciphers === undefined ? {} : { ciphers: opts.ciphers }),
      ...(crl === undefined ? {} : { crl }),
    });
    const server = tls.createServer(
      {
        ...context(opts.crl),
        requestCert: opts.clientCertAuth === true,
        rejectUnauthorized: opts.clientCertAuth === true,
        ALPNProtocols: ['h2', 'http/1.1'],
        handshakeTimeout: this.handshakeTimeoutMs,
      },
      (socket: TLSSocket) => this.dispatchTls(socket),
    );
    server.on('connection', (socket: Socket) => {
      socket.setNoDelay(true);
      this.track(socket);
    });
    if (opts.crlFile !== undefined) reloadCrlAtConnections(server, opts.crlFile, context, this.logger);
    server.on('tlsClientError', (err, tlsSocket) => {
      // Includes handshake timeouts; a listener here means Node leaves the socket to us.
      this.logger.debug('tls handshake failed', { error: err });
      tlsSocket.destroy();
    });
    return server;
  }

  private dispatchTls(socket: TLSSocket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.on('error', (err) => this.logger.debug('tls connection error', { error: err }));
    const refusal = this.options.tls?.refuseClient?.(socket);
    if (refusal !== undefined) {
      this.logger.warn('rejected client connection', { remote: socket.remoteAddress, reason: refusal });
      socket.destroy();
      return;
    }
    if (socket.alpnProtocol === 'h2') this.sniff(socket);
    else {
      socket.allowHalfOpen = true;
      this.h1.emit('connection', socket);
    }
  }

  /**
   * Reads until the bytes seen either match the HTTP/2 preface in full or stop
   * matching it. A plain connection that does not send the preface is
   * HTTP/1.1; a TLS one that chose h2 goes to node:http2 anyway, to be refused.
   */
  private sniff(socket: Socket): void {
    const isTls = (socket as Partial<TLSSocket>).encrypted === true;
    const timer = setTimeout(() => socket.destroy(), this.handshakeTimeoutMs);
    sniffPreface(socket, clientPreface, (kind, seen) => {
      clearTimeout(timer);
      if (kind === 'match') {
        socket.allowHalfOpen = false;
        this.watchHttp2(socket, seen);
      } else if (isTls) {
        socket.unshift(seen);
        this.h2.emit('connection', socket);
      } else {
        socket.unshift(seen);
        // The HTTP/1.1 parser reads the handle directly; resuming replays the bytes put back.
        this.h1.emit('connection', socket);
        socket.resume();
      }
    });
  }

  private watchHttp2(socket: Socket, received: Buffer): void {
    let handedOff = false;
    // The callback may run before watchFirstRequest returns (the first request, or
    // a client's GOAWAY, was already read): it must not touch `watch` then.
    const ref: { watch?: FirstRequestWatch } = {};
    const watch = watchFirstRequest(socket, received, { ackTimeoutMs: this.handshakeTimeoutMs }, (h) => {
      handedOff = true;
      if (ref.watch !== undefined) this.watches.delete(ref.watch);
      this.handOff(socket, h);
    });
    ref.watch = watch;
    if (handedOff || socket.destroyed) return;
    this.watches.add(watch);
    socket.once('close', () => this.watches.delete(watch));
    // While watched, no HTTP/2 keepalive runs: let TCP find a dead peer.
    socket.setKeepAlive(true, watchKeepaliveMs);
  }

  private handOff(socket: Socket, h: Handoff): void {
    if (h.kind === 'grpc') {
      const conn = this.options.grpc.serveConnection(socket, h.received);
      this.grpcConnections.add(conn);
      socket.once('close', () => this.grpcConnections.delete(conn));
      if (this.closing) conn.close();
      return;
    }
    if (h.kind === 'plain') {
      // Node's HTTP/2 session first takes what is already buffered, then reads the handle.
      this.h2.emit('connection', socket);
    } else {
      this.rewritingCount++;
      this.logger.debug('http2: rewriting :authority on this connection', { remote: `${socket.remoteAddress}:${socket.remotePort}` });
      this.h2.emit('connection', h.transport);
    }
  }

  private onSession(session: ServerHttp2Session): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    session.on('error', (err) => this.logger.debug('http2 session error', { error: err }));
    if (this.closing) session.close();
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, raw: string[], handler: HttpHandler): void {
    // As Node's own 'request' path does, minus CONNECT and Expect handling.
    const req = new Http2ServerRequest(stream, headers, {}, raw);
    const res = new Http2ServerResponse(stream);
    try {
      handler(req, res);
    } catch (err) {
      this.logger.error('http handler threw', { error: err });
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  }
}

/** A file's modification time, 0 when it cannot be read. */
/**
 * Reads the CRL file again when it changed on disk, before each connection's
 * handshake, so that a certificate revoked since counts from that handshake on
 * (etcd reads the file at each connection). context builds the server's TLS
 * options around a CRL; a file that cannot be read keeps the last one.
 */
export function reloadCrlAtConnections(server: tls.Server, crlFile: string, context: (crl: Buffer) => tls.SecureContextOptions, logger: Logger): void {
  let crlMtimeMs = fileMtimeMs(crlFile);
  // Before tls.Server's own listener makes the connection's TLS socket from the context in place.
  server.prependListener('connection', () => {
    const mtimeMs = fileMtimeMs(crlFile);
    if (mtimeMs === crlMtimeMs) return;
    crlMtimeMs = mtimeMs;
    try {
      server.setSecureContext(context(readFileSync(crlFile)));
      logger.info('reloaded the client certificate revocation list', { file: crlFile });
    } catch (e) {
      logger.warn('cannot reload the client certificate revocation list; keeping the last one', { file: crlFile, error: (e as Error).message });
    }
  });
}

function fileMtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
