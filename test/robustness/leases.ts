/**
 * The lease traffic (P13): one client granting short leases — asking 1-5 s,
 * 1 being below the cluster's minimum TTL — putting 1-3 keys of its own on
 * each, and then, at random, keeping it alive for one to three TTLs and
 * revoking it, keeping it alive and then abandoning it, or abandoning it at
 * once. An abandoned lease must expire: all its keys deleted at one
 * revision, never before its TTL has run out since the last keep-alive the
 * leader answered. When traffic stops, the client revokes the lease it keeps
 * and waits (bounded) until every abandoned lease is gone, then reads the
 * keys, so that the expiries are inside the history the checkers replay.
 * After an acknowledged revoke it sends one more keep-alive and asks the
 * lease's TimeToLive: both must find the lease gone.
 */
import { delay } from '../harness/index.js';
import type { RecordingClient } from './client.js';
import type { LeaseRecord } from './history.js';
import type { TrafficOptions } from './traffic.js';
import { prefixEnd } from './traffic.js';

export const leaseKeyPrefix = 'lease/';
/** Lease ids of this traffic: apart from the etcd profile's (client << 24 | n, n small). */
const leaseIdBase = 1n << 20n;
const finalWaitMs = 20_000;

export async function runLeaseClient(c: RecordingClient, leases: LeaseRecord[], o: TrafficOptions): Promise<void> {
  let n = 0;
  let seq = 0;
  const value = (): string => `c${c.id}-${++seq}`;
  while (!o.stopped()) {
    n++;
    const id = ((BigInt(c.id) << 24n) + leaseIdBase + BigInt(n)).toString();
    const ttlAsked = 1 + o.rand.intn(5);
    const granted = await c.run('lease-grant-short', { kind: 'leaseGrant', id, ttl: ttlAsked });
    if (granted === undefined) continue;
    const rec: LeaseRecord = { id, client: c.id, ttlAsked, grantOp: c.lastOpId, keys: [], keepAlives: [] };
    leases.push(rec);
    const ttlMs = (granted.leaseTtl ?? ttlAsked) * 1000;
    for (let k = 0, count = 1 + o.rand.intn(3); k < count; k++) {
      const key = `${leaseKeyPrefix}c${c.id}-${n}/${k}`;
      rec.keys.push(key);
      await c.run('put-lease-short', { kind: 'txn', txn: { compares: [], success: [{ type: 'put', key, value: value(), lease: id }], failure: [] } });
    }
    const mode = o.rand.intn(3);
    if (mode === 2) {
      rec.abandonedMs = performance.now();
      continue;
    }
    const until = performance.now() + ttlMs * (1 + o.rand.float() * 2);
    while (!o.stopped() && performance.now() < until) {
      const ka = await c.keepAlive(id);
      if (ka !== undefined && ka.ttl > 0) rec.keepAlives.push(ka);
      if (ka !== undefined && ka.ttl <= 0) break;
      await delay(Math.max(300, ttlMs / 3));
    }
    if (mode === 1 && !o.stopped()) {
      rec.abandonedMs = performance.now();
      continue;
    }
    const revoked = await c.run('lease-revoke-short', { kind: 'leaseRevoke', id });
    rec.revokeOp = c.lastOpId;
    // A failed revoke leaves the lease to expire: wait for that at the end like for an abandoned one.
    if (revoked === undefined) rec.abandonedMs = performance.now();
    else {
      // Acknowledged: the lease is gone for everyone, whichever member answers (P13).
      const ka = await c.keepAlive(id);
      const t = await c.timeToLive(id);
      rec.afterRevoke = { ...(ka !== undefined ? { keepAliveTtl: ka.ttl, memberId: ka.memberId } : {}), ...(t !== undefined ? { timeToLive: t.ttl, grantedTtl: t.grantedTtl } : {}) };
    }
  }
  await waitForExpiries(c, leases);
  await c.run('lease-final-read', { kind: 'txn', txn: { compares: [], success: [{ type: 'range', key: leaseKeyPrefix, end: prefixEnd(leaseKeyPrefix) }], failure: [] } });
}

/** Polls LeaseTimeToLive until every abandoned lease is gone, for at most finalWaitMs after its TTL ran out. */
async function waitForExpiries(c: RecordingClient, leases: readonly LeaseRecord[]): Promise<void> {
  for (const l of leases) {
    if (l.abandonedMs === undefined) continue;
    const deadline = l.abandonedMs + 5000 + finalWaitMs;
    while (performance.now() < deadline) {
      if ((await c.leaseGone(l.id)) === true) break;
      await delay(500);
    }
  }
}
