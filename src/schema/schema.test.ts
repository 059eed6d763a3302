import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualTimers } from '../backend/index.js';
import { authpb, etcdserverpb, raftpb, serverpb } from '../pb/index.js';
import { utf8 } from '../base/index.js';
import {
  AlarmStorage,
  AuthStorage,
  MembershipStorage,
  Schema,
  bytesToMainRevision,
  bytesToSubRevision,
  isTombstoneBytes,
  readUint64,
  revisionToBytes,
  uint64Bytes,
} from './index.js';

function withSchema(fn: (open: () => Schema) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'schema-test-'));
    try {
      await fn(() => Schema.open({ path: join(dir, 'db'), timers: new ManualTimers() }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('revision keys are etcd bucket keys: 8-byte BE main, "_", 8-byte BE sub, "t" for tombstones', () => {
  const k = revisionToBytes(0x0102030405, 7);
  assert.equal(Buffer.from(k).toString('hex'), '0000000102030405' + '5f' + '0000000000000007');
  assert.equal(bytesToMainRevision(k), 0x0102030405);
  assert.equal(bytesToSubRevision(k), 7);
  assert.equal(isTombstoneBytes(k), false);
  const t = revisionToBytes(2 ** 53 - 1, 0, true);
  assert.equal(t.length, 18);
  assert.equal(t[17], 't'.charCodeAt(0));
  assert.equal(isTombstoneBytes(t), true);
  assert.equal(bytesToMainRevision(t), 2 ** 53 - 1);
  assert.throws(() => revisionToBytes(-1, 0), RangeError);
  assert.equal(readUint64(uint64Bytes(123456789012), 0), 123456789012);
});

test('meta keys survive a reopen; the applied index is written only inside a scope', withSchema(async (open) => {
  const s = open();
  assert.deepEqual(s.consistentIndex(), { index: 0, term: 0 });
  assert.deepEqual(s.compactRevisions(), { scheduled: -1, finished: -1 });
  assert.throws(() => s.setConsistentIndex({ index: 5, term: 2 }), /scope of the entry/);
  s.backend.write(() => {
    s.setConsistentIndex({ index: 5, term: 2 });
    s.setScheduledCompactRevision(9);
    s.setFinishedCompactRevision(8);
    s.setConfState(raftpb.ConfState.create({ voters: [1n, 2n], learners: [3n] }));
    s.setClusterVersion('3.4.0');
  });
  const hashBefore = s.hash();
  s.backend.write(() => s.setConsistentIndex({ index: 6, term: 2 }));
  assert.equal(s.hash(), hashBefore, 'the applied index is not part of the hash');
  await s.backend.close();
  const again = open();
  assert.deepEqual(again.consistentIndex(), { index: 6, term: 2 });
  assert.deepEqual(again.compactRevisions(), { scheduled: 9, finished: 8 });
  assert.deepEqual(again.confState()?.voters, [1n, 2n]);
  assert.equal(again.clusterVersion(), '3.4.0');
  await again.backend.close();
}));

test('auth, membership and alarm storage round-trip', withSchema(async (open) => {
  const s = open();
  const auth = new AuthStorage(s);
  const members = new MembershipStorage(s);
  const alarms = new AlarmStorage(s);
  assert.deepEqual(auth.load(), { enabled: false, revision: 0, users: [], roles: [] });
  auth.setEnabled(true);
  auth.setRevision(42);
  auth.putUser(utf8('root'), authpb.User.encode(authpb.User.create({ name: utf8('root'), roles: ['root'] })));
  auth.putUser(utf8('alice'), authpb.User.encode(authpb.User.create({ name: utf8('alice') })));
  auth.putRole(utf8('root'), authpb.Role.encode(authpb.Role.create({ name: utf8('root') })));
  auth.deleteUser(utf8('alice'));
  members.putMember(serverpb.MemberRecord.create({ ID: 0x8e9e05c52164694dn, name: 'default', peerUrls: ['http://127.0.0.1:2380'] }));
  members.putMember(serverpb.MemberRecord.create({ ID: 0x10n, name: 'two' }));
  members.removeMember(0x10n);
  alarms.put(etcdserverpb.AlarmMember.create({ memberID: 7n, alarm: etcdserverpb.AlarmType.NOSPACE }));
  alarms.put(etcdserverpb.AlarmMember.create({ memberID: 9n, alarm: etcdserverpb.AlarmType.CORRUPT }));
  alarms.delete(etcdserverpb.AlarmMember.create({ memberID: 9n, alarm: etcdserverpb.AlarmType.CORRUPT }));
  await s.backend.close();
  const again = open();
  const state = new AuthStorage(again).load();
  assert.equal(state.enabled, true);
  assert.equal(state.revision, 42);
  assert.deepEqual(state.users.map((u) => authpb.User.decode(u).roles), [['root']]);
  assert.equal(state.roles.length, 1);
  const m = new MembershipStorage(again);
  assert.deepEqual(m.members().map((r) => r.name), ['default']);
  assert.deepEqual(m.removedIds(), [0x10n]);
  assert.deepEqual(new AlarmStorage(again).all().map((a) => a.memberID), [7n]);
  await again.backend.close();
}));
