/**
 * Snapshot files cross between etcd-ts and the real etcd 3.4.23 both ways:
 *
 * - etcd-ts serves `etcdctl snapshot save` a bbolt file that Debian's own
 *   etcdctl reads (`snapshot status` agrees with etcdutl-ts's to the hash)
 *   and restores, and the real etcd started on that restore serves the same
 *   keys at the same revisions, the same compaction, users, roles and leases;
 * - etcd's snapshot file, or the db file of a stopped etcd member, restored
 *   with etcdutl-ts starts an etcd-ts member that serves what the etcd did.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BboltReader } from '../../src/backend/index.js';
import { etcdctl, etcdctlMissing, etcdMissing, memberStatus, useWorkspace, type Cluster, type Member, type MemberKind } from '../harness/index.js';
import { etcdutl, planMembers } from './kit.js';

const skip = etcdctlMissing() || etcdMissing();

/** Writes the same history into a cluster of either kind; its last revision is 43. */
async function fill(endpoints: readonly string[]): Promise<void> {
  const ok = async (args: string[]): Promise<string> => {
    const r = await etcdctl(args, { endpoints });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  for (let i = 0; i < 30; i++) await ok(['put', `k/${String(i).padStart(2, '0')}`, `v${i}`]);
  await ok(['put', 'k/03', 'overwritten']);
  await ok(['del', 'k/04']);
  await ok(['compact', '20']);
  const granted = await ok(['lease', 'grant', '900']);
  const leaseId = /lease ([0-9a-f]+) granted/.exec(granted)?.[1];
  assert.ok(leaseId !== undefined, granted);
  await ok(['put', 'leased', 'x', '--lease', leaseId]);
  await ok(['put', 'bin\u00e9', '\u00ff'.repeat(3)]);
  await ok(['put', 'big', 'b'.repeat(20_000)]);
  await ok(['user', 'add', 'alice:secret']);
  await ok(['role', 'add', 'reader']);
  await ok(['role', 'grant-permission', 'reader', 'read', 'k/', '--prefix']);
  await ok(['user', 'grant-role', 'alice', 'reader']);
  for (let i = 0; i < 6; i++) await ok(['put', `tail/${i}`, `t${i}`]);
  await ok(['del', 'tail/0']);
}

interface Kv {
  readonly key: string;
  readonly value?: string;
  readonly create_revision: number;
  readonly mod_revision: number;
  readonly version: number;
  readonly lease?: number;
}

/** What a client sees of the store: every key with its revisions, older revisions, the compaction, auth and leases. */
async function observe(endpoint: string): Promise<Record<string, unknown>> {
  const endpoints = [endpoint];
  const json = async (args: string[]): Promise<{ header: { revision: number }; kvs?: Kv[]; count?: number }> => {
    const r = await etcdctl([...args, '-w', 'json'], { endpoints });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as { header: { revision: number }; kvs?: Kv[]; count?: number };
  };
  const text = async (args: string[]): Promise<string> => {
    const r = await etcdctl(args, { endpoints });
    return `${r.code}|${r.stdout}|${r.stderr.replace(/^\{.*\n/gm, '')}`;
  };
  const all = await json(['get', '', '--from-key']);
  return {
    revision: all.header.revision,
    kvs: all.kvs,
    at25: (await json(['get', 'k/', '--prefix', '--rev', '25'])).kvs,
    compacted: await text(['get', 'k/01', '--rev', '19']),
    users: await text(['user', 'list']),
    alice: await text(['user', 'get', 'alice']),
    reader: await text(['role', 'get', 'reader']),
    leases: await text(['lease', 'list']),
  };
}

/** The observation with lease ids made alike: each server grants its own ids. */
function leaseIdsHidden(seen: Record<string, unknown>): Record<string, unknown> {
  const hide = (kvs: unknown): unknown => (kvs as Kv[] | undefined)?.map((kv) => (kv.lease === undefined ? kv : { ...kv, lease: 'hidden' }));
  return { ...seen, kvs: hide(seen['kvs']), at25: hide(seen['at25']), leases: String(seen['leases']).replace(/\n[0-9a-f]+/g, '\nhidden') };
}

describe('snapshot files between etcd-ts and etcd 3.4.23', { skip }, () => {
  const ws = useWorkspace('ops-snapshot-interop');
  const restored: Member[] = [];
  const sources = new Map<MemberKind, { cluster: Cluster; file: string; seen: Record<string, unknown> }>();

  before(async () => {
    for (const kind of ['etcd-ts', 'etcd'] as const) {
      const cluster = await ws.startCluster({ kind, readyTimeoutMs: 60_000 });
      await fill(cluster.endpoints);
      const file = join(ws.dir, `${kind}.snap.db`);
      const saved = await etcdctl(['snapshot', 'save', file], { endpoints: cluster.endpoints, timeoutMs: 30_000 });
      assert.equal(saved.code, 0, saved.stderr);
      sources.set(kind, { cluster, file, seen: await observe(cluster.endpoints[0] ?? '') });
    }
  });

  after(async () => {
    await Promise.all(restored.map((m) => m.kill()));
  });

  /** A member of a new one-member cluster of kind to restore file into, and the restore command for it (etcdctl's flags). */
  const restoreTarget = async (kind: MemberKind, name: string, file: string): Promise<{ m: Member; args: string[] }> => {
    const plan = await planMembers({ kind, dir: join(ws.dir, name), names: [name], token: name });
    const m = plan.members[0] as Member;
    restored.push(m);
    const args = ['snapshot', 'restore', file, '--name', name, '--data-dir', m.dataDir, '--initial-cluster', plan.initialCluster, '--initial-cluster-token', name, '--initial-advertise-peer-urls', m.peerUrl];
    return { m, args };
  };

  /** The revision of a put through m: the store goes on from its snapshot. */
  const putRevision = async (m: Member): Promise<number> => {
    const put = await etcdctl(['put', 'after', 'yes', '-w', 'json'], { endpoints: [m.endpoint] });
    return (JSON.parse(put.stdout) as { header: { revision: number } }).header.revision;
  };

  const source = (kind: MemberKind): { cluster: Cluster; file: string; seen: Record<string, unknown> } => {
    const s = sources.get(kind);
    assert.ok(s !== undefined, `no ${kind} source`);
    return s;
  };

  test("the two servers' snapshots read the same to etcdctl and to etcdutl-ts", async () => {
    const statuses: string[] = [];
    for (const kind of ['etcd-ts', 'etcd'] as const) {
      const { file } = source(kind);
      const real = await etcdctl(['snapshot', 'status', file, '-w', 'json'], { endpoints: [] });
      assert.equal(real.code, 0, real.stderr);
      const ours = await etcdutl(['snapshot', 'status', file, '-w', 'json']);
      assert.equal(ours.code, 0, ours.stderr);
      assert.deepEqual(JSON.parse(ours.stdout), JSON.parse(real.stdout), `status of ${kind}'s snapshot`);
      const st = JSON.parse(real.stdout) as { revision: number; hash: number; totalKey: number };
      assert.equal(st.revision, 43);
      statuses.push(`${st.totalKey}`);
    }
    // Both hold the same entries: keys from the compaction on, a lease, auth, ten buckets of state.
    assert.equal(statuses[0], statuses[1]);
    // The member records are etcd's JSON on both sides, the id in decimal.
    for (const kind of ['etcd-ts', 'etcd'] as const) {
      const { cluster, file } = source(kind);
      const db = BboltReader.open(file);
      try {
        const records = [...(db.entries(Buffer.from('members')) ?? [])].map((e) => [Buffer.from(e.key).toString(), Buffer.from(e.value).toString()]);
        const m = cluster.member(0);
        const id = (await memberStatus(m.endpoint)).header?.memberId ?? 0n;
        assert.deepEqual(records, [[id.toString(16), `{"id":${id},"peerURLs":["${m.peerUrl}"],"name":"${m.name}","clientURLs":["${m.clientUrl}"]}`]], kind);
      } finally {
        db.close();
      }
    }
    // Both servers showed clients the same store.
    assert.deepEqual(leaseIdsHidden(source('etcd-ts').seen), leaseIdsHidden(source('etcd').seen));
  });

  test("etcd restores etcd-ts's snapshot with its own etcdctl and serves the same store", async () => {
    const { m, args } = await restoreTarget('etcd', 'to-etcd', source('etcd-ts').file);
    const r = await etcdctl(args, { endpoints: [] });
    assert.equal(r.code, 0, r.stderr);
    await m.start({ timeoutMs: 60_000 });
    assert.deepEqual(await observe(m.endpoint), source('etcd-ts').seen);
    assert.equal(await putRevision(m), 44);
  });

  test("etcdutl-ts restores etcd's snapshot and etcd-ts serves the same store", async () => {
    const { m, args } = await restoreTarget('etcd-ts', 'from-etcd', source('etcd').file);
    const r = await etcdutl(args);
    assert.equal(r.code, 0, r.stderr);
    await m.start({ timeoutMs: 60_000 });
    assert.deepEqual(await observe(m.endpoint), source('etcd').seen);
    assert.equal(await putRevision(m), 44);
  });

  test("etcdutl-ts restores a stopped etcd member's own db file with --skip-hash-check, as etcd's restore does", async () => {
    const etcd = source('etcd').cluster.member(0);
    await etcd.stop();
    const dbFile = join(etcd.dataDir, 'member', 'snap', 'db');
    const { m, args } = await restoreTarget('etcd-ts', 'from-etcd-db', dbFile);
    const refused = await etcdutl(args);
    assert.deepEqual([refused.code, refused.stderr.trim().split('\n').at(-1)], [1, 'Error: snapshot missing hash but --skip-hash-check=false']);
    // As etcd's restore, the refused one has made the data dir already.
    rmSync(m.dataDir, { recursive: true });
    const r = await etcdutl([...args, '--skip-hash-check']);
    assert.equal(r.code, 0, r.stderr);
    await m.start({ timeoutMs: 60_000 });
    assert.deepEqual(await observe(m.endpoint), source('etcd').seen);
  });
});
