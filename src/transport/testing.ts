/**
 * Test support for this folder's tests (not exported from index.ts): members
 * on 127.0.0.1 with recording callbacks, bounded polling, a black-hole server
 * and a freezable TCP proxy that stands in for a stalled or partitioned peer.
 */
import * as net from 'node:net';
import { nopLogger, type LogFields, type Logger, type Rand, type Registry } from '../base/index.js';
import type { Timers } from './backoff.js';
import { raftpb } from '../pb/index.js';
import type { TransportError } from './errors.js';
import type { RpcHandler, SnapshotCallbacks, TransportTuning } from './options.js';
import type { PeerTlsOptions } from './tls.js';
import { Transport } from './transport.js';

export const testClusterId = 0x1234abcdn;

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: LogFields;
}

/** A logger that keeps every line (debug included) for assertions. */
export function recordingLogger(lines: LogLine[], base: LogFields = {}): Logger {
  const log = (level: string) => (msg: string, fields?: LogFields): void => {
    lines.push({ level, msg, fields: { ...base, ...fields } });
  };
  return {
    debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'),
    with: (fields) => recordingLogger(lines, { ...base, ...fields }),
  };
}

export interface MemberOptions {
  readonly clusterId?: bigint;
  readonly tls?: PeerTlsOptions;
  readonly tuning?: Partial<TransportTuning>;
  readonly snapshots?: SnapshotCallbacks;
  readonly rpcHandlers?: Readonly<Record<string, RpcHandler>>;
  readonly metrics?: Registry;
  readonly listenUrl?: string;
  readonly logger?: Logger;
  readonly onProcess?: (m: raftpb.Message) => void;
  readonly timers?: Timers;
  readonly rand?: Rand;
}

export interface Member {
  readonly id: bigint;
  readonly t: Transport;
  readonly url: string;
  readonly received: raftpb.Message[];
  readonly unreachable: bigint[];
  readonly snapshotReports: { id: bigint; ok: boolean }[];
  readonly rejected: { peer: bigint; err: TransportError }[];
  readonly removed: Set<bigint>;
}

export const noSnapshots: SnapshotCallbacks = {
  open: () => Promise.reject(new Error('no snapshots in this test')),
  receive: () => Promise.reject(new Error('no snapshots in this test')),
};

/**
 * Test tuning: quick retries and liveness checks so failures show within a
 * test's budget. The ping timeout leaves room for event-loop stalls of a
 * loaded machine (several members share this process): a false timeout
 * tears a healthy link down and drops what it carried.
 */
export const fastTuning: Partial<TransportTuning> = {
  backoff: { initialMs: 20, maxMs: 200, factor: 2 },
  dialTimeoutMs: 1000,
  pingIntervalMs: 100,
  pingTimeoutMs: 3000,
};

export async function startMember(id: bigint, o: MemberOptions = {}): Promise<Member> {
  const received: raftpb.Message[] = [];
  const unreachable: bigint[] = [];
  const snapshotReports: { id: bigint; ok: boolean }[] = [];
  const rejected: { peer: bigint; err: TransportError }[] = [];
  const removed = new Set<bigint>();
  const t = new Transport({
    localId: id,
    clusterId: o.clusterId ?? testClusterId,
    ...(o.tls === undefined ? {} : { tls: o.tls }),
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    logger: o.logger ?? nopLogger,
    raft: {
      process: (m) => {
        received.push(m);
        o.onProcess?.(m);
      },
      isRemoved: (x) => removed.has(x),
      reportUnreachable: (x) => unreachable.push(x),
      reportSnapshot: (x, ok) => snapshotReports.push({ id: x, ok }),
    },
    snapshots: o.snapshots ?? noSnapshots,
    rpcHandlers: o.rpcHandlers ?? {},
    onRejected: (peer, err) => rejected.push({ peer, err }),
    tuning: { ...fastTuning, ...o.tuning },
    ...(o.timers === undefined ? {} : { timers: o.timers }),
    ...(o.rand === undefined ? {} : { rand: o.rand }),
  });
  const [url] = await t.listen([o.listenUrl ?? 'http://127.0.0.1:0']);
  if (url === undefined) throw new Error('no listen URL');
  return { id, t, url, received, unreachable, snapshotReports, rejected, removed };
}

/** Every member knows every other. */
export function connectAll(members: readonly Member[]): void {
  for (const a of members) for (const b of members) if (a !== b) a.t.addPeer(b.id, [b.url]);
}

/** Until every member's link to every other is active. */
export async function waitMesh(members: readonly Member[]): Promise<void> {
  await waitFor(
    () => members.every((m) => members.every((p) => p === m || m.t.activeSince(p.id) !== undefined)),
    'every link active',
  );
}

/** Polls until cond() holds; fails with `what` after timeoutMs. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function heartbeat(from: bigint, to: bigint, commit: number): raftpb.Message {
  return raftpb.Message.create({ type: raftpb.MessageType.MsgHeartbeat, from, to, term: 1, commit });
}

export function msgApp(from: bigint, to: bigint, index: number, data: Uint8Array = new Uint8Array(0)): raftpb.Message {
  return raftpb.Message.create({
    type: raftpb.MessageType.MsgApp, from, to, term: 1, index, logTerm: 1,
    entries: [raftpb.Entry.create({ term: 1, index: index + 1, data })],
  });
}

/** A free port on 127.0.0.1 (bound, then released for the test to reuse). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Forwards TCP to a target until frozen; frozen, it silently discards bytes
 * both ways (a partition that does not close connections, like SIGSTOP or a
 * black-holed route). Without a target it only accepts (see BlackHole).
 */
export class FreezableProxy {
  frozen = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  /** `freezes`: from the first bytes a client sent, whether `frozen` applies to its connection (all by default). */
  constructor(
    private readonly targetPort: number | undefined,
    private readonly freezes: (firstBytes: Buffer) => boolean = () => true,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  private track(s: net.Socket, peer: net.Socket | undefined): void {
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => {
      this.sockets.delete(s);
      peer?.destroy();
    });
  }

  private accept(client: net.Socket): void {
    if (this.targetPort === undefined) {
      this.track(client, undefined);
      return;
    }
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    this.track(client, upstream);
    this.track(upstream, client);
    let freezable: boolean | undefined;
    const frozen = (): boolean => this.frozen && freezable !== false;
    client.on('data', (d) => {
      freezable ??= this.freezes(d);
      if (!frozen()) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!frozen()) client.write(d);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Timers that only fire when told to: the reconnect schedule becomes observable. */
export class ManualTimers implements Timers {
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { fn, ms });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Fires (and forgets) every pending timer whose delay is at most maxMs; returns their delays. */
  fire(maxMs: number): number[] {
    const due = [...this.pending].filter(([, t]) => t.ms <= maxMs);
    for (const [id] of due) this.pending.delete(id);
    for (const [, t] of due) t.fn();
    return due.map(([, t]) => t.ms);
  }
}

/** Accepts TCP connections and never answers: a peer whose process is stopped. */
export class BlackHole extends FreezableProxy {
  constructor() {
    super(undefined);
  }
}

/** Deterministic bytes for snapshot bodies: byte i of the stream is (i * 31 + seed) & 0xff. */
export function patternChunk(offset: number, length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((offset + i) * 31 + seed) & 0xff;
  return out;
}

export async function* patternStream(size: number, chunkBytes: number, seed: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < size; at += chunkBytes) {
    // A source that yields to the event loop between chunks, as a file read would.
    await Promise.resolve();
    yield patternChunk(at, Math.min(chunkBytes, size - at), seed);
  }
}
