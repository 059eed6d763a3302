/**
 * The differential runner: the same etcdctl steps against a fresh real etcd
 * and a fresh etcd-ts member, side by side (each step runs on both at once,
 * so timing-dependent steps such as lease expiry line up), with the outputs
 * compared after a small, explicit set of normalizations.
 *
 * What is normalized, and why it is legitimate:
 * - ids: cluster id, member id and lease ids are derived from peer URLs and
 *   time, so they differ between any two fresh clusters; each side's actual
 *   values (decimal, %x and %016x) are replaced by the variable's name.
 *   Endpoints and URLs are ports picked at random: replaced likewise.
 * - whatever a step lists in `norm`, each a named function below with its
 *   reason (timings, db sizes).
 * Everything else — revisions, raft term and index, counts, ordering, error
 * texts, exit codes — must be equal.
 *
 * Beyond what etcdctl prints, after every step both members are asked (raw
 * gRPC) for their raft index and HashKV: each step must advance the raft log
 * by the same number of entries (a request one server rejects before raft and
 * the other proposes shows here) and leave the same key-value history.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GrpcChannel } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { Workspace, delay, etcdctl, getHealth, methods, openChannel, type Cluster, type CtlProcess, type CtlResult, type MemberKind, etcdctlBackground } from '../harness/index.js';

export interface Side {
  readonly kind: MemberKind;
  readonly cluster: Cluster;
  /** Variable name -> this side's actual value (hex ids are stored without padding). */
  readonly vars: Map<string, string>;
  /** Scratch dir for files a step writes (snapshots); the same relative names on both sides. */
  readonly scratch: string;
  /** `${rev+N}` in a step's arguments is this plus N (set by markRevision). */
  revBase: number;
  /** Leases granted so far (names the next auto-captured lease). */
  leases: number;
  /** For the state checks after each step. */
  readonly channel: GrpcChannel;
  /** The raft index at the last state check. */
  raftIndex: number;
}

export type Normalizer = (s: string) => string;

export interface Step {
  /**
   * etcdctl arguments; `${name}` is replaced by the side's variable, `${scratch}`
   * by its scratch dir, `${rev+N}` by the revision markRevision saw plus N (in
   * stdin too).
   */
  readonly args: readonly string[];
  readonly stdin?: string;
  /** Variables taken from stdout: name -> regex whose first group is the value (hex ids). */
  readonly capture?: Readonly<Record<string, RegExp>>;
  readonly norm?: readonly Normalizer[];
  /** Extra variables for decimal ids: name -> regex with the decimal value. */
  readonly captureDecimal?: Readonly<Record<string, RegExp>>;
  /** Replaces the raw stdout before comparing (binary outputs such as -w protobuf). */
  readonly decode?: (stdout: Buffer, side: Side) => string;
  readonly timeoutMs?: number;
  /** A known difference in raft entries or HashKV this step makes (the reason): its state is not compared. */
  readonly stateDiffers?: string;
}

export interface Observed {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Mismatch {
  readonly step: string;
  readonly etcd: Observed;
  readonly etcdTs: Observed;
}

// ---- normalizers (each says why the difference is legitimate) ----

/** How long a health check took (text, table cell, json): a wall-clock duration. */
export const normTook: Normalizer = (s) => s.replace(/(took = |"took":"|\| )[0-9.]+[µnm]?s\b/g, '$1<t>');

/**
 * DB size: etcd's bbolt file and etcd-ts's LMDB file grow differently (the
 * backend engine is a design choice, DESIGN.md §3); table cells, json fields
 * and the "fields" printer.
 */
export const normDbSize: Normalizer = (s) =>
  s
    .replace(/"(dbSize|dbSizeInUse|DbSize|DbSizeInUse|DBSize|DBSizeInUse)"(\s*):(\s*)\d+/g, '"$1"$2:$3<size>')
    .replace(/\| +[0-9.]+ [kMG]?B +\|/g, '| <size> |')
    .replace(/, [0-9.]+ [kMG]?B, /g, ', <size>, ');

/** Table padding follows the widest cell; once sizes are normalized, widths may differ. */
export const normTablePadding: Normalizer = (s) => s.replace(/-{2,}/g, '--').replace(/ {2,}/g, ' ');

/** A lease's remaining TTL in seconds rounds down from a clock read on each server. */
export const normRemaining: Normalizer = (s) =>
  s
    .replace(/remaining\(\d+s\)/g, 'remaining(<n>s)')
    .replace(/"ttl":\d+/g, '"ttl":<n>')
    .replace(/^"TTL" : \d+$/gm, '"TTL" : <n>');

/** Zap log lines etcdctl prints (snapshot save): timestamps, durations, sizes and temp paths. */
export const normZap: Normalizer = (s) =>
  s
    .replace(/"ts":("[^"]*"|[0-9.e+]+)/g, '"ts":<t>')
    .replace(/"took":("[^"]*"|[0-9.e+-]+)/g, '"took":<t>')
    .replace(/"size":"[^"]*"/g, '"size":<n>')
    .replace(/"(caller)":"[^"]*"/g, '"$1":<c>');

/** A Go panic's stack trace (etcdctl's own, on bad input) shows pointers and arguments that vary per run. */
export const normGoPanic: Normalizer = (s) => (s.startsWith('panic:') ? s.replace(/0x[0-9a-f]+/g, '0x?') : s);

/**
 * Member ids are random, and etcd lists members (and etcdctl the initial
 * cluster it prints after `member add`) sorted by id: the order of members is
 * compared as a set.
 */
export const normMemberOrder: Normalizer = (s) =>
  s
    .replace(/"members":\[\{(.*)\}\]/g, (_m, list: string) => `"members":[{${list.split('},{').sort().join('},{')}}]`)
    .replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/g, (_m, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`)
    .replace(/^([^\n]*, (?:started|unstarted), [^\n]*\n)+/gm, (block) => `${block.split('\n').filter((l) => l !== '').sort().join('\n')}\n`);

/** Progress notifications are the harness's handshake to know a watch is live; how many depends on timing. */
export const normProgress: Normalizer = (s) => s.replace(/^progress notify: \d+\n/gm, '');

/** Go's map iteration order is random: etcd prints a lease's keys (timetolive --keys) in any order. */
export const normLeaseKeys: Normalizer = (s) =>
  s
    .replace(/"keys":\[([^\]]*)\]/g, (_m, list: string) => `"keys":[${list.split(',').sort().join(',')}]`)
    .replace(/attached keys \[([^\]]*)\]/g, (_m, list: string) => `attached keys [${list.split(' ').sort().join(' ')}]`)
    .replace(/(^"Key" : .*\n)+/gm, (block) => `${block.split('\n').filter((l) => l !== '').sort().join('\n')}\n`);

/**
 * clientv3's zap warnings: a wall-clock "ts" and a random client UUID in
 * "target". Each UUID becomes <uuid-N> in order of appearance, so two lines
 * of one client still show as the same client.
 */
export function normClientWarn(s: string): string {
  const uuids = new Map<string, string>();
  return s
    .replace(/"ts":"[0-9T:.Z+-]+"/g, '"ts":"<ts>"')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => {
      let name = uuids.get(u);
      if (name === undefined) {
        name = `<uuid-${uuids.size + 1}>`;
        uuids.set(u, name);
      }
      return name;
    });
}

// ---- sides and variables ----

function hexOf(dec: string): string {
  return BigInt(dec).toString(16);
}

/** The forms an id (hex) takes in etcdctl's output, %016x, decimal and bare hex, each to be replaced by <name>. */
export function idForms(name: string, hex: string): [string, string][] {
  return [[hex.padStart(16, '0'), `<${name}>`], [BigInt(`0x${hex}`).toString(10), `<${name}>`], [hex, `<${name}>`]];
}

/** Replaces the text of each pair of 4 characters or more, longest first, so that an id's decimal form is not half-replaced by a shorter value. */
export function replaceLongestFirst(s: string, pairs: [string, string][]): string {
  pairs.sort((a, b) => b[0].length - a[0].length);
  let out = s;
  for (const [from, to] of pairs) if (from.length >= 4) out = out.split(from).join(to);
  return out;
}

/** Replaces every variable value of the side (decimal, %x, %016x) by <name>. */
export function normIds(side: Side, s: string): string {
  const pairs: [string, string][] = [];
  for (const [name, hex] of side.vars) {
    if (!/^[0-9a-f]+$/.test(hex) || name === 'scratch') continue;
    // And %16x where `member add/remove/update` print it.
    pairs.push(...idForms(name, hex));
    for (const word of ['Member', 'cluster']) pairs.push([`${word} ${hex.padStart(16, ' ')}`, `${word} <${name}>`]);
  }
  const ep = side.cluster.member(0);
  pairs.push([ep.peerUrl, '<peer-url>'], [ep.clientUrl, '<client-url>'], [ep.endpoint, '<endpoint>'], [side.scratch, '<scratch>']);
  return replaceLongestFirst(s, pairs);
}

export function subst(side: Side, arg: string): string {
  return arg.replace(/\$\{([a-zA-Z0-9_+-]+)\}/g, (_m, name: string) => {
    if (name === 'scratch') return side.scratch;
    if (name === 'endpoint') return side.cluster.member(0).endpoint;
    if (name === 'peer-url') return side.cluster.member(0).peerUrl;
    if (name === 'client-url') return side.cluster.member(0).clientUrl;
    const rel = /^rev\+(\d+)$/.exec(name);
    if (rel !== null) return String(side.revBase + Number(rel[1]));
    const v = side.vars.get(name);
    if (v === undefined) throw new Error(`step uses \${${name}} before it was captured`);
    return v;
  });
}

/** Fresh etcd and etcd-ts single members, their cluster and member ids read back as variables. */
export async function startPair(ws: Workspace, extraFlags: readonly string[] = []): Promise<[Side, Side]> {
  const kinds: MemberKind[] = ['etcd', 'etcd-ts'];
  const sides = await Promise.all(
    kinds.map(async (kind) => {
      const cluster = await ws.startCluster({ kind, extraFlags });
      const scratch = mkdtempSync(join(ws.dir, `${kind}-scratch-`));
      const channel = openChannel(cluster.member(0).endpoint);
      const side: Side = { kind, cluster, vars: new Map(), scratch, revBase: 0, leases: 0, channel, raftIndex: 0 };
      const st = await etcdctl(['endpoint', 'status', '-w', 'json'], { endpoints: cluster.endpoints });
      // Decimal uint64s: read with a regex, JSON.parse would round them.
      const cid = /"cluster_id":(\d+)/.exec(st.stdout)?.[1];
      const mid = /"member_id":(\d+)/.exec(st.stdout)?.[1];
      if (cid === undefined || mid === undefined) throw new Error(`${kind}: no ids in endpoint status: ${st.stdout}${st.stderr}`);
      side.vars.set('cluster-id', hexOf(cid));
      side.vars.set('member-id', hexOf(mid));
      return side;
    }),
  );
  const pair: [Side, Side] = [sides[0] as Side, sides[1] as Side];
  await alignRaftLogs(pair);
  return pair;
}

/**
 * Each GET /health is a raft entry (etcd 3.4's quorum GET), and how many the
 * harness's readiness poll made depends on timing: the side with the shorter
 * log gets more /health calls until both logs are equally long, so the raft
 * indexes etcdctl prints (endpoint status) compare exactly.
 */
async function alignRaftLogs(sides: readonly [Side, Side]): Promise<void> {
  for (let round = 0; ; round++) {
    const [a, b] = await Promise.all(sides.map((side) => readState(side)));
    if (a === undefined || b === undefined) throw new Error('no state');
    sides[0].raftIndex = a.raftIndex;
    sides[1].raftIndex = b.raftIndex;
    if (a.raftIndex === b.raftIndex) return;
    if (round >= 20) throw new Error(`raft logs not aligned: etcd at ${a.raftIndex}, etcd-ts at ${b.raftIndex}`);
    const behind = a.raftIndex < b.raftIndex ? sides[0] : sides[1];
    if ((await getHealth(behind.cluster.member(0).clientUrl)) !== 'true') await delay(100);
  }
}

/** Closes the state-check channels and removes the scratch dirs. */
export function closePair(sides: readonly Side[]): void {
  for (const s of sides) {
    s.channel.close();
    rmSync(s.scratch, { recursive: true, force: true });
  }
}

interface State {
  readonly raftIndex: number;
  readonly hash: number;
}

const stateTimeoutMs = 5_000;

async function readState(side: Side): Promise<State> {
  const st = await side.channel.unary(methods.maintenance.Status, etcdserverpb.StatusRequest.create({}), { timeoutMs: stateTimeoutMs });
  const h = await side.channel.unary(methods.maintenance.HashKV, etcdserverpb.HashKVRequest.create({}), { timeoutMs: stateTimeoutMs });
  return { raftIndex: st.raftIndex, hash: h.hash };
}

/**
 * Compares how far each side's raft log moved since the last check, and the
 * HashKV of both stores; returns a mismatch named after `what`.
 */
export async function checkState(sides: readonly [Side, Side], what: string, compareHash = true): Promise<Mismatch | undefined> {
  const states = await Promise.all(sides.map((side) => readState(side)));
  const shown = states.map((st, i) => {
    const side = sides[i] as Side;
    const delta = st.raftIndex - side.raftIndex;
    side.raftIndex = st.raftIndex;
    return { code: 0, stdout: `raft entries +${delta}${compareHash ? `, hashkv ${st.hash}` : ''}`, stderr: '' };
  });
  const [a, b] = shown as [Observed, Observed];
  if (a.stdout === b.stdout) return undefined;
  return { step: `state after ${what}`, etcd: a, etcdTs: b };
}

function observe(side: Side, step: Step, r: CtlResult): Observed {
  const norms = step.norm ?? [];
  const apply = (s: string): string => norms.reduce((acc, f) => f(acc), normGoPanic(normClientWarn(normIds(side, s))));
  const stdout = step.decode !== undefined ? step.decode(r.stdoutBytes, side) : r.stdout;
  return { code: r.timedOut ? -1 : r.code, stdout: apply(stdout), stderr: apply(r.stderr) };
}

/**
 * The lease id a step printed, named lease-N: `lease grant` (text: hex; json:
 * decimal), and `lock`/`elect`, whose key is the name, a slash and the
 * session's lease id in hex.
 */
export function captureLease(side: Side, args: readonly string[], stdout: string): void {
  let id: string | undefined;
  if (args[0] === 'lease' && args[1] === 'grant') {
    const hex = /lease ([0-9a-f]+) granted/.exec(stdout)?.[1];
    const dec = /"ID":(\d+)/.exec(stdout)?.[1];
    id = hex ?? (dec === undefined ? undefined : hexOf(dec));
  } else if ((args[0] === 'lock' || args[0] === 'elect') && args[1] !== undefined) {
    id = new RegExp(`^${args[1]}/([0-9a-f]{4,16})$`, 'm').exec(stdout)?.[1];
  }
  if (id !== undefined) side.vars.set(`lease-${++side.leases}`, id.replace(/^0+(?=.)/, ''));
}

// ---- -w protobuf ----

function readVarint(buf: Buffer, at: number): [bigint, number] | undefined {
  let v = 0n;
  for (let i = at, shift = 0n; i < buf.length && shift < 70n; i++, shift += 7n) {
    const b = buf[i] as number;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, i + 1];
  }
  return undefined;
}

/**
 * A protobuf message printed without its schema: `field:value` per field,
 * nested messages in braces, bytes that do not parse as a message as a
 * string. Same bytes, same text; ids come out in decimal, so normIds names
 * them. Undefined when buf is not a well-formed message.
 */
export function dumpProtobuf(buf: Buffer, depth = 0): string | undefined {
  const parts: string[] = [];
  let i = 0;
  while (i < buf.length) {
    const tag = readVarint(buf, i);
    if (tag === undefined || tag[0] >> 3n === 0n) return undefined;
    const field = String(tag[0] >> 3n);
    i = tag[1];
    switch (Number(tag[0] & 7n)) {
      case 0: {
        const v = readVarint(buf, i);
        if (v === undefined) return undefined;
        parts.push(`${field}:${v[0]}`);
        i = v[1];
        break;
      }
      case 1:
        if (i + 8 > buf.length) return undefined;
        parts.push(`${field}:${buf.readBigUInt64LE(i)}`);
        i += 8;
        break;
      case 5:
        if (i + 4 > buf.length) return undefined;
        parts.push(`${field}:${buf.readUInt32LE(i)}`);
        i += 4;
        break;
      case 2: {
        const len = readVarint(buf, i);
        if (len === undefined || len[1] + Number(len[0]) > buf.length) return undefined;
        const body = buf.subarray(len[1], len[1] + Number(len[0]));
        const nested = depth < 8 && body.length > 0 ? dumpProtobuf(body, depth + 1) : undefined;
        parts.push(nested !== undefined ? `${field}:{${nested}}` : `${field}:${JSON.stringify(body.toString('latin1'))}`);
        i = len[1] + body.length;
        break;
      }
      default:
        return undefined;
    }
  }
  return parts.join(' ');
}

/** For Step.decode: -w protobuf output as text (or as it is, when it is not protobuf: an error). */
export function protobufText(stdout: Buffer, side: Side): string {
  return normIds(side, dumpProtobuf(stdout) ?? stdout.toString('latin1'));
}

function captureVars(side: Side, step: Step, stdout: string): void {
  for (const [name, re] of Object.entries(step.capture ?? {})) {
    const v = re.exec(stdout)?.[1];
    if (v === undefined) throw new Error(`${side.kind}: step ${step.args.join(' ')} printed no ${name}:\n${stdout}`);
    side.vars.set(name, v.replace(/^0+(?=.)/, ''));
  }
  for (const [name, re] of Object.entries(step.captureDecimal ?? {})) {
    const v = re.exec(stdout)?.[1];
    if (v === undefined) throw new Error(`${side.kind}: step ${step.args.join(' ')} printed no ${name}:\n${stdout}`);
    side.vars.set(name, hexOf(v));
  }
}

/** Runs one step on both sides at once; returns the mismatches (output, then state). */
export async function runStep(sides: readonly [Side, Side], step: Step, opts: RunOptions = {}): Promise<Mismatch[]> {
  const results = await Promise.all(
    sides.map(async (side) => {
      const args = step.args.map((a) => subst(side, a));
      const stdin = step.stdin === undefined ? undefined : subst(side, step.stdin);
      const r = await etcdctl(args, { endpoints: side.cluster.endpoints, stdin, timeoutMs: step.timeoutMs });
      captureVars(side, step, r.stdout);
      captureLease(side, args, r.stdout);
      return observe(side, step, r);
    }),
  );
  const [a, b] = results as [Observed, Observed];
  const name = `etcdctl ${step.args.join(' ')}${step.stdin !== undefined ? ` <<< ${JSON.stringify(step.stdin.slice(0, 200))}` : ''}`;
  const out: Mismatch[] = [];
  if (a.code !== b.code || a.stdout !== b.stdout || a.stderr !== b.stderr) out.push({ step: name, etcd: a, etcdTs: b });
  if (opts.checkState !== false) {
    const m = await checkState(sides, name, opts.compareHash);
    if (m !== undefined && step.stateDiffers === undefined) out.push(m);
  }
  return out;
}

export interface RunOptions {
  /**
   * Default true. Off for steps whose effect on the store depends on timing
   * (a lease expiring between two steps); the caller checks once it settled.
   */
  readonly checkState?: boolean;
  /**
   * Default true. HashKV covers each revision's KeyValue, lease id included,
   * and lease ids differ between the two servers: off while the history
   * holds a key put with a lease (until a compaction drops those revisions).
   */
  readonly compareHash?: boolean;
}

/** Runs steps in order on both sides, collecting every mismatch (a failed step does not stop the rest). */
export async function runSteps(sides: readonly [Side, Side], steps: readonly Step[], opts: RunOptions = {}): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  for (const step of steps) out.push(...(await runStep(sides, step, opts)));
  return out;
}

const clipChars = 300;

function clip(text: string): string {
  return text.length <= clipChars ? text : `${text.slice(0, clipChars)}...(${text.length} chars)`;
}

/** Where two texts first differ, so a long equal prefix is not what the reader sees. */
function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Shows a text from a little before `from` (the first difference), clipped. */
function clipFrom(text: string, from: number): string {
  const start = Math.max(0, from - 60);
  return `${start > 0 ? `(${start} equal chars)...` : ''}${clip(JSON.stringify(text.slice(start)))}`;
}

export function formatMismatches(ms: readonly Mismatch[]): string {
  return ms
    .map((m) => {
      const outAt = firstDifference(m.etcd.stdout, m.etcdTs.stdout);
      const errAt = firstDifference(m.etcd.stderr, m.etcdTs.stderr);
      const show = (o: Observed): string => `  exit ${String(o.code)}\n  stdout: ${clipFrom(o.stdout, outAt)}\n  stderr: ${clipFrom(o.stderr, errAt)}`;
      return `${clip(m.step)}\n etcd:\n${show(m.etcd)}\n etcd-ts:\n${show(m.etcdTs)}`;
    })
    .join('\n\n');
}

/** Background etcdctl on both sides (watch), with the same arguments substituted per side. */
export function backgroundPair(sides: readonly [Side, Side], args: readonly string[], keepStdinOpen = false): [CtlProcess, CtlProcess] {
  const procs = sides.map((side) =>
    etcdctlBackground(
      args.map((a) => subst(side, a)),
      { endpoints: side.cluster.endpoints, keepStdinOpen },
    ),
  );
  return [procs[0] as CtlProcess, procs[1] as CtlProcess];
}

/**
 * A long-running etcdctl (watch, lease keep-alive, elect) on both sides,
 * stopped (^C) once its output satisfies `done` on both (bounded); the
 * outputs so far are compared like a step's.
 */
export async function runUntil(sides: readonly [Side, Side], args: readonly string[], done: (stdout: string) => boolean, timeoutMs = 15_000): Promise<Mismatch[]> {
  const procs = backgroundPair(sides, args);
  const waited = await Promise.all(procs.map((p) => p.waitFor(done, timeoutMs).then(() => 'ok', (e: unknown) => (e as Error).message)));
  const ends = await Promise.all(procs.map((p) => p.stop()));
  const shown = ends.map((r, i) => {
    const side = sides[i] as Side;
    captureLease(side, args, r.stdout);
    const norm = (t: string): string => normGoPanic(normClientWarn(normIds(side, t)));
    return { code: waited[i] === 'ok' ? 0 : -1, stdout: norm(r.stdout), stderr: waited[i] === 'ok' ? norm(r.stderr) : `${norm(r.stderr)}\n(${waited[i]})` };
  });
  const [a, b] = shown as [Observed, Observed];
  if (a.code === b.code && a.stdout === b.stdout && a.stderr === b.stderr) return [];
  return [{ step: `etcdctl ${args.join(' ')} (until done, then ^C)`, etcd: a, etcdTs: b }];
}

/**
 * Revokes every lease on both sides (sessions that etcdctl left behind, which
 * would otherwise expire at a moment that differs between the two servers);
 * returns a mismatch if the sides had different numbers of them.
 */
export async function revokeAllLeases(sides: readonly [Side, Side]): Promise<Mismatch[]> {
  const found = await Promise.all(
    sides.map(async (side) => {
      const list = await etcdctl(['lease', 'list'], { endpoints: side.cluster.endpoints });
      const [head = '', ...ids] = list.stdout.split('\n').filter((l) => l !== '');
      for (const id of ids) await etcdctl(['lease', 'revoke', id], { endpoints: side.cluster.endpoints });
      return { code: list.code, stdout: head, stderr: normClientWarn(list.stderr) };
    }),
  );
  const [a, b] = found as [Observed, Observed];
  return a.stdout === b.stdout && a.code === b.code ? [] : [{ step: 'leases left behind (lease list)', etcd: a, etcdTs: b }];
}

/** Sets each side's `${rev+N}` base to its current revision (both must agree). */
export async function markRevision(sides: readonly [Side, Side]): Promise<number> {
  const revs = await Promise.all(
    sides.map(async (side) => {
      const r = await etcdctl(['get', 'rev-mark', '-w', 'json'], { endpoints: side.cluster.endpoints });
      const rev = /"revision":(\d+)/.exec(r.stdout)?.[1];
      if (rev === undefined) throw new Error(`${side.kind}: no revision in ${r.stdout}${r.stderr}`);
      side.revBase = Number(rev);
      return side.revBase;
    }),
  );
  if (revs[0] !== revs[1]) throw new Error(`revisions differ before a section: etcd ${String(revs[0])}, etcd-ts ${String(revs[1])}`);
  return revs[0] as number;
}

/** Polls a step on one side until its stdout satisfies pred (bounded). */
export async function pollUntil(side: Side, args: readonly string[], pred: (stdout: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await etcdctl(args.map((a) => subst(side, a)), { endpoints: side.cluster.endpoints });
    if (pred(r.stdout)) return;
    if (Date.now() > deadline) throw new Error(`${side.kind}: etcdctl ${args.join(' ')} did not reach the awaited output in ${timeoutMs} ms; last:\n${r.stdout}${r.stderr}`);
    await delay(100);
  }
}
