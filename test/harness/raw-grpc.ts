/**
 * gRPC framing written by hand over one node:http2 connection: any bytes can
 * be sent as a request (malformed ones too), and every answer comes back as
 * it was sent: the messages' bytes, the grpc-status and grpc-message, or the
 * RST_STREAM code when the server sent no status.
 */
import http2 from 'node:http2';

export interface RawAnswer {
  /** grpc-status, or "no status (rst N)". */
  readonly status: string;
  readonly message: string;
  readonly messages: Buffer[];
}

const callTimeoutMsDefault = 10_000;

function frame(body: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

/**
 * Splits gRPC length-prefixed messages off the front of the chunks received;
 * what is left stays in chunks. Chunks are joined only once a whole message
 * (or a prefix) is there, so a message of many MiB costs one copy, not one
 * per chunk.
 */
class Deframer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** The length the front message needs (prefix included), once its prefix is known. */
  private need = 5;

  push(chunk: Buffer, into: Buffer[]): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes < this.need) return;
    let buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    let at = 0;
    while (at + 5 <= buf.length) {
      const len = buf.readUInt32BE(at + 1);
      if (at + 5 + len > buf.length) break;
      into.push(buf.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    }
    buf = buf.subarray(at);
    this.chunks = buf.length > 0 ? [buf] : [];
    this.bytes = buf.length;
    this.need = buf.length >= 5 ? 5 + buf.readUInt32BE(1) : 5;
  }
}

/** A call's stream: messages as they come, the status once it closed. */
export class RawStream {
  readonly messages: Buffer[] = [];
  private readonly deframer = new Deframer();
  private headers: http2.IncomingHttpHeaders = {};
  private readonly closed: Promise<RawAnswer>;

  constructor(private readonly stream: http2.ClientHttp2Stream) {
    stream.on('response', (h) => (this.headers = { ...this.headers, ...h }));
    stream.on('trailers', (t) => (this.headers = { ...this.headers, ...t }));
    stream.on('data', (d: Buffer) => this.deframer.push(d, this.messages));
    stream.on('error', () => {});
    this.closed = new Promise((resolve) =>
      stream.on('close', () => {
        const message = decodeURIComponent(String(this.headers['grpc-message'] ?? ''));
        resolve({ status: String(this.headers['grpc-status'] ?? `no status (rst ${stream.rstCode})`), message, messages: this.messages });
      }),
    );
  }

  send(body: Uint8Array): void {
    this.stream.write(frame(body));
  }

  /** Writes bytes as they are: a gRPC frame cut short, a bad flag, anything. */
  sendBytes(bytes: Uint8Array): void {
    this.stream.write(bytes);
  }

  /** Half-closes and waits for the status (the stream is cancelled after timeoutMs). */
  async end(timeoutMs = callTimeoutMsDefault): Promise<RawAnswer> {
    this.stream.end();
    const timer = setTimeout(() => this.stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
    try {
      return await this.closed;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cancels the call (RST_STREAM CANCEL), as a client that goes away. */
  async cancel(): Promise<RawAnswer> {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
    return this.closed;
  }
}

export class RawGrpc {
  private session: http2.ClientHttp2Session;
  /** GOAWAYs received (the connection is then replaced). */
  readonly goaways: string[] = [];
  /** Sessions that received a GOAWAY: no new call goes on them. */
  private readonly goneAway = new WeakSet<http2.ClientHttp2Session>();

  constructor(private readonly url: string) {
    this.session = this.connect();
  }

  private connect(): http2.ClientHttp2Session {
    const session = http2.connect(this.url);
    session.on('error', () => {});
    session.on('goaway', (code, _last, data) => {
      this.goaways.push(`${code} ${data?.toString() ?? ''}`);
      this.goneAway.add(session);
    });
    return session;
  }

  /** Opens a call on path (extra headers replace or add to gRPC's); nothing is sent yet. */
  open(path: string, extraHeaders: Readonly<Record<string, string>> = {}): RawStream {
    // Only the current session's GOAWAY counts: one of an earlier session (a server that
    // stopped) closed every later session, streams still connecting on it too.
    if (this.session.closed || this.session.destroyed || this.goneAway.has(this.session)) {
      this.session.close();
      this.session = this.connect();
    }
    return new RawStream(this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders }));
  }

  /** One request message (with extra headers: a token), then the whole answer. */
  async call(path: string, body: Uint8Array, timeoutMs = callTimeoutMsDefault, extraHeaders: Readonly<Record<string, string>> = {}): Promise<RawAnswer> {
    const s = this.open(path, extraHeaders);
    s.send(body);
    const answer = s.end(timeoutMs);
    // The timer is cleared once answered: a pending one kept the test process alive for its 11 s after the last call.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${path} ${Buffer.from(body).toString('hex')}: no answer in ${timeoutMs} ms`)), timeoutMs + 1_000);
    });
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.session.close();
  }
}
