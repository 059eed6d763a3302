/**
 * What a Transport is built from: the member's callbacks, the tunables with
 * their defaults (every queue and buffer has a named bound), and the
 * fault-injection seam.
 */
import { assert, type Clock, type Logger, type Rand, type Registry } from '../base/index.js';
import type { raftpb } from '../pb/index.js';
import { checkBackoffPolicy, defaultBackoff, type BackoffPolicy, type Timers } from './backoff.js';
import { frameLengthMax } from './frame.js';
import type { TransportError } from './errors.js';
import type { PeerTlsOptions } from './tls.js';

/** Callbacks into the member's raft node. All are synchronous and come from the event loop, never from inside send(). */
export interface RaftCallbacks {
  /** A message received from a peer; the server steps it. Not called after stop(). */
  process(m: raftpb.Message): void;
  /** Whether this member id was removed from the cluster (its requests are refused with 410). */
  isRemoved(id: bigint): boolean;
  /** Messages to this peer were dropped or its connection broke. Coalesced: at most once per event-loop turn per peer. */
  reportUnreachable(id: bigint): void;
  /** The outcome of a MsgSnap sent to this peer. */
  reportSnapshot(id: bigint, ok: boolean): void;
}

/** The backend db that travels with MsgSnap (etcd's "merged snapshot"). */
export interface SnapshotCallbacks {
  /**
   * Sender side: the db for this MsgSnap. Its length is not announced: the
   * request ends with the stream, and a stream that throws resets the
   * request, so the receiver never takes a cut one for whole. Whether the
   * bytes are whole is the db format's to check (snapshot-peer.ts ends with
   * a digest).
   */
  open(m: raftpb.Message): Promise<AsyncIterable<Uint8Array>>;
  /**
   * Receiver side: persist the db. `body` yields what the sender sent, and
   * throws SnapshotIncompleteError if the request was cut; it must be consumed to its end. After this
   * resolves the transport calls raft.process(m). A rejection fails the
   * transfer and the sender sees reportSnapshot(false).
   */
  receive(m: raftpb.Message, body: AsyncIterable<Uint8Array>): Promise<void>;
  /**
   * Serving a member that repairs its db (db-fetch.ts): this member's db once
   * it has applied at least minIndex; rejects when it cannot soon. Absent:
   * pulls are refused.
   */
  serveDb?(from: bigint, minIndex: number): Promise<AsyncIterable<Uint8Array>>;
}

/** A generic peer RPC: `from` is the calling member, or 0n for an anonymous call (see anonymousRpcMethods). */
export type RpcHandler = (from: bigint, body: Uint8Array) => Promise<Uint8Array>;

/**
 * The fault-injection seam: consulted for every outgoing raft message
 * (MsgSnap included) before it is queued. 'drop' discards it silently (no
 * unreachable report: the network lost it), {delayMs} queues it after that
 * delay (delayed messages count against the peer's queue bound and may be
 * reordered with later ones, as on a real network). Peer RPCs are not
 * filtered. Changed at run time with Transport.setFilter().
 */
export type FilterVerdict = 'pass' | 'drop' | { readonly delayMs: number };
export type MessageFilter = (m: raftpb.Message, to: bigint) => FilterVerdict;

export interface TransportTuning {
  /** Per stream (MsgApp, others) queue bound while the peer is connected; etcd's streamBufSize. */
  readonly streamQueueMax: number;
  /** Per stream queue bound while (re)connecting; etcd's pipeline buffer. */
  readonly pendingQueueMax: number;
  /** Largest frame (one encoded raftpb.Message) accepted. */
  readonly frameBytesMax: number;
  /** A batch write stops adding messages past this many (estimated) bytes. */
  readonly batchBytesMax: number;
  /** Largest rpc request or response body. */
  readonly rpcBytesMax: number;
  /** Calls in flight to one peer at once (waiting for the link or for the answer). */
  readonly rpcPendingMax: number;
  /** Snapshots being sent to one peer at once. */
  readonly snapshotInflightMax: number;
  /** Whether outgoing frames carry a CRC-32 (the receiver checks what the sender announces). */
  readonly frameCrc: boolean;
  /** TCP/TLS connect plus both streams accepted, else the dial failed. */
  readonly dialTimeoutMs: number;
  /** HTTP/2 PING period on a connected peer (each ack is a round-trip-time sample); also the raft streams' keepalive tick (liveness.ts). */
  readonly pingIntervalMs: number;
  /** A ping unanswered this long tears the connection down, as does a raft stream on which nothing came this long (etcd's ConnReadTimeout). */
  readonly pingTimeoutMs: number;
  /**
   * An inbound connection that finishes no TLS handshake or opens no stream
   * within this is closed (a stalled or hostile client); a peer's HTTP/2 session also counts as alive
   * once it pings, so this must exceed pingIntervalMs.
   */
  readonly inboundFirstStreamTimeoutMs: number;
  /** A snapshot stream with no progress for this long fails, on either side. */
  readonly snapshotIdleTimeoutMs: number;
  /** HTTP/2 flow-control window per stream and per connection. */
  readonly streamWindowBytes: number;
  readonly sessionWindowBytes: number;
  readonly backoff: BackoffPolicy;
}

const mib = 1024 * 1024;

export const defaultTuning: TransportTuning = {
  streamQueueMax: 4096,
  pendingQueueMax: 64,
  frameBytesMax: 64 * mib,
  batchBytesMax: 1 * mib,
  rpcBytesMax: 8 * mib,
  rpcPendingMax: 1024,
  snapshotInflightMax: 2,
  frameCrc: true,
  dialTimeoutMs: 2000,
  pingIntervalMs: 1000,
  pingTimeoutMs: 5000,
  snapshotIdleTimeoutMs: 30_000,
  inboundFirstStreamTimeoutMs: 10_000,
  streamWindowBytes: 4 * mib,
  // Several streams' windows, so one stalled stream (a slow snapshot reader)
  // cannot take the whole connection window from the raft streams.
  sessionWindowBytes: 32 * mib,
  backoff: defaultBackoff,
};

export function resolveTuning(t: Partial<TransportTuning> | undefined): TransportTuning {
  const r: TransportTuning = { ...defaultTuning, ...t };
  assert(r.pendingQueueMax > 0 && r.pendingQueueMax <= r.streamQueueMax, 'pendingQueueMax must be in (0, streamQueueMax]');
  assert(r.frameBytesMax > 0 && r.frameBytesMax <= frameLengthMax, 'frameBytesMax out of range');
  assert(r.batchBytesMax > 0 && r.rpcBytesMax > 0 && r.rpcPendingMax > 0 && r.snapshotInflightMax > 0, 'bounds must be positive');
  assert(
    r.dialTimeoutMs > 0 && r.pingIntervalMs > 0 && r.pingTimeoutMs > 0 && r.snapshotIdleTimeoutMs > 0 && r.inboundFirstStreamTimeoutMs > 0,
    'timeouts must be positive',
  );
  // HTTP/2 windows are 31-bit.
  assert(r.streamWindowBytes >= 65_535 && r.streamWindowBytes < 2 ** 31, 'streamWindowBytes out of range');
  assert(r.sessionWindowBytes >= r.streamWindowBytes && r.sessionWindowBytes < 2 ** 31, 'sessionWindowBytes out of range');
  checkBackoffPolicy(r.backoff);
  return r;
}

export interface TransportOptions {
  readonly localId: bigint;
  readonly clusterId: bigint;
  readonly tls?: PeerTlsOptions;
  readonly logger: Logger;
  readonly metrics?: Registry;
  readonly raft: RaftCallbacks;
  readonly snapshots: SnapshotCallbacks;
  readonly rpcHandlers?: Readonly<Record<string, RpcHandler>>;
  /** Methods callable without cluster id and sender (a joining member asking for the member list). Default ['members']. */
  readonly anonymousRpcMethods?: readonly string[];
  /** A peer refused this member's request: cluster id mismatch, removed member (stop the member), version. */
  readonly onRejected?: (peer: bigint, err: TransportError) => void;
  readonly filter?: MessageFilter;
  readonly tuning?: Partial<TransportTuning>;
  /** Measures activeSince and durations; default the system clock. */
  readonly clock?: Clock;
  readonly timers?: Timers;
  /** Jitter for reconnect backoff. */
  readonly rand?: Rand;
}
