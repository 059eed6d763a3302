// Watch streams against the real etcd 3.4.23, response for response: start
// revisions before the compaction, at it, at the current revision, in the
// future and out of range; empty, reversed and all-key ranges; filters known
// and unknown; prev_kv; client-chosen watch ids (duplicates, negative);
// cancels of live, unknown and negative ids; progress requests; empty
// requests. Both servers get the same writes in the same order, so every
// response (revisions, events, compact_revision, cancel reasons) must be equal,
// cluster and member ids aside.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, etcdMissing, methods, useEtcdPair, type RawAnswer, type RawStream } from '../harness/index.js';

type WatchCreate = Partial<etcdserverpb.WatchCreateRequest>;

/** One step of a case: a request on the stream, or a write to both servers. */
type Step = { readonly watch: etcdserverpb.WatchRequest } | { readonly put: string } | { readonly del: string };

const te = new TextEncoder();
const b = (s: string): Uint8Array => te.encode(s);
const create = (init: WatchCreate): Step => ({ watch: etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: etcdserverpb.WatchCreateRequest.create(init) } }) });
const cancel = (watchId: number): Step => ({ watch: etcdserverpb.WatchRequest.create({ requestUnion: { case: 'cancelRequest', value: { watchId } } }) });
const progress: Step = { watch: etcdserverpb.WatchRequest.create({ requestUnion: { case: 'progressRequest', value: {} } }) };
const put = (key: string): Step => ({ put: key });
const del = (key: string): Step => ({ del: key });

/** The cases, as functions of the current revision and the compacted one. */
const cases: Record<string, (rev: number, compacted: number) => Step[]> = {
  'from now': () => [create({ key: b('a') }), put('a')],
  'from before the compaction': (_r, c) => [create({ key: b('a'), startRevision: c - 2 }), put('a')],
  'from the compacted revision': (_r, c) => [create({ key: b('a'), startRevision: c }), put('a')],
  'from just after the compaction': (_r, c) => [create({ key: b('a'), startRevision: c + 1 })],
  'from the current revision': (r) => [create({ key: b('a'), startRevision: r })],
  'from the next revision': (r) => [create({ key: b('a'), startRevision: r + 1 }), put('a')],
  'from far ahead': (r) => [create({ key: b('a'), startRevision: r + 100 }), put('a')],
  'from 2^62': () => [create({ key: b('a'), startRevision: 2 ** 62 }), put('a')],
  'from -1': () => [create({ key: b('a'), startRevision: -1 }), put('a')],
  'an empty key': () => [create({ key: b('') }), put('a')],
  'every key': () => [create({ key: b('\0'), rangeEnd: b('\0') }), put('x'), del('x')],
  'every key from an empty key': () => [create({ key: b(''), rangeEnd: b('\0') }), put('y')],
  'a range ending at its key': () => [create({ key: b('a'), rangeEnd: b('a') }), put('a')],
  'a reversed range': () => [create({ key: b('b'), rangeEnd: b('a') }), put('a'), put('ab')],
  'a prefix': () => [create({ key: b('a'), rangeEnd: b('b') }), put('ab'), put('b'), del('ab')],
  'no puts': () => [create({ key: b('a'), filters: [0] }), put('a'), del('a')],
  'no deletes': () => [create({ key: b('a'), filters: [1] }), put('a'), del('a')],
  'both filters': () => [create({ key: b('a'), filters: [0, 1] }), put('a'), del('a')],
  'an unknown filter': () => [create({ key: b('a'), filters: [5 as etcdserverpb.WatchCreateRequest_FilterType] }), put('a')],
  'prev_kv': () => [create({ key: b('a'), prevKv: true }), put('a'), put('a'), del('a')],
  'prev_kv from the past': (r) => [create({ key: b('a'), prevKv: true, startRevision: r - 3 })],
  'watch ids chosen': () => [create({ key: b('a'), watchId: 7 }), create({ key: b('b') }), create({ key: b('c'), watchId: 1 }), put('a'), put('b')],
  'a watch id twice': () => [create({ key: b('a'), watchId: 7 }), create({ key: b('b'), watchId: 7 }), put('a'), put('b')],
  'a negative watch id': () => [create({ key: b('a'), watchId: -1 }), create({ key: b('a'), watchId: -5 }), put('a')],
  'a huge watch id': () => [create({ key: b('a'), watchId: 2 ** 62 }), put('a')],
  'auto ids after a chosen one': () => [create({ key: b('a'), watchId: 0 }), create({ key: b('a'), watchId: 1 }), create({ key: b('a') }), put('a')],
  'cancel': () => [create({ key: b('a') }), cancel(0), put('a')],
  'cancel twice': () => [create({ key: b('a') }), cancel(0), cancel(0)],
  'cancel an unknown id': () => [cancel(99), cancel(-1), create({ key: b('a') }), put('a')],
  'progress alone': () => [progress],
  'progress with a watch': () => [create({ key: b('a') }), put('a'), progress],
  'progress with a future watch': (r) => [create({ key: b('a'), startRevision: r + 10 }), progress],
  'an empty request': () => [{ watch: etcdserverpb.WatchRequest.create({}) }, create({ key: b('a') }), put('a')],
  'fragment': () => [create({ key: b('a'), fragment: true, prevKv: true }), put('a')],
  'progress_notify': () => [create({ key: b('a'), progressNotify: true }), put('a')],
  'two watches, one write': () => [create({ key: b('a') }), create({ key: b('a'), rangeEnd: b('b') }), put('a')],
};

/** A response as comparable data: ids that differ between any two clusters left out, bytes as text. */
function comparable(bytes: Buffer): unknown {
  const res = etcdserverpb.WatchResponse.decode(bytes);
  if (res.header !== undefined) res.header = { ...res.header, clusterId: 0n, memberId: 0n };
  return JSON.parse(JSON.stringify(res, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString() : v)));
}

/**
 * The responses of each watch id in the order they came. The order between
 * watchers of one stream is not kept: etcd sends one write's events to its
 * watchers in Go's map order, which is random.
 */
function byWatch(messages: readonly Buffer[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const m of messages) {
    const r = comparable(m) as { watchId: number };
    (out[String(r.watchId)] ??= []).push(r);
  }
  return out;
}

/**
 * Waits until both streams have as many responses and nothing new came for a
 * while (bounded): a server slower to answer is waited for, so that the next
 * write meets the same watchers on both.
 */
async function settleBoth(streams: readonly RawStream[]): Promise<void> {
  const deadline = Date.now() + 5_000;
  let last = '';
  for (;;) {
    const counts = streams.map((s) => s.messages.length).join(',');
    if (counts === last && new Set(streams.map((s) => s.messages.length)).size === 1) return;
    if (Date.now() > deadline) return;
    last = counts;
    await delay(60);
  }
}

describe('watch streams against the real etcd', { skip: etcdMissing() }, () => {
  const { raw } = useEtcdPair('watch-diff');
  let compacted = 0;

  /** The same unary request to both servers; their answers must agree (ids aside). */
  async function both(path: string, body: Uint8Array): Promise<RawAnswer> {
    const [theirs, ours] = (await Promise.all(raw.map((r) => r.call(path, body)))) as [RawAnswer, RawAnswer];
    assert.deepEqual([ours.status, ours.message], [theirs.status, theirs.message], path);
    return theirs;
  }

  async function revision(): Promise<number> {
    const a = await both(methods.kv.Range.path, etcdserverpb.RangeRequest.encode(etcdserverpb.RangeRequest.create({ key: b('a') })));
    return etcdserverpb.RangeResponse.decode(a.messages[0] ?? Buffer.alloc(0)).header?.revision ?? 0;
  }

  before(async () => {
    // History: a few writes, a compaction in the middle, more writes.
    for (const [k, v] of [['a', '1'], ['b', '1'], ['a', '2'], ['c', '1'], ['a', '3']] as const) {
      await both(methods.kv.Put.path, etcdserverpb.PutRequest.encode(etcdserverpb.PutRequest.create({ key: b(k), value: b(v) })));
    }
    compacted = (await revision()) - 1;
    await both(methods.kv.Compact.path, etcdserverpb.CompactionRequest.encode(etcdserverpb.CompactionRequest.create({ revision: compacted, physical: true })));
    await both(methods.kv.DeleteRange.path, etcdserverpb.DeleteRangeRequest.encode(etcdserverpb.DeleteRangeRequest.create({ key: b('b') })));
    await both(methods.kv.Put.path, etcdserverpb.PutRequest.encode(etcdserverpb.PutRequest.create({ key: b('a'), value: b('4') })));
  });
  for (const [name, steps] of Object.entries(cases)) {
    test(name, async () => {
      const rev = await revision();
      const streams = raw.map((r) => r.open(methods.watch.Watch.path));
      let n = 0;
      for (const step of steps(rev, compacted)) {
        if ('watch' in step) {
          const bytes = etcdserverpb.WatchRequest.encode(step.watch);
          for (const s of streams) s.send(bytes);
        } else {
          // Writes wait until both streams have answered what came before.
          await settleBoth(streams);
          if ('put' in step) await both(methods.kv.Put.path, etcdserverpb.PutRequest.encode(etcdserverpb.PutRequest.create({ key: b(step.put), value: b(`v${n++}`) })));
          else await both(methods.kv.DeleteRange.path, etcdserverpb.DeleteRangeRequest.encode(etcdserverpb.DeleteRangeRequest.create({ key: b(step.del) })));
        }
      }
      await settleBoth(streams);
      // Neither server ends a watch stream the client half-closed: the client goes away instead.
      const [theirs, ours] = (await Promise.all(streams.map((s) => s.cancel()))) as [RawAnswer, RawAnswer];
      assert.deepEqual(
        { status: ours.status, message: ours.message, responses: byWatch(ours.messages) },
        { status: theirs.status, message: theirs.message, responses: byWatch(theirs.messages) },
      );
    });
  }

  test('fragments of a history larger than the limit (--max-request-bytes plus 512 KiB)', async () => {
    const from = (await revision()) + 1;
    // 4 values of 900 KB: etcd's limit (1.5 MiB + 512 KiB) holds two events per fragment.
    for (let i = 0; i < 4; i++) {
      const value = Buffer.alloc(900_000, 97 + i);
      await both(methods.kv.Put.path, etcdserverpb.PutRequest.encode(etcdserverpb.PutRequest.create({ key: b(`big/${i}`), value })));
    }
    const streams = raw.map((r) => r.open(methods.watch.Watch.path));
    const watch = create({ key: b('big/'), rangeEnd: b('big0'), startRevision: from, fragment: true }) as { readonly watch: etcdserverpb.WatchRequest };
    const bytes = etcdserverpb.WatchRequest.encode(watch.watch);
    for (const s of streams) s.send(bytes);
    // The history comes with a sync pass, after the created response: wait for all of it.
    const events = (st: RawStream): number => st.messages.reduce((n, m) => n + etcdserverpb.WatchResponse.decode(m).events.length, 0);
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && !streams.every((st) => events(st) >= 4); ) await delay(50);
    await settleBoth(streams);
    const [theirs, ours] = (await Promise.all(streams.map((s) => s.cancel()))) as [RawAnswer, RawAnswer];
    const shape = (a: RawAnswer): string[] => a.messages.map((m) => {
      const r = etcdserverpb.WatchResponse.decode(m);
      return `${r.events.length} events${r.fragment ? ', fragment' : ''}`;
    });
    assert.deepEqual(shape(ours), shape(theirs));
    assert.deepEqual(shape(theirs), ['0 events', '2 events, fragment', '2 events']);
    assert.deepEqual(byWatch(ours.messages), byWatch(theirs.messages));
  });
});