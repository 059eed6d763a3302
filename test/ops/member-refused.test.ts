/**
 * A promotion etcd refuses is refused when it applies, not before: it takes a
 * raft entry, and a restart that replays that entry must leave raft's
 * configuration as the refusal did (a one-member cluster that replayed it as
 * a promotion would wait forever for a second voter).
 *
 * OPS_KIND=etcd runs the same steps against real etcd 3.4.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { etcdctl, etcdctlMissing, memberStatus, useWorkspace } from '../harness/index.js';
import { fastElection, readyTimeoutMs } from '../cluster/kit.js';
import { errorLines, opsKind } from './kit.js';

const skip = etcdctlMissing();

describe(`member promote refused (${opsKind})`, { skip }, () => {
  const ws = useWorkspace('ops-member-refused');

  test('a refused promotion takes a raft entry, and a restart replays it as refused', async () => {
    const one = await ws.startCluster({ kind: opsKind, readyTimeoutMs, extraFlags: [...fastElection] });
    const m = one.member(0);
    const before = await memberStatus(m.endpoint);
    const r = await etcdctl(['member', 'promote', 'abcdef'], { endpoints: [m.endpoint] });
    assert.deepEqual([r.code, errorLines(r.stderr)], [1, 'Error: etcdserver: member not found']);
    const after = await memberStatus(m.endpoint);
    assert.equal(after.raftIndex, before.raftIndex + 1, 'the promotion was proposed, and refused when it applied');
    // Had the restart replayed it as a promotion, raft would count a second voter that never answers.
    await m.restart({ timeoutMs: readyTimeoutMs });
    const list = await etcdctl(['member', 'list'], { endpoints: [m.endpoint] });
    assert.equal(list.stdout.trim().split('\n').length, 1, list.stdout);
  });
});
