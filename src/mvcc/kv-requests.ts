/**
 * KV requests applied to the store with etcd's semantics
 * (etcdserver/apply.go): request in, response body out. The responses carry
 * only `header.revision`; the server fills cluster_id, member_id and
 * raft_term of the top-level header. Inside a Txn, sub-responses have a
 * header with just the revision, and a nested TxnResponse an empty header, as
 * in etcd. Expected failures throw KvError before anything is written.
 */
import { assert, compareBytes, emptyBytes, goSort, type LeaseId } from '../base/index.js';
import { etcdserverpb, mvccpb, Reader, Writer, releaseWriter, takeWriter } from '../pb/index.js';
import { KvError } from './errors.js';
import { type EncodedRead, type KvStore, type KvWriteTxn, type RangeOptions, type RangeResult } from './kv-store.js';

type RangeRequest = etcdserverpb.RangeRequest;
type RangeResponse = etcdserverpb.RangeResponse;
type PutRequest = etcdserverpb.PutRequest;
type PutResponse = etcdserverpb.PutResponse;
type DeleteRangeRequest = etcdserverpb.DeleteRangeRequest;
type DeleteRangeResponse = etcdserverpb.DeleteRangeResponse;
type TxnRequest = etcdserverpb.TxnRequest;
type TxnResponse = etcdserverpb.TxnResponse;
type Compare = etcdserverpb.Compare;
type RequestOp = etcdserverpb.RequestOp;
type ResponseOp = etcdserverpb.ResponseOp;

const SortOrder = etcdserverpb.RangeRequest_SortOrder;
const SortTarget = etcdserverpb.RangeRequest_SortTarget;
const CompareResult = etcdserverpb.Compare_CompareResult;
const CompareTarget = etcdserverpb.Compare_CompareTarget;

function header(revision: number): etcdserverpb.ResponseHeader {
  return etcdserverpb.ResponseHeader.create({ revision });
}

/** What a Txn's ops run against: the write transaction, or the store for a read-only Txn. */
interface TxnView {
  range(key: Uint8Array, rangeEnd: Uint8Array, opts?: RangeOptions): RangeResult;
  readonly write: KvWriteTxn | undefined;
}

// ---- Range ----

export function rangeRequest(store: KvStore, r: RangeRequest): RangeResponse {
  return rangeWith((key, end, opts) => store.range(key, end, opts), r);
}

type RangeReader = (key: Uint8Array, rangeEnd: Uint8Array, opts: RangeOptions) => RangeResult;

/** Whether r keeps only kvs in a window of mod or create revisions. */
function filtersByRevision(r: RangeRequest): boolean {
  return r.minModRevision !== 0 || r.maxModRevision !== 0 || r.minCreateRevision !== 0 || r.maxCreateRevision !== 0;
}

function rangeWith(read: RangeReader, r: RangeRequest): RangeResponse {
  const filtered = filtersByRevision(r);
  // Sorting or filtering needs every key first; otherwise one more than the limit tells `more`.
  let limit = r.sortOrder !== SortOrder.NONE || filtered ? 0 : r.limit;
  if (limit > 0) limit++;
  const rr = read(r.key, r.rangeEnd, { limit, rev: r.revision, countOnly: r.countOnly });
  let kvs = rr.kvs;
  if (r.maxModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision <= r.maxModRevision);
  if (r.minModRevision !== 0) kvs = kvs.filter((kv) => kv.modRevision >= r.minModRevision);
  if (r.maxCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision <= r.maxCreateRevision);
  if (r.minCreateRevision !== 0) kvs = kvs.filter((kv) => kv.createRevision >= r.minCreateRevision);
  sortKvs(kvs, r);
  let more = false;
  if (r.limit > 0 && kvs.length > r.limit) {
    kvs = kvs.slice(0, r.limit);
    more = true;
  }
  if (r.keysOnly) for (const kv of kvs) kv.value = emptyBytes;
  return etcdserverpb.RangeResponse.create({ header: header(rr.rev), kvs, more, count: rr.count });
}

/** How much of a range rangeEncoded does per turn of the event loop. */
export interface RangeSlice {
  /** Keys of the index walked. */
  readonly indexKeys: number;
  /** Values copied, at most, */
  readonly kvs: number;
  /** and bytes copied, about. */
  readonly bytes: number;
}

/**
 * A few ms each on a store of 500k keys, where the walk of the index costs
 * 1-3 µs a key (cache misses) and each value a lookup in the backend.
 */
export const rangeSliceDefault: RangeSlice = { indexKeys: 5000, kvs: 500, bytes: 512 * 1024 };

/** A turn of the event loop: timers and I/O run before it resolves. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What one rangeEncoded writes. */
interface RangePlan {
  readonly read: EncodedRead;
  readonly limit: number;
  readonly descend: boolean;
  readonly keysOnly: boolean;
  readonly slice: RangeSlice;
}

/**
 * Range r answered as the encoded RangeResponse, with the header the caller
 * makes for the store revision; the kvs are the backend's own encodings,
 * copied as they are (keys_only drops their value field), so no kv becomes
 * an object. The bytes equal those of encoding rangeRequest's answer.
 *
 * A range larger than one slice goes on in slices with a turn of the event
 * loop between them (the result is then a promise): a member answering a
 * range over a million keys goes on heartbeating and applying. The read is
 * fixed at its revision when it starts; writes in between come after it,
 * and a compaction waits for it (KvStore.openRead).
 *
 * Undefined for a request that filters by revision or sorts by anything but
 * the key: rangeRequest answers those.
 */
export function rangeEncoded(
  store: KvStore,
  r: RangeRequest,
  header: (rev: number) => etcdserverpb.ResponseHeader,
  slice: RangeSlice = rangeSliceDefault,
  turn: () => Promise<void> = nextTurn,
): Uint8Array | Promise<Uint8Array> | undefined {
  // Another target sorts, even with order NONE (sortKvs).
  if (filtersByRevision(r) || r.sortTarget !== SortTarget.KEY) return undefined;
  const descend = r.sortOrder === SortOrder.DESCEND;
  const limit = r.limit > 0 ? r.limit : 0;
  // One more than the limit tells `more`; descending needs the last keys, so every one (as rangeWith).
  const read = store.openRead(r.key, r.rangeEnd, { limit: descend || limit === 0 ? 0 : limit + 1, rev: r.revision, countOnly: r.countOnly });
  const plan: RangePlan = { read, limit, descend, keysOnly: r.keysOnly, slice };
  const w = takeWriter();
  let rest: Promise<Uint8Array> | undefined;
  try {
    writeHeaderField(w, header(read.rev));
    let done = 0;
    if (read.scan(slice.indexKeys)) {
      done = writeKvs(w, plan, 0);
      if (done === kvsOf(plan)) {
        writeTail(w, plan);
        return w.finish();
      }
    }
    // More than a slice: the rest in a writer of its own (the shared one serves others in between).
    const own = new Writer(Math.max(w.pos * 2, 64 * 1024));
    own.buf.set(w.buf.subarray(0, w.pos));
    own.pos = w.pos;
    rest = goOn(own, plan, done, turn).finally(() => read.release());
    return rest;
  } finally {
    releaseWriter(w);
    if (rest === undefined) read.release();
  }
}

async function goOn(w: Writer, plan: RangePlan, done: number, turn: () => Promise<void>): Promise<Uint8Array> {
  const { read, slice } = plan;
  do await turn();
  while (!read.scan(slice.indexKeys));
  const n = kvsOf(plan);
  let sized = false;
  while (done < n) {
    if (done > 0) await turn();
    done = writeKvs(w, plan, done);
    if (!sized) {
      // Room for the rest at this size per kv: one copy as the writer grows, not one per doubling.
      w.ensure(Math.ceil((w.pos / done) * (n - done) * 1.05) + 16);
      sized = true;
    }
  }
  writeTail(w, plan);
  return w.buf.subarray(0, w.pos);
}

/** The kvs the response carries, once the read's walk is done. */
function kvsOf(plan: RangePlan): number {
  return plan.limit > 0 ? Math.min(plan.read.length, plan.limit) : plan.read.length;
}

/** Copies one slice of kvs from the from-th on; returns the index after the last one copied. */
function writeKvs(w: Writer, plan: RangePlan, from: number): number {
  const { read, descend, keysOnly, slice } = plan;
  const n = kvsOf(plan);
  const stop = Math.min(n, from + slice.kvs);
  const bytesStop = w.pos + slice.bytes;
  let i = from;
  while (i < stop && w.pos < bytesStop) {
    writeKv(w, read.encoding(descend ? read.length - 1 - i : i), keysOnly);
    i++;
  }
  return i;
}

function writeHeaderField(w: Writer, h: etcdserverpb.ResponseHeader): void {
  w.uint32(10);
  const mark = w.fork();
  etcdserverpb.ResponseHeader.write(h, w);
  w.join(mark);
}

/** RangeResponse's fields after the kvs: more, count. */
function writeTail(w: Writer, plan: RangePlan): void {
  const more = plan.limit > 0 && plan.read.length > plan.limit;
  const count = plan.read.count;
  if (more) {
    w.uint32(24);
    w.bool(true);
  }
  if (count !== 0) {
    w.uint32(32);
    w.int64Number(count);
  }
}

/** Field 2 (kvs) holding an encoded KeyValue; keys_only leaves out its value (field 5). */
function writeKv(w: Writer, kv: Uint8Array, keysOnly: boolean): void {
  w.uint32(18);
  if (!keysOnly) {
    w.bytes(kv);
    return;
  }
  const rd = new Reader(kv);
  let valueStart = kv.length;
  let valueEnd = kv.length;
  while (rd.pos < kv.length) {
    const start = rd.pos;
    const tag = rd.tag(kv.length);
    rd.skip(kv.length);
    if (tag === 42) {
      valueStart = start;
      valueEnd = rd.pos;
      break;
    }
  }
  const len = kv.length - (valueEnd - valueStart);
  w.uint32(len);
  w.ensure(len);
  w.buf.set(kv.subarray(0, valueStart), w.pos);
  w.buf.set(kv.subarray(valueEnd), w.pos + valueStart);
  w.pos += len;
}

/**
 * etcd's order: a target other than KEY with order NONE sorts ascending; the
 * store already returns keys ascending. Other targets sort as etcd does,
 * with Go's sort.Sort, which is not stable: kvs that tie come out in its
 * order, not in key order (a client paging by version or value sees it).
 */
function sortKvs(kvs: mvccpb.KeyValue[], r: RangeRequest): void {
  let order = r.sortOrder;
  if (r.sortTarget !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
  if (order !== SortOrder.ASCEND && order !== SortOrder.DESCEND) return;
  let less: (a: mvccpb.KeyValue, b: mvccpb.KeyValue) => boolean;
  switch (r.sortTarget) {
    case SortTarget.VERSION:
      less = (a, b) => a.version < b.version;
      break;
    case SortTarget.CREATE:
      less = (a, b) => a.createRevision < b.createRevision;
      break;
    case SortTarget.MOD:
      less = (a, b) => a.modRevision < b.modRevision;
      break;
    case SortTarget.VALUE:
      less = (a, b) => compareBytes(a.value, b.value) < 0;
      break;
    case SortTarget.KEY:
    default:
      // Keys are distinct: any algorithm gives this order.
      if (order === SortOrder.DESCEND) kvs.reverse();
      return;
  }
  // DESCEND is Go's sort.Reverse: the same algorithm with Less turned around.
  if (order === SortOrder.ASCEND) goSort(kvs, less);
  else goSort(kvs, (a, b) => less(b, a));
}

// ---- Put / DeleteRange ----

export function putRequest(store: KvStore, p: PutRequest): PutResponse {
  if (p.lease !== 0n && !store.leases.exists(p.lease)) throw new KvError('lease-not-found');
  const before = store.metrics.calls;
  try {
    return store.write((txn) => putIn(txn, p));
  } finally {
    store.metrics.endRequest(before);
  }
}

function putIn(txn: KvWriteTxn, p: PutRequest): PutResponse {
  let prev: mvccpb.KeyValue | undefined;
  if (p.ignoreValue || p.ignoreLease || p.prevKv) prev = txn.range(p.key, emptyBytes).kvs[0];
  if ((p.ignoreValue || p.ignoreLease) && prev === undefined) {
    // Reached only before any change of the enclosing transaction (checked up front in a Txn).
    assert(txn.changes.length === 0, 'ignore_value/ignore_lease on a key deleted earlier in the same txn');
    throw new KvError('key-not-found');
  }
  const value = p.ignoreValue && prev !== undefined ? prev.value : p.value;
  const lease: LeaseId = p.ignoreLease && prev !== undefined ? prev.lease : p.lease;
  const rev = txn.put(p.key, value, lease);
  return etcdserverpb.PutResponse.create({ header: header(rev), prevKv: p.prevKv ? prev : undefined });
}

export function deleteRangeRequest(store: KvStore, dr: DeleteRangeRequest): DeleteRangeResponse {
  const before = store.metrics.calls;
  try {
    return store.write((txn) => deleteIn(txn, dr));
  } finally {
    store.metrics.endRequest(before);
  }
}

function deleteIn(txn: KvWriteTxn, dr: DeleteRangeRequest): DeleteRangeResponse {
  const prevKvs = dr.prevKv ? txn.range(dr.key, dr.rangeEnd).kvs : [];
  const { deleted, rev } = txn.deleteRange(dr.key, dr.rangeEnd);
  return etcdserverpb.DeleteRangeResponse.create({ header: header(rev), deleted, prevKvs });
}

// ---- Txn ----

/**
 * Every compare along the taken path is evaluated first, against the store
 * as it was before the Txn (nested compares do not see the Txn's own
 * writes); then the checks of the taken ops; then the ops in order, in one
 * write transaction, at one revision (bumped only if something changed).
 */
export function txnRequest(store: KvStore, rt: TxnRequest): TxnResponse {
  // Counted as etcd counts: compares and checks in one read transaction, a write's ops in a second one.
  const readonly = isTxnReadonly(rt);
  let before = store.metrics.calls;
  try {
    const path = compareToPath(store, rt);
    if (!readonly) checkTaken(rt, path, (op) => checkPut(store, op));
    checkTaken(rt, path, (op) => checkRange(store, op));
    if (readonly) {
      const view: TxnView = { range: (k, e, o) => store.range(k, e, o), write: undefined };
      const resp = applyTxnOps(view, rt, path, { at: 0 });
      resp.header = header(store.rev);
      return resp;
    }
    store.metrics.endRequest(before);
    before = store.metrics.calls;
    return writeTxn(store, rt, path);
  } finally {
    store.metrics.endRequest(before);
  }
}

function writeTxn(store: KvStore, rt: TxnRequest, path: readonly boolean[]): TxnResponse {
  return store.write((txn) => {
    const view: TxnView = { range: (k, e, o) => txn.range(k, e, o), write: txn };
    const resp = applyTxnOps(view, rt, path, { at: 0 });
    resp.header = header(txn.readRev);
    return resp;
  });
}

function taken(rt: TxnRequest, succeeded: boolean): RequestOp[] {
  return succeeded ? rt.success : rt.failure;
}

function compareToPath(store: KvStore, rt: TxnRequest): boolean[] {
  const ok = rt.compare.every((c) => applyCompare(store, c));
  const path = [ok];
  for (const op of taken(rt, ok)) {
    if (op.request?.case === 'requestTxn') path.push(...compareToPath(store, op.request.value));
  }
  return path;
}

function applyCompare(store: KvStore, c: Compare): boolean {
  const kvs = store.range(c.key, c.rangeEnd).kvs;
  if (kvs.length === 0) {
    // A missing key has no value to compare: "" would be indistinguishable from it.
    if (c.target === CompareTarget.VALUE) return false;
    return compareKv(c, mvccpb.KeyValue.create());
  }
  return kvs.every((kv) => compareKv(c, kv));
}

function compareKv(c: Compare, kv: mvccpb.KeyValue): boolean {
  const t = c.targetUnion;
  let result: number;
  switch (c.target) {
    case CompareTarget.VALUE:
      result = compareBytes(kv.value, t?.case === 'value' ? t.value : emptyBytes);
      break;
    case CompareTarget.CREATE:
      result = Math.sign(kv.createRevision - (t?.case === 'createRevision' ? t.value : 0));
      break;
    case CompareTarget.MOD:
      result = Math.sign(kv.modRevision - (t?.case === 'modRevision' ? t.value : 0));
      break;
    case CompareTarget.VERSION:
      result = Math.sign(kv.version - (t?.case === 'version' ? t.value : 0));
      break;
    case CompareTarget.LEASE: {
      const want = t?.case === 'lease' ? t.value : 0n;
      result = kv.lease < want ? -1 : kv.lease > want ? 1 : 0;
      break;
    }
    default:
      result = 0;
  }
  switch (c.result) {
    case CompareResult.EQUAL:
      return result === 0;
    case CompareResult.NOT_EQUAL:
      return result !== 0;
    case CompareResult.GREATER:
      return result > 0;
    case CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}

function isTxnReadonly(rt: TxnRequest): boolean {
  return [...rt.success, ...rt.failure].every((op) => op.request?.case === 'requestRange');
}

/** Runs check on every non-Txn op along the path (etcd's checkRequests). */
function checkTaken(rt: TxnRequest, path: readonly boolean[], check: (op: RequestOp) => void, cursor = { at: 0 }): void {
  const succeeded = path[cursor.at];
  assert(succeeded !== undefined, 'txn path covers every nested txn');
  for (const op of taken(rt, succeeded)) {
    if (op.request?.case === 'requestTxn') {
      cursor.at++;
      checkTaken(op.request.value, path, check, cursor);
    } else {
      check(op);
    }
  }
}

function checkPut(store: KvStore, op: RequestOp): void {
  if (op.request?.case !== 'requestPut') return;
  const p = op.request.value;
  if ((p.ignoreValue || p.ignoreLease) && store.range(p.key, emptyBytes).kvs.length === 0) throw new KvError('key-not-found');
  if (p.lease !== 0n && !store.leases.exists(p.lease)) throw new KvError('lease-not-found');
}

function checkRange(store: KvStore, op: RequestOp): void {
  if (op.request?.case !== 'requestRange') return;
  const rev = op.request.value.revision;
  if (rev === 0) return;
  if (rev > store.rev) throw new KvError('future-rev');
  // As etcd: any other revision below the compact revision, negative ones included.
  if (rev < store.compactRev) throw new KvError('compacted');
}

function applyTxnOps(view: TxnView, rt: TxnRequest, path: readonly boolean[], cursor: { at: number }): TxnResponse {
  const succeeded = path[cursor.at] as boolean;
  const responses: ResponseOp[] = [];
  for (const op of taken(rt, succeeded)) {
    const req = op.request;
    if (req === undefined) {
      responses.push(etcdserverpb.ResponseOp.create());
      continue;
    }
    switch (req.case) {
      case 'requestRange':
        responses.push(respond({ case: 'responseRange', value: rangeWith((k, e, o) => view.range(k, e, o), req.value) }));
        break;
      case 'requestPut':
        assert(view.write !== undefined, 'a txn with a put is a write txn');
        responses.push(respond({ case: 'responsePut', value: putIn(view.write, req.value) }));
        break;
      case 'requestDeleteRange':
        assert(view.write !== undefined, 'a txn with a delete is a write txn');
        responses.push(respond({ case: 'responseDeleteRange', value: deleteIn(view.write, req.value) }));
        break;
      case 'requestTxn': {
        cursor.at++;
        const nested = applyTxnOps(view, req.value, path, cursor);
        nested.header = etcdserverpb.ResponseHeader.create();
        responses.push(respond({ case: 'responseTxn', value: nested }));
        break;
      }
    }
  }
  return etcdserverpb.TxnResponse.create({ succeeded, responses });
}

function respond(response: etcdserverpb.ResponseOp_Response): ResponseOp {
  return etcdserverpb.ResponseOp.create({ response });
}

// ---- Compaction / HashKV ----

/**
 * Applies a CompactionRequest: throws compacted / future-rev; `physical`
 * resolves when the old revisions are gone from the backend (what a request
 * with physical = true waits for).
 */
const compactionProbeKey = new TextEncoder().encode('compaction');

export function compactionRequest(store: KvStore, r: etcdserverpb.CompactionRequest): { response: etcdserverpb.CompactionResponse; physical: Promise<void> } {
  const physical = store.compact(r.revision);
  // The header's revision comes from a range of any key, as in etcd's apply (it counts as a range there too).
  const { rev } = store.range(compactionProbeKey, new Uint8Array(0));
  return { response: etcdserverpb.CompactionResponse.create({ header: header(rev) }), physical };
}

export async function hashKvRequest(store: KvStore, r: etcdserverpb.HashKVRequest): Promise<etcdserverpb.HashKVResponse> {
  const h = await store.hashByRev(r.revision);
  return etcdserverpb.HashKVResponse.create({ header: header(h.currentRev), hash: h.hash, compactRevision: h.compactRev });
}
