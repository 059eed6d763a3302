/**
 * The listener side: every incoming HTTP/2 stream is admitted (cluster id,
 * protocol version, recipient, sender not removed) and then routed to the
 * raft stream reader, the snapshot receiver or an rpc handler. Refusals carry
 * x-etcd-ts-error(-code) so the sender can rebuild the typed error. Raft
 * streams on connections of their own (raw-stream.ts) are admitted the same
 * way and read by the same reader.
 */
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import { idToHex } from '../base/index.js';
import { DecodeError, raftpb } from '../pb/index.js';
import type { TransportContext } from './context.js';
import { BadRequestError, FrameTooLargeError, PeerNotFoundError, RpcFailedError, TransportError, UnknownMethodError } from './errors.js';
import { FrameDecoder, frameHeaderBytes } from './frame.js';
import { admit, errorHeaderValue, headers, paths, type Admission } from './protocol.js';
import { StreamLiveness, streamLivenessOptions } from './liveness.js';
import { jsonLine, readJsonLine, requestHeaders } from './raw-stream.js';
import { isRpcMethodName } from './rpc.js';
import { receiveSnapshot } from './snapshot.js';
import { serveDb } from './db-fetch.js';

function remoteAddress(s: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined } | undefined): string {
  return s === undefined ? 'unknown' : `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
}

/**
 * What a follower forwards to its leader with the asker's id still in `from`
 * (raft's send keeps a set `from`): a MsgProp or MsgReadIndex a peer sent it
 * when it led, a MsgTransferLeader naming the transferee. etcd steps them,
 * refusing only a removed sender (EtcdServer.Process); any other message
 * must come from the stream's sender.
 */
const forwardedTypes: ReadonlySet<raftpb.MessageType> = new Set([raftpb.MessageType.MsgProp, raftpb.MessageType.MsgReadIndex, raftpb.MessageType.MsgTransferLeader]);

/** TCP keepalive on an accepted raw stream connection. */
const rawKeepaliveMs = 30_000;

export class InboundHandler {
  /** Open raft streams per sender (each as its closing function), closed when that peer is removed. */
  private readonly streams = new Map<bigint, Set<() => void>>();
  /** Raw stream connections open now, destroyed by closeAll(). */
  private readonly rawSockets = new Set<Socket>();

  constructor(private readonly ctx: TransportContext) {}

  handle(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // resets by the peer are normal; 'close' cleans up
    const path = h[':path'] ?? '';
    if (h[':method'] !== 'POST') {
      this.refuse(stream, 405, new BadRequestError('method not allowed'));
      return;
    }
    if (path === paths.streamMsgApp || path === paths.streamMessage) {
      this.handleRaftStream(stream, h);
    } else if (path === paths.snapshot) {
      void this.handleSnapshot(stream, h);
    } else if (path === paths.db) {
      void this.handleDbPull(stream, h);
    } else if (path.startsWith(paths.rpcPrefix)) {
      void this.handleRpc(stream, h, path.slice(paths.rpcPrefix.length));
    } else {
      this.refuse(stream, 404, new BadRequestError(`no such path ${JSON.stringify(path.slice(0, 64))}`));
    }
  }

  /** Closes the raft streams a (now removed) peer had opened to us. */
  closeFrom(id: bigint): void {
    const set = this.streams.get(id);
    if (set === undefined) return;
    this.streams.delete(id);
    for (const close of set) close();
  }

  /** Destroys every raw stream connection (the transport is stopping). */
  closeAll(): void {
    for (const s of this.rawSockets) s.destroy();
    this.rawSockets.clear();
  }

  /**
   * A raw stream connection (raw-stream.ts) whose magic or ALPN the listener
   * has seen; `received` holds what was read after the magic.
   */
  async handleRaw(socket: Socket, received: Buffer): Promise<void> {
    this.rawSockets.add(socket);
    socket.once('close', () => this.rawSockets.delete(socket));
    socket.on('error', () => undefined);
    let line: { value: unknown; rest: Buffer };
    try {
      line = await readJsonLine(socket, received, this.ctx.tuning.inboundFirstStreamTimeoutMs);
    } catch (e) {
      this.ctx.logger.warn('closed a raw peer connection', { remote: socket.remoteAddress, error: e });
      socket.destroy();
      return;
    }
    const h = requestHeaders(line.value);
    const path = h?.[':path'];
    const refuse = (status: number, err: TransportError): void => {
      socket.end(jsonLine({ status, headers: this.refusalHeaders(err) }));
    };
    if (h === undefined || (path !== paths.streamMsgApp && path !== paths.streamMessage)) {
      refuse(404, new BadRequestError(`no such raw stream ${JSON.stringify(String(path ?? '').slice(0, 64))}`));
      return;
    }
    const a = this.admitStream(h, remoteAddress(socket), refuse);
    if (!a.ok) return;
    socket.setNoDelay(true);
    // The sender pings over its HTTP/2 session; this end learns of a silently dead peer from TCP.
    socket.setKeepAlive(true, rawKeepaliveMs);
    const keepalive = h[headers.streamKeepalive] === '1';
    socket.write(jsonLine({ status: 200, headers: { [headers.clusterId]: idToHex(this.ctx.clusterId), ...(keepalive ? { [headers.streamKeepalive]: '1' } : {}) } }));
    if (keepalive) {
      new StreamLiveness(socket, streamLivenessOptions(this.ctx), (reason) => {
        this.ctx.metrics.receiveFailed(a.from);
        this.ctx.logger.warn('closed a silent raft stream', { from: idToHex(a.from), path, reason });
        socket.destroy();
      });
    }
    const onData = this.readRaftStream(a.from, h, () => socket.destroy(), () => socket.destroyed);
    socket.once('close', () => this.forget(a.from, onData.close));
    socket.on('data', onData.push);
    if (line.rest.length > 0) onData.push(line.rest);
    socket.resume();
  }

  /**
   * Registers a raft stream from `from` and returns what reads its bytes:
   * frames decoded and each message stepped, the stream failed (`close`) on
   * a bad frame.
   */
  private readRaftStream(
    from: bigint,
    h: http2.IncomingHttpHeaders,
    close: (code?: number) => void,
    isClosed: () => boolean,
  ): { push: (chunk: Buffer) => void; close: () => void } {
    const closeCancel = (): void => close(http2.constants.NGHTTP2_CANCEL);
    let set = this.streams.get(from);
    if (set === undefined) {
      set = new Set();
      this.streams.set(from, set);
    }
    set.add(closeCancel);
    this.ctx.peerSeen(from);
    const decoder = new FrameDecoder(this.ctx.tuning.frameBytesMax, h[headers.frameCrc] !== '0');
    const frames: Uint8Array[] = [];
    const push = (chunk: Buffer): void => {
      frames.length = 0;
      try {
        decoder.push(chunk, (p) => frames.push(p));
      } catch (e) {
        this.streamFailed(close, from, e);
        return;
      }
      for (const payload of frames) {
        // An empty frame is a keepalive (liveness.ts).
        if (payload.length === 0) continue;
        // process() may have removed the peer (closing this stream) or stopped the transport.
        if (isClosed() || !this.deliver(close, from, payload)) return;
      }
    };
    return { push, close: closeCancel };
  }

  private forget(from: bigint, close: () => void): void {
    const cur = this.streams.get(from);
    cur?.delete(close);
    if (cur?.size === 0) this.streams.delete(from);
  }

  private refusalHeaders(err: TransportError): Record<string, string> {
    return {
      [headers.clusterId]: idToHex(this.ctx.clusterId),
      [headers.error]: errorHeaderValue(err.message),
      [headers.errorCode]: err.code,
    };
  }

  private admit(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, needTo: boolean): Admission {
    return this.admitOr(h, needTo, remoteAddress(stream.session?.socket), (status, err) => this.refuse(stream, status, err));
  }

  /** Admits a request (HTTP/2 stream or raw stream), or logs the refusal and answers it with `refuse`. */
  private admitOr(h: http2.IncomingHttpHeaders, needTo: boolean, remote: string, refuse: (status: number, err: TransportError) => void): Admission {
    const a = admit(h, this.ctx, needTo);
    if (!a.ok) {
      this.ctx.logger.warn('refused peer request', { path: h[':path'], from: h[headers.from], remote, code: a.error.code, error: a.error.message });
      refuse(a.status, a.error);
    }
    return a;
  }

  /**
   * Admits a raft stream or a snapshot: besides the checks of every request,
   * its sender must be a member this one knows (etcd answers others 404,
   * "sender not found"): a stranger that has the cluster id must not step
   * messages into raft.
   */
  private admitStream(h: http2.IncomingHttpHeaders, remote: string, refuse: (status: number, err: TransportError) => void): Admission {
    const a = this.admitOr(h, true, remote, refuse);
    if (!a.ok || this.ctx.isPeer(a.from)) return a;
    const err = new PeerNotFoundError(idToHex(a.from));
    this.ctx.logger.warn('refused a raft stream from an unknown sender', { from: idToHex(a.from), remote });
    refuse(404, err);
    return { ok: false, status: 404, error: err };
  }

  /** Answers with an error status and stops the upload (RST NO_ERROR after the headers). */
  private refuse(stream: http2.ServerHttp2Stream, status: number, err: TransportError): void {
    if (stream.closed || stream.destroyed) return;
    if (!stream.headersSent) stream.respond({ ':status': status, ...this.refusalHeaders(err) }, { endStream: true });
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }

  private handleRaftStream(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): void {
    const a = this.admitStream(h, remoteAddress(stream.session?.socket), (status, err) => this.refuse(stream, status, err));
    if (!a.ok) return;
    stream.respond({ ':status': 200, [headers.clusterId]: idToHex(this.ctx.clusterId) });
    const reader = this.readRaftStream(
      a.from,
      h,
      (code) => stream.close(code ?? http2.constants.NGHTTP2_CANCEL),
      () => stream.closed || stream.destroyed,
    );
    stream.on('close', () => this.forget(a.from, reader.close));
    stream.on('data', reader.push);
  }

  /** Decodes and steps one message; false when the stream was failed. */
  private deliver(close: (code?: number) => void, from: bigint, payload: Uint8Array): boolean {
    let m: raftpb.Message;
    try {
      m = raftpb.Message.decode(payload);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.streamFailed(close, from, e);
      return false;
    }
    this.ctx.metrics.received(from, payload.length + frameHeaderBytes);
    if (m.to !== this.ctx.localId || (m.from !== from && !(forwardedTypes.has(m.type) && !this.ctx.raft.isRemoved(m.from)))) {
      this.ctx.metrics.receiveFailed(from);
      this.ctx.logger.warn('ignored raft message with wrong sender or recipient', { from, 'message-from': m.from, 'message-to': m.to });
      return true;
    }
    if (this.ctx.stopped) return false;
    // Not caught: a throw from raft is a bug in the member and must crash it.
    this.ctx.raft.process(m);
    return true;
  }

  private streamFailed(close: (code?: number) => void, from: bigint, e: unknown): void {
    this.ctx.metrics.receiveFailed(from);
    this.ctx.logger.warn('failed to read raft message stream', { from, error: e });
    close(e instanceof FrameTooLargeError ? http2.constants.NGHTTP2_FRAME_SIZE_ERROR : http2.constants.NGHTTP2_PROTOCOL_ERROR);
  }

  private async handleSnapshot(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): Promise<void> {
    // Only a leader this member knows sends it a snapshot.
    const a = this.admitStream(h, remoteAddress(stream.session?.socket), (status, err) => this.refuse(stream, status, err));
    if (!a.ok) {
      this.ctx.metrics.snapshotReceiveRefused(undefined);
      return;
    }
    const refusal = await receiveSnapshot(this.ctx, stream, h, a.from);
    if (refusal === undefined) return;
    this.ctx.metrics.receiveFailed(a.from);
    this.ctx.logger.warn('failed to receive database snapshot', { from: a.from, code: refusal.error.code, error: refusal.error.message });
    this.refuse(stream, refusal.status, refusal.error);
  }

  private async handleDbPull(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): Promise<void> {
    // Only a member this one knows gets its database (x-raft-to may be left out: db-fetch.ts).
    const remote = remoteAddress(stream.session?.socket);
    const a = this.admitOr(h, false, remote, (status, err) => this.refuse(stream, status, err));
    if (!a.ok) return;
    if (!this.ctx.isPeer(a.from)) {
      this.ctx.logger.warn('refused a database pull from an unknown sender', { from: idToHex(a.from), remote });
      this.refuse(stream, 404, new PeerNotFoundError(idToHex(a.from)));
      return;
    }
    const refusal = await serveDb(this.ctx, stream, h, a.from);
    if (refusal === undefined) return;
    this.ctx.logger.warn('refused a database pull', { from: idToHex(a.from), code: refusal.error.code, error: refusal.error.message });
    this.refuse(stream, refusal.status, refusal.error);
  }

  private async handleRpc(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, method: string): Promise<void> {
    let from = 0n;
    const anonymous = h[headers.clusterId] === undefined && h[headers.from] === undefined;
    if (!anonymous || !this.ctx.anonymousRpcMethods.has(method)) {
      const a = this.admit(stream, h, false);
      if (!a.ok) return;
      from = a.from;
    }
    // hasOwn: a method named like an Object.prototype member ("constructor") is no handler.
    const handler = isRpcMethodName(method) && Object.hasOwn(this.ctx.rpcHandlers, method) ? this.ctx.rpcHandlers[method] : undefined;
    if (handler === undefined) {
      this.refuse(stream, 404, new UnknownMethodError(method));
      return;
    }
    let out: Uint8Array;
    try {
      const body = await readBody(stream, this.ctx.tuning.rpcBytesMax);
      out = await handler(from, body);
    } catch (e) {
      const err = e instanceof TransportError ? e : new RpcFailedError(e instanceof Error ? e.message : String(e));
      this.refuse(stream, err instanceof FrameTooLargeError ? 413 : 500, err);
      return;
    }
    if (stream.closed || stream.destroyed) return;
    stream.respond({ ':status': 200, [headers.clusterId]: idToHex(this.ctx.clusterId), 'content-length': String(out.length) });
    stream.end(out);
  }
}

/** Reads a whole request body, refusing more than bytesMax. */
async function readBody(stream: http2.ServerHttp2Stream, bytesMax: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > bytesMax) throw new FrameTooLargeError(size, bytesMax);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
