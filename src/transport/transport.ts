/**
 * The Transport of one member: its peer links (outgoing), its listeners
 * (incoming) and the fault-injection filter in front of send().
 */
import * as http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { assert, failpointDrops, idToHex, sniffPreface, systemClock } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { mathRand, systemTimers } from './backoff.js';
import type { TransportContext } from './context.js';
import { BadRequestError, PeerNotFoundError, StoppedError, type TransportError } from './errors.js';
import type { PulledDb } from './db-fetch.js';
import { InboundHandler } from './inbound.js';
import { PeerLink, type PeerStats } from './link.js';
import { TransportMetrics } from './metrics.js';
import { resolveTuning, type MessageFilter, type TransportOptions } from './options.js';
import { rawAlpn, rawMagic } from './raw-stream.js';
import { membersRpcMethod } from './rpc.js';
import { createPeerServer, destroySoon, trackClose } from './session.js';
import { clientCertRefusal, clientSanRefusal, peerAllowedNames, serverTlsOptions } from './tls.js';

/** Inbound connections accepted at once per listener; peers need a handful each. */
const inboundConnectionsMax = 1024;

function listenHost(u: URL): string {
  return u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
}

export class Transport {
  private readonly ctx: TransportContext;
  private readonly peers = new Map<bigint, PeerLink>();
  private readonly servers: (net.Server | tls.Server)[] = [];
  private readonly inboundSessions = new Set<http2.ServerHttp2Session>();
  private readonly inbound: InboundHandler;
  private filter: MessageFilter | undefined;
  private isStopped = false;
  private readonly unreachable = new Set<bigint>();

  constructor(private readonly opts: TransportOptions) {
    assert(opts.localId !== 0n, 'local member id must not be 0');
    this.filter = opts.filter;
    const isStopped = (): boolean => this.isStopped;
    this.ctx = {
      localId: opts.localId,
      clusterId: opts.clusterId,
      logger: opts.logger.with({ 'local-member-id': idToHex(opts.localId) }),
      metrics: new TransportMetrics(opts.metrics, opts.localId),
      raft: opts.raft,
      snapshots: opts.snapshots,
      rpcHandlers: opts.rpcHandlers ?? {},
      anonymousRpcMethods: new Set(opts.anonymousRpcMethods ?? [membersRpcMethod]),
      tuning: resolveTuning(opts.tuning),
      clock: opts.clock ?? systemClock,
      timers: opts.timers ?? systemTimers,
      rand: opts.rand ?? mathRand,
      tls: opts.tls,
      get stopped() {
        return isStopped();
      },
      reportUnreachable: (id) => this.reportUnreachable(id),
      reportSnapshot: (id, ok) => queueMicrotask(() => {
        if (!this.isStopped) opts.raft.reportSnapshot(id, ok);
      }),
      rejected: (peer, err) => this.rejected(peer, err),
      peerSeen: (id) => this.peers.get(id)?.peerSeen(),
      isPeer: (id) => this.peers.has(id),
    };
    this.inbound = new InboundHandler(this.ctx);
  }

  /**
   * Starts a peer listener on each URL (http:// or https://, host:port; port 0
   * picks a free one). Returns the URLs actually bound, in order.
   */
  async listen(urls: readonly string[]): Promise<string[]> {
    const bound: string[] = [];
    for (const url of urls) bound.push(await this.listenOne(url));
    return bound;
  }

  private async listenOne(url: string): Promise<string> {
    if (this.isStopped) throw new StoppedError();
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BadRequestError(`${url}: listen URLs must be http:// or https://`);
    const h2 = createPeerServer(this.ctx.tuning);
    h2.on('session', (s: http2.ServerHttp2Session) => this.acceptSession(s));
    h2.on('stream', (stream, h) => this.inbound.handle(stream, h));
    h2.on('sessionError', (e) => this.ctx.logger.debug('peer session error', { error: e }));
    const server = u.protocol === 'https:' ? this.tlsListener(h2) : this.plainListener(h2);
    server.maxConnections = inboundConnectionsMax;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(u.port === '' ? 2380 : Number(u.port), listenHost(u), () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.ctx.logger.error('peer listener error', { error: e }));
    this.servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const boundUrl = `${u.protocol}//${u.hostname}:${port}`;
    this.ctx.logger.info('listening for peers', { address: boundUrl });
    return boundUrl;
  }

  /** Plain TCP: a connection that starts with rawMagic is a raw raft stream, any other goes to HTTP/2. */
  private plainListener(h2: http2.Http2Server): net.Server {
    return net.createServer({ noDelay: true }, (socket) => {
      socket.on('error', () => undefined);
      const timer = this.ctx.timers.setTimeout(() => socket.destroy(), this.ctx.tuning.inboundFirstStreamTimeoutMs);
      sniffPreface(socket, rawMagic, (kind, seen) => {
        this.ctx.timers.clearTimeout(timer);
        if (this.isStopped) {
          socket.destroy();
        } else if (kind === 'match') {
          void this.inbound.handleRaw(socket, seen.subarray(rawMagic.length));
        } else {
          socket.unshift(seen);
          h2.emit('connection', socket);
        }
      });
    });
  }

  /** TLS: ALPN decides, rawAlpn for a raw raft stream, "h2" for HTTP/2; --peer-cert-allowed-cn/-hostname first. */
  private tlsListener(h2: http2.Http2Server): tls.Server {
    const t = this.ctx.tls;
    if (t === undefined) throw new BadRequestError('https listen URL without peer TLS configuration');
    const checkSan = t.requestCert === true && t.skipClientSanVerify !== true;
    const admit = async (sock: TLSSocket): Promise<void> => {
      const refusal = clientCertRefusal(peerAllowedNames(t), sock) ?? (checkSan ? await clientSanRefusal(sock) : undefined);
      if (refusal !== undefined || this.isStopped || sock.destroyed) {
        if (refusal !== undefined) this.ctx.logger.warn('rejected peer connection', { remote: sock.remoteAddress, reason: refusal });
        sock.destroy();
        return;
      }
      if (sock.alpnProtocol === rawAlpn) void this.inbound.handleRaw(sock, Buffer.alloc(0));
      else if (sock.alpnProtocol === 'h2') h2.emit('connection', sock);
      else sock.destroy();
    };
    const tlsOptions = serverTlsOptions(t, this.ctx.tuning.inboundFirstStreamTimeoutMs);
    const server = tls.createServer({ ...tlsOptions, ALPNProtocols: ['h2', rawAlpn] }, (sock: TLSSocket) => {
      sock.on('error', () => undefined);
      admit(sock).catch((e: unknown) => {
        this.ctx.logger.warn('rejected peer connection', { remote: sock.remoteAddress, reason: (e as Error).message });
        sock.destroy();
      });
    });
    server.on('tlsClientError', (e: Error, sock: Socket) => {
      this.ctx.logger.debug('peer TLS handshake failed', { error: e });
      sock.destroy();
    });
    return server;
  }

  private acceptSession(s: http2.ServerHttp2Session): void {
    trackClose(s);
    if (this.isStopped) {
      void destroySoon(s);
      return;
    }
    this.inboundSessions.add(s);
    // A peer's session carries snapshots, rpcs and its link's pings (the raft
    // streams are connections of their own), so a healthy one may open no
    // stream for hours, but it pings within pingIntervalMs of its streams
    // being accepted. One that neither pings nor opens a stream is stalled or
    // hostile.
    const idle = this.ctx.timers.setTimeout(() => {
      this.ctx.logger.warn('closed a peer connection that opened no stream', { remote: s.socket.remoteAddress });
      void destroySoon(s);
    }, this.ctx.tuning.inboundFirstStreamTimeoutMs);
    const alive = (): void => this.ctx.timers.clearTimeout(idle);
    s.once('stream', alive);
    s.once('ping', alive);
    s.on('close', () => {
      this.ctx.timers.clearTimeout(idle);
      this.inboundSessions.delete(s);
    });
    s.on('error', () => undefined);
    try {
      s.setLocalWindowSize(this.ctx.tuning.sessionWindowBytes);
    } catch {
      // The session closed already; 'close' removes it.
    }
  }

  addPeer(id: bigint, urls: readonly string[]): void {
    if (this.isStopped) return;
    assert(id !== this.ctx.localId, 'a member is not its own peer');
    const link = this.peers.get(id);
    if (link !== undefined) {
      link.updateUrls(urls);
      return;
    }
    this.ctx.logger.info('starting remote peer', { 'remote-peer-id': idToHex(id), urls });
    this.peers.set(id, new PeerLink(this.ctx, id, [...urls]));
  }

  removePeer(id: bigint): void {
    const link = this.peers.get(id);
    if (link === undefined) return;
    this.peers.delete(id);
    void link.stop();
    this.inbound.closeFrom(id);
    this.ctx.logger.info('removed remote peer', { 'remote-peer-id': idToHex(id) });
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    this.peers.get(id)?.updateUrls([...urls]);
  }

  hasPeer(id: bigint): boolean {
    return this.peers.has(id);
  }

  /** Replaces the fault-injection filter (undefined: every message passes). */
  setFilter(filter: MessageFilter | undefined): void {
    this.filter = filter;
  }

  /**
   * Sends messages to their peers; never blocks, never throws for a peer's
   * state. The messages to each peer's stream are encoded and written as
   * one batch before this returns (a peer not connected yet gets them once
   * it is); they must not be mutated afterwards.
   */
  send(msgs: readonly raftpb.Message[]): void {
    if (this.isStopped) return;
    const touched: PeerLink[] = [];
    for (const m of msgs) {
      const link = this.peers.get(m.to);
      if (link === undefined) {
        this.ctx.logger.debug('ignored message send request; unknown remote peer target', { 'remote-peer-id': idToHex(m.to) });
        continue;
      }
      let verdict = this.filter === undefined ? 'pass' : this.filter(m, m.to);
      if (verdict === 'pass' && failpointDrops('peerBeforeSendMessage')) verdict = 'drop';
      if (verdict === 'pass') {
        link.send(m);
        if (!touched.includes(link)) touched.push(link);
      } else if (verdict === 'drop') {
        // A lost MsgSnap must still end raft's wait for its outcome, as a broken connection would.
        if (m.type === raftpb.MessageType.MsgSnap) {
          this.reportUnreachable(m.to);
          this.ctx.reportSnapshot(m.to, false);
        }
      } else {
        link.sendDelayed(m, verdict.delayMs);
      }
    }
    for (const link of touched) link.flush();
  }

  /** A generic peer RPC; rejects with a TransportError (timeout, unreachable, refused, remote failure). */
  call(id: bigint, method: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.isStopped) return Promise.reject(new StoppedError());
    const link = this.peers.get(id);
    if (link === undefined) return Promise.reject(new PeerNotFoundError(idToHex(id)));
    return link.call(method, body, timeoutMs);
  }

  /** Pulls a peer's database for a repair (db-fetch.ts); rejects with a TransportError. */
  fetchDb(id: bigint, minIndex: number, timeoutMs: number): Promise<PulledDb> {
    if (this.isStopped) return Promise.reject(new StoppedError());
    const link = this.peers.get(id);
    if (link === undefined) return Promise.reject(new PeerNotFoundError(idToHex(id)));
    return link.fetchDb(minIndex, timeoutMs);
  }

  /** When (transport clock, ms) the connection to this peer last became active; undefined while it is not. */
  activeSince(id: bigint): number | undefined {
    return this.peers.get(id)?.activeSince();
  }

  /** Counters of the link to this peer (state, queued, messages and writes); undefined for an unknown peer. */
  peerStats(id: bigint): PeerStats | undefined {
    return this.peers.get(id)?.stats();
  }

  /** Closes every connection and listener; no callback into the member happens afterwards. */
  async stop(): Promise<void> {
    if (this.isStopped) return;
    this.isStopped = true;
    const closing: Promise<void>[] = [];
    for (const link of this.peers.values()) closing.push(link.stop());
    this.peers.clear();
    for (const s of this.inboundSessions) closing.push(destroySoon(s));
    this.inboundSessions.clear();
    this.inbound.closeAll();
    closing.push(...this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    await Promise.all(closing);
    this.servers.length = 0;
    this.ctx.logger.info('stopped peer transport');
  }

  private reportUnreachable(id: bigint): void {
    if (this.unreachable.size === 0) {
      queueMicrotask(() => {
        const ids = [...this.unreachable];
        this.unreachable.clear();
        if (this.isStopped) return;
        for (const p of ids) this.opts.raft.reportUnreachable(p);
      });
    }
    this.unreachable.add(id);
  }

  private rejected(peer: bigint, err: TransportError): void {
    if (!this.isStopped) this.opts.onRejected?.(peer, err);
  }
}
