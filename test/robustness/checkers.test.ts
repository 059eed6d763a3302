/**
 * The checkers themselves: small hand-written histories, each correct one
 * passing and each broken one (stale read, lost write, phantom write, wrong
 * answer, impossible CAS, watch gap, reorder, wrong prev_kv, a watch that
 * never caught up, a serializable read going back) caught by the right check.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkKv } from './check-kv.js';
import { checkLeases } from './check-lease.js';
import { checkLockedSets, checkLocks } from './check-lock.js';
import { checkWatches, mergeReference } from './check-watch.js';
import type { Kv, OpRecord, OpResult, Request, SnapshotRecord, TxnOp, WatchEvent, WatchRecord } from './history.js';
import { Replay, deletedKv } from './model.js';
import { checkSnapshots } from './snapshots.js';

let nextId = 0;
function op(label: string, req: Request, inv: number, ret: number | undefined, res?: { rev: number; results?: OpResult[]; succeeded?: boolean; member?: string }): OpRecord {
  const o: OpRecord = { id: nextId++, client: 0, label, endpoint: 'e', invokeMs: inv, req };
  if (res === undefined) {
    o.status = 'indeterminate';
    return o;
  }
  o.status = 'ok';
  o.returnMs = ret;
  o.res = { revision: res.rev, memberId: res.member ?? 'm1', succeeded: res.succeeded ?? true, results: res.results ?? [] };
  return o;
}
const txn = (success: TxnOp[], compares: { key: string; modRev: number }[] = [], failure: TxnOp[] = []): Request => ({ kind: 'txn', txn: { compares, success, failure } });
const kv = (key: string, value: string, modRev: number, createRev = modRev, version = 1): Kv => ({ key, value, createRev, modRev, version, lease: '0' });
const putEv = (k: Kv, prevKv?: Kv): WatchEvent => (prevKv === undefined ? { type: 'put', kv: k } : { type: 'put', kv: k, prevKv });
const range = (kvs: Kv[]): OpResult => ({ type: 'range', kvs, count: kvs.length, more: false });

/** The watch that defines the history: revision → events, all keys, prev_kv. */
function reference(revs: WatchEvent[][], startRev = 2): WatchRecord {
  return {
    id: 0, label: 'ref', key: '', end: '\0', prevKv: true,
    segments: [{ endpoint: 'e', startRev: 1, invokeMs: 0, responses: revs.map((events, i) => ({ atMs: 0, revision: startRev + i, events })) }],
  };
}

function check(ops: OpRecord[], watches: WatchRecord[]): string[] {
  const { replay, problems } = Replay.build(mergeReference(watches));
  return [...problems.map((p) => `history: ${p}`), ...checkKv(ops, replay).map((v) => `${v.check}: ${v.message}`), ...checkWatches(watches, replay).map((v) => `${v.check}: ${v.message}`)];
}

// a=v1 at 2, a=v2 at 3.
const a2 = kv('a', 'v1', 2);
const a3 = kv('a', 'v2', 3, 2, 2);
const ref = reference([[putEv(a2)], [putEv(a3, a2)]]);

describe('kv checker', () => {
  test('a correct history passes', () => {
    const ops = [
      op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
      op('put', txn([{ type: 'put', key: 'a', value: 'v2' }]), 11, 20, { rev: 3, results: [{ type: 'put' }] }),
      op('get', txn([{ type: 'range', key: 'a' }]), 5, 12, { rev: 2, results: [range([a2])] }),
      op('get', txn([{ type: 'range', key: 'a' }]), 21, 30, { rev: 3, results: [range([a3])] }),
      op('stale', txn([{ type: 'range', key: 'a', revision: 2 }]), 31, 32, { rev: 3, results: [range([a2])] }),
    ];
    assert.deepEqual(check(ops, [ref]), []);
  });

  test('two deletes of one key answering the same revision: the one that removed it wrote it (sim-members seed 21)', () => {
    const del = (k: string): Request => txn([{ type: 'delete', key: k }]);
    const ops = [
      op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
      // Listed first, applied second: it found the key gone and answered revision 3 too.
      op('delete', del('a'), 11, 40, { rev: 3, results: [{ type: 'delete', deleted: 0 }] }),
      op('delete', del('a'), 12, 30, { rev: 3, results: [{ type: 'delete', deleted: 1 }] }),
    ];
    const history = reference([[putEv(a2)], [{ type: 'delete', kv: deletedKv('a', 3), prevKv: a2 }]]);
    assert.deepEqual(check(ops, [history]), []);
  });

  test('a revoke and a delete answering the same revision: the delete, which says it removed the key, wrote it (robustness seed 7)', () => {
    const leased = { ...a2, lease: '7' };
    const ops = [
      op('put', txn([{ type: 'put', key: 'a', value: 'v1', lease: '7' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
      // Listed first, applied second: the key was gone, so it deleted nothing and answered revision 3 too.
      op('revoke', { kind: 'leaseRevoke', id: '7' }, 11, 40, { rev: 3 }),
      op('delete', txn([{ type: 'delete', key: 'a' }]), 12, 30, { rev: 3, results: [{ type: 'delete', deleted: 1 }] }),
    ];
    const history = reference([[putEv(leased)], [{ type: 'delete', kv: deletedKv('a', 3), prevKv: leased }]]);
    assert.deepEqual(check(ops, [history]), []);
  });

  test('a read that misses a write acknowledged before it began is a stale read', () => {
    const ops = [
      op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
      op('put', txn([{ type: 'put', key: 'a', value: 'v2' }]), 11, 20, { rev: 3, results: [{ type: 'put' }] }),
      op('get', txn([{ type: 'range', key: 'a' }]), 25, 30, { rev: 2, results: [range([a2])] }),
    ];
    const v = check(ops, [ref]);
    assert.equal(v.length, 1, v.join('\n'));
    assert.match(v[0] ?? '', /^linearizability: revision 3/);
  });

  test('an acknowledged put missing from the history is a lost write', () => {
    const ops = [
      op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
      op('put', txn([{ type: 'put', key: 'a', value: 'v2' }]), 11, 20, { rev: 3, results: [{ type: 'put' }] }),
      op('put', txn([{ type: 'put', key: 'b', value: 'lost' }]), 21, 22, { rev: 3, results: [{ type: 'put' }] }),
    ];
    assert.deepEqual(check(ops, [ref]).map((s) => s.split(':')[0]), ['lost-write']);
  });

  test('a revision no request wrote is a phantom write; one request twice is caught', () => {
    const only = [op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] })];
    assert.match(check(only, [ref]).join('\n'), /revision 3 .* holds values no single request wrote/);
    const twice = reference([[putEv(a2)], [putEv(kv('a', 'v1', 3, 2, 2), a2)]]);
    assert.match(check(only, [twice]).join('\n'), /took effect twice: at revisions 2 and 3/);
  });

  test('a read whose answer differs from the state at its revision fails', () => {
    const ops = [
      op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
      op('put', txn([{ type: 'put', key: 'a', value: 'v2' }]), 11, 20, { rev: 3, results: [{ type: 'put' }] }),
      op('get', txn([{ type: 'range', key: 'a' }]), 21, 30, { rev: 3, results: [range([a2])] }),
    ];
    assert.match(check(ops, [ref]).join('\n'), /^semantics: .*range returned \[a="v1"/);
  });

  test('an indeterminate write may appear, but only with its own semantics', () => {
    const put1 = op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] });
    // A CAS on "a absent" that timed out: it cannot have produced revision 3, where a existed.
    const cas = op('cas', txn([{ type: 'put', key: 'a', value: 'v2' }], [{ key: 'a', modRev: 0 }], [{ type: 'range', key: 'a' }]), 11, undefined);
    assert.match(check([put1, cas], [ref]).join('\n'), /is at revision 3, .* but applied to revision 2 it gives \[\]/);
    const okCas = op('cas', txn([{ type: 'put', key: 'a', value: 'v2' }], [{ key: 'a', modRev: 2 }], [{ type: 'range', key: 'a' }]), 11, undefined);
    assert.deepEqual(check([put1, okCas], [ref]), []);
  });

  test('a failed compare is a read of the state at its header revision', () => {
    const put1 = op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] });
    const put2 = op('put', txn([{ type: 'put', key: 'a', value: 'v2' }]), 11, 20, { rev: 3, results: [{ type: 'put' }] });
    const failed = (rev: number, kvs: Kv[]): OpRecord =>
      op('cas', txn([{ type: 'put', key: 'a', value: 'x' }], [{ key: 'a', modRev: 0 }], [{ type: 'range', key: 'a' }]), 21, 30, { rev, succeeded: false, results: [range(kvs)] });
    assert.deepEqual(check([put1, put2, failed(3, [a3])], [ref]), []);
    assert.match(check([put1, put2, failed(2, [a2])], [ref]).join('\n'), /^linearizability/);
  });

  test('a delete-only revision is traced to the delete that answered it', () => {
    const r = reference([[putEv(a2)], [{ type: 'delete', kv: deletedKv('a', 3), prevKv: a2 }]]);
    const ops = [
      op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
      op('delete', txn([{ type: 'delete', key: 'a' }]), 11, 20, { rev: 3, results: [{ type: 'delete', deleted: 1 }] }),
    ];
    assert.deepEqual(check(ops, [r]), []);
    assert.match(check(ops.slice(0, 1), [r]).join('\n'), /phantom write/);
  });

  test('a serializable read of one member going back in time fails', () => {
    const put1 = op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] });
    const put2 = op('put', txn([{ type: 'put', key: 'a', value: 'v2' }]), 11, 20, { rev: 3, results: [{ type: 'put' }] });
    const sget = (inv: number, rev: number, kvs: Kv[]): OpRecord => op('sget', txn([{ type: 'range', key: 'a', serializable: true }]), inv, inv + 1, { rev, results: [range(kvs)] });
    assert.deepEqual(check([put1, put2, sget(21, 3, [a3]), sget(23, 3, [a3])], [ref]), []);
    assert.match(check([put1, put2, sget(21, 3, [a3]), sget(23, 2, [a2])], [ref]).join('\n'), /^serializable: .* went back/);
  });
});

describe('watch checker', () => {
  const a4 = kv('a', 'v3', 4, 2, 3);
  const ref3 = reference([[putEv(a2)], [putEv(a3, a2)], [putEv(a4, a3)]]);
  const ops = [
    op('put', txn([{ type: 'put', key: 'a', value: 'v1' }]), 0, 10, { rev: 2, results: [{ type: 'put' }] }),
    op('put', txn([{ type: 'put', key: 'a', value: 'v2' }]), 11, 20, { rev: 3, results: [{ type: 'put' }] }),
    op('put', txn([{ type: 'put', key: 'a', value: 'v3' }]), 21, 30, { rev: 4, results: [{ type: 'put' }] }),
  ];
  /** A watch of key a; a number among a segment's responses is a progress response at that revision. */
  const watcher = (segments: { start: number; revs: (WatchEvent[] | number)[] }[], prevKv = false): WatchRecord => ({
    id: 1, label: 'w', key: 'a', end: 'b', prevKv,
    segments: segments.map((s) => ({
      endpoint: 'e', startRev: s.start, invokeMs: 0,
      responses: s.revs.map((r) => (typeof r === 'number' ? { atMs: 0, revision: r, events: [], progress: true } : { atMs: 0, revision: 0, events: r })),
    })),
  });
  const noPrev = (e: WatchEvent): WatchEvent => ({ type: e.type, kv: e.kv });

  test('a complete stream, resumed once, passes', () => {
    const w = watcher([{ start: 2, revs: [[noPrev(putEv(a2))]] }, { start: 3, revs: [[noPrev(putEv(a3))], [noPrev(putEv(a4))]] }]);
    assert.deepEqual(check(ops, [ref3, w]), []);
  });

  test('a gap, a reorder, a wrong prev_kv and an unfinished stream are each caught', () => {
    const gap = watcher([{ start: 2, revs: [[noPrev(putEv(a2))], [noPrev(putEv(a4))]] }]);
    assert.match(check(ops, [ref3, gap]).join('\n'), /revision 3 missing/);
    const reorder = watcher([{ start: 2, revs: [[noPrev(putEv(a2))], [noPrev(putEv(a4))], [noPrev(putEv(a3))]] }]);
    assert.match(check(ops, [ref3, reorder]).join('\n'), /revision 3 delivered after revision 4/);
    const badPrev = watcher([{ start: 2, revs: [[putEv(a2)], [putEv(a3, a3)], [putEv(a4, a3)]] }], true);
    assert.match(check(ops, [ref3, badPrev]).join('\n'), /revision 3 on e: got/);
    const short = watcher([{ start: 2, revs: [[noPrev(putEv(a2))]] }]);
    assert.match(check(ops, [ref3, short]).join('\n'), /ended at revision 2, but the history has revision 3/);
    const early = watcher([{ start: 3, revs: [[noPrev(putEv(a2))], [noPrev(putEv(a3))], [noPrev(putEv(a4))]] }]);
    assert.match(check(ops, [ref3, early]).join('\n'), /revision 2 delivered on e by a stream started at revision 3/);
  });

  test('a write refused with a definite error must not show up in the history', () => {
    const refused = op('put', txn([{ type: 'put', key: 'a', value: 'v3' }]), 21, undefined);
    refused.status = 'failed';
    refused.error = '7: etcdserver: permission denied';
    assert.match(check([...ops.slice(0, 2), refused], [ref3]).join('\n'), /revision 4 .* was written by request #\d+ \(put\), which was refused \(7: etcdserver: permission denied\)/);
  });

  test('progress responses: a stream may resume after one; one that overtakes an event is caught', () => {
    const resumed = watcher([{ start: 2, revs: [[noPrev(putEv(a2))], 2, [noPrev(putEv(a3))], 3] }, { start: 4, revs: [[noPrev(putEv(a4))]] }]);
    assert.deepEqual(check(ops, [ref3, resumed]), []);
    const early = watcher([{ start: 2, revs: [[noPrev(putEv(a2))], 3, [noPrev(putEv(a3))], [noPrev(putEv(a4))]] }]);
    assert.match(check(ops, [ref3, early]).join('\n'), /a progress response at revision 3 on e came before revision 3 of the watch's range was sent/);
    assert.match(check(ops, [ref3, early]).join('\n'), /revision 3 sent on e after a progress response at revision 3/);
    const wrongResume = watcher([{ start: 2, revs: [[noPrev(putEv(a2))], [noPrev(putEv(a3))], 3] }, { start: 3, revs: [[noPrev(putEv(a4))]] }]);
    assert.match(check(ops, [ref3, wrongResume]).join('\n'), /stream 1 resumed at 3, not at 4/);
  });

  test('an impossible history (a version that does not count up) is reported', () => {
    const bad = reference([[putEv(a2)], [putEv(kv('a', 'v2', 3, 2, 5), a2)]]);
    assert.match(check(ops.slice(0, 2), [bad]).join('\n'), /put a has version 5/);
  });
});

describe('lease checker', () => {
  // Lease 7 (asked 1 s, the minimum 2 s) holds x and y, put at 2 and 3; both deleted at 4, an expiry seen at deleteMs.
  const x = { ...kv('x', 'vx', 2), lease: '7' };
  const y = { ...kv('y', 'vy', 3), lease: '7' };
  const leaseRef = (deleteMs: number, split = false): WatchRecord => {
    const w = reference([[putEv(x)], [putEv(y)], ...(split ? [[{ type: 'delete' as const, kv: deletedKv('x', 4), prevKv: x }], [{ type: 'delete' as const, kv: deletedKv('y', 5), prevKv: y }]] : [[{ type: 'delete' as const, kv: deletedKv('x', 4), prevKv: x }, { type: 'delete' as const, kv: deletedKv('y', 4), prevKv: y }]])]);
    const responses = (w.segments[0] as WatchRecord['segments'][number]).responses;
    responses.forEach((r, i) => ((r as { atMs: number }).atMs = i < 2 ? 10 : deleteMs));
    return w;
  };
  function run(grantedTtl: number, deleteMs: number, opts: { split?: boolean; keepAliveAt?: number; lateRevoke?: boolean; revoked?: { keepAliveTtl: number; timeToLive: number } } = {}): string[] {
    const grant = op('lease-grant-short', { kind: 'leaseGrant', id: '7', ttl: 1 }, 0, 5, { rev: 1 });
    (grant.res as { leaseTtl?: number }).leaseTtl = grantedTtl;
    const ops = [
      grant,
      op('put', txn([{ type: 'put', key: 'x', value: 'vx', lease: '7' }]), 6, 9, { rev: 2, results: [{ type: 'put' }] }),
      op('put', txn([{ type: 'put', key: 'y', value: 'vy', lease: '7' }]), 9, 10, { rev: 3, results: [{ type: 'put' }] }),
      // A read that saw the expiry, then a revoke sent after it, failing (lease not found): indeterminate.
      ...(opts.lateRevoke === true ? [op('get', txn([{ type: 'range', key: 'x' }]), deleteMs, deleteMs + 1, { rev: 4, results: [range([])] }), op('revoke', { kind: 'leaseRevoke', id: '7' }, deleteMs + 10, undefined)] : []),
      // An acknowledged revoke that deleted both keys.
      ...(opts.revoked !== undefined ? [op('revoke', { kind: 'leaseRevoke', id: '7' }, deleteMs - 5, deleteMs + 1, { rev: 4 })] : []),
    ];
    const revokeOp = opts.revoked !== undefined ? (ops[ops.length - 1] as OpRecord).id : undefined;
    const watches = [leaseRef(deleteMs, opts.split)];
    const h = {
      seed: 0, ops, watches, members: {}, faults: [], minLeaseTtl: 2,
      leases: [
        {
          id: '7', client: 0, ttlAsked: 1, grantOp: grant.id, keys: ['x', 'y'],
          ...(revokeOp === undefined ? { abandonedMs: 10 } : { revokeOp, afterRevoke: { ...opts.revoked, memberId: 'm2' } }),
          keepAlives: opts.keepAliveAt === undefined ? [] : [{ invokeMs: opts.keepAliveAt, returnMs: opts.keepAliveAt + 1, ttl: grantedTtl, memberId: 'm1' }],
        },
      ],
    };
    const { replay, problems } = Replay.build(mergeReference(watches));
    return [...problems, ...checkKv(ops, replay, { expirable: ['7'] }).map((v) => `${v.check}: ${v.message}`), ...checkLeases(h, replay).map((v) => `${v.check}: ${v.message}`)];
  }

  test('an expiry after the TTL, all keys at one revision, passes', () => {
    assert.deepEqual(run(2, 2500), []);
  });
  test('a TTL below the minimum, or below what was asked, is caught', () => {
    assert.match(run(1, 2500).join('\n'), /lease: lease 7: asked TTL 1 s, granted 1 s; the minimum being 2 s, etcd grants 2 s/);
  });
  test('an expiry before the TTL ran out since the last keep-alive is caught', () => {
    assert.match(run(2, 1500).join('\n'), /lease 7 \(TTL 2 s\) expired early/);
    assert.match(run(2, 2500, { keepAliveAt: 1000 }).join('\n'), /expired early: .*last keep-alive answered by m1/);
    assert.deepEqual(run(2, 3100, { keepAliveAt: 1000 }), []);
  });
  test('an expiry is not pinned on a revoke sent after it (which failed, so is indeterminate)', () => {
    assert.deepEqual(run(2, 2500, { lateRevoke: true }), []);
  });
  test('after an acknowledged revoke, a keep-alive that renews the lease or a TimeToLive that finds it is caught', () => {
    assert.deepEqual(run(2, 1500, { revoked: { keepAliveTtl: 0, timeToLive: -1 } }), []);
    assert.match(run(2, 1500, { revoked: { keepAliveTtl: 2, timeToLive: -1 } }).join('\n'), /after its revoke was acknowledged, a keep-alive answered by m2 renewed it \(TTL 2 s\)/);
    assert.match(run(2, 1500, { revoked: { keepAliveTtl: 0, timeToLive: 1 } }).join('\n'), /TimeToLive answered TTL 1 s \(granted \? s\), not -1/);
  });
  test("a lease's keys deleted at two revisions are caught", () => {
    assert.match(run(2, 2500, { split: true }).join('\n'), /deleted at different revisions/);
  });
});

describe('lock checker', () => {
  // Two waiters on lock/a: k1 (lease 1) created at 2, k2 (lease 2) at 3; k1 deleted (unlocked) at 4.
  const k1 = { ...kv('lock/a/1', '', 2), lease: '1' };
  const k2 = { ...kv('lock/a/2', '', 3), lease: '2' };
  const watches = [reference([[putEv(k1)], [putEv(k2)], [{ type: 'delete', kv: deletedKv('lock/a/1', 4), prevKv: k1 }]])];
  const { replay } = Replay.build(mergeReference(watches));
  const held = (key: string, rev: number): string[] => checkLocks([{ name: 'lock/a', key, client: 0, rev, acquiredMs: 0 }], replay).map((v) => v.message);

  test('the oldest key holds the lock; the next one once it is deleted', () => {
    assert.deepEqual([...held('lock/a/1', 2), ...held('lock/a/1', 3), ...held('lock/a/2', 4)], []);
    assert.deepEqual(checkKv([], replay, { lockPrefix: 'lock/' }), [], 'lock keys are explained without requests');
  });
  test('a holder while an older key exists, or whose key is gone, is caught', () => {
    assert.match(held('lock/a/2', 3).join('\n'), /lock\/a\/1 \(created at 2\) still existed/);
    assert.match(held('lock/a/1', 4).join('\n'), /its key did not exist there/);
  });

  describe('the sets written under the locks', () => {
    const sets = (values: (string | undefined)[]): string[] => {
      const events: WatchEvent[][] = [];
      let prev: Kv | undefined;
      values.forEach((value, i) => {
        const rev = i + 2;
        if (value === undefined) {
          events.push([{ type: 'delete', kv: deletedKv('lockset/a', rev), ...(prev !== undefined ? { prevKv: prev } : {}) }]);
          prev = undefined;
          return;
        }
        const k = kv('lockset/a', value, rev, prev?.createRev ?? rev, (prev?.version ?? 0) + 1);
        events.push([putEv(k, prev)]);
        prev = k;
      });
      return checkLockedSets(Replay.build(mergeReference([reference(events)])).replay).map((v) => v.message);
    };
    test('each version the previous plus one new element passes', () => {
      assert.deepEqual(sets(['s1-1', 's1-1 s2-1', 's1-1 s2-1 s1-2']), []);
    });
    test('a write from a stale base (a lost element), an element twice, a deleted set are caught', () => {
      assert.match(sets(['s1-1', 's1-1 s2-1', 's1-1 s1-2']).join('\n'), /at revision 4: "s1-1 s1-2" is not "s1-1 s2-1" plus one element: lost s2-1/);
      assert.match(sets(['s1-1', 's1-1 s2-1', 's1-1 s2-1 s2-1']).join('\n'), /at revision 4: s2-1 added twice/);
      assert.match(sets(['s1-1', undefined]).join('\n'), /at revision 3: deleted, losing 1 elements/);
    });
  });
});

describe('snapshot checker', () => {
  // a=v1 at 2, b=x at 3, a=v2 at 4, b deleted at 5.
  const b3 = kv('b', 'x', 3);
  const a4 = kv('a', 'v2', 4, 2, 2);
  const { replay } = Replay.build(mergeReference([reference([[putEv(a2)], [putEv(b3)], [putEv(a4, a2)], [{ type: 'delete', kv: deletedKv('b', 5), prevKv: b3 }]])]));
  const snap = (revision: number, kvs: Kv[]): SnapshotRecord => ({ atMs: 0, endpoint: 'e', revision, kvs });
  const found = (s: SnapshotRecord): string[] => checkSnapshots([s], replay).map((v) => v.message);

  test('the store at the snapshot revision passes, whichever revision', () => {
    assert.deepEqual(found(snap(3, [a2, b3])), []);
    assert.deepEqual(found(snap(4, [a4, b3])), []);
    assert.deepEqual(found(snap(5, [a4])), []);
  });

  test('a torn snapshot is caught: a write of its revision range missing, a delete missing, a key it never had', () => {
    assert.match(found(snap(4, [a2, b3])).join('\n'), /snapshot of e at revision 4: a is .*v1.*, the history has .*v2/);
    assert.deepEqual(found(snap(5, [a4, b3])), ['snapshot of e at revision 5: b is b="x"@c3/m3/v1, the history has (none)']);
    assert.equal(found(snap(3, [a2])).length, 1);
    assert.equal(found(snap(3, [a2, b3, kv('c', 'z', 3)])).length, 1);
  });

  test('a snapshot past the history is not compared', () => {
    assert.deepEqual(found(snap(9, [])), []);
  });
});
