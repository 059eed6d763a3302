/**
 * Lease: grant, revoke, time-to-live, list, and keep-alive.
 *
 * Keep-alives of all leases share one LeaseKeepAlive stream. Each kept-alive
 * lease is renewed every TTL/3 (as clientv3 does); the stream is reopened on
 * failure. A lease is lost when the server answers TTL <= 0 (expired or
 * revoked) or when no renewal succeeded before its deadline: then the handle's
 * `lost` promise resolves with the reason and its response iterator ends.
 */
import type { ClientDuplexCall } from '../grpc/index.js';
import { etcdserverpb } from '../pb/index.js';
import type { CallOptions, Connection } from './connection.js';
import { ClientError, clientFailure, etcdError, toClientError } from './errors.js';
import { AsyncQueue, sleep } from './queue.js';

const leaseMethods = etcdserverpb.LeaseService.methods;
const reconnectPauseMs = 500;
const keepAliveQueueMax = 16;

/** A lease being kept alive. Iterate it for the renewals; close() stops renewing (the lease stays). */
export class LeaseKeepAlive implements AsyncIterable<etcdserverpb.LeaseKeepAliveResponse> {
  readonly responses = new AsyncQueue<etcdserverpb.LeaseKeepAliveResponse>(keepAliveQueueMax);
  /** Resolves once the lease is gone or no longer renewed, with why. */
  readonly lost: Promise<ClientError>;
  resolveLost!: (e: ClientError) => void;
  /** Epoch ms of the next renewal to send. */
  nextSendMs = 0;
  /** Epoch ms after which the lease is considered expired without a renewal. */
  deadlineMs: number;
  stopped = false;

  constructor(
    readonly id: bigint,
    ttlSeconds: number,
    private readonly owner: Lease,
  ) {
    this.deadlineMs = Date.now() + ttlSeconds * 1000;
    this.lost = new Promise((resolve) => {
      this.resolveLost = resolve;
    });
  }

  close(): void {
    this.owner.stopKeepAlive(this, clientFailure('etcdclient: keep alive closed'));
  }

  [Symbol.asyncIterator](): AsyncIterator<etcdserverpb.LeaseKeepAliveResponse> {
    return this.responses[Symbol.asyncIterator]();
  }
}

export class Lease {
  private readonly kept = new Map<bigint, LeaseKeepAlive[]>();
  private call: ClientDuplexCall<etcdserverpb.LeaseKeepAliveRequest, etcdserverpb.LeaseKeepAliveResponse> | undefined;
  private loopRunning = false;
  private readonly stopAll = new AbortController();

  constructor(private readonly conn: Connection) {}

  grant(ttlSeconds: number, o: CallOptions & { id?: bigint } = {}): Promise<etcdserverpb.LeaseGrantResponse> {
    return this.conn.unary(leaseMethods.LeaseGrant, { TTL: ttlSeconds, ID: o.id ?? 0n }, 'nonRepeatable', o);
  }

  revoke(id: bigint, o: CallOptions = {}): Promise<etcdserverpb.LeaseRevokeResponse> {
    return this.conn.unary(leaseMethods.LeaseRevoke, { ID: id }, 'repeatable', o);
  }

  timeToLive(id: bigint, o: CallOptions & { keys?: boolean } = {}): Promise<etcdserverpb.LeaseTimeToLiveResponse> {
    return this.conn.unary(leaseMethods.LeaseTimeToLive, { ID: id, keys: o.keys ?? false }, 'repeatable', o);
  }

  leases(o: CallOptions = {}): Promise<etcdserverpb.LeaseLeasesResponse> {
    return this.conn.unary(leaseMethods.LeaseLeases, {}, 'repeatable', o);
  }

  /** Renews the lease once; rejects with "requested lease not found" if it is gone. */
  async keepAliveOnce(id: bigint, o: CallOptions = {}): Promise<etcdserverpb.LeaseKeepAliveResponse> {
    const call = await this.conn.bidi(leaseMethods.LeaseKeepAlive, o);
    try {
      call.write({ ID: id });
      const resp = await call.read();
      if (resp === undefined) throw clientFailure('etcdclient: keep alive stream ended');
      if (resp.TTL <= 0) throw etcdError('LeaseNotFound');
      return resp;
    } catch (err) {
      throw toClientError(err);
    } finally {
      call.cancel();
    }
  }

  /** Keeps the lease alive until close() or loss; the first renewal is sent at once. */
  keepAlive(id: bigint, ttlSecondsHint = 0): LeaseKeepAlive {
    const ka = new LeaseKeepAlive(id, Math.max(ttlSecondsHint, 1), this);
    // Without a known TTL the lease is presumed alive until the first answer.
    if (ttlSecondsHint <= 0) ka.deadlineMs = Number.MAX_SAFE_INTEGER;
    const list = this.kept.get(id) ?? [];
    list.push(ka);
    this.kept.set(id, list);
    if (!this.loopRunning) {
      this.loopRunning = true;
      void this.loop();
    } else {
      this.call?.write({ ID: id });
    }
    return ka;
  }

  stopKeepAlive(ka: LeaseKeepAlive, why: ClientError): void {
    if (ka.stopped) return;
    ka.stopped = true;
    ka.resolveLost(why);
    ka.responses.close();
    const list = (this.kept.get(ka.id) ?? []).filter((k) => k !== ka);
    if (list.length === 0) this.kept.delete(ka.id);
    else this.kept.set(ka.id, list);
  }

  close(): void {
    this.stopAll.abort();
    for (const list of [...this.kept.values()]) for (const ka of list) this.stopKeepAlive(ka, clientFailure('etcdclient: client closed'));
    this.call?.cancel();
  }

  /** Runs the keep-alive stream while any lease is kept; renews each every TTL/3. */
  private async loop(): Promise<void> {
    const signal = AbortSignal.any([this.stopAll.signal, this.conn.closeSignal]);
    while (this.kept.size > 0 && !signal.aborted) {
      let call;
      try {
        // As clientv3's keep-alive stream: leader-requiring, so that a member cut off from its
        // cluster ends it (etcdserver: no leader) and renewals go on through another endpoint
        // before the lease runs out, rather than waiting out that member's request timeout.
        call = await this.conn.bidi(leaseMethods.LeaseKeepAlive, { signal, requireLeader: true });
      } catch {
        this.expireOverdue();
        await sleep(reconnectPauseMs, signal);
        continue;
      }
      this.call = call;
      for (const list of this.kept.values()) for (const ka of list) ka.nextSendMs = 0;
      const sender = this.sendLoop(call, signal);
      try {
        for (;;) {
          const resp = await call.read();
          if (resp === undefined) break;
          this.onResponse(resp);
          if (this.kept.size === 0) break;
        }
      } catch {
        // The stream broke; reopen it below while leases are kept.
      }
      call.cancel();
      this.call = undefined;
      await sender;
      this.expireOverdue();
      if (this.kept.size > 0) await sleep(reconnectPauseMs, signal);
    }
    this.loopRunning = false;
    if (this.kept.size > 0 && !signal.aborted) {
      this.loopRunning = true;
      void this.loop();
    }
  }

  private async sendLoop(
    call: ClientDuplexCall<etcdserverpb.LeaseKeepAliveRequest, etcdserverpb.LeaseKeepAliveResponse>,
    signal: AbortSignal,
  ): Promise<void> {
    while (this.call === call && !signal.aborted) {
      const now = Date.now();
      for (const [id, list] of this.kept) {
        const due = list.some((ka) => ka.nextSendMs <= now);
        if (!due) continue;
        for (const ka of list) ka.nextSendMs = now + 1000;
        call.write({ ID: id });
      }
      this.expireOverdue();
      await sleep(500, signal);
    }
  }

  private onResponse(resp: etcdserverpb.LeaseKeepAliveResponse): void {
    const list = this.kept.get(resp.ID);
    if (list === undefined) return;
    if (resp.TTL <= 0) {
      for (const ka of [...list]) this.stopKeepAlive(ka, etcdError('LeaseNotFound'));
      return;
    }
    const now = Date.now();
    for (const ka of list) {
      ka.deadlineMs = now + resp.TTL * 1000;
      ka.nextSendMs = now + (resp.TTL * 1000) / 3;
      // A reader that does not keep up misses renewals, as clientv3 drops them.
      ka.responses.offer(resp);
    }
  }

  private expireOverdue(): void {
    const now = Date.now();
    for (const list of [...this.kept.values()]) {
      for (const ka of list) {
        if (ka.deadlineMs <= now) this.stopKeepAlive(ka, clientFailure('etcdclient: lease keepalive response not received before its TTL'));
      }
    }
  }
}
