/**
 * transport: the peer transport between etcd-ts members (the role of etcd's
 * rafthttp). Members only talk to members, so the protocol is ours; it keeps
 * rafthttp's behaviour.
 *
 * Promises:
 * - send() never blocks and never throws for a peer's state. Messages to one
 *   peer go in order on two long-lived HTTP/2 streams, MsgApp on one and every
 *   other type on the other (heartbeats and votes never wait behind appends);
 *   each stream keeps order. What is queued in one event-loop turn goes out as
 *   one batch in one write.
 * - Bounded: per peer and stream at most streamQueueMax (4096) messages wait
 *   while connected, pendingQueueMax (64) while (re)connecting, none while
 *   waiting to retry. A message that does not fit is dropped,
 *   etcd_network_peer_sent_failures_total counts it, and raft hears
 *   reportUnreachable (coalesced per peer per turn). Raft retries.
 * - No head-of-line blocking across peers: one HTTP/2 session per peer, each
 *   with its own queues, reconnect timer (exponential backoff with jitter,
 *   50 ms .. 1 s) and HTTP/2 PING liveness check (a ping unanswered for 5 s
 *   tears the connection down). An inbound connection from a peer cuts our
 *   backoff to it short, so a restarted member is back within one dial.
 * - MsgSnap travels on its own request with the backend db streamed after it
 *   (size announced in a header, checked by the receiver); the outcome reaches
 *   raft as reportSnapshot(ok), a failure also as reportUnreachable.
 * - Every incoming request is admitted only with this cluster's id, this
 *   protocol version, this member as recipient and a sender not removed:
 *   412 (cluster id, version, recipient) or 410 (removed member) otherwise.
 *   The sender logs the typed error and passes it to onRejected; a member
 *   told MemberRemovedError about itself should stop, as etcd does.
 * - Callbacks into the member (raft.*, onRejected) come from the event loop,
 *   never synchronously from inside send(); none comes after stop().
 *   raft.process is not guarded: a throw from it crashes the process.
 * - Inbound bounds: a frame over frameBytesMax (64 MiB) resets its stream
 *   (the sender drops such a message before it is sent, so raft cannot loop
 *   on it); partial frames hold only the bytes that arrived; rpc bodies are
 *   capped at rpcBytesMax; a connection that opens no stream within 10 s and
 *   a snapshot stream idle for 30 s are closed; TLS handshakes time out.
 * - stop() closes listeners, sessions, timers and resolves once every socket
 *   is closed: nothing keeps the process alive.
 *
 * Wire protocol (HTTP/2, h2c or TLS 1.2+ with ALPN h2), every request carries
 * x-etcd-cluster-id, x-server-from, x-raft-to (ids in hex), x-etcd-ts-protocol: 1:
 * - POST /raft/stream/msgapp, POST /raft/stream/message: answered 200 at once;
 *   the request body is an endless sequence of frames
 *   `u32 length | u32 CRC-32 (zlib) of payload, or 0 with x-etcd-ts-frame-crc: 0 | raftpb.Message`.
 * - POST /raft/snapshot: one frame (MsgSnap), then the db's bytes to the
 *   end of the request (a sender that fails resets it); answered 204 after
 *   the db is saved and the message stepped.
 * - POST /raft/db, x-etcd-ts-min-index: N: a member repairing its backend
 *   pulls this one's db (db-fetch.ts), answered 200 and the db's bytes to
 *   the end of the answer (reset if the source fails).
 * - POST /raft/rpc/<method>: body in, 200 + body out. Anonymous calls (no
 *   cluster id, no sender) are allowed for anonymousRpcMethods only ('members').
 * - Refusals: 4xx/5xx with x-etcd-ts-error (message) and x-etcd-ts-error-code
 *   (TransportErrorCode); responses carry the receiver's x-etcd-cluster-id.
 *
 * Fault injection: TransportOptions.filter / setFilter() sees every outgoing
 * raft message and returns 'pass', 'drop' or {delayMs}; see MessageFilter.
 */
export { Transport } from './transport.js';
export type {
  TransportOptions, TransportTuning, RaftCallbacks, SnapshotCallbacks, RpcHandler, MessageFilter, FilterVerdict,
} from './options.js';
export { defaultTuning } from './options.js';
export type { AllowedClientNames, PeerTlsOptions, Pem } from './tls.js';
export { clientCertRefusal } from './tls.js';
export type { BackoffPolicy, Timers } from './backoff.js';
export type { PeerStats, LinkState } from './link.js';
export { fetchClusterFromPeers, callPeerUrls, membersRpcMethod, type ClusterInfo, type PeerAnswer, type RpcSender } from './rpc.js';
export { fetchDbFromUrl, type PulledDb } from './db-fetch.js';
export {
  TransportError, transportErrorCodes, type TransportErrorCode,
  ClusterIdMismatchError, MemberRemovedError, IncompatibleVersionError, ToMismatchError, PeerNotFoundError,
  PeerUnreachableError, TimeoutError, StoppedError, FrameTooLargeError, FrameCorruptError, SnapshotIncompleteError,
  UnknownMethodError, RpcFailedError, BadRequestError, TooManyRequestsError,
} from './errors.js';
