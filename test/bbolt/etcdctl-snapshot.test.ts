// Debian's etcdctl 3.4.23 on snapshot files written with BboltWriter, as
// etcd-ts hands them out: a bbolt file with the SHA-256 of its bytes
// appended. `snapshot status` opens it read-only with bbolt, runs tx.Check,
// and hashes every bucket's name, keys and values (CRC-32C) in order;
// `snapshot restore` checks the SHA-256, then opens the file with etcd's
// backend, rebuilds the key index from the "key" bucket (whose values must
// be mvccpb.KeyValue) and commits a new consistent index into it. The other
// way round, BboltReader reads a snapshot saved from a real etcd and finds
// in it what etcdctl snapshot status finds. Skipped when etcdctl (or, for
// the last, etcd) is not installed (apt-get install etcd-client etcd-server).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { SeededRand, crc32cUpdate } from '../../src/base/index.js';
import { BboltReader, BboltWriter, type BboltEntry } from '../../src/backend/index.js';
import { mvccpb } from '../../src/pb/index.js';
// etcd's key bucket keys and 8-byte big-endian meta values, as etcd-ts's schema writes them.
import { revisionToBytes, uint64Bytes } from '../../src/schema/index.js';
import { etcdMissing, etcdctl as etcdctlOn, etcdctlBin, etcdctlMissing, useWorkspace } from '../harness/index.js';

interface Bucket {
  readonly name: string;
  readonly entries: readonly BboltEntry[];
}

const text = (s: string): Uint8Array => Buffer.from(s);

/** Streams the buckets (names ascending) into a file and appends the SHA-256 of its bytes, as etcd's snapshot files end. */
function writeSnapshot(path: string, buckets: readonly Bucket[], pageSize?: number): number {
  const pieces: Buffer[] = [];
  const size = BboltWriter.stream(
    (w) => {
      for (const b of buckets) {
        w.bucket(text(b.name));
        for (const e of b.entries) w.put(e.key, e.value);
      }
    },
    () => undefined,
    (piece) => void pieces.push(Buffer.from(piece)),
    pageSize === undefined ? undefined : { pageSize },
  );
  const file = Buffer.concat(pieces);
  writeFileSync(path, Buffer.concat([file, createHash('sha256').update(file).digest()]), { flag: 'wx' });
  return size;
}

/** What snapshot status hashes: each bucket's name, then its keys and values, in order. */
function statusHash(buckets: Iterable<{ readonly name: string | Uint8Array; readonly entries: Iterable<BboltEntry> }>): number {
  let h = 0;
  for (const b of buckets) {
    h = crc32cUpdate(h, typeof b.name === 'string' ? text(b.name) : b.name);
    for (const e of b.entries) h = crc32cUpdate(crc32cUpdate(h, e.key), e.value);
  }
  return h;
}

interface Status {
  readonly hash: number;
  readonly revision: number;
  readonly totalKey: number;
  readonly totalSize: number;
}

function statusOf(spawned: { status: number | null; stdout: string; stderr: string }): Status {
  assert.equal(spawned.status, 0, spawned.stderr);
  return JSON.parse(spawned.stdout) as Status;
}

/** etcd's buckets; "key" holds `revisions` main revisions from 2, some with several sub revisions. */
function etcdBuckets(seed: number, revisions: number, keyValue: (main: number, sub: number) => Uint8Array): Bucket[] {
  const rand = new SeededRand(seed);
  const key: BboltEntry[] = [];
  for (let main = 2; main < 2 + revisions; main++) {
    const subs = rand.intn(10) === 0 ? 1 + rand.intn(4) : 1;
    for (let sub = 0; sub < subs; sub++) key.push({ key: revisionToBytes(main, sub), value: keyValue(main, sub) });
  }
  const byName: Record<string, BboltEntry[]> = {
    alarm: [],
    auth: [],
    authRoles: [],
    authUsers: [],
    cluster: [{ key: text('clusterVersion'), value: text('3.4.0') }],
    key,
    lease: [],
    members: [],
    members_removed: [],
    meta: [
      { key: text('consistent_index'), value: uint64Bytes(revisions + 10) },
      { key: text('finishedCompactRev'), value: revisionToBytes(1, 0) },
    ],
  };
  return Object.keys(byName).sort().map((name) => ({ name, entries: byName[name] ?? [] }));
}

describe("Debian's etcdctl 3.4.23 on snapshots written with BboltWriter", { skip: etcdctlMissing() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bbolt-etcdctl-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function etcdctl(args: readonly string[]): string {
    const run = spawnSync(etcdctlBin, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ETCDCTL_API: '3' } });
    assert.equal(run.status, 0, `etcdctl ${args.join(' ')}: ${run.error?.message ?? ''}\n${run.stdout}\n${run.stderr}`);
    return run.stdout;
  }

  test('snapshot status: revision, total keys, total size, and the hash computed here', () => {
    for (const [seed, revisions, pageSize] of [[1, 20_000, undefined], [2, 3000, 16384], [3, 0, undefined]] as const) {
      const rand = new SeededRand(seed);
      const buckets = etcdBuckets(seed, revisions, () => Buffer.from(Array.from({ length: rand.intn(300) }, () => rand.intn(256))));
      const path = join(dir, `status-${seed}.db`);
      const size = writeSnapshot(path, buckets, pageSize);
      const status = JSON.parse(etcdctl(['snapshot', 'status', path, '-w', 'json']));
      const keys = buckets.find((b) => b.name === 'key')?.entries ?? [];
      const last = keys[keys.length - 1];
      assert.deepEqual(status, {
        hash: statusHash(buckets),
        revision: last === undefined ? 0 : Number(Buffer.from(last.key).readBigUInt64BE(0)),
        totalKey: buckets.reduce((n, b) => n + b.entries.length, 0),
        totalSize: size,
      }, `seed ${seed}`);
    }
  });

  test('snapshot restore checks the SHA-256, opens the file with etcd\'s backend and commits to it; BboltReader reads the result', () => {
    const kv = (main: number, sub: number): Uint8Array =>
      mvccpb.KeyValue.encode(mvccpb.KeyValue.create({
        key: text(`/registry/item-${main % 500}`),
        createRevision: main,
        modRevision: main,
        version: 1,
        value: text(`value at ${main}.${sub}`),
      }));
    const buckets = etcdBuckets(4, 5000, kv);
    const path = join(dir, 'restore.db');
    writeSnapshot(path, buckets);
    const dataDir = join(dir, 'restored');
    etcdctl(['snapshot', 'restore', path, '--data-dir', dataDir, '--name', 'm1', '--initial-cluster', 'm1=http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380']);

    const r = BboltReader.open(join(dataDir, 'member/snap/db'));
    const read = (name: string): BboltEntry[] => [...(r.entries(text(name)) ?? [])].map((e) => ({ key: Buffer.from(e.key), value: Buffer.from(e.value) }));
    assert.deepEqual(r.bucketNames().map((n) => Buffer.from(n).toString()), buckets.map((b) => b.name));
    const same = (entries: readonly BboltEntry[]): BboltEntry[] => entries.map((e) => ({ key: Buffer.from(e.key), value: Buffer.from(e.value) }));
    assert.deepEqual(read('key'), same(buckets.find((b) => b.name === 'key')?.entries ?? []), 'the revisions are as written');
    // Restore sets the consistent index to the number of members, so that the new raft log's entries apply.
    assert.deepEqual(read('meta'), same([
      { key: text('consistent_index'), value: uint64Bytes(1) },
      { key: text('finishedCompactRev'), value: revisionToBytes(1, 0) },
    ]));
    assert.ok(r.txid > 1, `etcd committed to the file (txid ${r.txid})`);
    r.close();
  });
});

describe("BboltReader on a snapshot saved from Debian's etcd 3.4.23", { skip: etcdctlMissing() || etcdMissing() }, () => {
  const ws = useWorkspace('bbolt-etcd-snapshot');

  test('it finds the revision, entries, size and hash that etcdctl snapshot status finds, and the values put', async () => {
    const cluster = await ws.startCluster({ kind: 'etcd' });
    const ctl = async (args: readonly string[], stdin?: string): Promise<void> => {
      const r = await etcdctlOn(args, { endpoints: cluster.endpoints, timeoutMs: 30_000, ...(stdin === undefined ? {} : { stdin }) });
      assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
    };
    // 600 keys in six txns (revisions 2-7), a delete (8), a prefix delete of 100 keys (9), an
    // overwrite (10), a compaction at 9, a lease, and a value of 1 MiB (11).
    for (let t = 0; t < 6; t++) {
      const puts = Array.from({ length: 100 }, (_, i) => `put key-${String(t * 100 + i).padStart(4, '0')} value-${t}-${i}`).join('\n');
      await ctl(['txn'], `\n${puts}\n\n\n`);
    }
    await ctl(['del', 'key-0150']);
    await ctl(['del', 'key-02', '--prefix']);
    await ctl(['put', 'key-0599', 'overwritten']);
    await ctl(['compaction', '9']);
    await ctl(['lease', 'grant', '600']);
    await ctl(['put', 'large'], 'x'.repeat(1 << 20));
    const path = join(ws.dir, 'etcd.snapshot');
    await ctl(['snapshot', 'save', path]);
    const status = statusOf(spawnSync(etcdctlBin, ['snapshot', 'status', path, '-w', 'json'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } }));

    const r = BboltReader.open(path);
    try {
      const buckets = r.bucketNames().map((name) => ({ name, entries: r.entries(name) ?? [] }));
      let totalKey = 0;
      let revision = 0;
      for (const b of buckets) {
        for (const e of b.entries) {
          totalKey++;
          if (Buffer.from(b.name).toString() === 'key') revision = Number(Buffer.from(e.key).readBigUInt64BE(0));
        }
      }
      assert.deepEqual({ hash: statusHash(buckets), revision, totalKey, totalSize: r.size }, status);
      assert.deepEqual(buckets.map((b) => Buffer.from(b.name).toString()), ['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta']);
      // The latest value of each key, from the revisions left after the compaction.
      const latest = new Map<string, string>();
      for (const e of r.entries(text('key')) ?? []) {
        const kv = mvccpb.KeyValue.decode(e.value);
        const key = Buffer.from(kv.key).toString();
        if (Buffer.from(e.key).length === 18) latest.delete(key); // a tombstone: 't' after the revision
        else latest.set(key, Buffer.from(kv.value).toString());
      }
      assert.equal(revision, 11);
      assert.equal(latest.size, 600 - 1 - 100 + 1);
      assert.equal(latest.get('key-0599'), 'overwritten');
      assert.equal(latest.get('key-0300'), 'value-3-0');
      assert.equal(latest.get('large')?.length, 1 << 20);
      assert.equal(latest.has('key-0150') || latest.has('key-0250'), false);
      assert.equal([...(r.entries(text('lease')) ?? [])].length, 1);
    } finally {
      r.close();
    }
  });
});
