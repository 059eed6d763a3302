/**
 * Concurrency recipes with etcd's own key layouts, so they interoperate with
 * `etcdctl lock` / `etcdctl elect` and clientv3's concurrency package:
 *
 * - Session: a lease kept alive; its loss ends what was held under it.
 * - Mutex: the key `<prefix>/<lease id in lowercase hex>` created under the
 *   session's lease; the holder is the key of the prefix with the smallest
 *   create revision, and a waiter waits for the deletion of the key created
 *   just before its own (no herd: one watch per waiter).
 * - Election: the same layout; the leader's value is its key's value.
 * - STM: a transaction function re-run until its reads are still current at
 *   commit (serializable snapshot isolation).
 */
import { etcdserverpb, type mvccpb } from '../pb/index.js';
import type { CallOptions } from './connection.js';
import { canceledError, clientFailure, type ClientError } from './errors.js';
import { Compare, Op, toBytes, type Bytes, type KV } from './kv.js';
import type { Lease, LeaseKeepAlive } from './lease.js';
import type { Watch } from './watch.js';

/** What the recipes need of a client. */
export interface RecipeClient {
  readonly kv: KV;
  readonly lease: Lease;
  readonly watch: Watch;
}

export interface SessionOptions {
  /** Lease TTL in seconds; default 60, as clientv3's. */
  readonly ttlSeconds?: number;
  /** Use this existing lease instead of granting one. */
  readonly leaseId?: bigint;
}

export class Session {
  private constructor(
    readonly client: RecipeClient,
    readonly leaseId: bigint,
    private readonly keepAlive: LeaseKeepAlive,
  ) {}

  static async create(client: RecipeClient, o: SessionOptions = {}): Promise<Session> {
    const ttl = o.ttlSeconds ?? 60;
    const id = o.leaseId ?? (await client.lease.grant(ttl)).ID;
    return new Session(client, id, client.lease.keepAlive(id, ttl));
  }

  /** Resolves when the lease is lost (expired, revoked, or keep-alive stopped). */
  get lost(): Promise<ClientError> {
    return this.keepAlive.lost;
  }

  /** Stops renewing and revokes the lease (its keys go with it). */
  async close(o: CallOptions = {}): Promise<void> {
    this.keepAlive.close();
    try {
      await this.client.lease.revoke(this.leaseId, o);
    } catch {
      // The lease may be gone already; its TTL removes it otherwise.
    }
  }
}

const firstCreate = { sortTarget: 'CREATE', sortOrder: 'ASCEND', limit: 1, prefix: true } as const;

function leaseKey(prefix: string, leaseId: bigint): string {
  return `${prefix}${leaseId.toString(16)}`;
}

function rangeOf(resp: etcdserverpb.ResponseOp | undefined): etcdserverpb.RangeResponse {
  if (resp?.response?.case !== 'responseRange') throw clientFailure('etcdclient: unexpected txn response');
  return resp.response.value;
}

/** Waits until no key under prefix has a create revision <= maxCreateRevision. */
async function waitDeletes(client: RecipeClient, prefix: string, maxCreateRevision: number, o: CallOptions): Promise<etcdserverpb.ResponseHeader | undefined> {
  for (;;) {
    const resp = await client.kv.get(prefix, {
      ...o,
      prefix: true,
      sortTarget: 'CREATE',
      sortOrder: 'DESCEND',
      limit: 1,
      maxCreateRevision,
    });
    const last = resp.kvs[0];
    if (last === undefined) return resp.header;
    await waitDelete(client, last.key, resp.header?.revision ?? 0, o);
  }
}

async function waitDelete(client: RecipeClient, key: Uint8Array, revision: number, o: CallOptions): Promise<void> {
  const w = client.watch.watch(key, { startRevision: revision, signal: o.signal, requireLeader: true });
  try {
    for await (const r of w) {
      if (r.events.some((e) => e.type === 1)) return;
    }
  } finally {
    w.cancel();
  }
  if (o.signal?.aborted === true) throw canceledError();
  throw clientFailure('etcdclient: lost watcher waiting for delete');
}

export class Mutex {
  private readonly pfx: string;
  private myKey = '';
  private myRev = -1;
  private hdr: etcdserverpb.ResponseHeader | undefined;

  constructor(
    private readonly session: Session,
    prefix: string,
  ) {
    this.pfx = `${prefix}/`;
  }

  /** Acquires the lock, waiting for every earlier waiter; abort via o.signal. */
  async lock(o: CallOptions = {}): Promise<void> {
    const kv = this.session.client.kv;
    this.myKey = leaseKey(this.pfx, this.session.leaseId);
    const resp = await kv
      .txn()
      .if(Compare.create(this.myKey, '=', 0))
      .then(Op.put(this.myKey, '', { lease: this.session.leaseId }), Op.get(this.pfx, firstCreate))
      .else(Op.get(this.myKey), Op.get(this.pfx, firstCreate))
      .commit(o);
    this.myRev = resp.header?.revision ?? 0;
    if (!resp.succeeded) this.myRev = rangeOf(resp.responses[0]).kvs[0]?.createRevision ?? this.myRev;
    const owner = rangeOf(resp.responses[1]).kvs[0];
    if (owner === undefined || owner.createRevision === this.myRev) {
      this.hdr = resp.header;
      return;
    }
    try {
      this.hdr = await waitDeletes(this.session.client, this.pfx, this.myRev - 1, o);
    } catch (err) {
      await this.unlock().catch(() => undefined);
      throw err;
    }
  }

  async unlock(o: CallOptions = {}): Promise<void> {
    await this.session.client.kv.delete(this.myKey, o);
    this.myKey = '\x00';
    this.myRev = -1;
  }

  /** The key this mutex holds (or waits with). */
  get key(): string {
    return this.myKey;
  }

  get revision(): number {
    return this.myRev;
  }

  get header(): etcdserverpb.ResponseHeader | undefined {
    return this.hdr;
  }
}

export class Election {
  private readonly keyPrefix: string;
  private leaderKey = '';
  private leaderRev = 0;

  constructor(
    private readonly session: Session,
    prefix: string,
  ) {
    this.keyPrefix = `${prefix}/`;
  }

  /** Puts our candidacy and waits until it leads; abort via o.signal. */
  async campaign(value: Bytes, o: CallOptions = {}): Promise<void> {
    const kv = this.session.client.kv;
    const k = leaseKey(this.keyPrefix, this.session.leaseId);
    const resp = await kv
      .txn()
      .if(Compare.create(k, '=', 0))
      .then(Op.put(k, value, { lease: this.session.leaseId }))
      .else(Op.get(k))
      .commit(o);
    this.leaderKey = k;
    this.leaderRev = resp.header?.revision ?? 0;
    if (!resp.succeeded) {
      const kvs = rangeOf(resp.responses[0]).kvs[0];
      this.leaderRev = kvs?.createRevision ?? this.leaderRev;
      if (kvs !== undefined && Buffer.compare(Buffer.from(kvs.value), Buffer.from(toBytes(value))) !== 0) await this.proclaim(value, o);
    }
    try {
      await waitDeletes(this.session.client, this.keyPrefix, this.leaderRev - 1, o);
    } catch (err) {
      await this.resign().catch(() => undefined);
      throw err;
    }
  }

  /** Changes the leader's value without a new election. */
  async proclaim(value: Bytes, o: CallOptions = {}): Promise<void> {
    if (this.leaderKey === '') throw clientFailure('election: not leader');
    const resp = await this.session.client.kv
      .txn()
      .if(Compare.create(this.leaderKey, '=', this.leaderRev))
      .then(Op.put(this.leaderKey, value, { lease: this.session.leaseId }))
      .commit(o);
    if (!resp.succeeded) {
      this.leaderKey = '';
      throw clientFailure('election: not leader');
    }
  }

  async resign(o: CallOptions = {}): Promise<void> {
    if (this.leaderKey === '') return;
    await this.session.client.kv.txn().if(Compare.create(this.leaderKey, '=', this.leaderRev)).then(Op.delete(this.leaderKey)).commit(o);
    this.leaderKey = '';
    this.leaderRev = 0;
  }

  get key(): string {
    return this.leaderKey;
  }

  /** The current leader's key-value, or undefined when nobody campaigns. */
  async leader(o: CallOptions = {}): Promise<mvccpb.KeyValue | undefined> {
    const resp = await this.session.client.kv.get(this.keyPrefix, { ...o, ...firstCreate });
    return resp.kvs[0];
  }

  /** Yields the leader's key-value each time it changes, until o.signal aborts. */
  async *observe(o: CallOptions = {}): AsyncGenerator<mvccpb.KeyValue> {
    yield* observeLeader(this.session.client, this.keyPrefix, o);
  }
}

/** Leader changes of the election at prefix (with its trailing slash), as clientv3's Observe. */
export async function* observeLeader(client: RecipeClient, keyPrefix: string, o: CallOptions = {}): AsyncGenerator<mvccpb.KeyValue> {
  for (;;) {
    if (o.signal?.aborted === true) return;
    const resp = await client.kv.get(keyPrefix, { ...o, ...firstCreate });
    let current = resp.kvs[0];
    let rev = resp.header?.revision ?? 0;
    if (current === undefined) {
      // Wait for the first candidate.
      const w = client.watch.watch(keyPrefix, { prefix: true, startRevision: rev + 1, signal: o.signal, requireLeader: true });
      try {
        for await (const r of w) {
          const put = r.events.find((e) => e.type === 0);
          if (put?.kv !== undefined) {
            current = put.kv;
            rev = put.kv.modRevision;
            break;
          }
        }
      } finally {
        w.cancel();
      }
      if (current === undefined) return;
    }
    yield current;
    // Follow the leader key: new values are proclaims; its deletion starts a new round.
    const w = client.watch.watch(current.key, { startRevision: rev + 1, signal: o.signal, requireLeader: true });
    try {
      outer: for await (const r of w) {
        for (const e of r.events) {
          if (e.type === 1) break outer;
          if (e.kv !== undefined) yield e.kv;
        }
      }
    } finally {
      w.cancel();
    }
  }
}

/** Reads and writes of one STM attempt. */
export interface StmTxn {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Bytes, o?: { lease?: bigint }): void;
  del(key: string): void;
  /** The revision this attempt reads at (0 before its first read). */
  readonly revision: number;
}

export interface StmOptions extends CallOptions {
  /** Attempts before giving up; default 10. */
  readonly attemptsMax?: number;
}

/**
 * Runs apply under serializable snapshot isolation: every read sees the store
 * at one revision (that of the first read), and the commit succeeds only if
 * no key read or written was modified after it; otherwise apply runs again.
 */
export async function stm(client: RecipeClient, apply: (txn: StmTxn) => Promise<void>, o: StmOptions = {}): Promise<etcdserverpb.TxnResponse> {
  const attemptsMax = o.attemptsMax ?? 10;
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    let revision = 0;
    const reads = new Map<string, mvccpb.KeyValue | undefined>();
    const writes = new Map<string, etcdserverpb.RequestOp>();
    const txn: StmTxn = {
      get: async (key) => {
        const w = writes.get(key);
        if (w !== undefined) return w.request?.case === 'requestPut' ? w.request.value.value : undefined;
        if (reads.has(key)) return reads.get(key)?.value;
        const resp = await client.kv.get(key, { ...o, revision, serializable: revision !== 0 });
        if (revision === 0) revision = resp.header?.revision ?? 0;
        reads.set(key, resp.kvs[0]);
        return resp.kvs[0]?.value;
      },
      put: (key, value, po) => writes.set(key, Op.put(key, value, { lease: po?.lease })),
      del: (key) => writes.set(key, Op.delete(key)),
      get revision() {
        return revision;
      },
    };
    await apply(txn);
    const guard = revision === 0 ? Number.MAX_SAFE_INTEGER : revision + 1;
    const keys = new Set([...reads.keys(), ...writes.keys()]);
    const compares = [...keys].map((k) => Compare.mod(k, '<', guard));
    const resp = await client.kv.txnRequest(etcdserverpb.TxnRequest.create({ compare: compares, success: [...writes.values()], failure: [] }), o);
    if (resp.succeeded) return resp;
  }
  throw clientFailure('stm: too many conflicts');
}
