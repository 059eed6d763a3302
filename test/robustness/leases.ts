/**
 * The lease traffic (P13): one client granting short leases — asking 1-5 s,
 * 1 being below the cluster's minimum TTL — putting 1-3 keys of its own on
 * each, and then, at random, keeping it alive for one to three TTLs and
 * revoking it, keeping it alive and then abandoning it, or abandoning it at
 * once. An abandoned lease must expire: all its keys deleted at one
 * revision, never before its TTL has run out since the last keep-alive the
 * leader answered. When traffic stops, the client waits (bounded) until
 * every abandoned lease is gone, then reads the keys, so that the expiries
 * are inside the history the checkers replay. After an acknowledged revoke
 * it sends one more keep-alive and asks the lease's TimeToLive: both must
 * find the lease gone.
 *
 * leaseTraffic runs it over a LeaseTrafficHost: real members through a
 * RecordingClient (runLeaseClient, on the wall clock), or the simulation's
 * members on its clock (test/sim-members/sim.ts).
 */
import type { Rand } from '../../src/base/index.js';
import { delay } from '../harness/index.js';
import type { RecordingClient } from './client.js';
import { nowMs, type KeepAliveRecord, type LeaseRecord, type Request, type Response } from './history.js';
import type { TrafficOptions } from './traffic.js';
import { prefixEnd } from './traffic.js';

export const leaseKeyPrefix = 'lease/';
/** Lease ids of this traffic: apart from the etcd profile's (client << 24 | n, n small). */
const leaseIdBase = 1n << 20n;
/** How long after an abandoned lease's TTL (5 s at most) the final wait gives it to go. */
const finalWaitMs = 20_000;
const finalReadTries = 20;

/** Where the lease traffic runs. */
export interface LeaseTrafficHost {
  readonly clientId: number;
  readonly rand: Rand;
  /** The keys of the traffic's leases are under this prefix. */
  readonly keyPrefix: string;
  nowMs(): number;
  sleep(ms: number): Promise<void>;
  stopped(): boolean;
  /** Waits until a lease may be granted; false: skip this round (nobody serves now). */
  ready(): Promise<boolean>;
  /** Runs and records one request: its response (undefined when it failed) and its op id. */
  run(label: string, req: Request): Promise<{ readonly res: Response | undefined; readonly opId: number }>;
  /** One keep-alive: what the leader answered (ttl 0: the lease is gone), undefined when it failed. */
  keepAlive(id: string): Promise<KeepAliveRecord | undefined>;
  /** LeaseTimeToLive: TTL and granted TTL (-1 and 0: gone), undefined when it failed. */
  timeToLive(id: string): Promise<{ readonly ttl: number; readonly grantedTtl: number } | undefined>;
}

export async function leaseTraffic(h: LeaseTrafficHost, leases: LeaseRecord[]): Promise<void> {
  let n = 0;
  let seq = 0;
  const value = (): string => `c${h.clientId}-${++seq}`;
  while (!h.stopped()) {
    if (!(await h.ready())) continue;
    n++;
    const id = ((BigInt(h.clientId) << 24n) + leaseIdBase + BigInt(n)).toString();
    const ttlAsked = 1 + h.rand.intn(5);
    const grant = await h.run('lease-grant-short', { kind: 'leaseGrant', id, ttl: ttlAsked });
    if (grant.res === undefined) continue;
    const rec: LeaseRecord = { id, client: h.clientId, ttlAsked, grantOp: grant.opId, keys: [], keepAlives: [] };
    leases.push(rec);
    const ttlMs = (grant.res.leaseTtl ?? ttlAsked) * 1000;
    for (let k = 0, count = 1 + h.rand.intn(3); k < count; k++) {
      const key = `${h.keyPrefix}c${h.clientId}-${n}/${k}`;
      rec.keys.push(key);
      await h.run('put-lease-short', { kind: 'txn', txn: { compares: [], success: [{ type: 'put', key, value: value(), lease: id }], failure: [] } });
    }
    const mode = h.rand.intn(3);
    if (mode === 2) {
      rec.abandonedMs = h.nowMs();
      continue;
    }
    const until = h.nowMs() + ttlMs * (1 + h.rand.float() * 2);
    while (!h.stopped() && h.nowMs() < until) {
      const ka = await h.keepAlive(id);
      if (ka !== undefined && ka.ttl > 0) rec.keepAlives.push(ka);
      if (ka !== undefined && ka.ttl <= 0) break;
      await h.sleep(Math.max(300, ttlMs / 3));
    }
    if (mode === 1 && !h.stopped()) {
      rec.abandonedMs = h.nowMs();
      continue;
    }
    const revoke = await h.run('lease-revoke-short', { kind: 'leaseRevoke', id });
    rec.revokeOp = revoke.opId;
    // A failed revoke leaves the lease to expire: wait for that at the end like for an abandoned one.
    if (revoke.res === undefined) rec.abandonedMs = h.nowMs();
    else {
      // Acknowledged: the lease is gone for everyone, whichever member answers (P13).
      const ka = await h.keepAlive(id);
      const t = await h.timeToLive(id);
      rec.afterRevoke = { ...(ka !== undefined ? { keepAliveTtl: ka.ttl, memberId: ka.memberId } : {}), ...(t !== undefined ? { timeToLive: t.ttl, grantedTtl: t.grantedTtl } : {}) };
    }
  }
  await waitForExpiries(h, leases);
  const read: Request = { kind: 'txn', txn: { compares: [], success: [{ type: 'range', key: h.keyPrefix, end: prefixEnd(h.keyPrefix) }], failure: [] } };
  for (let tries = 0; tries < finalReadTries; tries++) {
    if ((await h.run('lease-final-read', read)).res !== undefined) break;
    await h.sleep(500);
  }
}

/** Polls LeaseTimeToLive until each abandoned lease of this client is gone, for at most finalWaitMs after its TTL could have run out. */
async function waitForExpiries(h: LeaseTrafficHost, leases: readonly LeaseRecord[]): Promise<void> {
  for (const l of leases) {
    if (l.client !== h.clientId || l.abandonedMs === undefined) continue;
    const deadline = Math.max(l.abandonedMs, h.nowMs()) + 5000 + finalWaitMs;
    while (h.nowMs() < deadline) {
      const t = await h.timeToLive(l.id);
      if (t !== undefined && t.ttl === -1 && t.grantedTtl === 0) break;
      await h.sleep(500);
    }
  }
}

/** The lease traffic against real members, through one recording client. */
export function runLeaseClient(c: RecordingClient, leases: LeaseRecord[], o: TrafficOptions): Promise<void> {
  return leaseTraffic(
    {
      clientId: c.id,
      rand: o.rand,
      keyPrefix: leaseKeyPrefix,
      nowMs,
      sleep: delay,
      stopped: o.stopped,
      ready: () => Promise.resolve(true),
      run: async (label, req) => ({ res: await c.run(label, req), opId: c.lastOpId }),
      keepAlive: (id) => c.keepAlive(id),
      timeToLive: (id) => c.timeToLive(id),
    },
    leases,
  );
}
