/**
 * MsgSnap with its backend db ("merged snapshot") on its own request:
 *
 *   POST /raft/snapshot, header x-etcd-ts-snapshot-size: <db bytes>
 *   body: one frame holding the MsgSnap, then exactly <db bytes> raw bytes
 *
 * The receiver hands the db bytes to SnapshotCallbacks.receive, checks the
 * count against the header, steps the message, then answers 204; anything
 * else is a failure the sender reports to raft.
 */
import * as http2 from 'node:http2';
import { assert } from '../base/index.js';
import { DecodeError, raftpb } from '../pb/index.js';
import type { TransportContext } from './context.js';
import { BadRequestError, PeerUnreachableError, SnapshotIncompleteError, TimeoutError, TransportError } from './errors.js';
import { encodeFrame, FrameDecoder } from './frame.js';
import { errorFromResponse, headers, paths, senderHeaders } from './protocol.js';
import { drainOrClose, statusOf } from './session.js';

/** Lower than the raft streams', so a big transfer yields the wire to heartbeats. */
const snapshotStreamWeight = 1;

interface Outcome {
  settled: boolean;
  status: number;
}

/** Writes the frame and the db with flow control; stops early once the outcome is settled. */
async function pump(
  req: http2.ClientHttp2Stream,
  frame: Uint8Array,
  size: number,
  body: AsyncIterable<Uint8Array>,
  outcome: Outcome,
): Promise<void> {
  if (!req.write(frame)) await drainOrClose(req);
  let sent = 0;
  for await (const chunk of body) {
    if (outcome.settled || req.closed || req.destroyed) return;
    sent += chunk.length;
    if (sent > size) throw new SnapshotIncompleteError(`snapshot source yielded more than its size ${size}`);
    if (!req.write(chunk)) await drainOrClose(req);
  }
  if (sent !== size) throw new SnapshotIncompleteError(`snapshot source yielded ${sent} of ${size} bytes`);
  if (!req.closed && !req.destroyed) req.end();
}

function openSnapshotRequest(
  ctx: TransportContext,
  session: http2.ClientHttp2Session,
  m: raftpb.Message,
  size: number,
): http2.ClientHttp2Stream {
  return session.request(
    {
      ':method': 'POST',
      ':path': paths.snapshot,
      ...senderHeaders(ctx.clusterId, ctx.localId, m.to),
      [headers.frameCrc]: ctx.tuning.frameCrc ? '1' : '0',
      [headers.snapshotSize]: String(size),
    },
    { endStream: false, weight: snapshotStreamWeight },
  );
}

/** Sends one MsgSnap and its db on `session`; resolves when the receiver answered 204. */
export function postSnapshot(
  ctx: TransportContext,
  session: http2.ClientHttp2Session,
  m: raftpb.Message,
  size: number,
  body: AsyncIterable<Uint8Array>,
): Promise<void> {
  assert(Number.isSafeInteger(size) && size >= 0, `bad snapshot size ${size}`);
  let req: http2.ClientHttp2Stream;
  try {
    req = openSnapshotRequest(ctx, session, m, size);
  } catch (e) {
    // The session died between the caller's check and now: release the source as a failed send would.
    void body[Symbol.asyncIterator]().return?.();
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
  return new Promise<void>((resolve, reject) => {
    const outcome: Outcome = { settled: false, status: 0 };
    const finish = (err: Error | undefined): void => {
      if (outcome.settled) return;
      outcome.settled = true;
      if (err === undefined) {
        resolve();
        return;
      }
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
    pump(req, frame, size, body, outcome).catch((e: unknown) => finish(e instanceof Error ? e : new Error(String(e))));
  });
}

/**
 * The db bytes after the leading frame: `first` (what came with the frame)
 * then the rest of the request, counted against the announced size.
 */
async function* dbBody(
  first: Uint8Array,
  rest: AsyncIterator<Buffer>,
  size: number,
  progress: { bytes: number; ended: boolean },
): AsyncGenerator<Uint8Array> {
  let chunk: Uint8Array | undefined = first.length > 0 ? first : undefined;
  for (;;) {
    if (chunk !== undefined) {
      progress.bytes += chunk.length;
      if (progress.bytes > size) throw new SnapshotIncompleteError(`snapshot body longer than its announced ${size} bytes`);
      yield chunk;
    }
    const next = await rest.next();
    if (next.done === true) break;
    chunk = next.value;
  }
  if (progress.bytes !== size) throw new SnapshotIncompleteError(`snapshot body ended after ${progress.bytes} of ${size} bytes`);
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
  const sizeHeader = h[headers.snapshotSize];
  const size = typeof sizeHeader === 'string' && /^[0-9]{1,15}$/.test(sizeHeader) ? Number(sizeHeader) : -1;
  if (size < 0) return { status: 400, error: new BadRequestError('missing or bad snapshot size') };
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
  ctx.logger.info('receiving database snapshot', { from, index: m.snapshot?.metadata?.index ?? 0, bytes: size });
  const progress = { bytes: 0, ended: false };
  try {
    await ctx.snapshots.receive(m, dbBody(lead.leftover, it, size, progress));
    if (!progress.ended) throw new SnapshotIncompleteError(`snapshot receiver stopped after ${progress.bytes} of ${size} bytes`);
  } catch (e) {
    ctx.metrics.snapshotReceiveDone(from, false, 0);
    const error = e instanceof TransportError ? e : new SnapshotIncompleteError(`failed to save snapshot: ${e instanceof Error ? e.message : String(e)}`);
    return { status: 500, error };
  }
  ctx.metrics.received(from, size);
  if (ctx.stopped) return { status: 503, error: new PeerUnreachableError('transport stopped') };
  ctx.raft.process(m);
  if (!stream.closed && !stream.destroyed) stream.respond({ ':status': 204 }, { endStream: true });
  ctx.metrics.snapshotReceiveDone(from, true, (ctx.clock.nowMs() - started) / 1000);
  ctx.logger.info('received and saved database snapshot', { from, index: m.snapshot?.metadata?.index ?? 0, bytes: size });
  return undefined;
}
