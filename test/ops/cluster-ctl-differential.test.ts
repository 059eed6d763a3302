/**
 * etcdctl's cluster-level commands, differentially: Debian's 3.4 etcdctl
 * against a 3-member real etcd 3.4.23 and a 3-member etcd-ts at once, each
 * step on both, exit codes, stdout and stderr compared once each side's ids,
 * URLs and ports are replaced by the names they stand for.
 *
 * Besides those, what legitimately differs between two clusters is
 * normalized: how long a check took, db sizes (bbolt and LMDB grow
 * differently), raft terms and indexes (as offsets from m1's at the step:
 * readiness polls and leader moves differ), and the order of rows, which
 * follows member ids (--cluster) or which check answered first.
 *
 * Covered: endpoint status / health / hashkv with an explicit list and with
 * --cluster in every output format; alarms raised (NOSPACE, over raw gRPC, so
 * that both clusters hold the same ones) as alarm list, endpoint status and
 * disarm show them; move-leader to a follower, to itself, through a
 * follower, to an unknown id, to a learner; snapshot save given several
 * endpoints; defrag; --command-timeout; a dead endpoint first; a learner
 * started and a voter never started; one member stopped; quorum lost.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, etcdctl, etcdctlMissing, etcdMissing, memberStatus, methods, openChannel, useWorkspace } from '../harness/index.js';
import { fastElection, readyTimeoutMs } from '../cluster/kit.js';
import { dumpProtobuf, normClientWarn, normDbSize, normGoPanic, normTablePadding, normTook, type Mismatch, type Observed } from '../e2e/diff-kit.js';
import { Side, compare, expectSame, normDeadlineRace, pinLeader, startSides } from './cluster-diff-kit.js';
import { eventually, memberFromAdd, parseMemberAdd } from './kit.js';

const skip = etcdMissing() || etcdctlMissing();

interface Step {
  readonly args: readonly string[];
  /** The members etcdctl is given, in order (--endpoints). */
  readonly eps: readonly string[];
  /** -w protobuf: the message decoded to text. */
  readonly protobuf?: boolean;
}

/** A step through the members named, comma-separated ('m1,m2,m3'). */
const on = (eps: string, ...args: string[]): Step => ({ args, eps: eps.split(',') });
const all = 'm1,m2,m3';
const formats = ['simple', 'table', 'json', 'fields'] as const;
/** Bounds the steps that wait on a member down (etcdctl's default is 5 s). */
const shortTimeout = '--command-timeout=2s';

/** Raft term and indexes as offsets from m1's (or the first running member's) at the step: <term>, <index+1>. */
function normRaftNumbers(s: string, base: { term: number; index: number }): string {
  const rel = (what: string, v: string, from: number): string => {
    const d = Number(v) - from;
    return `<${what}${d === 0 ? '' : d > 0 ? `+${d}` : String(d)}>`;
  };
  const t = (v: string): string => rel('term', v, base.term);
  const i = (v: string): string => rel('index', v, base.index);
  return s
    .replace(/("raft_term"|"raftTerm"|"RaftTerm" ): ?(\d+)/g, (_m, k: string, v: string) => `${k}:${t(v)}`)
    .replace(/("raftIndex"|"raftAppliedIndex"|"RaftIndex" |"RaftAppliedIndex" ): ?(\d+)/g, (_m, k: string, v: string) => `${k}:${i(v)}`)
    .replace(/(3\.4\.23(?:, | \| )<size>(?:, | \| )(?:true|false)(?:, | \| )(?:true|false)(?:, | \| ))(\d+)(, | \| )(\d+)(, | \| )(\d+)/g, (_m, head: string, a: string, s1: string, b: string, s2: string, c: string) => `${head}${t(a)}${s1}${i(b)}${s2}${i(c)}`);
}

/** How long a check took, in a table cell (padding already collapsed) and in -w fields, besides what normTook covers. */
function normTookCells(s: string): string {
  return normTook(s).replace(/^"Took" : [0-9.]+[µnm]?s$/gm, '"Took" : <t>');
}

/**
 * At a call's deadline the server's answer races the client's own timer (see
 * normDeadlineRace), etcd's and etcd-ts's alike: a health check's error, and
 * the refusal of a leader transfer still waiting, show either.
 */
function normDeadlineAnswers(s: string): string {
  return normDeadlineRace(s)
    .replace(/rpc error: code = Unknown desc = etcdserver: request timed out, leader transfer took too long/g, 'rpc error: code = DeadlineExceeded desc = context deadline exceeded')
    .replace(/^Error: rpc error: code = DeadlineExceeded desc = context deadline exceeded$/gm, 'Error: context deadline exceeded')
    .replace(/failed to commit proposal: rpc error: code = DeadlineExceeded desc = context deadline exceeded/g, 'failed to commit proposal: context deadline exceeded');
}

/** clientv3's warnings, one client per endpoint checked: which client logged first is a race, so each is <uuid>. */
function normClients(s: string): string {
  return normClientWarn(s).replace(/<uuid-\d+>/g, '<uuid>');
}

/**
 * Row order follows member ids or which check answered first: the elements of
 * a one-line JSON array, the lines of each block, and the blocks (-w fields
 * prints one per endpoint) are compared as sets.
 */
function normOrder(s: string): string {
  const sortArray = (line: string): string => (line.startsWith('[{') ? `[${line.slice(1, -1).split(/,(?=\{")/).sort().join(',')}]` : line);
  // Alarms come in Go's map order: alarm list's and the errors of endpoint status.
  const sortElems = (line: string): string =>
    line.replace(/"alarms":\[([^\]]*)\]/g, (_m, list: string) => `"alarms":[${list.split(/,(?=\{)/).sort().join(',')}]`).replace(/"errors":\[([^\]]*)\]/g, (_m, list: string) => `"errors":[${list.split(/,(?=")/).sort().join(',')}]`);
  return s
    .split('\n\n')
    .map((block) => block.split('\n').map(sortArray).map(sortElems).sort().join('\n'))
    .sort()
    .join('\n\n');
}

async function raftBase(side: Side): Promise<{ term: number; index: number }> {
  for (const m of [...side.cluster.members, ...side.joined.values()].filter((x) => x.running)) {
    try {
      const st = await memberStatus(m.endpoint);
      return { term: st.raftTerm, index: st.raftIndex };
    } catch {
      // The next member.
    }
  }
  return { term: 0, index: 0 };
}

async function runOn(side: Side, step: Step): Promise<Observed> {
  const base = await raftBase(side);
  const r = await etcdctl(
    step.args.map((a) => side.subst(a)),
    { endpoints: step.eps.map((n) => side.member(n).endpoint), timeoutMs: 20_000 },
  );
  const norm = (t: string): string => normOrder(normRaftNumbers(normTookCells(normTablePadding(normDbSize(normDeadlineAnswers(normClients(normGoPanic(side.normIds(t))))))), base));
  const stdout = step.protobuf === true ? side.normIds(dumpProtobuf(r.stdoutBytes) ?? r.stdout) : r.stdout;
  return { code: r.timedOut ? -1 : r.code, stdout: norm(stdout), stderr: norm(r.stderr) };
}

async function runSteps(sides: readonly [Side, Side], steps: readonly Step[]): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  for (const step of steps) {
    const [a, b] = (await Promise.all(sides.map((side) => runOn(side, step)))) as [Observed, Observed];
    const name = `etcdctl --endpoints=${step.eps.join(',')} ${step.args.join(' ')}`;
    if (process.env['DIFF_SHOW'] === '1') process.stderr.write(`# ${name}\n${JSON.stringify(a)}\n${JSON.stringify(b)}\n`);
    if (a.code !== b.code || a.stdout !== b.stdout || a.stderr !== b.stderr) out.push({ step: name, etcd: a, etcdTs: b });
  }
  return out;
}

/** Maintenance.Alarm over raw gRPC through m1 (etcdctl cannot raise one): member is a name or a decimal id. */
async function alarm(side: Side, action: etcdserverpb.AlarmRequest_AlarmAction, member: string): Promise<void> {
  const ch = openChannel(side.member('m1').endpoint);
  try {
    const id = /^\d+$/.test(member) ? BigInt(member) : BigInt(`0x${side.vars.get(member) ?? '0'}`);
    await ch.unary(methods.maintenance.Alarm, etcdserverpb.AlarmRequest.create({ action, memberID: id, alarm: etcdserverpb.AlarmType.NOSPACE }), { timeoutMs: 10_000 });
  } finally {
    ch.close();
  }
}

/** Go's duration text ("5.4ms", "1.2s", "830µs") in ms. */
function goDurationMs(text: string): number {
  const m = /^([0-9.]+)(ns|µs|ms|s)$/.exec(text);
  if (m === null) return Number.NaN;
  const unit = { ns: 1e-6, µs: 1e-3, ms: 1, s: 1_000 }[m[2] as 'ns' | 'µs' | 'ms' | 's'];
  return Number(m[1]) * unit;
}

describe('cluster-level etcdctl commands, differentially: a real etcd 3.4.23 cluster and an etcd-ts cluster', { skip }, () => {
  const ws = useWorkspace('ops-cluster-ctl-diff');
  let sides: [Side, Side];

  before(async () => {
    sides = await startSides(ws, ['l1', 'v1']);
  });

  test('endpoint status, health and hashkv in every format; alarms; move-leader; snapshot and defrag through several endpoints', async () => {
    const ms = await runSteps(sides, [
      on('m1', 'put', 'k', 'v'),
      ...formats.flatMap((w) => [on(all, 'endpoint', 'status', '-w', w), on('m2', 'endpoint', 'status', '--cluster', '-w', w)]),
      ...formats.flatMap((w) => [on(all, 'endpoint', 'health', '-w', w), on('m3', 'endpoint', 'health', '--cluster', '-w', w)]),
      ...formats.flatMap((w) => [on(all, 'endpoint', 'hashkv', '-w', w), on('m1', 'endpoint', 'hashkv', '--cluster', '-w', w)]),
      on(all, 'endpoint', 'status', '-w', 'protobuf'),
      on(all, 'endpoint', 'hashkv', '--rev=2'),
      on('m2', 'endpoint', 'hashkv', '--cluster', '--rev=1'),
      on('m1,m2', 'endpoint', 'status', '--cluster', '-w', 'table'),
      on(all, 'member', 'list', '-w', 'table'),
      on(all, 'snapshot', 'save', 'snap.db'),
      on('m1,m2', 'snapshot', 'save', 'snap.db'),
      on(all, 'defrag'),
      on('m2', 'defrag', '--cluster'),
      // move-leader: to itself, to a follower and back, through a follower, to ids that are not a member.
      on(all, 'move-leader', '${m1}'),
      on(all, 'move-leader', '${m2}'),
      on('m3,m2', 'move-leader', '${m1}'),
      on('m3', 'move-leader', '${m2}'),
      on('m2,m3', 'move-leader', '${m2}'),
      on(all, 'move-leader', 'abcdef'),
      on(all, 'move-leader', '0'),
      on(all, 'move-leader', 'xyz'),
      on(all, 'move-leader'),
      on(all, 'move-leader', '${m2}', '${m3}'),
      // Timeouts too short for anything: past before the call (1 ms let a status through on a fast machine).
      on(all, 'endpoint', 'status', '--command-timeout=1ns'),
      on(all, 'endpoint', 'health', '--command-timeout=1ns'),
      on(all, 'endpoint', 'hashkv', '--cluster', '--command-timeout=1ns'),
      on(all, 'alarm', 'list', '--command-timeout=1ns'),
    ]);
    // Alarms, the same ones on both sides: one, then three (one of a member that does not exist).
    await Promise.all(sides.map((side) => alarm(side, etcdserverpb.AlarmRequest_AlarmAction.ACTIVATE, 'm2')));
    ms.push(
      ...(await runSteps(sides, [
        ...formats.map((w) => on(all, 'alarm', 'list', '-w', w)),
        { ...on('m3', 'alarm', 'list', '-w', 'protobuf'), protobuf: true },
        // (A table cell of several alarms wraps where their order, Go's map order, puts the breaks.)
        on(all, 'endpoint', 'status', '-w', 'table'),
      ])),
    );
    await Promise.all(sides.map(async (side) => {
      await alarm(side, etcdserverpb.AlarmRequest_AlarmAction.ACTIVATE, 'm3');
      await alarm(side, etcdserverpb.AlarmRequest_AlarmAction.ACTIVATE, '77');
    }));
    ms.push(
      ...(await runSteps(sides, [
        on('m2', 'alarm', 'list'),
        on('m2', 'alarm', 'list', '-w', 'json'),
        on(all, 'endpoint', 'status', '-w', 'json'),
        on(all, 'endpoint', 'health'),
        on('m3', 'put', 'k', 'v2'),
        on('m3', 'get', 'k', '--print-value-only'),
        on('m3', 'alarm', 'disarm', '-w', 'json'),
        on(all, 'alarm', 'list'),
        on(all, 'alarm', 'disarm'),
        on('m2', 'put', 'k', 'v3'),
      ])),
    );
    expectSame(ms);
  });

  test('linearizable reads on several members at once answer without waiting for a ReadIndex retry (endpoint health took)', async () => {
    // etcd's followers send the leader ReadIndex contexts unique in the cluster; equal ones from two
    // followers would be one pending read at the leader, the other follower's answered only when it
    // asks again, 500 ms later.
    const rounds = 15;
    const measure = (): Promise<number[]> =>
      Promise.all(
        sides.map(async (side) => {
          let n = 0;
          for (let i = 0; i < rounds; i++) {
            const r = await etcdctl(['endpoint', 'health', '-w', 'json'], { endpoints: side.cluster.endpoints });
            for (const m of r.stdout.matchAll(/"took":"([^"]+)"/g)) if (!(goDurationMs(m[1] ?? '') < 450)) n++;
          }
          return n;
        }),
      );
    // Whether any did, not how many; and a stall of the machine, which may slow a check on either
    // side once, is told from the fault by measuring again (up to three times) while the sides differ.
    const kind = (slow: number[]) => (i: number): string => ((slow[i] ?? 0) === 0 ? 'none' : 'some');
    let slow = await measure();
    for (let attempt = 1; attempt < 3 && kind(slow)(0) !== kind(slow)(1); attempt++) slow = await measure();
    expectSame(compare(`health checks of ${3 * rounds} that took 450 ms or more`, sides, kind(slow)));
  });

  test('a learner started and a voter never started: --cluster lists, move-leader to them, defrag and health', async () => {
    // The learner, added through a follower and started from what etcdctl printed.
    const added = await Promise.all(sides.map((side) => etcdctl(['member', 'add', 'l1', '--learner', `--peer-urls=http://127.0.0.1:${side.vars.get('port.l1') ?? '?'}`], { endpoints: [side.member('m2').endpoint] })));
    await Promise.all(
      sides.map(async (side, i) => {
        const printed = parseMemberAdd(added[i]?.stdout ?? '', `${side.kind}: ${added[i]?.stderr ?? ''}`);
        side.vars.set('l1', printed.id);
        const dir = join(ws.dir, `${side.kind}-joined`);
        mkdirSync(dir, { recursive: true });
        const m = await memberFromAdd(printed, { kind: side.kind, dir, token: side.cluster.member(0).spec.clusterToken, extraFlags: [...fastElection] });
        side.joined.set('l1', m);
        await m.start({ timeoutMs: readyTimeoutMs });
        side.vars.set('l1.client', m.clientUrl);
        side.vars.set('l1.ep', m.endpoint);
      }),
    );
    const ms = await runSteps(sides, [
      ...formats.map((w) => on('m1', 'endpoint', 'status', '--cluster', '-w', w)),
      on('m1', 'endpoint', 'hashkv', '--cluster'),
      on('m2', 'endpoint', 'health', '--cluster', '-w', 'table'),
      on('m1,l1', 'endpoint', 'health'),
      on('l1', 'endpoint', 'status', '--cluster', '-w', 'json'),
      on('m1', 'defrag', '--cluster'),
      on(all, 'move-leader', '${l1}'),
      on('l1', 'move-leader', '${m2}'),
      on('l1,m1', 'move-leader', '${m1}'),
    ]);
    // A voter added and never started: listed without client URLs, so --cluster leaves it out.
    await Promise.all(sides.map((side) => side.member('l1').stop()));
    await Promise.all(sides.map((side) => etcdctl(['member', 'remove', side.vars.get('l1') ?? '?'], { endpoints: side.cluster.endpoints })));
    const voter = await Promise.all(sides.map((side) => etcdctl(['member', 'add', 'v1', `--peer-urls=http://127.0.0.1:${side.vars.get('port.v1') ?? '?'}`], { endpoints: side.cluster.endpoints })));
    sides.forEach((side, i) => side.vars.set('v1', parseMemberAdd(voter[i]?.stdout ?? '', voter[i]?.stderr).id));
    ms.push(
      ...(await runSteps(sides, [
        on('m1', 'endpoint', 'status', '--cluster', '-w', 'table'),
        on('m2', 'endpoint', 'health', '--cluster'),
        on('m3', 'endpoint', 'hashkv', '--cluster', '-w', 'json'),
        on(all, 'move-leader', '${v1}', shortTimeout),
        on(all, 'member', 'remove', '${v1}'),
      ])),
    );
    expectSame(ms);
  });

  test('one member stopped: its error lines and the exit codes; a dead endpoint first', async () => {
    await Promise.all(sides.map((side) => pinLeader(side)));
    await Promise.all(sides.map((side) => side.member('m3').stop()));
    expectSame(
      await runSteps(sides, [
        on(all, 'endpoint', 'status', shortTimeout),
        on(all, 'endpoint', 'health', '-w', 'table', shortTimeout),
        on('m1', 'endpoint', 'hashkv', '--cluster', '-w', 'json', shortTimeout),
        on('m2', 'endpoint', 'health', '--cluster', shortTimeout),
        on('m3,m1', 'defrag', '--cluster', shortTimeout),
        on('m3,m2', 'endpoint', 'status', '--cluster', '-w', 'json', shortTimeout),
        on('m3,m1', 'get', 'k', '--print-value-only'),
        on('m3,m2', 'put', 'k', 'v4'),
        on('m3,m1', 'member', 'list'),
        on('m3,m1', 'alarm', 'list'),
        on(all, 'move-leader', '${m3}', shortTimeout),
      ]),
    );
  });

  test('quorum lost: the raft term shown stays that of the last entry while the member left campaigns', async () => {
    await Promise.all(sides.map((side) => side.member('m2').stop()));
    await Promise.all(sides.map((side) => eventually(`${side.kind}: m1 without a leader`, async () => ((await memberStatus(side.member('m1').endpoint)).leader === 0n ? true : undefined), 15_000, 100)));
    const terms = async (): Promise<number[]> => Promise.all(sides.map(async (side) => (await memberStatus(side.member('m1').endpoint)).raftTerm));
    const first = await terms();
    // Several election timeouts (500 ms to 1 s each): m1 starts an election in each.
    await delay(2_500);
    const later = await terms();
    const ms = compare('the term Status shows after 2.5 s without quorum, against before', sides, (i) => String((later[i] ?? 0) - (first[i] ?? 0)));
    ms.push(
      ...(await runSteps(sides, [
        on('m1', 'endpoint', 'status', '-w', 'json'),
        on('m1', 'endpoint', 'health', '--cluster', shortTimeout),
        on('m1', 'endpoint', 'hashkv', '-w', 'json'),
        on('m1', 'member', 'list'),
        on('m1', 'alarm', 'list', shortTimeout),
        on('m1', 'move-leader', '${m2}'),
        on('m1', 'defrag'),
      ])),
    );
    expectSame(ms);
  });
});
