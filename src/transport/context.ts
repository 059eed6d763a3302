/** What the transport's parts (peer links, the listener's handlers) share. */
import type { Clock, Logger, Rand } from '../base/index.js';
import type { Timers } from './backoff.js';
import type { TransportError } from './errors.js';
import type { TransportMetrics } from './metrics.js';
import type { RaftCallbacks, RpcHandler, SnapshotCallbacks, TransportTuning } from './options.js';
import type { PeerTlsOptions } from './tls.js';

export interface TransportContext {
  readonly localId: bigint;
  readonly clusterId: bigint;
  readonly logger: Logger;
  readonly metrics: TransportMetrics;
  readonly raft: RaftCallbacks;
  readonly snapshots: SnapshotCallbacks;
  readonly rpcHandlers: Readonly<Record<string, RpcHandler>>;
  readonly anonymousRpcMethods: ReadonlySet<string>;
  readonly tuning: TransportTuning;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly rand: Rand;
  readonly tls: PeerTlsOptions | undefined;
  /** True once stop() began: nothing may call back into the member any more. */
  readonly stopped: boolean;
  /** Coalesces reports so that a burst of drops costs raft one MsgUnreachable. */
  reportUnreachable(id: bigint): void;
  /** Deferred to a microtask, so never re-entrant into the member's send(). */
  reportSnapshot(id: bigint, ok: boolean): void;
  rejected(peer: bigint, err: TransportError): void;
  /** An inbound stream from this peer was accepted: it is up, so dial it now if waiting to retry. */
  peerSeen(id: bigint): void;
  /** A member this one knows (added as a peer): only those may open raft streams to it. */
  isPeer(id: bigint): boolean;
}
