/**
 * What the cluster tests share: a raw-gRPC KV client for one member, a
 * writer that puts continuously and records every acknowledged write, and
 * bounded polling.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, etcdMissing, memberStatus, methods, openChannel, outcome, type Cluster, type Member, type MemberKind, type Outcome } from '../harness/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Unary KV calls to one member over a channel of its own. */
export class Kv {
  private readonly ch;

  constructor(readonly endpoint: string) {
    this.ch = openChannel(endpoint, 1_000);
  }

  put(key: string, value: string, timeoutMs = 5_000): Promise<etcdserverpb.PutResponse> {
    return this.ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: enc.encode(key), value: enc.encode(value) }), { timeoutMs });
  }

  range(key: string, opts: { readonly serializable?: boolean; readonly prefix?: boolean; readonly timeoutMs?: number } = {}): Promise<etcdserverpb.RangeResponse> {
    const k = enc.encode(key);
    const rangeEnd = opts.prefix === true ? prefixEnd(k) : new Uint8Array();
    return this.ch.unary(methods.kv.Range, etcdserverpb.RangeRequest.create({ key: k, rangeEnd, serializable: opts.serializable ?? false }), {
      timeoutMs: opts.timeoutMs ?? 5_000,
    });
  }

  /** The value of key ('' with no such key). */
  async get(key: string, opts: { readonly serializable?: boolean; readonly timeoutMs?: number } = {}): Promise<string | undefined> {
    const r = await this.range(key, opts);
    const kv = r.kvs[0];
    return kv === undefined ? undefined : dec.decode(kv.value);
  }

  /** Every key under prefix with its value. */
  async getPrefix(prefix: string, opts: { readonly serializable?: boolean; readonly timeoutMs?: number } = {}): Promise<Map<string, string>> {
    const r = await this.range(prefix, { ...opts, prefix: true });
    return new Map(r.kvs.map((kv) => [dec.decode(kv.key), dec.decode(kv.value)]));
  }

  delete(key: string, timeoutMs = 5_000): Promise<etcdserverpb.DeleteRangeResponse> {
    return this.ch.unary(methods.kv.DeleteRange, etcdserverpb.DeleteRangeRequest.create({ key: enc.encode(key) }), { timeoutMs });
  }

  compact(revision: number, timeoutMs = 5_000): Promise<etcdserverpb.CompactionResponse> {
    return this.ch.unary(methods.kv.Compact, etcdserverpb.CompactionRequest.create({ revision, physical: true }), { timeoutMs });
  }

  hashKv(revision: number, timeoutMs = 10_000): Promise<etcdserverpb.HashKVResponse> {
    return this.ch.unary(methods.maintenance.HashKV, etcdserverpb.HashKVRequest.create({ revision }), { timeoutMs });
  }

  status(timeoutMs = 2_000): Promise<etcdserverpb.StatusResponse> {
    return this.ch.unary(methods.maintenance.Status, etcdserverpb.StatusRequest.create({}), { timeoutMs });
  }

  try<T>(p: Promise<T>): Promise<Outcome<T>> {
    return outcome(p);
  }

  close(): void {
    this.ch.close();
  }
}

function prefixEnd(k: Uint8Array): Uint8Array {
  const end = Uint8Array.from(k);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.slice(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

/**
 * Puts prefix<n> = value<n> one after another, several in flight, against
 * the running members (moving on to the next member after a failure), and
 * records what was acknowledged. Bounded by stop().
 */
export class Writer {
  readonly acked = new Map<string, string>();
  failures = 0;
  private stopped = false;
  private seq = 0;
  private readonly loops: Promise<void>[] = [];
  private readonly clients = new Map<string, Kv>();

  constructor(
    private readonly targets: () => readonly Member[],
    private readonly prefix: string,
    concurrency = 4,
    private readonly timeoutMs = 3_000,
  ) {
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop(i));
  }

  private client(m: Member): Kv {
    let c = this.clients.get(m.endpoint);
    if (c === undefined) {
      c = new Kv(m.endpoint);
      this.clients.set(m.endpoint, c);
    }
    return c;
  }

  private async loop(lane: number): Promise<void> {
    let target = lane;
    while (!this.stopped) {
      const members = this.targets().filter((m) => m.running);
      const m = members[target % Math.max(1, members.length)];
      if (m === undefined) {
        await delay(50);
        continue;
      }
      const n = this.seq++;
      const key = `${this.prefix}${String(n).padStart(6, '0')}`;
      const value = `v${n}`;
      const r = await outcome(this.client(m).put(key, value, this.timeoutMs)).catch((e: unknown) => ({ ok: false as const, code: -1, message: String(e) }));
      if (r.ok) this.acked.set(key, value);
      else {
        this.failures++;
        target++;
        await delay(20);
      }
    }
  }

  /** Resolves once at least n more writes were acknowledged (or rejects after timeoutMs). */
  async waitAcked(n: number, timeoutMs = 20_000): Promise<void> {
    const goal = this.acked.size + n;
    await waitFor(() => this.acked.size >= goal, timeoutMs, `${n} acknowledged writes`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    for (const c of this.clients.values()) c.close();
  }
}

/** Polls cond every intervalMs until true; throws after timeoutMs. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await delay(intervalMs);
  }
}

/** The member id of m (from its Status header). */
export async function memberIdOf(m: Member): Promise<bigint> {
  const s = await memberStatus(m.endpoint);
  return s.header?.memberId ?? 0n;
}

/** Asserts that every acknowledged write is on m with its value (a linearizable read). */
export async function assertAllPresent(m: Member, prefix: string, acked: ReadonlyMap<string, string>): Promise<void> {
  const kv = new Kv(m.endpoint);
  try {
    const got = await kv.getPrefix(prefix, { timeoutMs: 10_000 });
    const missing = [...acked].filter(([k, v]) => got.get(k) !== v);
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.size} acknowledged writes missing or wrong on ${m.name}`);
  } finally {
    kv.close();
  }
}

/** Waits until every running member has applied the same index and returns HashKV of each at one revision. */
export async function hashesAtSameRevision(c: Cluster, timeoutMs = 30_000): Promise<{ revision: number; hashes: Map<string, number> }> {
  const running = c.members.filter((m) => m.running);
  let revision = 0;
  await waitFor(
    async () => {
      const st = await Promise.all(running.map((m) => memberStatus(m.endpoint).catch(() => undefined)));
      if (st.some((s) => s === undefined)) return false;
      const revs = new Set(st.map((s) => s?.header?.revision ?? 0));
      const applied = new Set(st.map((s) => s?.raftAppliedIndex ?? 0));
      revision = [...revs][0] ?? 0;
      return revs.size === 1 && applied.size === 1;
    },
    timeoutMs,
    'all members at the same revision',
    200,
  );
  const hashes = new Map<string, number>();
  for (const m of running) {
    const kv = new Kv(m.endpoint);
    try {
      hashes.set(m.name, (await kv.hashKv(revision)).hash);
    } finally {
      kv.close();
    }
  }
  return { revision, hashes };
}

/** The text of a member's log file (all its starts). */
export function logOf(m: Member): string {
  try {
    return readFileSync(m.logFile, 'utf8');
  } catch {
    return '';
  }
}

/** Short timeouts so elections are quick; the same for every cluster test. */
export const fastElection = ['--heartbeat-interval', '50', '--election-timeout', '500'] as const;

/** Readiness of a (re)started member: node's start alone takes seconds on a machine shared with parallel test files. */
export const readyTimeoutMs = 60_000;

/** The value of a counter summed over its labels, from the member's /metrics. */
export function metricSum(m: Member, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(`${m.clientUrl}/metrics`, { timeout: 5_000, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          let sum = 0;
          for (const line of body.split('\n')) {
            if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
          }
          resolve(sum);
        });
      })
      .on('error', reject)
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy(new Error('metrics timed out'));
      });
  });
}

/** The kinds a cluster test runs on, each with its skip reason: etcd-ts, and the real etcd when CLUSTER_WITH_ETCD=1. */
export function clusterKinds(): [MemberKind, string | false][] {
  return [
    ['etcd-ts', false],
    ['etcd', process.env['CLUSTER_WITH_ETCD'] === '1' ? etcdMissing() : 'set CLUSTER_WITH_ETCD=1 to run against real etcd'],
  ];
}
