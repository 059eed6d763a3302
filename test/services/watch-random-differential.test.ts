// The Watch service against the real etcd 3.4.23, driven by a seeded PRNG.
// Both servers get the same steps in lockstep: on two to four watch streams
// each, random create requests, alone or two or three at once (one key,
// ranges empty, from a key, to a prefix's end, to any key of the space,
// reversed; start revisions of 0, in the past, current, next, future, at,
// before and after the compaction, negative; prev_kv, filters known and
// unknown, fragment, progress_notify; client-chosen watch ids: automatic,
// reused, in use, negative), cancels (live, compacted, already canceled,
// unknown, negative ids), progress requests, empty requests, a stream closed
// and opened again; and between them writes over a small key space with \x00
// and \xff bytes: puts, deletes of ranges, txns of several puts and deletes
// (of values of 118 kB now and then, so that responses come in fragments:
// --max-request-bytes is 600 kB), leases granted with ids chosen here and
// revoked with keys attached, compactions (physical or not, at 0 too).
//
// After each step the responses each stream received are compared, grouped
// by watch id (the order within a watch id kept): etcd sends the events of
// one write to the watchers of a stream in Go's map order, which is random,
// and its created, canceled and progress responses go through a channel of
// their own, unordered with the events of other watchers. Every response
// must be equal, decoded and in its bytes, but for the header's cluster id,
// member id and raft term. A unary answer must be equal too.
//
// A step is over when each stream has what it must have, found without
// waiting for quiet periods: each control request's answer is counted (one
// per create and progress request, one per cancel of an id the stream has);
// a watcher created from a revision at or before the current one is in
// etcd's unsynced group until its sync loop (every 100 ms) reads its history,
// which etcd_debugging_mvcc_slow_watcher_total shows; and events are ordered
// on a stream by revision, so after a write (or a history read) a put of a
// barrier key that a watcher of each stream watches marks the end: once each
// watcher of that key (known from the requests etcd accepted) had its event,
// every earlier event of the stream came. Each wait is bounded.
//
// Kept out on purpose, as races of etcd 3.4.23 or differences kept on purpose:
// - A compaction while a watcher is unsynced: whether etcd's sync loop read
//   its history before the compaction (events) or after (canceled with
//   compact_revision) depends on its timer. Compactions come only once every
//   watcher is synced; a watcher created from before the compaction is
//   canceled with compact_revision deterministically, and those are made.
// - A watch from the compact revision when that revision deleted a key:
//   etcd 3.4.23 removes the tombstone, etcd-ts keeps it, as etcd 3.4.34 and
//   3.5.15 do (etcd #18089, README); and after a compaction that did not wait
//   (physical false), etcd's watch finds it or not, as its removal went. Such
//   a watch starts one revision later.
// - Two watchers in one sync pass of etcd, one from -1 on a store never
//   compacted: etcd reads the pass's history from the smallest start, -1, as
//   an unsigned number, past every revision, so the other watcher loses its
//   history too; etcd-ts reads none for the one from -1 only. Each step waits
//   until etcd synced its watchers, and watchers created together (which one
//   pass may read for) have no negative start.
// - A progress request while a watcher is unsynced: etcd 3.4.23 answers at
//   once, ahead of the history still to come (etcd #15220); etcd-ts answers
//   once the watchers are synced. Progress requests come after a step settled.
// - A cancel with events of the watcher still queued: etcd sends them or not
//   around its answer. Cancels come after a step settled.
// - progress_notify's ticks: every 10 minutes, never within a run.
//
// WATCH_RANDOM_SEED picks the sequence (the default is fixed), WATCH_RANDOM_OPS
// its length; a failure names the seed and the step. WATCH_RANDOM_LOG set
// prints each step as it goes; the run ends with a count of etcd's responses
// by kind and of the waits that reached their deadline (none in a good run).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { prefixRangeEnd } from '../../src/client/index.js';
import { SeededRand } from '../../src/base/index.js';
import { etcdserverpb, mvccpb } from '../../src/pb/index.js';
import type { MethodInfo } from '../../src/pb/runtime.js';
import { Choices, compared, delay, etcdMissing, methods, plain, useEtcdPair, type Cluster, type RawAnswer, type RawStream } from '../harness/index.js';

const pb = etcdserverpb;
const seed = Number(process.env['WATCH_RANDOM_SEED'] ?? '20261207');
const opsCount = Number(process.env['WATCH_RANDOM_OPS'] ?? '110');
/** How long any one wait may take. */
const waitMs = 5_000;

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
/** Eleven keys: near each other, with \x00 and \xff bytes, the smallest, one of the largest, one longer than LMDB's keys. */
const keys = ['\x00', 'a', 'a\x00', 'a\xff', 'ab', 'abc', 'b', 'b\x00', `c${'x'.repeat(600)}`, '\xff', '\xff\xff'].map(bytes);
const values = ['', 'v', '\x00', '\xff\xfe'].map(bytes);
/**
 * Requests up to 600 kB (--max-request-bytes): five values of 118 kB fit in a txn, and the
 * responses of watchers created with fragment are split past 1.1 MB (the limit plus 512 KiB).
 */
const maxRequestBytes = 600_000;
const bigValueBytes = 118_000;
/** The keys under "a", written together with large values now and then: with prev_kv, past the fragment limit. */
const bigKeys = ['a', 'a\x00', 'a\xff', 'ab', 'abc'].map(bytes);
/** Written after each step that may have sent events; each stream watches it under barrierId. */
const barrierKey = bytes('zz-barrier');
const barrierId = 999;
/** Lease ids chosen here (etcd and etcd-ts would pick different random ones), one never granted. */
const leaseIds = [0x2001n, 0x2002n, 0x2003n];
const leaseUnknown = 0x9999n;

/** A watcher of a stream, as etcd's answers told: live, or canceled by a compaction (its id still taken); its request. */
interface Watch {
  state: 'live' | 'compacted';
  readonly req: etcdserverpb.WatchCreateRequest;
}

/** Whether a watcher created by req gets an event of a put of key at revision rev (once synced). */
function getsPut(req: etcdserverpb.WatchCreateRequest, key: Uint8Array, rev: number): boolean {
  const from = req.key.length === 0 ? bytes('\x00') : req.key;
  const end = req.rangeEnd;
  const inRange =
    end.length === 0 ? Buffer.compare(key, from) === 0 : Buffer.compare(key, from) >= 0 && ((end.length === 1 && end[0] === 0) || Buffer.compare(key, end) < 0);
  return inRange && !req.filters.includes(pb.WatchCreateRequest_FilterType.NOPUT) && req.startRevision <= rev;
}

/** One watch stream on each server, and what is known of it. */
interface StreamPair {
  /** [etcd's, etcd-ts's] */
  streams: RawStream[];
  /** Messages of each side compared so far (as many on both sides). */
  seen: number;
  /** Messages of etcd's side learned from (ids created and canceled). */
  learned: number;
  ids: Map<number, Watch>;
  /** Ids this stream ever had, for reuse. */
  used: Set<number>;
  /** The create requests not answered yet, in order: a created answer is the first one's. */
  creating: etcdserverpb.WatchCreateRequest[];
}

/** What a step did, for the wait that follows it. */
interface Effect {
  /** Control answers expected on each stream. */
  readonly ctrl: Map<StreamPair, number>;
  /** A watcher may be unsynced: wait for etcd's sync loop. */
  unsynced: boolean;
  /** Events may have been sent: write the barrier. */
  events: boolean;
}

const watchRequest = (requestUnion: etcdserverpb.WatchRequest['requestUnion']): Uint8Array => pb.WatchRequest.encode(pb.WatchRequest.create({ requestUnion }));
const putOp = (value: etcdserverpb.PutRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestPut', value } });
const deleteOp = (value: etcdserverpb.DeleteRangeRequest): etcdserverpb.RequestOp => ({ request: { case: 'requestDeleteRange', value } });

/** Random requests; revisions are chosen near what etcd has (rev, compacted). */
class Requests extends Choices {
  rev = 1;
  compacted = 0;
  readonly granted = new Set<bigint>();
  /** Revisions with a delete in them. */
  readonly deletes = new Set<number>();
  /** Revisions of the txns of large values. */
  readonly bigTxns: number[] = [];

  key(): Uint8Array {
    return this.pick(keys);
  }

  /** Empty (one key), "\0" (every key from key), a prefix's end, any key of the space (maybe not after key), key + "\0". */
  rangeEnd(key: Uint8Array): Uint8Array {
    const n = this.rand.intn(10);
    if (n < 3) return new Uint8Array();
    if (n < 5) return bytes('\x00');
    if (n < 7) return prefixRangeEnd(key);
    if (n < 9) return this.key();
    return Buffer.concat([key, bytes('\x00')]);
  }

  /** 0 most often; in the past, current, next, future, around the compaction, negative. */
  startRevision(): number {
    if (this.chance(0.45)) return 0;
    const c = this.compacted;
    const r = this.rev;
    // From before the third last txn of large values: a history that may need fragments.
    const big = (this.bigTxns.at(-3) ?? r + 1) - 1;
    return this.pick([r, r + 1, r + 3, r - 1, r - 3, r - 6, big, big, 1 + this.rand.intn(r), 1 + this.rand.intn(r), c, c - 1, c + 1, -1, -100]);
  }

  watchId(s: StreamPair): number {
    if (this.chance(0.6)) return 0;
    const taken = [...s.ids.keys()].filter((id) => id !== barrierId);
    const gone = [...s.used].filter((id) => !s.ids.has(id));
    const n = this.rand.intn(10);
    if (n < 4) return 1 + this.rand.intn(6);
    if (n < 6 && taken.length > 0) return this.pick(taken);
    if (n < 8 && gone.length > 0) return this.pick(gone);
    return this.pick([-1, -7, 2 ** 40]);
  }

  filters(): etcdserverpb.WatchCreateRequest_FilterType[] {
    if (this.chance(0.6)) return [];
    return this.pick([[0], [1], [0, 1], [1, 1], [2], [-1], [5, 0]]) as etcdserverpb.WatchCreateRequest_FilterType[];
  }

  /** One of several at once has no negative start revision (see the header). */
  create(s: StreamPair, several: boolean): etcdserverpb.WatchCreateRequest {
    const key = this.chance(0.03) ? new Uint8Array() : this.key();
    let startRevision = this.startRevision();
    if (several && startRevision < 0) startRevision = 0;
    // etcd 3.4.23 removes a tombstone at the compact revision, etcd-ts keeps it (see the header).
    if (startRevision === this.compacted && this.deletes.has(startRevision)) startRevision++;
    return pb.WatchCreateRequest.create({
      key,
      rangeEnd: this.rangeEnd(key),
      startRevision,
      prevKv: this.chance(0.4),
      filters: this.filters(),
      fragment: this.chance(0.3),
      progressNotify: this.chance(0.2),
      watchId: this.watchId(s),
    });
  }

  /** A live id most often; a compacted, canceled, unknown or negative one. */
  cancelId(s: StreamPair): number {
    const live = [...s.ids].filter(([id, w]) => w.state === 'live' && id !== barrierId).map(([id]) => id);
    const compacted = [...s.ids].filter(([, w]) => w.state === 'compacted').map(([id]) => id);
    const gone = [...s.used].filter((id) => !s.ids.has(id));
    const n = this.rand.intn(10);
    if (n < 6 && live.length > 0) return this.pick(live);
    if (n < 7 && compacted.length > 0) return this.pick(compacted);
    if (n < 8 && gone.length > 0) return this.pick(gone);
    return this.pick([99, -1, -5, 0]);
  }

  lease(): bigint {
    if (this.chance(0.6)) return 0n;
    return this.chance(0.9) ? this.pick(leaseIds) : leaseUnknown;
  }

  put(): etcdserverpb.PutRequest {
    return pb.PutRequest.create({ key: this.key(), value: this.chance(0.5) ? bytes(`v${this.rand.intn(1000)}`) : this.pick(values), lease: this.lease(), prevKv: this.chance(0.3) });
  }

  deleteRange(): etcdserverpb.DeleteRangeRequest {
    const key = this.key();
    return pb.DeleteRangeRequest.create({ key, rangeEnd: this.chance(0.5) ? new Uint8Array() : this.rangeEnd(key), prevKv: this.chance(0.3) });
  }

  /** Several puts and deletes (a key twice is refused, as etcd refuses it), behind a compare that may fail. */
  txn(): etcdserverpb.TxnRequest {
    const ops = (): etcdserverpb.RequestOp[] => Array.from({ length: this.rand.intn(5) }, () => (this.chance(0.65) ? putOp(this.put()) : deleteOp(this.deleteRange())));
    const compare = this.chance(0.5)
      ? []
      : [pb.Compare.create({ key: this.key(), target: pb.Compare_CompareTarget.VERSION, result: this.rand.intn(4) as etcdserverpb.Compare_CompareResult, targetUnion: { case: 'version', value: this.rand.intn(3) } })];
    return pb.TxnRequest.create({ compare, success: ops(), failure: ops() });
  }

  /** Puts of up to five keys of 118 kB each in one txn: a watcher's response to them, or to a history with them, can be past the fragment limit. */
  bigTxn(): etcdserverpb.TxnRequest {
    const chosen = this.chance(0.5) ? bigKeys : keys.filter(() => this.chance(0.4)).slice(0, 5);
    return pb.TxnRequest.create({ success: chosen.map((key) => putOp(pb.PutRequest.create({ key, value: new Uint8Array(bigValueBytes).fill(0x61 + this.rand.intn(26)) }))) });
  }

  /** At or near the current revision, around the last compaction, in the future. */
  compact(): etcdserverpb.CompactionRequest {
    const revision = this.pick([this.rev, this.rev - 1, this.rev - 3, 1 + this.rand.intn(this.rev), this.compacted, this.compacted + 1, this.rev + 1]);
    return pb.CompactionRequest.create({ revision, physical: this.chance(0.5) });
  }
}

/** etcd_debugging_mvcc_slow_watcher_total of a member: its unsynced watchers (and victims). */
async function slowWatchers(c: Cluster): Promise<number> {
  const text = await (await fetch(`${c.member(0).clientUrl}/metrics`, { signal: AbortSignal.timeout(waitMs) })).text();
  const m = /^etcd_debugging_mvcc_slow_watcher_total (\S+)$/m.exec(text);
  return Number(m?.[1] ?? assert.fail('no etcd_debugging_mvcc_slow_watcher_total'));
}

const decode = (m: Buffer): etcdserverpb.WatchResponse => pb.WatchResponse.decode(m);

/** A response in one line, for a readable diff: "@rev created canceled(reason) compacted N fragment: PUT k=v@mod<-v@mod, DEL k@mod". */
function render(r: etcdserverpb.WatchResponse): string {
  const text = (b: Uint8Array): string => JSON.stringify(b.length > 20 ? `${Buffer.from(b.subarray(0, 8)).toString('latin1')}..(${b.length})` : Buffer.from(b).toString('latin1'));
  const kv = (k: mvccpb.KeyValue | undefined): string => (k === undefined ? '-' : `${text(k.value)}@${k.modRevision}/${k.createRevision}/v${k.version}/l${k.lease}`);
  const evs = r.events.map((e) => `${e.type === mvccpb.Event_EventType.PUT ? 'PUT' : 'DEL'} ${text(e.kv?.key ?? new Uint8Array())}=${kv(e.kv)}${e.prevKv === undefined ? '' : ` <- ${kv(e.prevKv)}`}`);
  const flags = [r.created && 'created', r.canceled && `canceled(${r.cancelReason})`, r.compactRevision !== 0 && `compacted ${r.compactRevision}`, r.fragment && 'fragment'].filter((f) => f !== false);
  return `@${r.header?.revision ?? '-'} ${flags.join(' ')}: ${evs.join(', ')}`;
}

/**
 * The responses of a stream from index from on, grouped by watch id (each group in order):
 * each one in a line, then decoded as plain data and in its bytes (header ids left out).
 */
function byWatchId(messages: readonly Buffer[], from: number): { lines: Record<string, string[]>; full: Record<string, unknown[]> } {
  const slice: RawAnswer = { status: '', message: '', messages: messages.slice(from) };
  const { decoded, bytes: hex } = compared(slice, pb.WatchResponse);
  const lines: Record<string, string[]> = {};
  const full: Record<string, unknown[]> = {};
  slice.messages.forEach((m, i) => {
    const r = decode(m);
    (lines[String(r.watchId)] ??= []).push(render(r));
    (full[String(r.watchId)] ??= []).push({ response: decoded[i], bytes: hex[i] });
  });
  return { lines, full };
}

describe(`Watch at random against the real etcd, seed ${seed}`, { skip: etcdMissing(), timeout: 60_000 + opsCount * 200 }, () => {
  const { clusters, raw } = useEtcdPair('watch-random-diff', [`--max-request-bytes=${maxRequestBytes}`]);

  /** The same unary request to both servers; their answers must agree. Returns etcd's response, if any. */
  async function both<Req, Res>(m: MethodInfo<Req, Res>, req: Req, what: string): Promise<Res | undefined> {
    const [theirs, ours] = (await Promise.all(raw.map((r) => r.call(m.path, m.requestType.encode(req))))) as [RawAnswer, RawAnswer];
    assert.deepEqual(compared(ours, m.responseType), compared(theirs, m.responseType), `${what}: ${m.name} ${JSON.stringify(plain(req))}`);
    return theirs.messages[0] === undefined ? undefined : m.responseType.decode(theirs.messages[0]);
  }

  test(`${opsCount} random steps (WATCH_RANDOM_SEED=${seed})`, { timeout: 50_000 + opsCount * 200 }, async (t) => {
    const rand = new SeededRand(seed);
    const reqs = new Requests(rand);
    const pairs: StreamPair[] = [];
    const noted = (header: etcdserverpb.ResponseHeader | undefined): void => {
      if (header !== undefined) reqs.rev = Math.max(reqs.rev, header.revision);
    };

    /** Sends one watch request on both sides of a stream. */
    const send = (s: StreamPair, body: Uint8Array): void => {
      for (const st of s.streams) st.send(body);
    };
    /** Opens a stream on each server with its barrier watcher. */
    const open = (effect: Effect): StreamPair => {
      const s: StreamPair = { streams: raw.map((r) => r.open(methods.watch.Watch.path)), seen: 0, learned: 0, ids: new Map(), used: new Set(), creating: [] };
      const req = pb.WatchCreateRequest.create({ key: barrierKey, watchId: barrierId });
      s.creating.push(req);
      send(s, watchRequest({ case: 'createRequest', value: req }));
      effect.ctrl.set(s, 1);
      return s;
    };

    /** Waits that ended at their deadline: a server's answer missing (then the comparison tells), or this file's model wrong. */
    const timedOut: string[] = [];
    /** Waits (bounded) until pred holds for every stream of both servers. */
    async function until(what: string, pred: (s: StreamPair, side: RawStream) => boolean): Promise<void> {
      for (const deadline = Date.now() + waitMs; Date.now() < deadline; await delay(2)) {
        if (pairs.every((s) => s.streams.every((st) => pred(s, st)))) return;
      }
      timedOut.push(what);
    }

    /** What the run compared, in kinds of response (a run that never fragments or cancels covers less than it says). */
    const seenKinds: Record<string, number> = {};
    const tally = (r: etcdserverpb.WatchResponse): void => {
      const compacted = r.compactRevision !== 0 || r.header?.revision === 0;
      const kind = r.created ? (r.canceled ? 'refused' : 'created') : compacted ? 'compacted' : r.canceled ? 'canceled' : r.events.length > 0 ? (r.fragment ? 'fragment' : 'events') : 'progress';
      seenKinds[kind] = (seenKinds[kind] ?? 0) + 1;
    };

    /** Learns the ids created and canceled from etcd's answers not yet learned from. */
    function learn(s: StreamPair, what: string): void {
      const theirs = s.streams[0] as RawStream;
      for (const m of theirs.messages.slice(s.learned)) {
        const r = decode(m);
        tally(r);
        const w = s.ids.get(r.watchId);
        if (r.created) {
          const req = s.creating.shift() ?? assert.fail(`${what}: a created answer unasked`);
          if (!r.canceled) {
            s.ids.set(r.watchId, { state: 'live', req });
            s.used.add(r.watchId);
          }
        } else if (w !== undefined && (r.compactRevision !== 0 || r.header?.revision === 0)) {
          // Canceled by a compaction; with a compact revision of 0 (a compaction at 0, a start
          // below it), etcd says so without canceled, and the watcher gets nothing more.
          w.state = 'compacted';
        } else if (w !== undefined && r.canceled) {
          s.ids.delete(r.watchId);
        }
      }
      s.learned = theirs.messages.length;
    }

    /** Waits until the step's answers are all there (see the header). */
    async function settle(effect: Effect, what: string): Promise<void> {
      await until(`${what}: the control answers`, (s, st) => st.messages.length >= s.seen + (effect.ctrl.get(s) ?? 0));
      if (effect.unsynced) {
        for (const deadline = Date.now() + waitMs; ; await delay(5)) {
          const counts = await Promise.all(clusters.map(slowWatchers));
          if (counts.every((n) => n === 0)) break;
          if (Date.now() > deadline) {
            timedOut.push(`${what}: etcd's sync`);
            break;
          }
        }
      }
      if (!effect.events && !effect.unsynced) return;
      const res = await both(methods.kv.Put, pb.PutRequest.create({ key: barrierKey, value: bytes('b') }), `${what}: the barrier`);
      const rev = res?.header?.revision ?? assert.fail('the barrier has a revision');
      noted(res?.header);
      // Each watcher of the barrier key gets its event, in the order Go's map gives: every one
      // is waited for. Those are learned as the answers come: one created in the step, and
      // those a compaction canceled (the cancel comes before the barrier's events).
      const found = new Map<Buffer, boolean>();
      const atBarrier = (m: Buffer): boolean => {
        let at = found.get(m);
        if (at === undefined) found.set(m, (at = decode(m).events.some((e) => e.kv?.modRevision === rev)));
        return at;
      };
      const barrierWatchers = (s: StreamPair): number => {
        learn(s, what);
        return [...s.ids.values()].filter((w) => w.state === 'live' && getsPut(w.req, barrierKey, rev)).length;
      };
      await until(`${what}: the barrier`, (s, st) => st.messages.slice(s.seen).filter(atBarrier).length >= barrierWatchers(s));
    }

    /** Compares what each stream received in the step; learns the stream's ids from etcd's answers. */
    function check(what: string): void {
      pairs.forEach((s, i) => {
        const [theirs, ours] = s.streams as [RawStream, RawStream];
        const [t, o] = [byWatchId(theirs.messages, s.seen), byWatchId(ours.messages, s.seen)];
        assert.deepEqual(o.lines, t.lines, `${what}: stream ${i}`);
        assert.deepEqual(o.full, t.full, `${what}: stream ${i}`);
        learn(s, what);
        s.seen = theirs.messages.length;
      });
    }

    const first: Effect = { ctrl: new Map(), unsynced: false, events: false };
    for (const ID of leaseIds.slice(0, 2)) {
      await both(methods.lease.LeaseGrant, pb.LeaseGrantRequest.create({ ID, TTL: 600 }), 'grant');
      reqs.granted.add(ID);
    }
    const streams = 2 + rand.intn(3);
    for (let i = 0; i < streams; i++) pairs.push(open(first));
    await settle(first, `seed ${seed}: the streams opened`);
    check(`seed ${seed}: the streams opened`);

    for (let step = 0; step < opsCount; step++) {
      const effect: Effect = { ctrl: new Map(), unsynced: false, events: false };
      const s = reqs.pick(pairs);
      const live = [...s.ids.values()].filter((w) => w.state === 'live').length;
      const n = rand.intn(100);
      let what = `seed ${seed} step ${step}`;
      if (n < 28) {
        // Now and then two or three at once: one sync pass of etcd may read the history of several.
        const batch = n < 24 ? 1 : 2 + rand.intn(2);
        const created = Array.from({ length: batch }, () => reqs.create(s, batch > 1));
        what += `: create ${created.map((req) => JSON.stringify(plain(req))).join(', ')}`;
        for (const req of created) {
          s.creating.push(req);
          send(s, watchRequest({ case: 'createRequest', value: req }));
        }
        effect.ctrl.set(s, batch);
        effect.unsynced = created.some((req) => req.startRevision !== 0 && req.startRevision <= reqs.rev);
      } else if (n < 36 || (n < 44 && live > 8)) {
        const watchId = reqs.cancelId(s);
        what += `: cancel ${watchId}`;
        send(s, watchRequest({ case: 'cancelRequest', value: { watchId } }));
        effect.ctrl.set(s, s.ids.has(watchId) ? 1 : 0);
      } else if (n < 40) {
        what += ': progress';
        send(s, watchRequest({ case: 'progressRequest', value: {} }));
        effect.ctrl.set(s, 1);
      } else if (n < 41) {
        what += ': an empty request';
        send(s, watchRequest(undefined));
      } else if (n < 42) {
        // The stream closed by the client (RST_STREAM CANCEL), another opened in its place.
        const i = pairs.indexOf(s);
        what += `: stream ${i} closed and opened again`;
        const [theirs, ours] = (await Promise.all(s.streams.map((st) => st.cancel()))) as [RawAnswer, RawAnswer];
        assert.deepEqual([ours.status, ours.message, ours.messages.length], [theirs.status, theirs.message, theirs.messages.length], what);
        pairs[i] = open(effect);
      } else if (n < 66) {
        const req = reqs.put();
        what += `: put ${JSON.stringify(plain(req))}`;
        noted((await both(methods.kv.Put, req, what))?.header);
        effect.events = true;
      } else if (n < 75) {
        const req = reqs.deleteRange();
        what += `: delete ${JSON.stringify(plain(req))}`;
        const res = await both(methods.kv.DeleteRange, req, what);
        if (res !== undefined && res.deleted > 0) reqs.deletes.add(res.header?.revision ?? 0);
        noted(res?.header);
        effect.events = true;
      } else if (n < 88) {
        const big = n >= 85;
        what += big ? ': a txn of large values' : ': txn';
        const res = await both(methods.kv.Txn, big ? reqs.bigTxn() : reqs.txn(), what);
        if (big && res?.header !== undefined && res.header.revision > reqs.rev) reqs.bigTxns.push(res.header.revision);
        if (res?.responses.some((r) => r.response?.case === 'responseDeleteRange' && r.response.value.deleted > 0)) reqs.deletes.add(res.header?.revision ?? 0);
        noted(res?.header);
        effect.events = true;
      } else if (n < 94) {
        const ID = reqs.chance(0.9) ? reqs.pick(leaseIds) : leaseUnknown;
        if (reqs.granted.has(ID) && reqs.chance(0.8)) {
          what += `: revoke ${ID}`;
          const res = await both(methods.lease.LeaseRevoke, pb.LeaseRevokeRequest.create({ ID }), what);
          // A revoke that deleted keys made a revision.
          if (res?.header !== undefined && res.header.revision > reqs.rev) reqs.deletes.add(res.header.revision);
          noted(res?.header);
          reqs.granted.delete(ID);
          effect.events = true;
        } else {
          what += `: grant ${ID}`;
          if ((await both(methods.lease.LeaseGrant, pb.LeaseGrantRequest.create({ ID, TTL: 600 }), what)) !== undefined) reqs.granted.add(ID);
        }
      } else {
        const req = reqs.compact();
        what += `: compact ${req.revision}`;
        const res = await both(methods.kv.Compact, req, what);
        if (res !== undefined) reqs.compacted = req.revision;
        noted(res?.header);
      }
      if (process.env['WATCH_RANDOM_LOG'] !== undefined) console.log(`${what} [stream ${pairs.indexOf(s)}]`);
      await settle(effect, what);
      check(what);
    }
    t.diagnostic(`seed ${seed}: etcd's responses compared, by kind: ${JSON.stringify(seenKinds)}; waits timed out: ${timedOut.length} ${JSON.stringify(timedOut.slice(0, 5))}`);
  });
});
