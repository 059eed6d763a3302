/**
 * The lock traffic (P14): clients taking a few named locks through the
 * v3lock service (Lock with a lease of their own, hold briefly, Unlock, then
 * revoke the lease), under whatever faults the run injects. Every lease
 * grant and revoke is an op of the history (so the checkers can explain the
 * deletes of lock keys); each Lock that succeeded is a LockRecord.
 * check-lock.ts holds them to the lock's promise in revision terms.
 *
 * Holding the lock, a client adds one element to the lock's set (Jepsen's
 * lock-protected set): it reads its lock key and the set key, then writes
 * the set plus its element in a txn fenced by its lock key's mod_revision,
 * so the write applies only while the key (and so the lock) is still its
 * own. One holder in eight stalls past its lease's TTL between the read and
 * the write, as a paused process would: its lease may expire, another
 * client may take the lock and add to the set, and the fence must then
 * refuse the stale write. check-lock.ts holds every version of each set to
 * extend the previous one by exactly one new element: a lost or repeated
 * element would show there (without the fence, seed 401 loses four).
 */
import { fromUtf8, utf8 } from '../../src/base/index.js';
import { GrpcError } from '../../src/grpc/index.js';
import { v3lockpb } from '../../src/pb/index.js';
import { delay, methods } from '../harness/index.js';
import type { Access } from './access.js';
import type { RecordingClient } from './client.js';
import type { LockRecord } from './history.js';
import { txn, type TrafficOptions } from './traffic.js';

export const lockPrefix = 'lock/';
/** Where each lock's set lives: lockset/<lock's last path element>. */
export const lockSetPrefix = 'lockset/';
const lockNames = ['lock/a', 'lock/b'];
/** Lock leases: apart from the etcd profile's and the short leases' ids. */
const lockLeaseBase = 1n << 21n;
const lockLeaseTtlS = 5;

export function lockSetKey(lockName: string): string {
  return `${lockSetPrefix}${lockName.slice(lockPrefix.length)}`;
}

export async function runLockClient(c: RecordingClient, endpoints: readonly string[], access: Access, locks: LockRecord[], o: TrafficOptions): Promise<void> {
  let n = 0;
  let at = 0;
  const unrevoked: string[] = [];
  while (!o.stopped()) {
    n++;
    const lease = ((BigInt(c.id) << 24n) + lockLeaseBase + BigInt(n)).toString();
    if ((await c.run('lock-lease-grant', { kind: 'leaseGrant', id: lease, ttl: lockLeaseTtlS })) === undefined) continue;
    const name = lockNames[o.rand.intn(lockNames.length)] as string;
    const ch = access.channel(endpoints[at % endpoints.length] as string, 'traffic');
    try {
      const r = await ch.unary(methods.lock.Lock, v3lockpb.LockRequest.create({ name: utf8(name), lease: BigInt(lease) }), { timeoutMs: 5000 });
      const rec: LockRecord = { name, key: fromUtf8(r.key), client: c.id, rev: r.header?.revision ?? 0, acquiredMs: performance.now() };
      locks.push(rec);
      await addToSet(c, name, rec.key, `s${c.id}-${n}`, o);
      await delay(50 + o.rand.intn(250));
      rec.releasedMs = performance.now();
      await ch.unary(methods.lock.Unlock, v3lockpb.UnlockRequest.create({ key: r.key }), { timeoutMs: 3000 });
    } catch (e) {
      if (!(e instanceof GrpcError)) throw e;
      access.noteError('traffic', e, endpoints[at % endpoints.length] as string);
      at++;
    } finally {
      ch.close();
    }
    // Unlocked or not, the lease goes: a key left behind by a failed Lock or Unlock goes with it.
    if ((await c.run('lock-lease-revoke', { kind: 'leaseRevoke', id: lease })) === undefined) unrevoked.push(lease);
    await delay(o.pauseMs);
  }
  // A lease whose revoke failed expires on its own: let that happen inside the history the checkers see.
  const deadline = performance.now() + (lockLeaseTtlS + 10) * 1000;
  for (const lease of unrevoked) {
    while (performance.now() < deadline && (await c.leaseGone(lease)) !== true) await delay(500);
  }
}

/** Adds element to the lock's set while holding the lock through lockKey (a failure leaves the set as it is, or indeterminate). */
async function addToSet(c: RecordingClient, name: string, lockKey: string, element: string, o: TrafficOptions): Promise<void> {
  const setKey = lockSetKey(name);
  const read = await c.run('lockset-read', txn({ success: [{ type: 'range', key: lockKey }, { type: 'range', key: setKey }] }));
  const [mine, set] = (read?.results ?? []).map((r) => (r.type === 'range' ? r.kvs[0] : undefined));
  // Its lease may already be gone (a slow Lock under faults): then the lock is not ours to write under.
  if (mine === undefined) return;
  if (o.rand.intn(8) === 0) await delay((lockLeaseTtlS + 1) * 1000 + o.rand.intn(2000));
  const value = set === undefined ? element : `${set.value} ${element}`;
  await c.run('lockset-add', txn({ compares: [{ key: lockKey, modRev: mine.modRev }], success: [{ type: 'put', key: setKey, value }] }));
}
