/**
 * Corruption checks end to end.
 *
 * One member of a 3-member etcd-ts cluster has a value rewritten directly in
 * its LMDB file while it is stopped:
 * - With --experimental-initial-corrupt-check it refuses to start, with
 *   etcd's "found data inconsistency with peers".
 * - Without it, it starts, and the leader's periodic check
 *   (--experimental-corrupt-check-time) raises CORRUPT naming that member;
 *   writes are then refused cluster-wide with "etcdserver: corrupt cluster".
 *
 * One member applies a put differently from the others (the corrupt
 * failpoint flips a bit of the value it writes): the revision hash check,
 * on by default, raises CORRUPT naming it within 10 s. The member named
 * then serves no read and no watch (its watchers' streams end) while the
 * others serve reads; disarming the alarm lets it serve again.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { idToHex } from '../../src/base/index.js';
import { mvccpb } from '../../src/pb/index.js';
import { Schema } from '../../src/schema/index.js';
import { failpointsEnv, idToHex as hex } from '../../src/base/index.js';
import { Client } from '../../src/client/index.js';
import { Member, etcdctl, etcdctlBackground, etcdctlMissing, memberStatus, useWorkspace } from '../harness/index.js';
import { eventually } from './kit.js';

const skip = etcdctlMissing();

/** Rewrites the value of every version of key in a stopped member's backend. */
async function corruptValue(dataDir: string, key: string): Promise<number> {
  const schema = Schema.open({ path: join(dataDir, 'member', 'snap', 'db') });
  let changed = 0;
  try {
    const bucket = schema.buckets.key;
    schema.backend.write((tx) => {
      for (const e of tx.range(bucket, new Uint8Array([0]), undefined)) {
        const kv = mvccpb.KeyValue.decode(e.value);
        if (Buffer.from(kv.key).toString() !== key) continue;
        kv.value = Buffer.from('not what was written');
        tx.put(bucket, Uint8Array.from(e.key), mvccpb.KeyValue.encode(kv));
        changed++;
      }
    });
    await schema.backend.forceCommit();
  } finally {
    await schema.backend.close();
  }
  return changed;
}

/** `etcdctl alarm list` through m once it lists a CORRUPT alarm (polled every everyMs, up to timeoutMs). */
function corruptAlarms(m: Member, timeoutMs: number, everyMs: number): Promise<string> {
  return eventually(
    'a CORRUPT alarm',
    async () => {
      const r = await etcdctl(['alarm', 'list'], { endpoints: [m.endpoint] });
      return /alarm:CORRUPT/.test(r.stdout) ? r.stdout.trim() : undefined;
    },
    timeoutMs,
    everyMs,
  );
}

describe('corruption checks', { skip }, () => {
  const ws = useWorkspace('ops-corrupt');

  test('initial check refuses to start a corrupted member; the periodic check raises CORRUPT', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, extraFlags: ['--experimental-initial-corrupt-check=true', '--experimental-corrupt-check-time=1s'], readyTimeoutMs: 60_000 });
    const eps = c.endpoints;
    for (let i = 0; i < 10; i++) assert.equal((await etcdctl(['put', `k${i}`, `v${i}`], { endpoints: eps })).code, 0);
    // Let every member apply everything, then stop one that is not the leader.
    const rev = (await memberStatus(c.member(0).endpoint)).header?.revision ?? 0;
    await eventually('all members at the last revision', async () => {
      const revs = await Promise.all(c.members.map((m) => memberStatus(m.endpoint)));
      return revs.every((s) => (s.header?.revision ?? 0) === rev) ? true : undefined;
    });
    const leader = await c.leader();
    const victim = c.members.find((m) => m !== leader) as Member;
    const victimId = (await memberStatus(victim.endpoint)).header?.memberId ?? 0n;
    await victim.stop();
    assert.ok((await corruptValue(victim.dataDir, 'k3')) > 0);

    // The initial check: the member exits instead of serving.
    await victim.start({ wait: false });
    const exit = await victim.waitExit();
    assert.equal(exit.code, 1, victim.logTail(20));
    assert.match(victim.logTail(40), new RegExp(`${idToHex(victimId)} found data inconsistency with peers`));

    // Without the initial check it serves, until the leader's periodic check finds it.
    const again = new Member({ ...victim.spec, extraFlags: ['--experimental-corrupt-check-time=1s'] });
    try {
      await again.start({ until: 'serving', timeoutMs: 60_000 });
      const alarms = await corruptAlarms(leader, 30_000, 500);
      assert.equal(alarms, `memberID:${victimId} alarm:CORRUPT`);
      const put = await etcdctl(['put', 'after', 'x'], { endpoints: [leader.endpoint] });
      assert.notEqual(put.code, 0);
      assert.match(put.stderr, /etcdserver: corrupt cluster/);
      // Every member knows (the alarm went through raft).
      for (const m of [...c.members.filter((x) => x !== victim), again]) {
        const r = await etcdctl(['alarm', 'list'], { endpoints: [m.endpoint] });
        assert.match(r.stdout, /alarm:CORRUPT/);
      }
    } finally {
      await again.kill();
    }
  });

  test('a member that applies a put differently is named CORRUPT by the revision hash check (on by default) within 10 s', async () => {
    const victimName = 'm2';
    const c = await ws.startCluster({
      kind: 'etcd-ts',
      size: 3,
      // The victim's 5th put gets one bit of its value flipped, on that member only.
      memberEnv: (name): Record<string, string> => (name === victimName ? { [failpointsEnv]: 'mvccBeforePutValue=corrupt@5' } : {}),
      readyTimeoutMs: 60_000,
    });
    const victim = c.members.find((m) => m.name === victimName) as Member;
    const victimId = (await memberStatus(victim.endpoint)).header?.memberId ?? 0n;
    const others = c.members.filter((m) => m !== victim);
    const healthy = others[0] as Member;
    for (let i = 1; i <= 4; i++) assert.equal((await etcdctl(['put', `k${i}`, `v${i}`], { endpoints: c.endpoints })).code, 0);
    // A watcher on the victim from before the divergence.
    const watcher = etcdctlBackground(['watch', '--prefix', 'k'], { endpoints: [victim.endpoint], timeoutMs: 60_000 });
    // Four puts applied alike everywhere, and a few passes of the check: nothing raised.
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal((await etcdctl(['alarm', 'list'], { endpoints: [healthy.endpoint] })).stdout, '');
    assert.equal((await etcdctl(['put', 'k5', 'v5'], { endpoints: [healthy.endpoint] })).code, 0);
    const wroteAt = Date.now();
    const alarms = await corruptAlarms(healthy, 20_000, 200);
    const tookMs = Date.now() - wroteAt;
    assert.equal(alarms, `memberID:${victimId} alarm:CORRUPT`, `the victim is ${hex(victimId)}`);
    assert.ok(tookMs <= 10_000, `CORRUPT raised ${tookMs} ms after the diverging put`);
    // The victim serves no read, serializable or not; the others do.
    const get = (m: Member, consistency: 's' | 'l'): ReturnType<typeof etcdctl> => etcdctl(['get', 'k5', '--print-value-only', `--consistency=${consistency}`], { endpoints: [m.endpoint] });
    for (const consistency of ['s', 'l'] as const) {
      assert.equal((await get(healthy, consistency)).stdout, 'v5\n');
      const refused = await get(victim, consistency);
      assert.notEqual(refused.code, 0, `--consistency=${consistency}: ${refused.stdout}`);
      assert.match(refused.stderr, /etcdserver: corrupt cluster/);
    }
    // Our client reads through the others: every read, the victim's endpoint first in its list, answers v5.
    const client = await Client.connect({ endpoints: [victim.endpoint, ...others.map((m) => m.endpoint)], dialTimeoutMs: 5000 });
    try {
      for (let i = 0; i < 12; i++) {
        const r = await client.kv.get('k5', { serializable: i % 2 === 0, timeoutMs: 10_000 });
        assert.equal(Buffer.from(r.kvs[0]?.value ?? new Uint8Array()).toString(), 'v5');
      }
    } finally {
      client.close();
    }
    // Its watcher's stream ended (the events it had were those of before), and no new watch starts there.
    const ended = await watcher.done;
    assert.match(ended.stdout, /^PUT\nk5\n/m, 'the watcher saw the puts up to the diverging one');
    assert.match(ended.stderr, /corrupt cluster/, JSON.stringify(ended));
    const watchAgain = await etcdctl(['watch', 'k'], { endpoints: [victim.endpoint], timeoutMs: 10_000 });
    assert.equal(watchAgain.timedOut, false, 'a watch on the victim ends at once');
    assert.match(watchAgain.stderr, /corrupt cluster/, JSON.stringify(watchAgain));
    // Writes are refused cluster-wide, through every member.
    for (const m of c.members) {
      const put = await etcdctl(['put', 'after', 'x'], { endpoints: [m.endpoint] });
      assert.notEqual(put.code, 0);
      assert.match(put.stderr, /etcdserver: corrupt cluster/);
    }
    // Disarmed, the victim serves again: and what it serves shows the divergence was real.
    assert.equal((await etcdctl(['alarm', 'disarm'], { endpoints: [healthy.endpoint] })).code, 0);
    const served = await eventually('the victim serving reads', async () => {
      const r = await get(victim, 's');
      return r.code === 0 ? r.stdout : undefined;
    }, 10_000, 100);
    assert.notEqual(served, 'v5\n');
  });
});
