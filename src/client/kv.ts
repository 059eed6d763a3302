/**
 * KV: Range, Put, DeleteRange, Txn and Compact, with request builders that
 * follow clientv3's option semantics (prefix and from-key ranges, the sort
 * shortcut, txn compares written as `Compare.mod(key, '>', 0)`).
 */
import { etcdserverpb, type mvccpb } from '../pb/index.js';
import type { CallOptions, Connection } from './connection.js';
import { clientFailure } from './errors.js';

/** Keys and values: strings are UTF-8. */
export type Bytes = string | Uint8Array;

export function toBytes(b: Bytes): Uint8Array {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
}

const noKey = new Uint8Array([0]);

/** The range end that selects every key with this prefix ("\x00" for the empty prefix: all keys). */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const b = end[i] ?? 0;
    if (b < 0xff) {
      end[i] = b + 1;
      return end.subarray(0, i + 1);
    }
  }
  // No byte can be incremented: the range runs to the end of the keyspace.
  return noKey;
}

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

/** What selects the keys of a range (shared by get, delete and watch). */
export interface RangeOptions {
  /** Explicit end of [key, rangeEnd). */
  readonly rangeEnd?: Bytes | undefined;
  /** Every key starting with key (an empty key means all keys). */
  readonly prefix?: boolean | undefined;
  /** Every key >= key (an empty key means all keys). */
  readonly fromKey?: boolean | undefined;
}

export interface GetOptions extends RangeOptions, CallOptions {
  readonly limit?: number | undefined;
  /** Read at this revision; 0 = latest. */
  readonly revision?: number | undefined;
  readonly sortOrder?: SortOrder | undefined;
  readonly sortTarget?: SortTarget | undefined;
  /** Member-local read, no consensus round. */
  readonly serializable?: boolean | undefined;
  readonly keysOnly?: boolean | undefined;
  readonly countOnly?: boolean | undefined;
  readonly minModRevision?: number | undefined;
  readonly maxModRevision?: number | undefined;
  readonly minCreateRevision?: number | undefined;
  readonly maxCreateRevision?: number | undefined;
}

export interface PutOptions extends CallOptions {
  readonly lease?: bigint | undefined;
  readonly prevKv?: boolean | undefined;
  readonly ignoreValue?: boolean | undefined;
  readonly ignoreLease?: boolean | undefined;
}

export interface DeleteOptions extends RangeOptions, CallOptions {
  readonly prevKv?: boolean | undefined;
}

export interface CompactOptions extends CallOptions {
  /** Wait until the compaction is physically applied. */
  readonly physical?: boolean | undefined;
}

/** key and range end for a range selection, as clientv3's WithPrefix/WithFromKey/WithRange compute them. */
export function keyRange(key: Bytes, o: RangeOptions): { key: Uint8Array; rangeEnd: Uint8Array } {
  let k = toBytes(key);
  let end: Uint8Array = new Uint8Array(0);
  if (o.rangeEnd !== undefined) end = toBytes(o.rangeEnd);
  if (o.prefix === true) {
    if (k.length === 0) {
      k = noKey;
      end = noKey;
    } else {
      end = prefixRangeEnd(k);
    }
  }
  if (o.fromKey === true) {
    if (k.length === 0) k = noKey;
    end = noKey;
  }
  return { key: k, rangeEnd: end };
}

const sortOrders: Readonly<Record<SortOrder, etcdserverpb.RangeRequest_SortOrder>> = etcdserverpb.RangeRequest_SortOrder;
const sortTargets: Readonly<Record<SortTarget, etcdserverpb.RangeRequest_SortTarget>> = etcdserverpb.RangeRequest_SortTarget;

export function rangeRequest(key: Bytes, o: GetOptions = {}): etcdserverpb.RangeRequest {
  const { key: k, rangeEnd } = keyRange(key, o);
  let order = o.sortOrder ?? 'NONE';
  const target = o.sortTarget ?? 'KEY';
  // Keys come back in key order anyway: ascending by key is the natural order (clientv3's WithSort).
  if (target === 'KEY' && order === 'ASCEND') order = 'NONE';
  return etcdserverpb.RangeRequest.create({
    key: k,
    rangeEnd,
    limit: o.limit ?? 0,
    revision: o.revision ?? 0,
    sortOrder: sortOrders[order],
    sortTarget: sortTargets[target],
    serializable: o.serializable ?? false,
    keysOnly: o.keysOnly ?? false,
    countOnly: o.countOnly ?? false,
    minModRevision: o.minModRevision ?? 0,
    maxModRevision: o.maxModRevision ?? 0,
    minCreateRevision: o.minCreateRevision ?? 0,
    maxCreateRevision: o.maxCreateRevision ?? 0,
  });
}

export function putRequest(key: Bytes, value: Bytes, o: PutOptions = {}): etcdserverpb.PutRequest {
  return etcdserverpb.PutRequest.create({
    key: toBytes(key),
    value: toBytes(value),
    lease: o.lease ?? 0n,
    prevKv: o.prevKv ?? false,
    ignoreValue: o.ignoreValue ?? false,
    ignoreLease: o.ignoreLease ?? false,
  });
}

export function deleteRequest(key: Bytes, o: DeleteOptions = {}): etcdserverpb.DeleteRangeRequest {
  const { key: k, rangeEnd } = keyRange(key, o);
  return etcdserverpb.DeleteRangeRequest.create({ key: k, rangeEnd, prevKv: o.prevKv ?? false });
}

/** Txn operations. */
export const Op = {
  get(key: Bytes, o: GetOptions = {}): etcdserverpb.RequestOp {
    return { request: { case: 'requestRange', value: rangeRequest(key, o) } };
  },
  put(key: Bytes, value: Bytes, o: PutOptions = {}): etcdserverpb.RequestOp {
    return { request: { case: 'requestPut', value: putRequest(key, value, o) } };
  },
  delete(key: Bytes, o: DeleteOptions = {}): etcdserverpb.RequestOp {
    return { request: { case: 'requestDeleteRange', value: deleteRequest(key, o) } };
  },
  txn(compare: etcdserverpb.Compare[], success: etcdserverpb.RequestOp[], failure: etcdserverpb.RequestOp[]): etcdserverpb.RequestOp {
    return { request: { case: 'requestTxn', value: etcdserverpb.TxnRequest.create({ compare, success, failure }) } };
  },
} as const;

export type CompareOp = '=' | '!=' | '>' | '<';

const compareResults: Readonly<Record<CompareOp, etcdserverpb.Compare_CompareResult>> = {
  '=': etcdserverpb.Compare_CompareResult.EQUAL,
  '!=': etcdserverpb.Compare_CompareResult.NOT_EQUAL,
  '>': etcdserverpb.Compare_CompareResult.GREATER,
  '<': etcdserverpb.Compare_CompareResult.LESS,
};

export function isCompareOp(s: string): s is CompareOp {
  return s === '=' || s === '!=' || s === '>' || s === '<';
}

function cmp(
  key: Bytes,
  op: CompareOp,
  target: etcdserverpb.Compare_CompareTarget,
  targetUnion: etcdserverpb.Compare_TargetUnion,
  o: RangeOptions,
): etcdserverpb.Compare {
  const r = keyRange(key, o);
  return etcdserverpb.Compare.create({ key: r.key, rangeEnd: r.rangeEnd, result: compareResults[op], target, targetUnion });
}

/** Txn compares, e.g. Compare.mod('k', '=', 0) ("k does not exist"). */
export const Compare = {
  version(key: Bytes, op: CompareOp, v: number, o: RangeOptions = {}): etcdserverpb.Compare {
    return cmp(key, op, etcdserverpb.Compare_CompareTarget.VERSION, { case: 'version', value: v }, o);
  },
  create(key: Bytes, op: CompareOp, rev: number, o: RangeOptions = {}): etcdserverpb.Compare {
    return cmp(key, op, etcdserverpb.Compare_CompareTarget.CREATE, { case: 'createRevision', value: rev }, o);
  },
  mod(key: Bytes, op: CompareOp, rev: number, o: RangeOptions = {}): etcdserverpb.Compare {
    return cmp(key, op, etcdserverpb.Compare_CompareTarget.MOD, { case: 'modRevision', value: rev }, o);
  },
  value(key: Bytes, op: CompareOp, v: Bytes, o: RangeOptions = {}): etcdserverpb.Compare {
    return cmp(key, op, etcdserverpb.Compare_CompareTarget.VALUE, { case: 'value', value: toBytes(v) }, o);
  },
  lease(key: Bytes, op: CompareOp, id: bigint, o: RangeOptions = {}): etcdserverpb.Compare {
    return cmp(key, op, etcdserverpb.Compare_CompareTarget.LEASE, { case: 'lease', value: id }, o);
  },
} as const;

/** A transaction being built: kv.txn().if(...).then(...).else(...).commit(). */
export class Txn {
  private readonly compares: etcdserverpb.Compare[] = [];
  private readonly success: etcdserverpb.RequestOp[] = [];
  private readonly failure: etcdserverpb.RequestOp[] = [];
  private stage: 'if' | 'then' | 'else' = 'if';

  constructor(private readonly kv: KV) {}

  if(...cs: etcdserverpb.Compare[]): this {
    if (this.stage !== 'if') throw clientFailure('etcdclient: If() after Then() or Else()');
    this.compares.push(...cs);
    return this;
  }

  then(...ops: etcdserverpb.RequestOp[]): this {
    if (this.stage === 'else') throw clientFailure('etcdclient: Then() after Else()');
    this.stage = 'then';
    this.success.push(...ops);
    return this;
  }

  else(...ops: etcdserverpb.RequestOp[]): this {
    this.stage = 'else';
    this.failure.push(...ops);
    return this;
  }

  request(): etcdserverpb.TxnRequest {
    return etcdserverpb.TxnRequest.create({ compare: this.compares, success: this.success, failure: this.failure });
  }

  commit(o: CallOptions = {}): Promise<etcdserverpb.TxnResponse> {
    return this.kv.txnRequest(this.request(), o);
  }
}

const kvMethods = etcdserverpb.KVService.methods;

export class KV {
  constructor(private readonly conn: Connection) {}

  get(key: Bytes, o: GetOptions = {}): Promise<etcdserverpb.RangeResponse> {
    return this.conn.unary(kvMethods.Range, rangeRequest(key, o), 'repeatable', o);
  }

  put(key: Bytes, value: Bytes, o: PutOptions = {}): Promise<etcdserverpb.PutResponse> {
    return this.conn.unary(kvMethods.Put, putRequest(key, value, o), 'nonRepeatable', o);
  }

  delete(key: Bytes, o: DeleteOptions = {}): Promise<etcdserverpb.DeleteRangeResponse> {
    return this.conn.unary(kvMethods.DeleteRange, deleteRequest(key, o), 'nonRepeatable', o);
  }

  txn(): Txn {
    return new Txn(this);
  }

  txnRequest(req: etcdserverpb.TxnRequest, o: CallOptions = {}): Promise<etcdserverpb.TxnResponse> {
    // A txn of reads only may be retried like a read.
    const readOnly = [...req.success, ...req.failure].every((op) => op.request?.case === 'requestRange');
    return this.conn.unary(kvMethods.Txn, req, readOnly ? 'repeatable' : 'nonRepeatable', o);
  }

  compact(revision: number, o: CompactOptions = {}): Promise<etcdserverpb.CompactionResponse> {
    const req = etcdserverpb.CompactionRequest.create({ revision, physical: o.physical ?? false });
    return this.conn.unary(kvMethods.Compact, req, 'nonRepeatable', o);
  }

  /** Runs one operation; the response has the same shape as the matching txn response. */
  async do(op: etcdserverpb.RequestOp, o: CallOptions = {}): Promise<etcdserverpb.ResponseOp> {
    const r = op.request;
    if (r === undefined) throw clientFailure('etcdclient: empty operation');
    switch (r.case) {
      case 'requestRange':
        return { response: { case: 'responseRange', value: await this.conn.unary(kvMethods.Range, r.value, 'repeatable', o) } };
      case 'requestPut':
        return { response: { case: 'responsePut', value: await this.conn.unary(kvMethods.Put, r.value, 'nonRepeatable', o) } };
      case 'requestDeleteRange':
        return {
          response: { case: 'responseDeleteRange', value: await this.conn.unary(kvMethods.DeleteRange, r.value, 'nonRepeatable', o) },
        };
      case 'requestTxn':
        return { response: { case: 'responseTxn', value: await this.txnRequest(r.value, o) } };
    }
  }
}

/** The first key-value of a range response, if any. */
export function firstKv(resp: etcdserverpb.RangeResponse): mvccpb.KeyValue | undefined {
  return resp.kvs[0];
}
