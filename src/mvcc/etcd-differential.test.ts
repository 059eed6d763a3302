/**
 * The same requests against the real etcd 3.4 (/usr/bin/etcd) and against
 * this store: every response, ranges at past revisions, and HashKV at
 * several revisions before and after compactions must agree. HashKV agreeing
 * means the key bucket holds the same bytes in the same order as etcd's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { SeededRand } from '../base/index.js';
import { etcdserverpb, mvccpb } from '../pb/index.js';
import { deleteRangeRequest, hashKvRequest, putRequest, rangeRequest, txnRequest, compactionRequest } from './kv-requests.js';
import { finishCompactions, opDel, opGet, opPut, opTxn, show, txnValidationCases, withStore } from './testing.js';
import { checkTxnRequest } from './validate.js';

const etcdBinary = '/usr/bin/etcd';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

interface RealEtcd {
  readonly client: Etcd3;
  stop(): Promise<void>;
}

async function startEtcd(dir: string): Promise<RealEtcd> {
  const [client, peer] = [await freePort(), await freePort()];
  const proc: ChildProcess = spawn(etcdBinary, [
    '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `default=http://127.0.0.1:${peer}`,
  ], { stdio: 'ignore' });
  const etcd = new Etcd3({ hosts: `127.0.0.1:${client}` });
  const stop = async (): Promise<void> => {
    etcd.close();
    if (proc.exitCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await exited;
    }
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await etcd.maintenance.status({});
      return { client: etcd, stop };
    } catch (e) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        await stop();
        throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

// ---- our requests in etcd3's raw RPC shape (snake_case, Buffers, int64 as strings) ----

type Raw = Record<string, unknown>;
const buf = (b: Uint8Array): Buffer => Buffer.from(b);
/**
 * range_end is left out when empty: etcd decodes a present-but-empty
 * range_end as "every key from key on" (gogoproto keeps a non-nil empty
 * slice), unlike an absent one. Our decoder cannot tell them apart; real Go
 * clients never send the empty field.
 */
const end = (b: Uint8Array): Buffer | undefined => (b.length === 0 ? undefined : Buffer.from(b));

function rawRange(r: etcdserverpb.RangeRequest): Raw {
  return { key: buf(r.key), range_end: end(r.rangeEnd), limit: String(r.limit), revision: String(r.revision), sort_order: r.sortOrder, sort_target: r.sortTarget, keys_only: r.keysOnly, count_only: r.countOnly };
}
function rawPut(p: etcdserverpb.PutRequest): Raw {
  return { key: buf(p.key), value: buf(p.value), lease: p.lease.toString(), prev_kv: p.prevKv, ignore_value: p.ignoreValue, ignore_lease: p.ignoreLease };
}
function rawDel(d: etcdserverpb.DeleteRangeRequest): Raw {
  return { key: buf(d.key), range_end: end(d.rangeEnd), prev_kv: d.prevKv };
}
function rawOp(op: etcdserverpb.RequestOp): Raw {
  const r = op.request;
  switch (r?.case) {
    case 'requestRange': return { request_range: rawRange(r.value) };
    case 'requestPut': return { request_put: rawPut(r.value) };
    case 'requestDeleteRange': return { request_delete_range: rawDel(r.value) };
    case 'requestTxn': return { request_txn: rawTxn(r.value) };
    case undefined: return {};
  }
}
function rawTxn(t: etcdserverpb.TxnRequest): Raw {
  const compare = t.compare.map((c) => {
    const u = c.targetUnion;
    const union: Raw = {};
    if (u?.case === 'version') union['version'] = String(u.value);
    if (u?.case === 'createRevision') union['create_revision'] = String(u.value);
    if (u?.case === 'modRevision') union['mod_revision'] = String(u.value);
    if (u?.case === 'value') union['value'] = buf(u.value);
    if (u?.case === 'lease') union['lease'] = u.value.toString();
    return { result: c.result, target: c.target, key: buf(c.key), range_end: end(c.rangeEnd), ...union };
  });
  return { compare, success: t.success.map(rawOp), failure: t.failure.map(rawOp) };
}

interface RawKv { key: Buffer; value: Buffer; create_revision: string; mod_revision: string; version: string; lease: string }
function showRaw(kv: RawKv | null | undefined): string {
  if (kv === null || kv === undefined) return '-';
  return show(mvccpb.KeyValue.create({ key: kv.key, value: kv.value, createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision), version: Number(kv.version), lease: BigInt(kv.lease) }));
}

/** A compact rendering of a response, the same for both sides. */
function summarize(kind: string, r: Raw): string {
  const h = (r['header'] as Raw | undefined)?.['revision'];
  switch (kind) {
    case 'range': return `rev=${String(h)} count=${String(r['count'])} more=${String(r['more'])} ${((r['kvs'] as RawKv[] | undefined) ?? []).map(showRaw).join(' ')}`;
    case 'put': return `rev=${String(h)} prev=${showRaw(r['prev_kv'] as RawKv | undefined)}`;
    case 'del': return `rev=${String(h)} deleted=${String(r['deleted'])} ${((r['prev_kvs'] as RawKv[] | undefined) ?? []).map(showRaw).join(' ')}`;
    default: {
      const subs = ((r['responses'] as Raw[] | undefined) ?? []).map((s) => {
        const [k, v] = Object.entries(s).find(([, x]) => x !== null && x !== undefined) ?? ['none', {}];
        return `${k}(${summarize(k === 'response_range' ? 'range' : k === 'response_put' ? 'put' : k === 'response_delete_range' ? 'del' : 'txn', v as Raw)})`;
      });
      return `rev=${String(h)} ok=${String(r['succeeded'])} [${subs.join(', ')}]`;
    }
  }
}

/** Our response objects through the same JSON shape etcd3 gives (snake_case, int64 strings). */
function ours(kind: string, msg: object): string {
  const kvRaw = (kv: mvccpb.KeyValue | undefined): RawKv | undefined =>
    kv === undefined ? undefined : { key: buf(kv.key), value: buf(kv.value), create_revision: String(kv.createRevision), mod_revision: String(kv.modRevision), version: String(kv.version), lease: kv.lease.toString() };
  const conv = (k: string, m: Record<string, unknown>): Raw => {
    const header = { revision: String((m['header'] as { revision: number } | undefined)?.revision ?? 0) };
    if (k === 'range') return { header, count: String(m['count']), more: m['more'], kvs: (m['kvs'] as mvccpb.KeyValue[]).map(kvRaw) };
    if (k === 'put') return { header, prev_kv: kvRaw(m['prevKv'] as mvccpb.KeyValue | undefined) };
    if (k === 'del') return { header, deleted: String(m['deleted']), prev_kvs: (m['prevKvs'] as mvccpb.KeyValue[]).map(kvRaw) };
    const responses = (m['responses'] as etcdserverpb.ResponseOp[]).map((op) => {
      const r = op.response;
      if (r === undefined) return {};
      const sub = r.case === 'responseRange' ? 'range' : r.case === 'responsePut' ? 'put' : r.case === 'responseDeleteRange' ? 'del' : 'txn';
      const name = { range: 'response_range', put: 'response_put', del: 'response_delete_range', txn: 'response_txn' }[sub];
      return { [name]: conv(sub, r.value as unknown as Record<string, unknown>) };
    });
    return { header, succeeded: m['succeeded'], responses };
  };
  return summarize(kind, conv(kind, msg as Record<string, unknown>));
}

// ---- a random history ----

const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

function history(rand: SeededRand, n: number): Array<{ kind: string; req: unknown }> {
  const out: Array<{ kind: string; req: unknown }> = [];
  const pick = <T>(xs: readonly T[]): T => xs[rand.intn(xs.length)] as T;
  const k = (): Uint8Array => Buffer.from(pick(keys));
  const end = (): Uint8Array => Buffer.from(pick(['', '', 'c', 'f', 'z', '\u0000']));
  const op = (depth: number): etcdserverpb.RequestOp => {
    const x = rand.intn(depth > 0 ? 4 : 3);
    if (x === 0) return opPut(etcdserverpb.PutRequest.create({ key: k(), value: Buffer.from(pick(['1', '22', ''])), prevKv: rand.intn(2) === 0 }));
    if (x === 1) return opDel(etcdserverpb.DeleteRangeRequest.create({ key: k(), rangeEnd: end(), prevKv: rand.intn(2) === 0 }));
    if (x === 2) return opGet(etcdserverpb.RangeRequest.create({ key: k(), rangeEnd: end(), limit: rand.intn(3), sortOrder: rand.intn(3) as etcdserverpb.RangeRequest_SortOrder, sortTarget: rand.intn(5) as etcdserverpb.RangeRequest_SortTarget }));
    return opTxn(txn(depth - 1));
  };
  const txn = (depth: number): etcdserverpb.TxnRequest => {
    const target = rand.intn(5) as etcdserverpb.Compare_CompareTarget;
    const unions: etcdserverpb.Compare_TargetUnion[] = [
      { case: 'version', value: rand.intn(3) },
      { case: 'createRevision', value: rand.intn(20) },
      { case: 'modRevision', value: rand.intn(20) },
      { case: 'value', value: Buffer.from(pick(['1', '22', ''])) },
      { case: 'lease', value: 0n },
    ];
    const compare = [etcdserverpb.Compare.create({ key: k(), rangeEnd: end(), target, result: rand.intn(4) as etcdserverpb.Compare_CompareResult, targetUnion: unions[target] })];
    const ops = (): etcdserverpb.RequestOp[] => Array.from({ length: rand.intn(4) }, () => op(depth));
    return etcdserverpb.TxnRequest.create({ compare, success: ops(), failure: ops() });
  };
  while (out.length < n) {
    const x = rand.intn(10);
    if (x < 4) out.push({ kind: 'put', req: etcdserverpb.PutRequest.create({ key: k(), value: Buffer.from(pick(['1', '22', 'three'])), prevKv: rand.intn(2) === 0 }) });
    else if (x < 5) out.push({ kind: 'del', req: etcdserverpb.DeleteRangeRequest.create({ key: k(), rangeEnd: end(), prevKv: true }) });
    // Txns the API layer refuses are sent too: the verdict and message must be etcd's.
    else if (x < 8) out.push({ kind: 'txn', req: txn(1) });
    else out.push({ kind: 'range', req: etcdserverpb.RangeRequest.create({ key: k(), rangeEnd: end(), revision: rand.intn(3) === 0 ? 0 : -1 }) });
  }
  return out;
}

test('differential: responses, past reads and HashKV equal real etcd 3.4', { skip: existsSync(etcdBinary) ? false : `${etcdBinary} is not installed` }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mvcc-etcd-'));
  const etcd = await startEtcd(dir);
  try {
    await withStore(async (t) => {
      const rand = new SeededRand(20260101);
      const kv = etcd.client.kv;
      let step = 0;
      let refusals = 0;
      const compareHashes = async (revs: number[]): Promise<void> => {
        for (const rev of revs) {
          // etcd3's own hashKV wrapper asks grpc-js for a method name it does not define.
          const rpc = (etcd.client.maintenance as unknown as { client: { exec(s: string, m: string, r: unknown): Promise<{ hash: number; compact_revision: string; header: { revision: string } }> } }).client;
          const theirs = await rpc.exec('Maintenance', 'HashKV', { revision: String(rev) });
          const mine = await hashKvRequest(t.store, etcdserverpb.HashKVRequest.create({ revision: rev }));
          assert.equal(mine.hash, theirs.hash, `HashKV(${rev}) after step ${step}`);
          assert.equal(String(mine.compactRevision), String(theirs.compact_revision));
          assert.equal(String(mine.header?.revision), String(theirs.header.revision));
        }
      };
      await compareHashes([0]);
      // The checks before proposing: the same verdict (and message) as etcd's API layer.
      for (const c of txnValidationCases) {
        const err = checkTxnRequest(c.txn);
        let theirs: string;
        try {
          theirs = summarize('txn', (await kv.txn(rawTxn(c.txn))) as unknown as Raw);
        } catch (e) {
          theirs = (e as Error).message.replace(/^\d+ [A-Z_]+: /, '');
        }
        const mine = err !== undefined ? err.message : ours('txn', txnRequest(t.store, c.txn));
        assert.equal(mine, theirs, c.name);
      }
      await compareHashes([0]);
      for (const round of [0, 1, 2]) {
        for (const { kind, req } of history(rand, 60)) {
          step++;
          let theirs: Raw;
          let mine: string;
          if (kind === 'put') {
            theirs = (await kv.put(rawPut(req as etcdserverpb.PutRequest))) as unknown as Raw;
            mine = ours(kind, putRequest(t.store, req as etcdserverpb.PutRequest));
          } else if (kind === 'del') {
            theirs = (await kv.deleteRange(rawDel(req as etcdserverpb.DeleteRangeRequest))) as unknown as Raw;
            mine = ours(kind, deleteRangeRequest(t.store, req as etcdserverpb.DeleteRangeRequest));
          } else if (kind === 'txn') {
            const refused = checkTxnRequest(req as etcdserverpb.TxnRequest);
            try {
              theirs = (await kv.txn(rawTxn(req as etcdserverpb.TxnRequest))) as unknown as Raw;
            } catch (e) {
              const msg = (e as Error).message.replace(/^\d+ [A-Z_]+: /, '');
              assert.equal(refused?.message, msg, `step ${step}: etcd refused the txn`);
              refusals++;
              continue;
            }
            assert.equal(refused, undefined, `step ${step}: etcd took the txn`);
            mine = ours(kind, txnRequest(t.store, req as etcdserverpb.TxnRequest));
          } else {
            theirs = (await kv.range(rawRange(req as etcdserverpb.RangeRequest))) as unknown as Raw;
            mine = ours(kind, rangeRequest(t.store, req as etcdserverpb.RangeRequest));
          }
          assert.equal(mine, summarize(kind, theirs), `step ${step} (${kind}) ${JSON.stringify(req, (_k, v) => (typeof v === "bigint" ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString() : v))}`);
        }
        const rev = t.store.rev;
        // Every past revision reads the same on both sides.
        for (let r = Math.max(1, t.store.compactRev); r <= rev; r += 3) {
          const q = etcdserverpb.RangeRequest.create({ key: Buffer.from('\u0000'), rangeEnd: Buffer.from('\u0000'), revision: r });
          assert.equal(ours('range', rangeRequest(t.store, q)), summarize('range', (await kv.range(rawRange(q))) as unknown as Raw), `range at ${r}`);
        }
        await compareHashes([0, rev - 5, rev - 20]);
        const at = rev - 10 + round;
        await kv.compact({ revision: String(at), physical: true });
        compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: at }));
        await finishCompactions(t);
        await compareHashes([0, rev - 3, at + 1]);
        await t.reopen(t.leases);
        await compareHashes([0, rev - 1]);
      }
      assert.ok(refusals > 0, 'the histories hold txns the API layer refuses');
      // No key live at the hashed revision: etcd then hashes every entry its
      // compaction left. First with keys live at the compact revision, then
      // with only tombstones at it (which etcd 3.4.23 removes).
      const everything = { key: Buffer.from('\u0000'), rangeEnd: Buffer.from('\u0000') };
      for (const liveAtCompaction of [true, false]) {
        step++;
        const put = etcdserverpb.PutRequest.create({ key: Buffer.from('a'), value: Buffer.from('1') });
        await kv.put(rawPut(put));
        putRequest(t.store, put);
        const del = etcdserverpb.DeleteRangeRequest.create(everything);
        if (!liveAtCompaction) {
          await kv.deleteRange(rawDel(del));
          deleteRangeRequest(t.store, del);
        }
        await kv.compact({ revision: String(t.store.rev), physical: true });
        compactionRequest(t.store, etcdserverpb.CompactionRequest.create({ revision: t.store.rev }));
        if (liveAtCompaction) {
          await kv.deleteRange(rawDel(del));
          deleteRangeRequest(t.store, del);
        }
        await compareHashes([0]);
        await finishCompactions(t);
        await compareHashes([0]);
        await t.reopen(t.leases);
        await compareHashes([0]);
      }
    });
  } finally {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
