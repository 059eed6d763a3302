// Failover: a client of a 3-member etcd-ts cluster keeps reading, writing and
// watching while members are killed, and comes back to a restarted one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.js';
import { useWorkspace, type Cluster } from '../harness/index.js';

const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString();

describe('client failover against a 3-member etcd-ts cluster', () => {
  const ws = useWorkspace('client-failover');
  let c: Cluster;
  let client: Client;
  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts', size: 3 });
    client = await Client.connect({ endpoints: c.endpoints, dialTimeoutMs: 5000 });
  });
  after(() => client.close());

  test('reads retry on the next endpoint; writes and a watcher carry on after a member dies', async () => {
    const first = await client.kv.put('f/k', '0');
    // From the revision after the put: a watch "from now" on a member that has
    // not applied the put yet would start before it (as etcd's would).
    const w = client.watch.watch('f/k', { startRevision: Number(first.header?.revision ?? 0n) + 1 });
    await w.created;
    const it = w[Symbol.asyncIterator]();
    let values: string[] = [];
    const collect = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done === true) return;
        values = values.concat(r.value.events.map((e) => text(e.kv?.value)));
      }
    })();

    for (let round = 0; round < 3; round++) {
      const victim = c.member(round);
      await victim.kill();
      try {
        // Every read succeeds: a call that lands on the dead member is retried elsewhere.
        for (let i = 0; i < 20; i++) {
          const r = await client.kv.get('f/k', { serializable: true, timeoutMs: 20_000 });
          assert.equal(r.kvs.length, 1);
        }
        // Writes go to live members (a write is never sent twice, so retry here until one lands).
        let written = false;
        for (let attempt = 0; attempt < 40 && !written; attempt++) {
          try {
            await client.kv.put('f/k', String(round + 1), { timeoutMs: 5000 });
            written = true;
          } catch (err) {
            assert.match(String(err), /Unavailable|leader|timed out|deadline|connection/i);
            await new Promise((r) => setTimeout(r, 250));
          }
        }
        assert.ok(written, `no write succeeded with ${victim.name} down`);
      } finally {
        // Back even when this round failed: the next test kills a member of its own.
        await victim.start();
      }
    }
    const deadline = Date.now() + 20_000;
    while (values.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // The watcher sees every write exactly once, in order, across its reconnects.
    assert.deepEqual(values, ['1', '2', '3']);
    w.cancel();
    await collect;
  });

  test('a client whose first endpoint is down connects through the others', async () => {
    await c.member(0).kill();
    const late = await Client.connect({ endpoints: c.endpoints, dialTimeoutMs: 5000 });
    try {
      for (let i = 0; i < 10; i++) assert.equal(text((await late.kv.get('f/k', { timeoutMs: 20_000 })).kvs[0]?.value), '3');
      await late.syncEndpoints();
      assert.equal(late.endpoints.length, 3);
    } finally {
      late.close();
      await c.member(0).start();
    }
  });
});
