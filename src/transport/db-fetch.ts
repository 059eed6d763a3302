/**
 * A member's whole database, pulled by a peer that lost its own (a record
 * failed its checksum) and repairs from it:
 *
 *   POST /raft/db, header x-etcd-ts-min-index: <index>, empty body
 *   answer 200, content-length: <db bytes>, body: the db
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
import { connectSession, destroySoon, drainOrClose, statusOf } from './session.js';
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
  let db: { size: number; stream: AsyncIterable<Uint8Array> };
  try {
    db = await ctx.snapshots.serveDb(from, minIndex);
  } catch (e) {
    return { status: 503, error: new RpcFailedError(e instanceof Error ? e.message : String(e)) };
  }
  const it = db.stream[Symbol.asyncIterator]();
  if (stream.closed || stream.destroyed) {
    await it.return?.();
    return undefined;
  }
  stream.setTimeout(ctx.tuning.snapshotIdleTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
  stream.respond({ ':status': 200, [headers.clusterId]: idToHex(ctx.clusterId), 'content-length': String(db.size) });
  try {
    for (;;) {
      const next = await it.next();
      if (next.done === true) break;
      if (stream.closed || stream.destroyed) break;
      if (!stream.write(next.value)) await drainOrClose(stream);
    }
  } finally {
    await it.return?.();
  }
  if (!stream.closed && !stream.destroyed) stream.end();
  ctx.logger.info('sent database to a member repairing its own', { to: idToHex(from), 'min-index': minIndex, bytes: db.size });
  return undefined;
}

/**
 * Pulls a peer's db: resolves at the answer's headers with the size and a
 * body that yields exactly that many bytes or throws. The answer must come
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
  readonly size: number;
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
    return { size: db.size, body: closingAfter(db.body, session) };
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
      const sizeHeader = h['content-length'];
      const size = typeof sizeHeader === 'string' && /^[0-9]{1,15}$/.test(sizeHeader) ? Number(sizeHeader) : -1;
      if (size < 0) {
        fail(new BadRequestError(`database answer from ${peer} without its size`));
        return;
      }
      answered = true;
      timers.clearTimeout(timer);
      req.setTimeout(idleTimeoutMs, () => req.close(http2.constants.NGHTTP2_CANCEL));
      resolve({ size, body: counted(req, size) });
    });
  });
}

/** The stream's bytes, failing unless exactly size of them came before its end. */
async function* counted(req: http2.ClientHttp2Stream, size: number): AsyncGenerator<Uint8Array> {
  let got = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      got += chunk.length;
      if (got > size) throw new PeerUnreachableError(`database longer than its announced ${size} bytes`);
      yield chunk;
    }
  } catch (e) {
    if (e instanceof PeerUnreachableError) throw e;
    throw new PeerUnreachableError(`database pull: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
  }
  if (got !== size) throw new PeerUnreachableError(`database ended after ${got} of ${size} bytes`);
}
