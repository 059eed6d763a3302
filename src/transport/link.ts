/**
 * The connection from this member to one peer: two long-lived raft streams
 * (MsgApp, everything else), each on a connection of its own (raw-stream.ts),
 * and one HTTP/2 session for snapshots, rpcs and pings. States:
 *
 *   connecting ──both streams answered 200──▶ active
 *       │  ▲                                    │
 *   fail│  │retry timer / peer seen       broke │ (socket closed, ping timeout,
 *       ▼  │                                    │  stream reset, refusal)
 *     backoff ◀─────────────────────────────────┘
 *
 * and `stopped` from any of them. While connecting, messages queue up to
 * pendingQueueMax; in backoff they are dropped at once (the peer is known
 * down, queueing would only deliver stale messages later).
 */
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import { idToHex } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { backoffDelayMs } from './backoff.js';
import type { TransportContext } from './context.js';
import { PeerNotFoundError, PeerUnreachableError, StoppedError, TooManyRequestsError, TransportError } from './errors.js';
import { estimateBytes, OutStream } from './out-stream.js';
import { errorFromResponse, headers, senderHeaders, streamPath, type StreamKind } from './protocol.js';
import { StreamLiveness, streamLivenessOptions } from './liveness.js';
import { dialRaw, jsonLine, readJsonLine, responseOf } from './raw-stream.js';
import { post, rpcPath, rpcResult } from './rpc.js';
import { connectSession, destroySoon } from './session.js';
import { postSnapshot } from './snapshot.js';
import { fetchDb, type PulledDb } from './db-fetch.js';

export type LinkState = 'connecting' | 'active' | 'backoff' | 'stopped';

/** A peer link's counters, for diagnostics and tests. */
export interface PeerStats {
  readonly state: LinkState;
  /** Messages waiting in the two stream queues. */
  readonly queued: number;
  /** Messages written to the raft streams, and in how many writes. */
  readonly sentMessages: number;
  readonly sentBatches: number;
  readonly snapshotsInflight: number;
}

interface Waiter {
  resolve(s: http2.ClientHttp2Session): void;
  reject(e: Error): void;
  timer: unknown;
}

/** At most one "dropped" warning per peer per this long: a dead peer drops thousands of messages. */
const dropLogIntervalMs = 5000;

export class PeerLink {
  private state: LinkState = 'connecting';
  private urls: readonly string[];
  private urlIndex = 0;
  private session: http2.ClientHttp2Session | undefined;
  private readonly out: Readonly<Record<StreamKind, OutStream>>;
  private readonly accepted = new Set<StreamKind>();
  /** The raw stream connections of the current session. */
  private readonly rawSockets = new Set<Socket>();
  private attempt = 0;
  private retryTimer: unknown;
  private handshakeTimer: unknown;
  private pingTimer: unknown;
  private pingSentMs: number | undefined;
  private activeSinceMs: number | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly delayTimers = new Set<unknown>();
  /** Sessions destroyed but not yet closed; stop() waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private snapshotsInflight = 0;
  private callsInflight = 0;
  private lastDropLogMs = -Infinity;
  private lastDialLogMs = -Infinity;

  constructor(private readonly ctx: TransportContext, readonly id: bigint, urls: readonly string[]) {
    this.urls = urls;
    this.out = { msgapp: new OutStream(ctx, id, 'msgapp'), message: new OutStream(ctx, id, 'message') };
    this.connect();
  }

  activeSince(): number | undefined {
    return this.activeSinceMs;
  }

  stats(): PeerStats {
    const { msgapp, message } = this.out;
    return {
      state: this.state,
      queued: msgapp.queued + message.queued,
      sentMessages: msgapp.sentMessages + message.sentMessages,
      sentBatches: msgapp.sentBatches + message.sentBatches,
      snapshotsInflight: this.snapshotsInflight,
    };
  }

  /** Queues one message (never blocks); drops it and reports when the peer cannot take it. */
  send(m: raftpb.Message): void {
    if (this.state === 'stopped') return;
    if (m.type === raftpb.MessageType.MsgSnap) {
      void this.sendSnapshot(m);
      return;
    }
    if (estimateBytes(m) > this.ctx.tuning.frameBytesMax) {
      // The receiver would reset the stream on it, and raft would send it again: a loop. Drop it here.
      this.ctx.logger.error('dropped raft message larger than the frame limit', {
        'message-type': m.type, 'remote-peer-id': idToHex(this.id), bytes: estimateBytes(m), limit: this.ctx.tuning.frameBytesMax,
      });
      this.dropped(m, 1);
      return;
    }
    const kind: StreamKind = m.type === raftpb.MessageType.MsgApp ? 'msgapp' : 'message';
    const limit = this.state === 'active' ? this.ctx.tuning.streamQueueMax : this.ctx.tuning.pendingQueueMax;
    if (this.state === 'backoff' || !this.out[kind].enqueue(m, limit)) this.dropped(m, 1);
  }

  /** Writes the messages queued so far (see OutStream.flushNow). */
  flush(): void {
    if (this.state !== 'active') return;
    this.out.msgapp.flushNow();
    this.out.message.flushNow();
  }

  /** The filter's delay: the message is queued later, still within the peer's bound. */
  sendDelayed(m: raftpb.Message, delayMs: number): void {
    if (this.state === 'stopped') return;
    if (this.delayTimers.size >= this.ctx.tuning.streamQueueMax) {
      this.dropped(m, 1);
      return;
    }
    const timer = this.ctx.timers.setTimeout(() => {
      this.delayTimers.delete(timer);
      this.send(m);
    }, delayMs);
    this.delayTimers.add(timer);
  }

  updateUrls(urls: readonly string[]): void {
    const current = this.urls[this.urlIndex % this.urls.length];
    this.urls = urls;
    this.urlIndex = 0;
    if (current !== undefined && urls.includes(current)) {
      this.urlIndex = urls.indexOf(current);
      return;
    }
    this.ctx.logger.info('peer URLs changed; reconnecting', { peer: idToHex(this.id), urls });
    this.teardown('peer URLs changed', false);
    this.retryNow();
  }

  /** Evidence the peer is up (it dialled us): skip the rest of the backoff. */
  peerSeen(): void {
    this.retryNow();
  }

  /** Resolves with the session once active; rejects after timeoutMs. Callers are bounded (calls, snapshots). */
  private whenActive(timeoutMs: number): Promise<http2.ClientHttp2Session> {
    if (this.state === 'stopped') return Promise.reject(new PeerNotFoundError(idToHex(this.id)));
    if (this.state === 'active' && this.session !== undefined) return Promise.resolve(this.session);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: this.ctx.timers.setTimeout(() => {
          this.waiters.delete(w);
          reject(new PeerUnreachableError(`peer ${idToHex(this.id)} not reachable within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  async call(method: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const path = rpcPath(method);
    if (this.callsInflight >= this.ctx.tuning.rpcPendingMax) {
      throw new TooManyRequestsError(`too many calls in flight to peer ${idToHex(this.id)}`);
    }
    this.callsInflight++;
    try {
      const deadline = this.ctx.clock.nowMs() + timeoutMs;
      const session = await this.whenActive(timeoutMs);
      const left = Math.max(1, deadline - this.ctx.clock.nowMs());
      const h = senderHeaders(this.ctx.clusterId, this.ctx.localId, this.id);
      const res = await post(session, path, h, body, left, this.ctx.tuning.rpcBytesMax, this.ctx.timers);
      return rpcResult(res, method);
    } finally {
      this.callsInflight--;
    }
  }

  /** Pulls the peer's database (db-fetch.ts) once it has applied minIndex; bounded by timeoutMs until the answer. */
  async fetchDb(minIndex: number, timeoutMs: number): Promise<PulledDb> {
    const deadline = this.ctx.clock.nowMs() + timeoutMs;
    const session = await this.whenActive(timeoutMs);
    return fetchDb(this.ctx, session, this.id, minIndex, Math.max(1, deadline - this.ctx.clock.nowMs()));
  }

  /** Closes everything; resolves once every session this link opened is closed. */
  stop(): Promise<void> {
    if (this.state === 'stopped') return Promise.all(this.closing).then(() => undefined);
    const wasActive = this.state === 'active';
    this.state = 'stopped';
    this.closeSession();
    if (wasActive) this.ctx.metrics.peerActive(this.id, false);
    this.activeSinceMs = undefined;
    this.ctx.timers.clearTimeout(this.retryTimer);
    for (const t of this.delayTimers) this.ctx.timers.clearTimeout(t);
    this.delayTimers.clear();
    for (const w of this.waiters) {
      this.ctx.timers.clearTimeout(w.timer);
      w.reject(this.ctx.stopped ? new StoppedError() : new PeerNotFoundError(idToHex(this.id)));
    }
    this.waiters.clear();
    return Promise.all(this.closing).then(() => undefined);
  }

  private retryNow(): void {
    if (this.state !== 'backoff') return;
    this.ctx.timers.clearTimeout(this.retryTimer);
    this.connect();
  }

  private dropped(m: raftpb.Message, count: number): void {
    this.ctx.metrics.sendFailed(this.id, count);
    this.ctx.reportUnreachable(this.id);
    const now = this.ctx.clock.nowMs();
    if (now - this.lastDropLogMs >= dropLogIntervalMs) {
      this.lastDropLogMs = now;
      this.ctx.logger.warn('dropped internal Raft message since sending buffer is full (overloaded network)', {
        'message-type': m.type, 'remote-peer-id': idToHex(this.id), 'remote-peer-active': this.state === 'active', state: this.state,
      });
    }
  }

  private connect(): void {
    this.state = 'connecting';
    this.accepted.clear();
    const url = this.urls[this.urlIndex % this.urls.length];
    if (url === undefined) {
      this.teardown('peer has no URLs', false);
      return;
    }
    let s: http2.ClientHttp2Session;
    try {
      s = connectSession(url, this.ctx.tuning, this.ctx.tls);
    } catch (e) {
      this.ctx.logger.error('cannot dial peer', { peer: idToHex(this.id), url, error: e });
      this.teardown('bad peer URL', false);
      return;
    }
    this.session = s;
    s.on('error', (e: Error) => this.onSessionGone(s, `connection error: ${e.message}`));
    s.on('close', () => this.onSessionGone(s, 'connection closed'));
    s.on('goaway', () => this.onSessionGone(s, 'peer sent GOAWAY'));
    this.handshakeTimer = this.ctx.timers.setTimeout(
      () => this.onSessionGone(s, `no answer within ${this.ctx.tuning.dialTimeoutMs} ms`),
      this.ctx.tuning.dialTimeoutMs,
    );
    this.openStream(s, url, 'msgapp');
    this.openStream(s, url, 'message');
  }

  /** Dials one raw raft stream of session s; its loss ends the whole session, as an HTTP/2 stream's would. */
  private openStream(s: http2.ClientHttp2Session, url: string, kind: StreamKind): void {
    let sock: Socket;
    try {
      sock = dialRaw(url, this.ctx.tls);
    } catch (e) {
      this.onSessionGone(s, `cannot dial ${kind} stream: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.rawSockets.add(sock);
    let cause = 'closed';
    sock.on('error', (e: Error) => {
      cause = e.message;
    });
    sock.once('close', () => {
      this.rawSockets.delete(sock);
      this.onSessionGone(s, `${kind} stream ${cause}`);
    });
    sock.write(
      jsonLine({
        ':path': streamPath(kind),
        ...senderHeaders(this.ctx.clusterId, this.ctx.localId, this.id),
        [headers.frameCrc]: this.ctx.tuning.frameCrc ? '1' : '0',
        [headers.streamKeepalive]: '1',
      }),
    );
    readJsonLine(sock, Buffer.alloc(0), this.ctx.tuning.dialTimeoutMs).then(
      ({ value }) => {
        if (this.session !== s) return;
        const res = responseOf(value);
        if (res === undefined) {
          this.onSessionGone(s, `${kind} stream: malformed answer`);
          return;
        }
        if (res.status !== 200) {
          this.refused(errorFromResponse(res.status, res.headers));
          return;
        }
        sock.setNoDelay(true);
        // The peer writes nothing more but keepalives; reading on lets a close be seen.
        sock.on('data', () => undefined);
        sock.resume();
        if (res.headers[headers.streamKeepalive] === '1') {
          new StreamLiveness(sock, streamLivenessOptions(this.ctx), (reason) => {
            cause = reason;
            sock.destroy();
          });
        }
        this.out[kind].attach(sock);
        this.accepted.add(kind);
        if (this.accepted.size === 2) this.becomeActive();
      },
      (e: unknown) => {
        cause = e instanceof Error ? e.message : String(e);
        sock.destroy();
      },
    );
  }

  private refused(err: TransportError): void {
    this.ctx.logger.warn('peer refused this member', { peer: idToHex(this.id), code: err.code, error: err.message });
    this.ctx.rejected(this.id, err);
    this.teardown(err.message, false);
  }

  private becomeActive(): void {
    this.ctx.timers.clearTimeout(this.handshakeTimer);
    this.state = 'active';
    this.attempt = 0;
    this.activeSinceMs = this.ctx.clock.nowMs();
    this.ctx.metrics.peerActive(this.id, true);
    this.ctx.logger.info('peer became active', { peer: idToHex(this.id) });
    this.schedulePing();
    const s = this.session;
    for (const w of this.waiters) {
      this.ctx.timers.clearTimeout(w.timer);
      if (s !== undefined) w.resolve(s);
    }
    this.waiters.clear();
  }

  private schedulePing(): void {
    this.pingTimer = this.ctx.timers.setTimeout(() => this.ping(), this.ctx.tuning.pingIntervalMs);
  }

  private ping(): void {
    const s = this.session;
    if (this.state !== 'active' || s === undefined) return;
    const now = this.ctx.clock.nowMs();
    if (this.pingSentMs !== undefined) {
      if (now - this.pingSentMs >= this.ctx.tuning.pingTimeoutMs) {
        this.onSessionGone(s, `ping unanswered for ${this.ctx.tuning.pingTimeoutMs} ms`);
        return;
      }
    } else {
      this.pingSentMs = now;
      const sent = s.ping((err, durationMs) => {
        if (this.session !== s) return;
        this.pingSentMs = undefined;
        if (err === null) this.ctx.metrics.rtt(this.id, durationMs / 1000);
      });
      if (!sent) this.pingSentMs = undefined;
    }
    this.schedulePing();
  }

  private onSessionGone(s: http2.ClientHttp2Session, reason: string): void {
    if (this.session !== s || this.state === 'stopped') return;
    this.teardown(reason, true);
  }

  /** Destroys the session and drops what waits in the queues; returns how many messages were dropped. */
  private closeSession(): number {
    this.ctx.timers.clearTimeout(this.handshakeTimer);
    this.ctx.timers.clearTimeout(this.pingTimer);
    this.pingSentMs = undefined;
    const s = this.session;
    this.session = undefined;
    this.accepted.clear();
    for (const sock of this.rawSockets) sock.destroy();
    this.rawSockets.clear();
    if (s !== undefined) {
      const p = destroySoon(s);
      this.closing.add(p);
      void p.then(() => this.closing.delete(p));
    }
    return this.out.msgapp.detach() + this.out.message.detach();
  }

  /** Closes the session, reports what was lost, and schedules the next dial. */
  private teardown(reason: string, report: boolean): void {
    if (this.state === 'stopped') return;
    const wasActive = this.state === 'active';
    const dropped = this.closeSession();
    if (dropped > 0) this.ctx.metrics.sendFailed(this.id, dropped);
    if (report && (wasActive || dropped > 0)) this.ctx.reportUnreachable(this.id);
    if (wasActive) {
      this.activeSinceMs = undefined;
      this.ctx.metrics.peerActive(this.id, false);
      this.ctx.logger.warn('lost TCP streaming connection with remote peer', { peer: idToHex(this.id), reason });
    } else {
      // A dial that failed tries the peer's next URL (etcd's urlPicker.unreachable).
      this.urlIndex++;
      const now = this.ctx.clock.nowMs();
      const quiet = now - this.lastDialLogMs < dropLogIntervalMs;
      if (!quiet) this.lastDialLogMs = now;
      this.ctx.logger[quiet ? 'debug' : 'warn']('failed to dial remote peer', { peer: idToHex(this.id), reason });
    }
    this.state = 'backoff';
    const delayMs = backoffDelayMs(this.ctx.tuning.backoff, this.attempt, this.ctx.rand);
    this.attempt++;
    this.retryTimer = this.ctx.timers.setTimeout(() => {
      if (this.state === 'backoff') this.connect();
    }, delayMs);
  }

  private async sendSnapshot(m: raftpb.Message): Promise<void> {
    const to = this.id;
    if (this.snapshotsInflight >= this.ctx.tuning.snapshotInflightMax) {
      this.snapshotDone(m, new TooManyRequestsError('too many snapshots in flight'), 0);
      return;
    }
    this.snapshotsInflight++;
    this.ctx.metrics.snapshotSendStarted(to);
    const started = this.ctx.clock.nowMs();
    let err: Error | undefined;
    let size = 0;
    try {
      const session = await this.whenActive(this.ctx.tuning.dialTimeoutMs);
      const db = await this.ctx.snapshots.open(m);
      this.ctx.logger.info('sending database snapshot', { peer: idToHex(to), index: m.snapshot?.metadata?.index ?? 0 });
      size = await postSnapshot(this.ctx, session, m, db);
    } catch (e) {
      err = e instanceof Error ? e : new Error(String(e));
    } finally {
      this.snapshotsInflight--;
    }
    this.ctx.metrics.snapshotSendDone(to, err === undefined, (this.ctx.clock.nowMs() - started) / 1000);
    this.snapshotDone(m, err, size);
  }

  private snapshotDone(m: raftpb.Message, err: Error | undefined, size: number): void {
    if (this.ctx.stopped || this.state === 'stopped') return;
    if (err === undefined) {
      this.ctx.metrics.sent(this.id, size);
      this.ctx.logger.info('sent database snapshot', { peer: idToHex(this.id), index: m.snapshot?.metadata?.index ?? 0, bytes: size });
      this.ctx.reportSnapshot(this.id, true);
      return;
    }
    this.ctx.logger.warn('failed to send database snapshot', { peer: idToHex(this.id), error: err.message });
    this.ctx.metrics.sendFailed(this.id);
    this.ctx.reportUnreachable(this.id);
    this.ctx.reportSnapshot(this.id, false);
  }
}
