/**
 * MsgSnap with its backend db ("merged snapshot") on its own request:
 *
 *   POST /raft/snapshot
 *   body: one frame holding the MsgSnap, then the db in chunks (chunked.ts)
 *
 * The db's length is not sent ahead: the sender would have to read its
 * whole database once before the first byte. A sender whose db stream
 * fails stops before the empty chunk and resets the request; the
 * receiver's body throws on a db without it. The receiver hands the db
 * bytes to SnapshotCallbacks.receive, steps the message, then answers 204;
 * anything else is a failure the sender reports to raft.
 */
import * as http2 from 'node:http2';
import { DecodeError, raftpb } from '../pb/index.js';
import type { TransportContext } from './context.js';
import { BadRequestError, PeerUnreachableError, SnapshotIncompleteError, TimeoutError, TransportError } from './errors.js';
import { encodeFrame, FrameDecoder } from './frame.js';
import { errorFromResponse, headers, paths, senderHeaders } from './protocol.js';
import { readChunked, writeChunked } from './chunked.js';
import { drainOrClose, statusOf } from './session.js';

/** Lower than the raft streams', so a big transfer yields the wire to heartbeats. */
const snapshotStreamWeight = 1;

interface Outcome {
  settled: boolean;
  status: number;
  /** The db's bytes written so far. */
  bytes: number;
}

/**
 * Writes the frame and the db with flow control, counting the db's bytes
 * in `outcome`; stops early once the outcome is settled. Throws if the db
 * stream does (the caller then resets the request).
 */
async function pump(req: http2.ClientHttp2Stream, frame: Uint8Array, body: AsyncIterable<Uint8Array>, outcome: Outcome): Promise<void> {
  if (!req.write(frame)) await drainOrClose(req);
  await writeChunked(req, body, (n) => (outcome.bytes += n), () => outcome.settled);
}

function openSnapshotRequest(ctx: TransportContext, session: http2.ClientHttp2Session, m: raftpb.Message): http2.ClientHttp2Stream {
  return session.request(
    {
      ':method': 'POST',
      ':path': paths.snapshot,
      ...senderHeaders(ctx.clusterId, ctx.localId, m.to),
      [headers.frameCrc]: ctx.tuning.frameCrc ? '1' : '0',
    },
    { endStream: false, weight: snapshotStreamWeight },
  );
}

/** Sends one MsgSnap and its db on `session`; resolves with the db's byte count when the receiver answered 204. */
export function postSnapshot(ctx: TransportContext, session: http2.ClientHttp2Session, m: raftpb.Message, body: AsyncIterable<Uint8Array>): Promise<number> {
  let req: http2.ClientHttp2Stream;
  try {
    req = openSnapshotRequest(ctx, session, m);
  } catch (e) {
    // The session died between the caller's check and now: release the source as a failed send would.
    void body[Symbol.asyncIterator]().return?.();
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
  return new Promise<number>((resolve, reject) => {
    const outcome: Outcome = { settled: false, status: 0, bytes: 0 };
    const finish = (err: Error | undefined): void => {
      if (outcome.settled) return;
      outcome.settled = true;
      if (err === undefined) {
        resolve(outcome.bytes);
        return;
      }
      // A reset, not an end: the receiver must not take what it got for the whole db.
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      reject(err);
    };
    req.setTimeout(ctx.tuning.snapshotIdleTimeoutMs, () => finish(new TimeoutError('snapshot stream made no progress')));
    req.on('response', (h) => {
      outcome.status = statusOf(h);
      finish(outcome.status === 204 ? undefined : errorFromResponse(outcome.status, h));
    });
    req.on('error', (e: Error) => finish(new PeerUnreachableError(`snapshot stream: ${e.message}`)));
    req.on('close', () => finish(new PeerUnreachableError('snapshot stream closed before an answer')));
    const frame = encodeFrame(raftpb.Message.encode(m), ctx.tuning.frameCrc);
    pump(req, frame, body, outcome).catch((e: unknown) => finish(e instanceof Error ? e : new Error(String(e))));
  });
}

/** The db's bytes after the leading frame; `progress.ended` once its end came. */
async function* dbBody(first: Uint8Array, rest: AsyncIterator<Buffer>, progress: { bytes: number; ended: boolean }): AsyncGenerator<Uint8Array> {
  yield* readChunked(first, rest, progress, (reason) => new SnapshotIncompleteError(`snapshot body ${reason}`));
  progress.ended = true;
}

/** Reads the leading frame of a snapshot request; returns the message and the bytes after it. */
async function readLeadingFrame(
  ctx: TransportContext,
  it: AsyncIterator<Buffer>,
  crc: boolean,
): Promise<{ m: raftpb.Message; frameBytes: number; leftover: Uint8Array }> {
  const decoder = new FrameDecoder(ctx.tuning.frameBytesMax, crc);
  let payload: Uint8Array | undefined;
  // Bounded: the decoder throws past frameBytesMax, and the stream ends.
  for (;;) {
    const next = await it.next();
    if (next.done === true) throw new SnapshotIncompleteError('snapshot request ended inside its message');
    const used = decoder.push(next.value, (p) => (payload = p), true);
    if (payload !== undefined) {
      const m = raftpb.Message.decode(payload);
      if (m.type !== raftpb.MessageType.MsgSnap) throw new BadRequestError('wrong raft message type on the snapshot path');
      return { m, frameBytes: payload.length, leftover: next.value.subarray(used) };
    }
  }
}

export interface SnapshotRefusal {
  readonly status: number;
  readonly error: TransportError;
}

/** Receives one snapshot request from an admitted sender; returns the refusal to answer with, if any. */
export async function receiveSnapshot(
  ctx: TransportContext,
  stream: http2.ServerHttp2Stream,
  h: http2.IncomingHttpHeaders,
  from: bigint,
): Promise<SnapshotRefusal | undefined> {
  stream.setTimeout(ctx.tuning.snapshotIdleTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
  // Keep the stream open if the receiver stops reading early, so that it can still be answered.
  const it = stream.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  let lead;
  try {
    lead = await readLeadingFrame(ctx, it, h[headers.frameCrc] !== '0');
  } catch (e) {
    if (e instanceof TransportError) return { status: 400, error: e };
    if (e instanceof DecodeError) return { status: 400, error: new BadRequestError(`bad snapshot message: ${e.message}`) };
    return { status: 400, error: new SnapshotIncompleteError(`snapshot request failed: ${String(e)}`) };
  }
  const { m } = lead;
  ctx.metrics.received(from, lead.frameBytes);
  const started = ctx.clock.nowMs();
  ctx.metrics.snapshotReceiveStarted(from);
  ctx.logger.info('receiving database snapshot', { from, index: m.snapshot?.metadata?.index ?? 0 });
  const progress = { bytes: 0, ended: false };
  try {
    await ctx.snapshots.receive(m, dbBody(lead.leftover, it, progress));
    if (!progress.ended) throw new SnapshotIncompleteError(`snapshot receiver stopped after ${progress.bytes} bytes, before the end`);
  } catch (e) {
    ctx.metrics.snapshotReceiveDone(from, false, 0);
    const error = e instanceof TransportError ? e : new SnapshotIncompleteError(`failed to save snapshot: ${e instanceof Error ? e.message : String(e)}`);
    return { status: 500, error };
  }
  ctx.metrics.received(from, progress.bytes);
  if (ctx.stopped) return { status: 503, error: new PeerUnreachableError('transport stopped') };
  ctx.raft.process(m);
  if (!stream.closed && !stream.destroyed) stream.respond({ ':status': 204 }, { endStream: true });
  ctx.metrics.snapshotReceiveDone(from, true, (ctx.clock.nowMs() - started) / 1000);
  ctx.logger.info('received and saved database snapshot', { from, index: m.snapshot?.metadata?.index ?? 0, bytes: progress.bytes });
  return undefined;
}
