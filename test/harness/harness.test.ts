// The harness itself: members start, answer, crash, restart on their data,
// stop cleanly, and leave no process behind; etcdctl runs with a timeout.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { etcdctl, etcdctlMissing, etcdMissing, freePorts, getHealth, liveChildren, memberStatus, startCluster, useWorkspace, type MemberKind } from './index.js';

describe('harness', () => {
  const ws = useWorkspace('harness');
  after(() => assert.equal(liveChildren(), 0, 'a process outlived its test'));

  test('freePorts gives distinct ports', async () => {
    const ports = await freePorts(20);
    assert.equal(new Set(ports).size, 20);
    // Below the ephemeral range, where an outgoing connection cannot take them before a member listens.
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && low > 11_000) for (const p of ports) assert.ok(p >= 10_000 && p < low, `port ${p}`);
  });

  const kinds: [MemberKind, string | false][] = [
    ['etcd-ts', false],
    ['etcd', etcdMissing()],
  ];
  for (const [kind, skip] of kinds) {
    test(`${kind}: start, put, SIGKILL, restart on the same data, stop`, { skip: skip || etcdctlMissing() }, async () => {
      const c = await ws.startCluster({ kind });
      const m = c.member(0);
      assert.equal(await getHealth(m.clientUrl), 'true');
      const put = await etcdctl(['put', 'k', 'v'], { endpoints: c.endpoints });
      assert.deepEqual([put.code, put.stdout], [0, 'OK\n']);
      await m.kill();
      assert.equal(m.exitInfo?.signal, 'SIGKILL');
      assert.equal(await getHealth(m.clientUrl), undefined);
      await m.start();
      const get = await etcdctl(['get', 'k', '--print-value-only'], { endpoints: c.endpoints });
      assert.deepEqual([get.code, get.stdout], [0, 'v\n']);
      assert.ok((await memberStatus(m.endpoint)).leader !== 0n);
      const exit = await m.stop();
      // Both shut down cleanly and then re-raise the signal, as Go's etcd does.
      assert.deepEqual(exit, { code: null, signal: 'SIGTERM' }, m.logTail(20));
      assert.ok(existsSync(m.dataDir));
    });
  }

  test('etcdctl times out and reports it', { skip: etcdctlMissing() }, async () => {
    const [port] = await freePorts(1);
    // Nothing listens there: with a long dial timeout etcdctl would wait; the harness kills it.
    const r = await etcdctl(['get', 'x', '--dial-timeout=10s', '--command-timeout=10s'], { endpoints: `127.0.0.1:${port ?? 0}`, timeoutMs: 500 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
  });

  test('a start that cannot become ready fails with the log tail', async () => {
    await assert.rejects(startCluster({ kind: 'etcd-ts', extraFlags: ['--heartbeat-interval', 'nonsense'] }), /exited \(code 2\) before ready/);
  });
});
