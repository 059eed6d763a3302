/**
 * Helpers for mvcc's tests (not part of the module's API): a store in a
 * temporary directory on hand-driven timers, request builders, a lease table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8, type LeaseId } from '../base/index.js';
import { ManualTimers } from '../backend/index.js';
import { etcdserverpb, type mvccpb } from '../pb/index.js';
import { Schema } from '../schema/index.js';
import { KvStore, type KvStoreOptions, type LeaseHooks } from './kv-store.js';

export class TestLeases implements LeaseHooks {
  readonly live = new Set<LeaseId>();
  readonly keysOf = new Map<LeaseId, Set<string>>();
  readonly log: string[] = [];

  exists(id: LeaseId): boolean {
    return this.live.has(id);
  }

  attach(id: LeaseId, keys: readonly Uint8Array[]): void {
    for (const k of keys) {
      this.log.push(`attach ${id} ${Buffer.from(k).toString()}`);
      let set = this.keysOf.get(id);
      if (set === undefined) this.keysOf.set(id, (set = new Set()));
      set.add(Buffer.from(k).toString());
    }
  }

  detach(id: LeaseId, keys: readonly Uint8Array[]): void {
    for (const k of keys) {
      this.log.push(`detach ${id} ${Buffer.from(k).toString()}`);
      this.keysOf.get(id)?.delete(Buffer.from(k).toString());
    }
  }
}

export interface TestStore {
  readonly dir: string;
  readonly timers: ManualTimers;
  store: KvStore;
  leases: TestLeases;
  /** Closes and opens the store again over the same file (fresh lease table unless given). */
  reopen(leases?: TestLeases): Promise<KvStore>;
  close(): Promise<void>;
}

export async function withStore(
  fn: (t: TestStore) => Promise<void> | void,
  options: Partial<Omit<KvStoreOptions, 'schema'>> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mvcc-test-'));
  const timers = new ManualTimers();
  const open = (leases: TestLeases): KvStore => {
    const schema = Schema.open({ path: join(dir, 'db'), timers });
    return KvStore.open({ schema, leases, timers, ...options });
  };
  const leases = new TestLeases();
  const t: TestStore = {
    dir,
    timers,
    leases,
    store: open(leases),
    async reopen(next = new TestLeases()) {
      await t.close();
      t.leases = next;
      t.store = open(next);
      return t.store;
    },
    async close() {
      t.store.close();
      await t.store.backend.close();
    },
  };
  try {
    await fn(t);
    await t.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs ManualTimers and microtasks until the store's compactions are done. */
export async function finishCompactions(t: TestStore): Promise<void> {
  let done = false;
  void t.store.compactionsDone().then(() => (done = true));
  for (let i = 0; i < 100_000 && !done; i++) {
    t.timers.advance(10);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!done) throw new Error('compaction did not finish');
}

export const b = utf8;

export function put(key: string, value: string, extra: Partial<etcdserverpb.PutRequest> = {}): etcdserverpb.PutRequest {
  return etcdserverpb.PutRequest.create({ key: utf8(key), value: utf8(value), ...extra });
}

export function get(key: string, extra: Partial<etcdserverpb.RangeRequest> = {}): etcdserverpb.RangeRequest {
  return etcdserverpb.RangeRequest.create({ key: utf8(key), ...extra });
}

export function del(key: string, extra: Partial<etcdserverpb.DeleteRangeRequest> = {}): etcdserverpb.DeleteRangeRequest {
  return etcdserverpb.DeleteRangeRequest.create({ key: utf8(key), ...extra });
}

export function opPut(p: etcdserverpb.PutRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestPut', value: p } });
}

export function opGet(r: etcdserverpb.RangeRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestRange', value: r } });
}

export function opDel(d: etcdserverpb.DeleteRangeRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestDeleteRange', value: d } });
}

export function opTxn(t: etcdserverpb.TxnRequest): etcdserverpb.RequestOp {
  return etcdserverpb.RequestOp.create({ request: { case: 'requestTxn', value: t } });
}

/** A one-line view of a KeyValue: key=value@create/mod/version(+lease). */
export function show(kv: mvccpb.KeyValue | undefined): string {
  if (kv === undefined) return '-';
  const lease = kv.lease !== 0n ? `+${kv.lease}` : '';
  return `${Buffer.from(kv.key).toString()}=${Buffer.from(kv.value).toString()}@${kv.createRevision}/${kv.modRevision}/${kv.version}${lease}`;
}
