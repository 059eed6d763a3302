/**
 * A member's whole database, pulled by a peer that lost its own (a record
 * failed its checksum) and repairs from it:
 *
 *   POST /raft/db, header x-etcd-ts-min-index: <index>, empty body
 *   answer 200, body: the db in chunks (chunked.ts), as a MsgSnap's
 *
 * A server whose db stream fails stops before the empty chunk and resets
 * the answer; the puller's body throws on a db without it.
 *
 * The serving member answers once it has applied at least <index> (or
 * refuses with 503 when it cannot soon), so that the db holds everything the
 * puller had applied. Only members the server knows may pull, as only they
 * may send raft streams; x-raft-to may be left out (a member repairing at
 * start pulls by URL, before it knows its peers' ids).
 */
import * as http2 from 'node:http2';
import { idToHex } from '../base/index.js';
import { systemTimers, type Timers } from './backoff.js';
import type { TransportContext } from './context.js';
import { BadRequestError, PeerUnreachableError, RpcFailedError, TimeoutError, type TransportError } from './errors.js';
import { errorFromResponse, headers, paths, senderHeaders } from './protocol.js';
import { defaultTuning } from './options.js';
import { readChunked, writeChunked } from './chunked.js';
import { connectSession, destroySoon, statusOf } from './session.js';
import type { PeerTlsOptions } from './tls.js';

export interface DbRefusal {
  readonly status: number;
  readonly error: TransportError;
}

/** Serves one pull from an admitted member; returns the refusal to answer with, if any. */
export async function serveDb(ctx: TransportContext, stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, from: bigint): Promise<DbRefusal | undefined> {
  const raw = h[headers.minIndex];
  const minIndex = typeof raw === 'string' && /^[0-9]{1,15}$/.test(raw) ? Number(raw) : -1;
  if (minIndex < 0) return { status: 400, error: new BadRequestError('missing or bad minimum index') };
  if (ctx.snapshots.serveDb === undefined) return { status: 404, error: new BadRequestError('this member serves no database') };
  let db: AsyncIterable<Uint8Array>;
  try {
    db = await ctx.snapshots.serveDb(from, minIndex);
  } catch (e) {
    return { status: 503, error: new RpcFailedError(e instanceof Error ? e.message : String(e)) };
  }
  if (stream.closed || stream.destroyed) {
    // The puller has gone: let the source go (an export's view with it).
    await db[Symbol.asyncIterator]().return?.();
    return undefined;
  }
  stream.setTimeout(ctx.tuning.snapshotIdleTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
  stream.respond({ ':status': 200, [headers.clusterId]: idToHex(ctx.clusterId) });
  let bytes = 0;
  try {
    if (!(await writeChunked(stream, db, (n) => (bytes += n)))) return undefined;
  } catch (e) {
    // Answered already: a reset, and the puller's body fails for want of the end.
    if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    ctx.logger.warn('failed to send the database to a member repairing its own', { to: idToHex(from), bytes, error: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
  ctx.logger.info('sent database to a member repairing its own', { to: idToHex(from), 'min-index': minIndex, bytes });
  return undefined;
}

/**
 * Pulls a peer's db: resolves at the answer's headers with a body that
 * yields the db's bytes, or throws if the answer was cut. The answer must come
 * within answerTimeoutMs; after it, a body that makes no progress for the
 * snapshot idle timeout fails.
 */
export function fetchDb(
  ctx: TransportContext,
  session: http2.ClientHttp2Session,
  to: bigint,
  minIndex: number,
  answerTimeoutMs: number,
): Promise<PulledDb> {
  const h = senderHeaders(ctx.clusterId, ctx.localId, to);
  return requestDb(session, h, minIndex, answerTimeoutMs, ctx.tuning.snapshotIdleTimeoutMs, ctx.timers, `peer ${idToHex(to)}`);
}

export interface PulledDb {
  readonly body: AsyncIterable<Uint8Array>;
}

/**
 * As fetchDb, by URL, before this member has a transport (a backend found
 * corrupt at start): the peer's id is not needed, its cluster's is.
 */
export async function fetchDbFromUrl(
  url: string,
  ids: { readonly clusterId: bigint; readonly localId: bigint },
  minIndex: number,
  answerTimeoutMs: number,
  tls?: PeerTlsOptions,
): Promise<PulledDb> {
  const session = connectSession(url, defaultTuning, tls);
  session.on('error', () => undefined); // the request fails with it
  try {
    const db = await requestDb(session, senderHeaders(ids.clusterId, ids.localId, undefined), minIndex, answerTimeoutMs, defaultTuning.snapshotIdleTimeoutMs, systemTimers, url);
    return { body: closingAfter(db.body, session) };
  } catch (e) {
    void destroySoon(session);
    throw e;
  }
}

async function* closingAfter(body: AsyncIterable<Uint8Array>, session: http2.ClientHttp2Session): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } finally {
    void destroySoon(session);
  }
}

function requestDb(
  session: http2.ClientHttp2Session,
  reqHeaders: Record<string, string>,
  minIndex: number,
  answerTimeoutMs: number,
  idleTimeoutMs: number,
  timers: Timers,
  peer: string,
): Promise<PulledDb> {
  const req = session.request({ ':method': 'POST', ':path': paths.db, ...reqHeaders, [headers.minIndex]: String(minIndex) });
  req.end();
  return new Promise((resolve, reject) => {
    let answered = false;
    const fail = (err: Error): void => {
      if (answered) return;
      answered = true;
      timers.clearTimeout(timer);
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      reject(err);
    };
    const timer = timers.setTimeout(() => fail(new TimeoutError(`no database from ${peer} within ${answerTimeoutMs} ms`)), answerTimeoutMs);
    req.on('error', (e: Error) => fail(new PeerUnreachableError(`database pull from ${peer}: ${e.message}`)));
    req.on('close', () => fail(new PeerUnreachableError(`database pull from ${peer}: stream closed before an answer`)));
    req.on('response', (h) => {
      const status = statusOf(h);
      if (status !== 200) {
        fail(errorFromResponse(status, h));
        return;
      }
      answered = true;
      timers.clearTimeout(timer);
      req.setTimeout(idleTimeoutMs, () => req.close(http2.constants.NGHTTP2_CANCEL));
      resolve({ body: whole(req) });
    });
  });
}

/** The db in the answer; throws if the answer ended (or broke) before the db's end. */
async function* whole(req: http2.ClientHttp2Stream): AsyncGenerator<Uint8Array> {
  try {
    yield* readChunked(new Uint8Array(0), (req as AsyncIterable<Buffer>)[Symbol.asyncIterator](), { bytes: 0 }, (reason) => new PeerUnreachableError(`database pull ${reason}`));
  } finally {
    if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
  }
}
