/**
 * Snapshots end to end: Debian's `etcdctl snapshot save` against etcd-ts,
 * `etcdutl-ts snapshot status` / `restore`, and a new 3-member cluster
 * started from the restored data dirs serving the same data; restore's
 * validation errors are etcdctl 3.4's own (same message, same exit code).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { etcdctl, etcdctlBin, etcdctlMissing, memberStatus, useWorkspace, type Cluster, type Member } from '../harness/index.js';
import { agreedLeader, errorLines, etcdutl, planMembers, run } from './kit.js';

const skip = etcdctlMissing();

describe('snapshot save, status and restore', { skip }, () => {
  const ws = useWorkspace('ops-snapshot');
  let source: Cluster;
  let snapFile: string;
  let restored: Member[] = [];

  before(async () => {
    source = await ws.startCluster({ kind: 'etcd-ts', readyTimeoutMs: 60_000 });
    const ep = source.endpoints;
    for (let i = 0; i < 20; i++) assert.equal((await etcdctl(['put', `key-${i}`, `value-${i}`], { endpoints: ep })).code, 0);
    assert.equal((await etcdctl(['put', 'key-3', 'overwritten'], { endpoints: ep })).code, 0);
    assert.equal((await etcdctl(['del', 'key-4'], { endpoints: ep })).code, 0);
    snapFile = join(ws.dir, 'snap.db');
    const saved = await etcdctl(['snapshot', 'save', snapFile], { endpoints: ep, timeoutMs: 30_000 });
    assert.equal(saved.code, 0, saved.stderr);
    assert.match(saved.stdout, /Snapshot saved at /);
  });

  after(async () => {
    await Promise.all(restored.map((m) => m.kill()));
  });

  test('status prints hash, revision, keys and size in every format', async () => {
    const json = await etcdutl(['snapshot', 'status', snapFile, '-w', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const st = JSON.parse(json.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
    // 20 puts, one overwrite, one delete: revision 23.
    assert.equal(st.revision, 23);
    assert.equal(st.totalSize, statSync(snapFile).size - 32);
    assert.ok(st.totalKey >= 22, `total keys ${st.totalKey}`);
    const simple = await etcdutl(['snapshot', 'status', snapFile]);
    assert.equal(simple.stdout, `${st.hash.toString(16)}, 23, ${st.totalKey}, ${Math.round(st.totalSize / 1000)} kB\n`);
    const table = await etcdutl(['snapshot', 'status', '--write-out=table', snapFile]);
    assert.match(table.stdout, /^\+-+\+-+\+-+\+-+\+\n\|\s+HASH\s+\|\s+REVISION\s+\|\s+TOTAL KEYS\s+\|\s+TOTAL SIZE\s+\|\n/);
    assert.match(table.stdout, new RegExp(`\\| ${st.hash.toString(16)} \\|\\s+23 \\|`));
    const fields = await etcdutl(['snapshot', 'status', snapFile, '-w', 'fields']);
    assert.equal(fields.stdout, `"Hash" : ${st.hash}\n"Revision" : 23\n"Keys" : ${st.totalKey}\n"Size" : ${st.totalSize}\n`);
    const pb = await etcdutl(['snapshot', 'status', snapFile, '-w', 'protobuf']);
    assert.deepEqual([pb.code, errorLines(pb.stderr)], [4, 'Error: protobuf not supported as output format']);
  });

  test("restore refuses what etcdctl's restore refuses, with its messages and exit codes", async () => {
    const bad = join(ws.dir, 'bad-digest.db');
    copyFileSync(snapFile, bad);
    const bytes = readFileSync(bad);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    writeFileSync(bad, bytes);
    const noDigest = join(ws.dir, 'no-digest.db');
    copyFileSync(snapFile, noDigest);
    truncateSync(noDigest, statSync(snapFile).size - 32);
    const existing = join(ws.dir, 'existing.etcd');
    await run('/bin/mkdir', ['-p', existing]);
    // Each tool gets its own output dirs (a failed restore may leave one behind, as etcd's does).
    const cases = (tool: string): string[][] => {
      const d = (name: string): string => join(ws.dir, `${tool}-${name}`);
      return [
        ['snapshot', 'restore'],
        ['snapshot', 'restore', snapFile, 'extra'],
        ['snapshot', 'restore', join(ws.dir, 'missing.db'), '--data-dir', d('x1')],
        ['snapshot', 'restore', snapFile, '--name', 'nobody', '--data-dir', d('x2')],
        ['snapshot', 'restore', snapFile, '--initial-cluster', 'a=http://127.0.0.1:1', '--name', 'a', '--data-dir', d('x3')],
        ['snapshot', 'restore', snapFile, '--initial-cluster', 'bad', '--data-dir', d('x4')],
        ['snapshot', 'restore', snapFile, '--data-dir', existing],
        ['snapshot', 'restore', noDigest, '--data-dir', d('x5')],
        ['snapshot', 'restore', bad, '--data-dir', d('x6')],
        ['snapshot', 'restore', snapFile, '--skip-hash-check=maybe'],
        ['snapshot', 'restore', snapFile, '--no-such-flag'],
      ];
    };
    const theirCases = cases('theirs');
    for (const [i, args] of cases('ours').entries()) {
      const ours = await etcdutl(args);
      const theirs = await run(etcdctlBin, theirCases[i] ?? [], 30_000, { ETCDCTL_API: '3' });
      assert.equal(errorLines(ours.stderr).replaceAll('ours-', ''), errorLines(theirs.stderr).replaceAll('theirs-', ''), `stderr of ${args.join(' ')}`);
      assert.equal(ours.code, theirs.code, `exit code of ${args.join(' ')}`);
      assert.notEqual(ours.code, 0);
    }
    const bumpOnly = await etcdutl(['snapshot', 'restore', snapFile, '--bump-revision', '10', '--data-dir', join(ws.dir, 'x7')]);
    assert.deepEqual([bumpOnly.code, errorLines(bumpOnly.stderr)], [128, 'Error: --mark-compacted required if --revision-bump > 0']);
    const markOnly = await etcdutl(['snapshot', 'restore', snapFile, '--mark-compacted', '--data-dir', join(ws.dir, 'x8')]);
    assert.equal(markOnly.code, 128);
    assert.equal(existsSync(join(ws.dir, 'x7')), false);
  });

  test('a 3-member cluster restored from the file serves the same data under a new cluster id', async () => {
    const dir = join(ws.dir, 'restored');
    const plan = await planMembers({ kind: 'etcd-ts', dir, names: ['r1', 'r2', 'r3'], token: 'restored-token' });
    restored = plan.members;
    for (const m of restored) {
      const r = await etcdutl([
        'snapshot', 'restore', snapFile,
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--initial-cluster', plan.initialCluster,
        '--initial-cluster-token', 'restored-token',
        '--initial-advertise-peer-urls', m.peerUrl,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /"msg":"restored snapshot"/);
    }
    for (const m of restored) await m.start({ wait: false });
    await Promise.all(restored.map((m) => m.waitReady({ timeoutMs: 60_000 })));
    await agreedLeader(restored);
    const eps = restored.map((m) => m.endpoint);
    const sourceId = (await memberStatus(source.member(0).endpoint)).header?.clusterId;
    const ids = new Set<bigint | undefined>();
    for (const m of restored) {
      ids.add((await memberStatus(m.endpoint)).header?.clusterId);
      const got = await etcdctl(['get', '--prefix', 'key-', '--consistency=s', '-w', 'json'], { endpoints: [m.endpoint] });
      const body = JSON.parse(got.stdout) as { header: { revision: number }; count: number; kvs: { key: string; value: string }[] };
      assert.equal(body.header.revision, 23, `revision on ${m.name}`);
      assert.equal(body.count, 19);
      const k3 = body.kvs.find((kv) => Buffer.from(kv.key, 'base64').toString() === 'key-3');
      assert.equal(Buffer.from(k3?.value ?? '', 'base64').toString(), 'overwritten');
    }
    assert.equal(ids.size, 1);
    assert.notEqual([...ids][0], sourceId);
    const list = await etcdctl(['member', 'list'], { endpoints: eps });
    assert.equal(list.stdout.trim().split('\n').length, 3);
    for (const m of restored) assert.match(list.stdout, new RegExp(`started, ${m.name}, ${m.peerUrl}, ${m.clientUrl}, false`));
    const put = await etcdctl(['put', 'after-restore', 'yes', '-w', 'json'], { endpoints: eps });
    assert.equal((JSON.parse(put.stdout) as { header: { revision: number } }).header.revision, 24);
    // A restart of a restored member is an ordinary restart.
    await restored[1]?.restart({ timeoutMs: 60_000 });
    const again = await etcdctl(['get', 'after-restore', '--print-value-only'], { endpoints: [restored[1]?.endpoint ?? ''] });
    assert.equal(again.stdout.trim(), 'yes');
  });

  test('--bump-revision with --mark-compacted: revisions continue past the bump, older ones are compacted', async () => {
    const dir = join(ws.dir, 'bumped');
    const plan = await planMembers({ kind: 'etcd-ts', dir, names: ['b1'], token: 'bumped' });
    const m = plan.members[0] as Member;
    restored.push(m);
    const r = await etcdutl([
      'snapshot', 'restore', snapFile, '--name', 'b1', '--data-dir', m.dataDir,
      '--initial-cluster', plan.initialCluster, '--initial-cluster-token', 'bumped', '--initial-advertise-peer-urls', m.peerUrl,
      '--bump-revision', '1000', '--mark-compacted',
    ]);
    assert.equal(r.code, 0, r.stderr);
    await m.start({ timeoutMs: 60_000 });
    const got = await etcdctl(['get', 'key-1', '-w', 'json'], { endpoints: [m.endpoint] });
    assert.equal((JSON.parse(got.stdout) as { header: { revision: number } }).header.revision, 1023);
    const old = await etcdctl(['get', 'key-1', '--rev', '22'], { endpoints: [m.endpoint] });
    assert.match(old.stderr, /etcdserver: mvcc: required revision has been compacted/);
    const put = await etcdctl(['put', 'fresh', 'x', '-w', 'json'], { endpoints: [m.endpoint] });
    assert.equal((JSON.parse(put.stdout) as { header: { revision: number } }).header.revision, 1024);
  });
});
