/**
 * Auto compaction end to end: a 3-member etcd-ts cluster with
 * --auto-compaction-mode=periodic --auto-compaction-retention=2s under a
 * steady trickle of writes compacts on its own, at a revision about two
 * seconds old, and only the leader proposes compactions. (The revision mode's
 * fixed 5-minute interval is covered with fake time in src/server.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { idToHex } from '../../src/base/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, etcdctl, etcdctlMissing, methods, openChannel, useWorkspace } from '../harness/index.js';
import { agreedLeader, run } from './kit.js';

const skip = etcdctlMissing();

describe('auto compaction', { skip }, () => {
  const ws = useWorkspace('ops-autocompact');

  test('a bad retention is refused at start with etcd message', async () => {
    const r = await run(process.execPath, [
      new URL('../../src/cmd/etcd-ts.js', import.meta.url).pathname,
      '--data-dir', `${ws.dir}/bad.etcd`, '--auto-compaction-retention', 'abc',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error parsing CompactionRetention: time: invalid duration "abc"/);
  });

  test('periodic, 2 s: the leader compacts to a revision about 2 s old while writes go on', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, extraFlags: ['--auto-compaction-mode=periodic', '--auto-compaction-retention=2s'], readyTimeoutMs: 60_000 });
    const leaderId = await agreedLeader(c.members);
    const ch = openChannel(c.member(0).endpoint);
    const started = Date.now();
    /** When each revision was first seen by a put's response. */
    const firstSeenMs = new Map<number, number>();
    const compactions: { rev: number; seenMs: number }[] = [];
    try {
      for (let i = 0; Date.now() - started < 30_000 && compactions.length < 3; i++) {
        const put = await ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: Buffer.from(`k${i % 10}`), value: Buffer.from(String(i)) }), { timeoutMs: 5_000 });
        firstSeenMs.set(put.header?.revision ?? 0, Date.now());
        const hash = await ch.unary(methods.maintenance.HashKV, etcdserverpb.HashKVRequest.create({ revision: 0 }), { timeoutMs: 5_000 });
        const last = compactions[compactions.length - 1]?.rev ?? 0;
        if (hash.compactRevision > last) compactions.push({ rev: hash.compactRevision, seenMs: Date.now() });
        await delay(50);
      }
      assert.ok(compactions.length >= 3, `three compactions within 30 s, saw ${JSON.stringify(compactions)}`);
      // After the first (at the revision of the start), each compacts a revision that was current
      // about one retention (2 s) before: more than 1 s, allowing for sampling and load.
      for (const cmp of compactions.slice(1)) {
        const writtenMs = firstSeenMs.get(cmp.rev);
        assert.ok(writtenMs !== undefined, `revision ${cmp.rev} was one of ours`);
        assert.ok(cmp.seenMs - writtenMs >= 1_000, `compacted revision ${cmp.rev} ${cmp.seenMs - writtenMs} ms after it was written`);
      }
      const old = await etcdctl(['get', 'k1', '--rev', '1'], { endpoints: c.endpoints });
      assert.match(old.stderr, /required revision has been compacted/);
    } finally {
      ch.close();
    }
    // Only the leader compacts.
    for (const m of c.members) {
      const log = readFileSync(m.logFile, 'utf8');
      const id = idToHex(leaderId);
      const isLeader = log.includes(`"local-member-id":"${id}"`);
      assert.equal(/completed auto periodic compaction/.test(log), isLeader, `${m.name} (leader: ${isLeader})`);
    }
  });
});
