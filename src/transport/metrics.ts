/**
 * The transport's Prometheus metrics, with etcd 3.4's names, help texts,
 * label names and buckets (etcdserver/api/rafthttp/metrics.go). Without a
 * Registry every method is a no-op, so call sites need no conditionals.
 */
import {
  exponentialBuckets, idToHex, type Counter, type Gauge, type Histogram, type Registry,
} from '../base/index.js';

interface Instruments {
  activePeers: Gauge;
  disconnectedPeers: Counter;
  sentBytes: Counter;
  receivedBytes: Counter;
  sentFailures: Counter;
  recvFailures: Counter;
  snapshotSend: Counter;
  snapshotSendInflights: Gauge;
  snapshotSendFailures: Counter;
  snapshotSendSeconds: Histogram;
  snapshotReceive: Counter;
  snapshotReceiveInflights: Gauge;
  snapshotReceiveFailures: Counter;
  snapshotReceiveSeconds: Histogram;
  rttSec: Histogram;
}

function register(r: Registry): Instruments {
  const snapBuckets = exponentialBuckets(0.1, 2, 10);
  return {
    activePeers: r.gauge('etcd_network_active_peers', 'The current number of active peer connections.', ['Local', 'Remote']),
    disconnectedPeers: r.counter('etcd_network_disconnected_peers_total', 'The total number of disconnected peers.', ['Local', 'Remote']),
    sentBytes: r.counter('etcd_network_peer_sent_bytes_total', 'The total number of bytes sent to peers.', ['To']),
    receivedBytes: r.counter('etcd_network_peer_received_bytes_total', 'The total number of bytes received from peers.', ['From']),
    sentFailures: r.counter('etcd_network_peer_sent_failures_total', 'The total number of send failures from peers.', ['To']),
    recvFailures: r.counter('etcd_network_peer_received_failures_total', 'The total number of receive failures from peers.', ['From']),
    snapshotSend: r.counter('etcd_network_snapshot_send_success', 'Total number of successful snapshot sends', ['To']),
    snapshotSendInflights: r.gauge('etcd_network_snapshot_send_inflights_total', 'Total number of inflight snapshot sends', ['To']),
    snapshotSendFailures: r.counter('etcd_network_snapshot_send_failures', 'Total number of snapshot send failures', ['To']),
    snapshotSendSeconds: r.histogram('etcd_network_snapshot_send_total_duration_seconds', 'Total latency distributions of v3 snapshot sends', snapBuckets, ['To']),
    snapshotReceive: r.counter('etcd_network_snapshot_receive_success', 'Total number of successful snapshot receives', ['From']),
    snapshotReceiveInflights: r.gauge('etcd_network_snapshot_receive_inflights_total', 'Total number of inflight snapshot receives', ['From']),
    snapshotReceiveFailures: r.counter('etcd_network_snapshot_receive_failures', 'Total number of snapshot receive failures', ['From']),
    snapshotReceiveSeconds: r.histogram('etcd_network_snapshot_receive_total_duration_seconds', 'Total latency distributions of v3 snapshot receives', snapBuckets, ['From']),
    rttSec: r.histogram('etcd_network_peer_round_trip_time_seconds', 'Round-Trip-Time histogram between peers', exponentialBuckets(0.0001, 2, 16), ['To']),
  };
}

/** Peers are labelled as etcd labels them: the id in lower-case hex. */
export class TransportMetrics {
  private readonly m: Instruments | undefined;
  private readonly local: string;

  constructor(registry: Registry | undefined, localId: bigint) {
    this.m = registry === undefined ? undefined : register(registry);
    this.local = idToHex(localId);
  }

  peerActive(id: bigint, active: boolean): void {
    if (this.m === undefined) return;
    const labels = { Local: this.local, Remote: idToHex(id) };
    this.m.activePeers.set(active ? 1 : 0, labels);
    if (!active) this.m.disconnectedPeers.inc(labels);
  }

  sent(to: bigint, bytes: number): void {
    this.m?.sentBytes.inc({ To: idToHex(to) }, bytes);
  }

  received(from: bigint, bytes: number): void {
    this.m?.receivedBytes.inc({ From: idToHex(from) }, bytes);
  }

  sendFailed(to: bigint, count = 1): void {
    this.m?.sentFailures.inc({ To: idToHex(to) }, count);
  }

  /** `from` is a peer id, or the remote address when the id is not known (as etcd does). */
  receiveFailed(from: bigint | string): void {
    this.m?.recvFailures.inc({ From: typeof from === 'string' ? from : idToHex(from) });
  }

  rtt(to: bigint, seconds: number): void {
    this.m?.rttSec.observe(seconds, { To: idToHex(to) });
  }

  snapshotSendStarted(to: bigint): void {
    this.m?.snapshotSendInflights.inc({ To: idToHex(to) });
  }

  snapshotSendDone(to: bigint, ok: boolean, seconds: number): void {
    if (this.m === undefined) return;
    const labels = { To: idToHex(to) };
    this.m.snapshotSendInflights.dec(labels);
    if (ok) {
      this.m.snapshotSend.inc(labels);
      this.m.snapshotSendSeconds.observe(seconds, labels);
    } else {
      this.m.snapshotSendFailures.inc(labels);
    }
  }

  snapshotReceiveStarted(from: bigint): void {
    this.m?.snapshotReceiveInflights.inc({ From: idToHex(from) });
  }

  snapshotReceiveDone(from: bigint, ok: boolean, seconds: number): void {
    if (this.m === undefined) return;
    const labels = { From: idToHex(from) };
    this.m.snapshotReceiveInflights.dec(labels);
    if (ok) {
      this.m.snapshotReceive.inc(labels);
      this.m.snapshotReceiveSeconds.observe(seconds, labels);
    } else {
      this.m.snapshotReceiveFailures.inc(labels);
    }
  }

  /** A snapshot refused before the sender was known (etcd's UNKNOWN_SNAPSHOT_SENDER). */
  snapshotReceiveRefused(from: bigint | undefined): void {
    this.m?.snapshotReceiveFailures.inc({ From: from === undefined ? 'UNKNOWN_SNAPSHOT_SENDER' : idToHex(from) });
  }
}
