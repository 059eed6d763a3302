/**
 * HTTP/2 session plumbing shared by the peer links, the listener and the
 * standalone join helper: settings (flow-control windows sized for multi-MiB
 * MsgApp), TLS, and small promise helpers over node:http2 streams.
 */
import * as http2 from 'node:http2';
import { once } from 'node:events';
import { clientTlsOptions, type PeerTlsOptions } from './tls.js';
import { BadRequestError } from './errors.js';

export interface WindowTuning {
  readonly streamWindowBytes: number;
  readonly sessionWindowBytes: number;
}

/**
 * nghttp2 refuses new streams once a session holds more than this (MB); the
 * windows above decide what is actually buffered, this only must not be lower.
 */
const sessionMemoryMb = 128;
/** Raft streams, snapshots and rpcs of one peer; more is a misbehaving peer. */
const concurrentStreamsMax = 256;

function settings(w: WindowTuning): http2.Settings {
  return { initialWindowSize: w.streamWindowBytes, maxConcurrentStreams: concurrentStreamsMax, enablePush: false };
}

/** Opens a client session to a peer URL (http: or https:). */
export function connectSession(url: string, w: WindowTuning, tls: PeerTlsOptions | undefined): http2.ClientHttp2Session {
  const u = new URL(url);
  if (u.protocol === 'https:' && tls === undefined) throw new BadRequestError(`${url}: https peer URL without peer TLS configuration`);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new BadRequestError(`${url}: peer URLs must be http:// or https://`);
  const origin = `${u.protocol}//${u.host}`;
  const base: http2.ClientSessionOptions = { settings: settings(w), maxSessionMemory: sessionMemoryMb };
  const s = u.protocol === 'https:' && tls !== undefined
    ? http2.connect(origin, { ...base, ...clientTlsOptions(tls) })
    : http2.connect(origin, base);
  trackClose(s);
  s.on('connect', () => {
    if (!s.destroyed) s.setLocalWindowSize(w.sessionWindowBytes);
  });
  return s;
}

/**
 * The HTTP/2 side of a peer listener. It never listens itself: the listener
 * (transport.ts) hands it every connection, plain or TLS (ALPN "h2"), that
 * is not a raw raft stream (raw-stream.ts).
 */
export function createPeerServer(w: WindowTuning): http2.Http2Server {
  return http2.createServer({ settings: settings(w), maxSessionMemory: sessionMemoryMb });
}

/**
 * Destroys a session on the next turn. Destroying it synchronously from one
 * of its own stream's event handlers (a 'close' caused by an incoming
 * RST_STREAM) makes Node 20 loop while allocating without bound; every
 * teardown goes through here so that no caller has to know where it runs.
 */
export function destroySoon(s: http2.Http2Session): Promise<void> {
  setImmediate(() => {
    if (!s.destroyed) s.destroy();
  });
  return closed.get(s) ?? Promise.resolve();
}

/** Per session, settles on its 'close' (emitted once its socket is closed). */
const closed = new WeakMap<http2.Http2Session, Promise<void>>();

/** Call right after a session is created, so that destroySoon can wait for its end. */
export function trackClose(s: http2.Http2Session): void {
  closed.set(s, new Promise<void>((resolve) => s.once('close', () => resolve())));
}

/** Resolves on 'drain', or on close (the caller then sees the stream is gone). */
export async function drainOrClose(s: http2.Http2Stream): Promise<void> {
  if (s.destroyed || s.closed) return;
  const ac = new AbortController();
  try {
    await Promise.race([once(s, 'drain', { signal: ac.signal }), once(s, 'close', { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
}

export function statusOf(h: http2.IncomingHttpHeaders): number {
  const s = h[':status'];
  return typeof s === 'number' ? s : Number(s);
}
