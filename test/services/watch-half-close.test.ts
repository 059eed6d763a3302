// A Watch stream outlives the client's half-close: after the client has sent
// its requests and closed its side, events keep arriving until it cancels.
// Checked against the real etcd as well, so the expectation is etcd's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb } from '../../src/pb/index.js';
import { etcdMissing, methods, openChannel, useWorkspace, type Cluster } from '../harness/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array(0));

/** read() with a bound, so a stream that went quiet fails the test instead of hanging it. */
async function readWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function halfCloseThenPut(c: Cluster): Promise<string[]> {
  const ch = openChannel(c.member(0).endpoint);
  try {
    const call = ch.bidi(methods.watch.Watch, { timeoutMs: 30_000 });
    const create = etcdserverpb.WatchCreateRequest.create({ key: enc('half/'), rangeEnd: enc('half0') });
    call.write(etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: create } }));
    call.end();
    const created = await readWithin(call.read(), 10_000, 'created response');
    assert.equal(created?.created, true);
    const keys: string[] = [];
    for (const k of ['half/a', 'half/b']) {
      await ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: enc(k), value: enc('v') }), { timeoutMs: 10_000 });
      const res = await readWithin(call.read(), 10_000, `event for ${k}`);
      assert.ok(res !== undefined, 'the stream ended after the half-close');
      keys.push(...res.events.map((e) => dec(e.kv?.key)));
    }
    call.cancel();
    return keys;
  } finally {
    ch.close();
  }
}

describe('watch stream after the client half-closes', () => {
  const ws = useWorkspace('watch-half-close');
  let ours: Cluster;
  before(async () => {
    ours = await ws.startCluster({ kind: 'etcd-ts' });
  });
  after(async () => {
    await ours.stop();
  });

  test('etcd-ts keeps sending events', async () => {
    assert.deepEqual(await halfCloseThenPut(ours), ['half/a', 'half/b']);
  });

  test('so does the real etcd', { skip: etcdMissing() }, async () => {
    const real = await ws.startCluster({ kind: 'etcd' });
    try {
      assert.deepEqual(await halfCloseThenPut(real), ['half/a', 'half/b']);
    } finally {
      await real.stop();
    }
  });
});
