/**
 * Disaster recovery under live clients (reliability scenario P18): a
 * 3-member cluster serves writers doing Kubernetes' guarded updates and
 * reflectors doing its list+watch; a snapshot is saved with Debian's
 * etcdctl; the writes go on a little (they are the ones a restore loses);
 * every member is stopped and wiped, and the cluster is restored from the
 * file with `--bump-revision` and `--mark-compacted`, on the same addresses,
 * while the clients keep running.
 *
 * What must hold:
 * - the restored cluster has a new cluster id and holds exactly the data of
 *   the snapshot's revision (every key, value, version, create and mod
 *   revision), compacted at that revision plus the bump;
 * - no client ever sees a revision go back: each writer's acknowledged
 *   revisions only grow, each reflector's lists and events only move
 *   forward, across the restore too;
 * - a watch carried over the restore is cancelled as compacted (it cannot
 *   be resumed silently past the lost writes), and the reflector relists;
 * - at the end each reflector's cache equals a fresh list at its revision.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Compare, Op, mvccpb, sleep } from '../../src/client/index.js';
import { delay, etcdctl, etcdctlMissing, memberStatus, useWorkspace, type Cluster } from '../harness/index.js';
import { agreedLeader, etcdutl, eventually } from './kit.js';

const skip = etcdctlMissing();
const prefix = '/registry/things/';
const keys = 24;
const bump = 1_000_000;
const newToken = 'p18-restored';

/** A kv as the checks compare it. */
interface Kv {
  readonly value: string;
  readonly createRev: number;
  readonly modRev: number;
  readonly version: number;
}

const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString();
const toKv = (kv: mvccpb.KeyValue): Kv => ({ value: text(kv.value), createRev: Number(kv.createRevision), modRev: Number(kv.modRevision), version: Number(kv.version) });
const asMap = (kvs: readonly mvccpb.KeyValue[]): Map<string, Kv> => new Map(kvs.map((kv) => [text(kv.key), toKv(kv)]));

/** The writers run while writing; the reflectors until they have seen untilRev. */
interface Stop {
  writing: boolean;
  untilRev: number;
}

/** Accumulates what the clients saw go wrong; the test fails on any. */
class Violations {
  readonly list: string[] = [];
  note(who: string, what: string): void {
    if (this.list.length < 50) this.list.push(`${who}: ${what}`);
  }
}

/**
 * Kubernetes' GuaranteedUpdate: read the key, write it back guarded by its
 * mod revision (or by its absence). Records the revision of every write
 * acknowledged, which must grow.
 */
async function writer(id: number, client: Client, stop: Stop, bad: Violations, acked: number[]): Promise<void> {
  let n = 0;
  while (stop.writing) {
    const key = `${prefix}k${(n * 7 + id) % keys}`;
    n++;
    try {
      const cur = (await client.kv.get(key, { timeoutMs: 2000 })).kvs[0];
      const guard = cur === undefined ? Compare.create(key, '=', 0) : Compare.mod(key, '=', Number(cur.modRevision));
      const r = await client.kv.txn().if(guard).then(Op.put(key, `w${id}-${n}`)).commit({ timeoutMs: 2000 });
      if (!r.succeeded) continue;
      const rev = Number(r.header?.revision ?? 0);
      const last = acked.at(-1) ?? 0;
      if (rev <= last) bad.note(`writer ${id}`, `write acknowledged at revision ${rev} after one at ${last}`);
      acked.push(rev);
    } catch {
      await sleep(100); // the cluster is down or electing: try again
    }
  }
}

interface ReflectorResult {
  readonly lists: number;
  readonly compactedWatches: number;
  readonly lastRev: number;
  readonly cache: ReadonlyMap<string, Kv>;
}

/**
 * Kubernetes' reflector: list the prefix, watch it from the list's revision
 * on, keep a cache; on a compacted watch list again. Every revision it sees
 * (list headers, events, watch headers) must be at or past the last one.
 */
async function reflector(id: number, client: Client, stop: Stop, bad: Violations): Promise<ReflectorResult> {
  const who = `reflector ${id}`;
  const cache = new Map<string, Kv>();
  let lastRev = 0;
  let lists = 0;
  let compactedWatches = 0;
  const see = (rev: number, what: string): void => {
    if (rev < lastRev) bad.note(who, `${what} at revision ${rev} after revision ${lastRev}`);
    else lastRev = rev;
  };
  const caughtUp = (): boolean => lastRev >= stop.untilRev;
  while (!caughtUp()) {
    let listed;
    try {
      listed = await client.kv.get(prefix, { prefix: true, timeoutMs: 2000 });
    } catch {
      await sleep(100);
      continue;
    }
    lists++;
    see(Number(listed.header?.revision ?? 0), 'list');
    cache.clear();
    for (const kv of listed.kvs) cache.set(text(kv.key), toKv(kv));
    const ac = new AbortController();
    const watcher = client.watch.watch(prefix, { prefix: true, startRevision: lastRev + 1, progressNotify: true, signal: ac.signal });
    const ticker = setInterval(() => {
      if (caughtUp()) ac.abort();
    }, 50);
    try {
      for await (const resp of watcher) {
        if (resp.compactRevision !== 0) {
          compactedWatches++;
          break;
        }
        if (resp.canceled) break;
        for (const e of resp.events) {
          const kv = e.kv;
          if (kv === undefined) continue;
          see(Number(kv.modRevision), 'event');
          if (e.type === mvccpb.Event_EventType.DELETE) cache.delete(text(kv.key));
          else cache.set(text(kv.key), toKv(kv));
        }
        if (resp.events.length === 0 && resp.header !== undefined) see(Number(resp.header.revision), 'watch progress');
        if (caughtUp()) break;
      }
    } catch {
      // the watch failed for good (canceled on stop): list again or finish
    } finally {
      clearInterval(ticker);
      watcher.cancel();
    }
  }
  return { lists, compactedWatches, lastRev, cache };
}

describe('P18: restore with --bump-revision and --mark-compacted under list+watch clients', { skip }, () => {
  const ws = useWorkspace('ops-restore-traffic');
  let cluster: Cluster;
  const clients: Client[] = [];
  const stop: Stop = { writing: true, untilRev: Number.POSITIVE_INFINITY };

  before(async () => {
    cluster = await ws.startCluster({ kind: 'etcd-ts', size: 3, readyTimeoutMs: 60_000 });
  });
  after(() => {
    // On a failure the loops are still going: end them.
    stop.writing = false;
    stop.untilRev = 0;
    for (const c of clients) c.close();
  });

  test('clients carry on across the restore; revisions never go back; the data is the snapshot', { timeout: 180_000 }, async (t) => {
    const connect = async (rotate: number): Promise<Client> => {
      const eps = cluster.endpoints;
      const r = rotate % eps.length;
      const c = await Client.connect({ endpoints: [...eps.slice(r), ...eps.slice(0, r)], dialTimeoutMs: 5000 });
      clients.push(c);
      return c;
    };
    const bad = new Violations();
    const acked: number[][] = [[], [], [], []];
    const writerRuns: Promise<void>[] = [];
    for (const [i, revs] of acked.entries()) writerRuns.push(writer(i, await connect(i), stop, bad, revs));
    const reflectorRuns: Promise<ReflectorResult>[] = [];
    for (let i = 0; i < 3; i++) reflectorRuns.push(reflector(i, await connect(i + 1), stop, bad));
    // Every writer has written before the snapshot (then some more traffic).
    await eventually('every writer to write', () => Promise.resolve(acked.every((revs) => revs.length > 0) ? true : undefined), 30_000);
    await delay(1000);

    // The snapshot, saved by Debian's etcdctl from one member; its revision from its status.
    const snapFile = join(ws.dir, 'p18.db');
    const saved = await etcdctl(['snapshot', 'save', snapFile], { endpoints: [cluster.member(0).endpoint], timeoutMs: 30_000 });
    assert.equal(saved.code, 0, saved.stderr);
    const status = await etcdutl(['snapshot', 'status', snapFile, '-w', 'json']);
    assert.equal(status.code, 0, status.stderr);
    const snapRev = (JSON.parse(status.stdout) as { revision: number }).revision;
    const admin = await connect(0);
    const atSnap = asMap((await admin.kv.get(prefix, { prefix: true, revision: snapRev })).kvs);
    assert.ok(atSnap.size > 0, 'the snapshot holds the writers\' keys');
    const sourceId = (await memberStatus(cluster.member(0).endpoint)).header?.clusterId;
    await delay(1000); // writes that the restore loses

    // Every member stopped and wiped, then restored from the file on the same addresses.
    await cluster.stop();
    const initialCluster = cluster.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (let i = 0; i < cluster.members.length; i++) {
      rmSync(cluster.member(i).dataDir, { recursive: true, force: true });
      const m = cluster.replaceMember(i, { clusterToken: newToken, initialClusterState: 'new' });
      const r = await etcdutl([
        'snapshot', 'restore', snapFile, '--name', m.name, '--data-dir', m.dataDir,
        '--initial-cluster', initialCluster, '--initial-cluster-token', newToken, '--initial-advertise-peer-urls', m.peerUrl,
        '--bump-revision', String(bump), '--mark-compacted',
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    await Promise.all(cluster.members.map((m) => m.start({ wait: false })));
    await Promise.all(cluster.members.map((m) => m.waitReady({ timeoutMs: 60_000 })));
    await agreedLeader(cluster.members);

    const restoredRev = snapRev + bump;
    const ids = new Set<bigint | undefined>();
    for (const m of cluster.members) ids.add((await memberStatus(m.endpoint)).header?.clusterId);
    assert.equal(ids.size, 1, 'one cluster id among the restored members');
    assert.notEqual([...ids][0], sourceId, 'the restored cluster has a new id');
    assert.deepEqual(asMap((await admin.kv.get(prefix, { prefix: true, revision: restoredRev })).kvs), atSnap, 'the restored data is the snapshot\'s');
    await assert.rejects(admin.kv.get(prefix, { prefix: true, revision: restoredRev - 1 }), { message: 'etcdserver: mvcc: required revision has been compacted' });

    // The clients carry on against the restored cluster: every writer gets writes through
    // (their clients redial with backoff), then a little more traffic.
    await eventually('every writer to write to the restored cluster', () => Promise.resolve(acked.every((revs) => revs.some((r) => r > restoredRev)) ? true : undefined), 30_000);
    await delay(1000);
    stop.writing = false;
    await Promise.all(writerRuns);
    stop.untilRev = Number((await admin.kv.get(prefix, { prefix: true, limit: 1 })).header?.revision ?? 0);
    const reflected = await Promise.all(reflectorRuns);

    t.diagnostic(
      `snapshot at revision ${snapRev}, restored at ${restoredRev}; writes acknowledged: ${acked.map((a) => a.length).join(', ')}; ` +
        `reflectors' lists: ${reflected.map((r) => r.lists).join(', ')}, compacted watches: ${reflected.map((r) => r.compactedWatches).join(', ')}`,
    );
    assert.deepEqual(bad.list, []);
    for (const [i, revs] of acked.entries()) {
      assert.ok(revs.some((r) => r <= snapRev), `writer ${i} wrote before the snapshot`);
      assert.ok(revs.some((r) => r > restoredRev), `writer ${i} wrote after the restore`);
      assert.ok(!revs.some((r) => r > snapRev + bump / 2 && r <= restoredRev), `writer ${i}: no write acknowledged inside the bump`);
    }
    for (const [i, r] of reflected.entries()) {
      assert.ok(r.compactedWatches >= 1, `reflector ${i}: its watch over the restore was cancelled as compacted`);
      assert.ok(r.lists >= 2, `reflector ${i} listed again`);
      const fresh = asMap((await admin.kv.get(prefix, { prefix: true, revision: r.lastRev })).kvs);
      assert.deepEqual(r.cache, fresh, `reflector ${i}: its cache is the list at revision ${r.lastRev}`);
    }
  });
});
