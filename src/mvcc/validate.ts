/**
 * The checks etcd makes on a KV request before proposing it
 * (etcdserver/api/v3rpc/key.go): pure functions of the request, returning the
 * typed error a client gets, or undefined when the request may go ahead.
 */
import { bytesToKey } from '../backend/index.js';
import { txnOpsMaxDefault } from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';
import { KvError } from './errors.js';

type RangeRequest = etcdserverpb.RangeRequest;
type PutRequest = etcdserverpb.PutRequest;
type DeleteRangeRequest = etcdserverpb.DeleteRangeRequest;
type TxnRequest = etcdserverpb.TxnRequest;
type RequestOp = etcdserverpb.RequestOp;

const sortTargets: ReadonlySet<number> = new Set(Object.values(etcdserverpb.RangeRequest_SortTarget));

/**
 * Empty key; an unknown sort target. etcd 3.4 has no check of the target and
 * crashes on an unknown one (it sorts with no comparison), so that error is
 * etcd 3.6's. An unknown sort order is 3.4's: answered unsorted (in key
 * order), with the limit applied (3.6 refuses it).
 */
export function checkRangeRequest(r: RangeRequest): KvError | undefined {
  if (r.key.length === 0) return new KvError('empty-key');
  if (!sortTargets.has(r.sortTarget)) return new KvError('invalid-sort-option');
  return undefined;
}

export function checkPutRequest(r: PutRequest): KvError | undefined {
  if (r.key.length === 0) return new KvError('empty-key');
  if (r.ignoreValue && r.value.length !== 0) return new KvError('value-provided');
  if (r.ignoreLease && r.lease !== 0n) return new KvError('lease-provided');
  return undefined;
}

export function checkDeleteRangeRequest(r: DeleteRangeRequest): KvError | undefined {
  if (r.key.length === 0) return new KvError('empty-key');
  return undefined;
}

/**
 * The whole Txn check, in etcd's order: op counts and every op (nested txns
 * may use what their parent leaves of txnOpsMax), then no key written twice
 * in a branch (a put and another put or a covering delete, nested txns
 * included; deletes may overlap each other).
 */
export function checkTxnRequest(r: TxnRequest, txnOpsMax = txnOpsMaxDefault): KvError | undefined {
  return checkTxnOps(r, txnOpsMax) ?? checkIntervals(r.success).error ?? checkIntervals(r.failure).error;
}

function checkTxnOps(r: TxnRequest, txnOpsMax: number): KvError | undefined {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > txnOpsMax) return new KvError('too-many-ops');
  for (const c of r.compare) {
    if (c.key.length === 0) return new KvError('empty-key');
  }
  for (const op of [...r.success, ...r.failure]) {
    const err = checkRequestOp(op, txnOpsMax - opc);
    if (err !== undefined) return err;
  }
  return undefined;
}

function checkRequestOp(op: RequestOp, txnOpsMax: number): KvError | undefined {
  const req = op.request;
  if (req === undefined) return new KvError('key-not-found'); // etcd's answer to an empty op
  switch (req.case) {
    case 'requestRange':
      return checkRangeRequest(req.value);
    case 'requestPut':
      return checkPutRequest(req.value);
    case 'requestDeleteRange':
      return checkDeleteRangeRequest(req.value);
    case 'requestTxn':
      return checkTxnOps(req.value, txnOpsMax);
  }
}

/** [begin, end) over bytesToKey strings; a single key k is [k, k + "\0"). */
interface Interval {
  readonly begin: string;
  readonly end: string;
}

function covers(dels: readonly Interval[], key: string): boolean {
  return dels.some((d) => d.begin <= key && key < d.end);
}

interface Writes {
  readonly puts: Set<string>;
  readonly dels: Interval[];
  readonly error?: KvError;
}

/**
 * etcd's checkIntervals. A delete covers [key, range_end) taken literally, so
 * range_end "\0" (all keys from key) covers nothing here, as in etcd.
 */
function checkIntervals(reqs: readonly RequestOp[]): Writes {
  const dels: Interval[] = [];
  for (const op of reqs) {
    if (op.request?.case !== 'requestDeleteRange') continue;
    const d = op.request.value;
    const begin = bytesToKey(d.key);
    dels.push({ begin, end: d.rangeEnd.length !== 0 ? bytesToKey(d.rangeEnd) : begin + '\u0000' });
  }
  const puts = new Set<string>();
  const dup = (): Writes => ({ puts, dels, error: new KvError('duplicate-key') });
  for (const op of reqs) {
    if (op.request?.case !== 'requestTxn') continue;
    const then = checkIntervals(op.request.value.success);
    if (then.error !== undefined) return then;
    const otherwise = checkIntervals(op.request.value.failure);
    if (otherwise.error !== undefined) return otherwise;
    for (const k of then.puts) {
      if (puts.has(k) || covers(dels, k)) return dup();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      // The same key in both branches is fine: only one of them runs.
      if ((puts.has(k) && !then.puts.has(k)) || covers(dels, k)) return dup();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of reqs) {
    if (op.request?.case !== 'requestPut') continue;
    const k = bytesToKey(op.request.value.key);
    if (puts.has(k) || covers(dels, k)) return dup();
    puts.add(k);
  }
  return { puts, dels };
}
