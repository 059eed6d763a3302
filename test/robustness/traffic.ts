/**
 * The two traffic profiles of etcd's robustness tests, as sequential client
 * loops over a small key space (few keys keep conflicts, and so the checks,
 * interesting):
 *
 * - etcd: get, range (with and without a limit), serializable get, stale
 *   get at an explicit revision, put, delete, compare-and-swap on
 *   mod_revision, a 4-op txn, put with a lease, lease revoke.
 * - kubernetes: create and update and delete as txns guarded by
 *   mod_revision (the optimistic concurrency of the apiserver), gets, and
 *   lists paginated at one fixed revision.
 *
 * Every put value is unique (client id and sequence number).
 */
import type { Rand } from '../../src/base/index.js';
import { delay } from '../harness/index.js';
import type { TxnOp, TxnRequest } from './history.js';
import type { RecordingClient } from './client.js';

export const etcdKeyPrefix = 'key/';
export const k8sKeyPrefix = 'pods/';
const keyCount = 10;
/** Leases outlive every run: expiry is not what these profiles test. */
const leaseTtlS = 3600;

export type Profile = 'etcd' | 'kubernetes';

export interface TrafficOptions {
  readonly rand: Rand;
  /** Pause between two requests of one client, to hold the load down. */
  readonly pauseMs: number;
  readonly stopped: () => boolean;
}

export const txn = (t: Partial<TxnRequest>): { kind: 'txn'; txn: TxnRequest } => ({
  kind: 'txn',
  txn: { compares: t.compares ?? [], success: t.success ?? [], failure: t.failure ?? [] },
});

/** Picks one item by weight. */
function pick<T extends string>(rand: Rand, weights: Readonly<Record<T, number>>): T {
  const entries = Object.entries(weights) as [T, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let x = rand.float() * total;
  for (const [k, w] of entries) {
    x -= w;
    if (x < 0) return k;
  }
  return (entries[entries.length - 1] as [T, number])[0];
}

const etcdWeights = {
  get: 20, range: 8, serializableGet: 8, staleGet: 5, put: 20, delete: 8, cas: 12, multiTxn: 6, putWithLease: 6, revoke: 3,
} as const;

export async function runEtcdClient(c: RecordingClient, o: TrafficOptions): Promise<void> {
  const key = (): string => `${etcdKeyPrefix}${o.rand.intn(keyCount)}`;
  let seq = 0;
  const value = (): string => `c${c.id}-${++seq}`;
  let lease: string | undefined;
  let leaseSeq = 0;
  while (!o.stopped()) {
    switch (pick(o.rand, etcdWeights)) {
      case 'get':
        await c.run('get', txn({ success: [{ type: 'range', key: key() }] }));
        break;
      case 'range':
        await c.run('range', txn({ success: [{ type: 'range', key: etcdKeyPrefix, end: prefixEnd(etcdKeyPrefix), limit: o.rand.intn(2) === 0 ? 0 : 4 }] }));
        break;
      case 'serializableGet':
        await c.run('serializable-get', txn({ success: [{ type: 'range', key: key(), serializable: true }] }));
        break;
      case 'staleGet': {
        const revision = Math.max(1, c.lastRevision - o.rand.intn(20));
        await c.run('stale-get', txn({ success: [{ type: 'range', key: key(), revision }] }));
        break;
      }
      case 'put':
        await c.run('put', txn({ success: [{ type: 'put', key: key(), value: value(), prevKv: o.rand.intn(2) === 0 }] }));
        break;
      case 'delete':
        await c.run('delete', txn({ success: [{ type: 'delete', key: key() }] }));
        break;
      case 'cas': {
        const k = key();
        const got = await c.run('cas-read', txn({ success: [{ type: 'range', key: k }] }));
        if (got === undefined) break;
        const first = got.results[0];
        const modRev = first?.type === 'range' ? (first.kvs[0]?.modRev ?? 0) : 0;
        await c.run('cas', txn({ compares: [{ key: k, modRev }], success: [{ type: 'put', key: k, value: value() }], failure: [{ type: 'range', key: k }] }));
        break;
      }
      case 'multiTxn': {
        const keys = [...new Set([key(), key(), key(), key()])];
        const ops: TxnOp[] = keys.map((k, i) => (i === 0 || o.rand.intn(3) > 0 ? { type: 'put', key: k, value: value() } : { type: 'delete', key: k }));
        await c.run('txn-4', txn({ success: ops }));
        break;
      }
      case 'putWithLease': {
        if (lease === undefined) {
          const id = ((BigInt(c.id) << 24n) + BigInt(++leaseSeq)).toString();
          const granted = await c.run('lease-grant', { kind: 'leaseGrant', id, ttl: leaseTtlS });
          if (granted === undefined) break;
          lease = id;
        }
        await c.run('put-lease', txn({ success: [{ type: 'put', key: key(), value: value(), lease }] }));
        break;
      }
      case 'revoke':
        if (lease === undefined) break;
        await c.run('lease-revoke', { kind: 'leaseRevoke', id: lease });
        lease = undefined;
        break;
    }
    await delay(o.pauseMs);
  }
}

const k8sWeights = { create: 15, update: 35, delete: 8, get: 17, list: 25 } as const;

export async function runKubernetesClient(c: RecordingClient, o: TrafficOptions): Promise<void> {
  const key = (): string => `${k8sKeyPrefix}${o.rand.intn(keyCount)}`;
  let seq = 0;
  const value = (): string => `c${c.id}-${++seq}`;
  const readModRev = async (label: string, k: string): Promise<number | undefined> => {
    const got = await c.run(label, txn({ success: [{ type: 'range', key: k }] }));
    const first = got?.results[0];
    return first?.type === 'range' ? (first.kvs[0]?.modRev ?? 0) : undefined;
  };
  while (!o.stopped()) {
    switch (pick(o.rand, k8sWeights)) {
      case 'create': {
        const k = key();
        await c.run('k8s-create', txn({ compares: [{ key: k, modRev: 0 }], success: [{ type: 'put', key: k, value: value() }], failure: [{ type: 'range', key: k }] }));
        break;
      }
      case 'update': {
        const k = key();
        const modRev = await readModRev('k8s-get', k);
        if (modRev === undefined || modRev === 0) break;
        await c.run('k8s-update', txn({ compares: [{ key: k, modRev }], success: [{ type: 'put', key: k, value: value() }], failure: [{ type: 'range', key: k }] }));
        break;
      }
      case 'delete': {
        const k = key();
        const modRev = await readModRev('k8s-get', k);
        if (modRev === undefined || modRev === 0) break;
        await c.run('k8s-delete', txn({ compares: [{ key: k, modRev }], success: [{ type: 'delete', key: k }], failure: [{ type: 'range', key: k }] }));
        break;
      }
      case 'get':
        await readModRev('k8s-get', key());
        break;
      case 'list':
        await listPaginated(c, 3);
        break;
    }
    await delay(o.pauseMs);
  }
}

/** The apiserver's list: a first page at the latest revision, the rest at that same revision. */
export async function listPaginated(c: RecordingClient, pageSize: number): Promise<number | undefined> {
  const end = prefixEnd(k8sKeyPrefix);
  const first = await c.run('k8s-list', txn({ success: [{ type: 'range', key: k8sKeyPrefix, end, limit: pageSize }] }));
  if (first === undefined) return undefined;
  const revision = first.revision;
  let page = first.results[0];
  for (let pages = 1; page?.type === 'range' && page.more && pages < 10; pages++) {
    const lastKey = page.kvs[page.kvs.length - 1]?.key;
    if (lastKey === undefined) break;
    const next = await c.run('k8s-list-page', txn({ success: [{ type: 'range', key: `${lastKey}\0`, end, limit: pageSize, revision }] }));
    if (next === undefined) return undefined;
    page = next.results[0];
  }
  return revision;
}

/** The end of a prefix range (ASCII prefixes: bump the last character). */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
