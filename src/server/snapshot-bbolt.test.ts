import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromUtf8, utf8 } from '../base/index.js';
import { BboltReader } from '../backend/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import { LeaseStorage, MembershipStorage, Schema, revisionToBytes } from '../schema/index.js';
import { bboltSnapshotStatus, etcdMemberJson, importBboltSnapshot, streamBboltSnapshot } from './snapshot-bbolt.js';

function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-bbolt-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test("a member's record is etcd 3.4's JSON: the id in decimal, what is unset left out, Go's escapes", () => {
  const started = serverpb.MemberRecord.create({ ID: 0xfedcba9876543210n, name: 'm1', peerUrls: ['http://127.0.0.1:2380'], clientUrls: ['http://127.0.0.1:2379', 'http://a:1'] });
  assert.equal(etcdMemberJson(started), '{"id":18364758544493064720,"peerURLs":["http://127.0.0.1:2380"],"name":"m1","clientURLs":["http://127.0.0.1:2379","http://a:1"]}');
  // A learner added and not started yet: no name, no client URLs.
  const learner = serverpb.MemberRecord.create({ ID: 5n, peerUrls: ['http://h:2380'], isLearner: true });
  assert.equal(etcdMemberJson(learner), '{"id":5,"peerURLs":["http://h:2380"],"isLearner":true}');
  assert.equal(etcdMemberJson(serverpb.MemberRecord.create({ ID: 1n, name: 'a<b>&\u2028' })), '{"id":1,"peerURLs":null,"name":"a\\u003cb\\u003e\\u0026\\u2028"}');
});

test("a backend written as a bbolt snapshot has etcd 3.4's buckets and keys, and imports back without the membership", async () => {
  await withDir(async (dir) => {
    const src = Schema.open({ path: join(dir, 'src.db') });
    src.backend.write((tx) => {
      tx.put(src.buckets.key, revisionToBytes(2, 0), utf8('kv-2'));
      tx.put(src.buckets.key, revisionToBytes(3, 0, true), utf8('kv-3'));
      src.setConsistentIndex({ index: 42, term: 3 });
    });
    src.setConfState(raftpb.ConfState.create({ voters: [1n] }));
    src.setScheduledCompactRevision(2);
    new LeaseStorage(src).put({ id: 7n, ttlSeconds: 30, remainingTtlSeconds: 0 });
    new MembershipStorage(src).putMember(serverpb.MemberRecord.create({ ID: 1n, name: 'one', peerUrls: ['http://p:1'] }));
    await src.backend.forceCommit();
    const file = join(dir, 'snap.bbolt');
    const pieces: Buffer[] = [];
    const size = streamBboltSnapshot(src, () => undefined, (piece) => void pieces.push(piece));
    writeFileSync(file, Buffer.concat(pieces));
    await src.backend.close();

    const db = BboltReader.open(file);
    try {
      assert.equal(db.size, size);
      assert.deepEqual(db.bucketNames().map(fromUtf8), ['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta']);
      const entries = (name: string): string[] => [...(db.entries(utf8(name)) ?? [])].map((e) => `${Buffer.from(e.key).toString('hex')}=${fromUtf8(e.value)}`);
      // The applied term, the ConfState are etcd-ts's own: etcd 3.4 keeps neither.
      assert.deepEqual([...(db.entries(utf8('meta')) ?? [])].map((e) => fromUtf8(e.key)), ['consistent_index', 'scheduledCompactRev']);
      assert.deepEqual(entries('members'), [`${Buffer.from('1').toString('hex')}={"id":1,"peerURLs":["http://p:1"],"name":"one"}`]);
      assert.equal(entries('key').length, 2);
    } finally {
      db.close();
    }
    assert.equal(bboltSnapshotStatus(file).revision, 3);

    const dest = Schema.open({ path: join(dir, 'dest.db') });
    try {
      await importBboltSnapshot(file, dest);
      assert.deepEqual(dest.backend.range(dest.buckets.key, new Uint8Array([0]), undefined).map((e) => fromUtf8(e.value)), ['kv-2', 'kv-3']);
      assert.deepEqual(new LeaseStorage(dest).loadAll().map((l) => [l.id, l.ttlSeconds]), [[7n, 30]]);
      assert.deepEqual(new MembershipStorage(dest).members(), []);
      assert.equal(dest.consistentIndex().index, 42);
      assert.equal(dest.compactRevisions().scheduled, 2);
    } finally {
      await dest.backend.close();
    }
  });
});
