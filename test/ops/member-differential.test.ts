/**
 * Membership, differentially: the same etcdctl commands (Debian's 3.4 etcdctl)
 * against a real etcd 3.4.23 cluster and an etcd-ts cluster of the same
 * shape, each step on both at once, exit codes, stdout and stderr compared
 * once each side's own ids, URLs and ports are replaced by the names they
 * stand for (member m2's id is <m2> on both sides, whatever it hashes to).
 *
 * Covered, through the leader's endpoint and a follower's: member list in
 * every output format; adds of a voter and of a learner (the ETCD_* lines),
 * of a second learner, of a peer URL in use, of bad URLs; updates (a known
 * id, an unknown one, a URL in use); promotions (a voter, an unknown id, a
 * learner not started, a started learner once in sync); removals (an unknown
 * id, a learner, a follower, a member down); the strict reconfiguration
 * checks with a member down and when the started voters would lose quorum;
 * what a started learner refuses; and what a removed member does (it exits,
 * and exits again when restarted on its data dir).
 *
 * The leader is pinned to m1 on both sides (move-leader) before steps whose
 * output names the member that answered.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { etcdserverpb } from '../../src/pb/index.js';
import { computeMemberId } from '../../src/server/index.js';
import { RawGrpc, etcdctl, etcdctlMissing, etcdMissing, memberStatus, methods, openChannel, outcome, useWorkspace, type Cluster, type CtlResult, type MemberKind } from '../harness/index.js';
import { fastElection, logOf, readyTimeoutMs } from '../cluster/kit.js';
import { normClientWarn, normMemberOrder, normTablePadding, type Mismatch, type Observed } from '../e2e/diff-kit.js';
import { Side, compare, expectSame, normDeadlineRace, normRowOrder, normTerm, pinLeader, startSides, type Via } from './cluster-diff-kit.js';
import { eventually, memberFromAdd, parseMemberAdd } from './kit.js';

const skip = etcdMissing() || etcdctlMissing();

interface Step {
  readonly args: readonly string[];
  readonly via: Via;
  /** Names the member a `member add` printed: its id becomes ${name} and <name>. */
  readonly adds?: string;
  /** "unhealthy cluster" is the answer awaited: not retried. */
  readonly unhealthy?: boolean;
  readonly timeoutMs?: number;
  /** How long the answer took is compared too, in coarse classes (under 2 s, under 7 s, longer). */
  readonly timed?: boolean;
}

function observe(side: Side, r: CtlResult): Observed {
  const norm = (t: string): string => normRowOrder(normTablePadding(normMemberOrder(normTerm(normDeadlineRace(normClientWarn(side.normIds(t)))))));
  return { code: r.timedOut ? -1 : r.code, stdout: norm(r.stdout), stderr: norm(r.stderr) };
}

/** Runs a step on one side; a change refused as "unhealthy cluster" (a link up for less than 5 s) is asked again. */
async function runOn(side: Side, step: Step): Promise<CtlResult> {
  const args = step.args.map((a) => side.subst(a));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const startedMs = Date.now();
    const r = await etcdctl(args, { endpoints: [side.endpoint(step.via)], timeoutMs: step.timeoutMs ?? 15_000 });
    if (step.timed === true) {
      const ms = Date.now() - startedMs;
      return { ...r, stdout: `${r.stdout}(answered ${ms < 2_000 ? 'under 2 s' : ms < 7_000 ? 'in 2 to 7 s' : 'after 7 s'})` };
    }
    if (step.unhealthy === true || !r.stderr.includes('etcdserver: unhealthy cluster') || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 300));
  }
}

function added(side: Side, step: Step, r: CtlResult): void {
  if (step.adds === undefined || r.code !== 0) return;
  const id = /Member +([0-9a-f]+) added/.exec(r.stdout)?.[1] ?? /"ID":(\d+)/.exec(r.stdout.replace(/"header":\{[^}]*\}/, ''))?.[1];
  if (id === undefined) throw new Error(`${side.kind}: no id in ${r.stdout}`);
  side.vars.set(step.adds, /^\d+$/.test(id) && !r.stdout.startsWith('Member') ? BigInt(id).toString(16) : id);
}

async function runSteps(sides: readonly [Side, Side], steps: readonly Step[]): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  for (const step of steps) {
    const rs = await Promise.all(sides.map((side) => runOn(side, step)));
    sides.forEach((side, i) => {
      side.last = rs[i];
      added(side, step, rs[i] as CtlResult);
    });
    const [a, b] = sides.map((side, i) => observe(side, rs[i] as CtlResult)) as [Observed, Observed];
    if (process.env['DIFF_SHOW'] === '1') process.stderr.write(`# ${step.args.join(' ')} (via ${step.via})\n${JSON.stringify(a)}\n${JSON.stringify(b)}\n`);
    if (a.code !== b.code || a.stdout !== b.stdout || a.stderr !== b.stderr) out.push({ step: `etcdctl ${step.args.join(' ')} (via ${step.via})`, etcd: a, etcdTs: b });
  }
  return out;
}

/**
 * MemberAdd over raw gRPC (etcdctl checks URLs itself before it sends them, so
 * only a raw call shows the server's own checks): the code and message, or the
 * member as the server recorded it (then removed again, as a learner it was).
 */
async function rawAdd(side: Side, peerURLs: readonly string[]): Promise<Observed> {
  const ch = openChannel(side.endpoint('leader'));
  try {
    const r = await outcome(ch.unary(methods.cluster.MemberAdd, etcdserverpb.MemberAddRequest.create({ peerURLs: peerURLs.map((u) => side.subst(u)), isLearner: true }), { timeoutMs: 10_000 }));
    if (!r.ok) return { code: r.code, stdout: '', stderr: r.message };
    const m = r.value.member;
    const id = m?.ID ?? 0n;
    const listed = r.value.members.find((x) => x.ID === id);
    await removeAgain(side, id);
    return { code: 0, stdout: side.normIds(JSON.stringify({ member: m?.peerURLs, listed: listed?.peerURLs, learner: m?.isLearner, name: m?.name, clientURLs: m?.clientURLs })), stderr: '' };
  } finally {
    ch.close();
  }
}

async function removeAgain(side: Side, id: bigint): Promise<void> {
  const r = await runOn(side, step('leader', 'member', 'remove', id.toString(16)));
  if (r.code !== 0) throw new Error(`${side.kind}: removing ${id.toString(16)} again: ${r.stderr}`);
}

async function rawSteps(sides: readonly [Side, Side], lists: readonly (readonly string[])[]): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  for (const urls of lists) {
    const [a, b] = (await Promise.all(sides.map((side) => rawAdd(side, urls)))) as [Observed, Observed];
    if (process.env['DIFF_SHOW'] === '1') process.stderr.write(`# raw MemberAdd ${JSON.stringify(urls)}\n${JSON.stringify(a)}\n${JSON.stringify(b)}\n`);
    if (a.code !== b.code || a.stdout !== b.stdout || a.stderr !== b.stderr) out.push({ step: `raw MemberAdd ${JSON.stringify(urls)}`, etcd: a, etcdTs: b });
  }
  return out;
}

/** Stream calls on a member over raw gRPC, half-closed: the status each ends with (a stream that stays open is cancelled). */
async function rawStreams(sides: readonly [Side, Side], via: Via, calls: readonly (readonly [string, Uint8Array])[]): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  for (const [path, body] of calls) {
    const [a, b] = (await Promise.all(
      sides.map(async (side) => {
        const raw = new RawGrpc(side.at(via).clientUrl);
        try {
          const s = raw.open(path);
          s.send(body);
          const r = await s.end(3_000);
          return { code: 0, stdout: `status ${r.status}, ${r.messages.length} message(s)`, stderr: r.message };
        } finally {
          raw.close();
        }
      }),
    )) as [Observed, Observed];
    if (process.env['DIFF_SHOW'] === '1') process.stderr.write(`# raw ${path}\n${JSON.stringify(a)}\n${JSON.stringify(b)}\n`);
    if (a.stdout !== b.stdout || a.stderr !== b.stderr) out.push({ step: `raw ${path} (via ${via})`, etcd: a, etcdTs: b });
  }
  return out;
}

/** Whether id is the one etcd's MemberAdd gives these URLs in one of the last minute's seconds (no cluster token hashed). */
function addedIdOf(id: string, urls: readonly string[]): boolean {
  const now = Math.floor(Date.now() / 1000);
  for (let t = now - 60; t <= now + 1; t++) if (computeMemberId(urls, '', t).toString(16) === id) return true;
  return false;
}

/** Starts a removed member again on its data dir: how it ended (killed after 20 s), and whether its log names its removal. */
async function startRemoved(side: Side, name: string): Promise<string> {
  const m = side.member(name);
  await m.start({ wait: false });
  const timer = setTimeout(() => void m.kill(), 20_000);
  const exit = await m.waitExit();
  clearTimeout(timer);
  return `${JSON.stringify(exit)} ${String(/permanently removed from the cluster/.test(logOf(m)))}`;
}

/**
 * Waits until each of the members sees down's link inactive (its transport's
 * view, which strict reconfiguration reads): etcd_network_active_peers for
 * that remote at 0 or gone. Not a count of the links up: etcd leaves the
 * series of a peer removed while its link was up at 1.
 */
async function peerDown(side: Side, names: readonly string[], down: string): Promise<void> {
  const id = (side.vars.get(down) ?? '?').replace(/^0+/, '');
  for (const n of names) {
    const m = side.member(n);
    await eventually(
      `${side.kind}: ${n} sees ${down} down`,
      async () => {
        const text = await (await fetch(`http://${m.endpoint}/metrics`)).text();
        const up = text.split('\n').some((l) => l.startsWith('etcd_network_active_peers{') && l.includes(`Remote="${id}"`) && !l.endsWith(' 0'));
        return up ? undefined : true;
      },
      15_000,
      100,
    );
  }
}

/** Adds a learner on both sides and starts it (under dir) from the ETCD_* lines etcdctl printed. */
async function startLearner(sides: readonly [Side, Side], dir: string, name: string): Promise<Mismatch[]> {
  const ms = await runSteps(sides, [{ ...step('leader', 'member', 'add', name, '--learner', `--peer-urls=http://127.0.0.1:\${port.${name}}`), adds: name }]);
  await Promise.all(
    sides.map(async (side) => {
      const printed = parseMemberAdd(side.last?.stdout ?? '');
      const sideDir = `${dir}/${side.kind}-joined`;
      mkdirSync(sideDir, { recursive: true });
      const m = await memberFromAdd(printed, { kind: side.kind, dir: sideDir, token: side.cluster.member(0).spec.clusterToken, extraFlags: [...fastElection] });
      side.joined.set(name, m);
      await m.start({ timeoutMs: readyTimeoutMs });
      side.vars.set(`${name}.client`, m.clientUrl);
      side.vars.set(`${name}.ep`, m.endpoint);
    }),
  );
  return ms;
}

const step = (via: Via, ...args: string[]): Step => ({ args, via });
const both = (...args: string[]): Step[] => [step('leader', ...args), step('follower', ...args)];
const formats = ['simple', 'table', 'json', 'fields'] as const;

describe('membership, differentially: etcdctl against a real etcd 3.4.23 cluster and an etcd-ts cluster', { skip }, () => {
  const ws = useWorkspace('ops-member-diff');
  let sides: [Side, Side];

  before(async () => {
    sides = await startSides(ws, ['a1', 'a2', 'a3', 'a4', 'a5', 'v1', 'v2']);
  });

  after(async () => {
    await Promise.all((sides ?? []).flatMap((s) => [...s.joined.values()].map((m) => m.kill())));
  });

  test('member list in every format; adds, updates, promotions and removals refused or done, through the leader and a follower', async () => {
    expectSame(
      await runSteps(sides, [
        ...formats.flatMap((w) => both('member', 'list', '-w', w)),
        // A learner, not started: listed unstarted.
        { ...step('follower', 'member', 'add', 'a1', '--learner', '--peer-urls=http://127.0.0.1:${port.a1}'), adds: 'a1' },
        ...formats.flatMap((w) => [step('leader', 'member', 'list', '-w', w)]),
        // etcd 3.4 allows one learner: refused when the change applies.
        step('leader', 'member', 'add', 'a2', '--learner', '--peer-urls=http://127.0.0.1:${port.a2}'),
        step('follower', 'member', 'add', 'a2', '--learner', '--peer-urls=http://127.0.0.1:${port.a3}'),
        // Peer URLs in use: a voter's, the learner's, and one of two.
        ...both('member', 'add', 'a2', '--peer-urls=${m2.peer}'),
        // (With a URL of its own besides: an id hashes the URLs and the second, so the learner's URL alone,
        // within the second the learner was added, would collide on the id before the URLs are checked.)
        step('leader', 'member', 'add', 'a2', '--peer-urls=http://127.0.0.1:${port.a1},http://127.0.0.1:${port.a3}'),
        step('follower', 'member', 'add', 'a2', '--peer-urls=http://127.0.0.1:${port.a4},${m3.peer}'),
        // URLs that are not peer URLs.
        ...both('member', 'add', 'a2', '--peer-urls=127.0.0.1:${port.a2}'),
        ...both('member', 'add', 'a2', '--peer-urls=http://127.0.0.1'),
        step('leader', 'member', 'add', 'a2', '--peer-urls=ftp://127.0.0.1:${port.a2}'),
        step('leader', 'member', 'add', 'a2', '--peer-urls=http://127.0.0.1:${port.a2}/path'),
        step('leader', 'member', 'add', 'a2', '--peer-urls=http://127.0.0.1:${port.a2}/'),
        step('leader', 'member', 'add', 'a2', '--peer-urls=http://127.0.0.1:${port.a2},'),
        step('leader', 'member', 'add', 'a2', '--peer-urls=unix:///tmp/a2.sock'),
        // A query and a fragment are no path: taken (a voter never started, removed at once).
        { ...step('follower', 'member', 'add', 'a2', '--peer-urls=http://127.0.0.1:${port.a2}?x=1#y'), adds: 'a2' },
        step('leader', 'member', 'remove', '${a2}'),
        // Promotions: a voter (the leader itself too), an unknown id, a learner never started (not in sync).
        ...both('member', 'promote', '${m2}'),
        step('follower', 'member', 'promote', '${m1}'),
        ...both('member', 'promote', 'abcdef'),
        ...both('member', 'promote', '${a1}'),
        // Updates: a member to its own URL (a change that changes nothing), an unknown id, a URL in use.
        ...both('member', 'update', '${m3}', '--peer-urls=${m3.peer}'),
        ...both('member', 'update', 'abcdef', '--peer-urls=http://127.0.0.1:${port.a2}'),
        ...both('member', 'update', '${m3}', '--peer-urls=${m2.peer}'),
        step('follower', 'member', 'update', '${m3}', '--peer-urls=http://127.0.0.1:${port.a1}'),
        // Removals: an unknown id, id 0, the learner, the learner again (removed ids stay known).
        ...both('member', 'remove', 'abcdef'),
        step('leader', 'member', 'remove', '0'),
        step('follower', 'member', 'remove', '${a1}'),
        ...both('member', 'remove', '${a1}'),
        step('leader', 'member', 'promote', '${a1}'),
        step('leader', 'member', 'list'),
        // Peer URLs as the server keeps them: a scheme in capitals, blanks around a URL.
        { ...step('leader', 'member', 'add', 'a5', '--learner', '--peer-urls=HTTP://127.0.0.1:${port.a5}, http://127.0.0.1:${port.a4}'), adds: 'a5' },
        step('follower', 'member', 'list', '-w', 'json'),
        step('follower', 'member', 'remove', '${a5}'),
        // A voter never started: the next change is refused while it cannot be reached; removing it is not.
        { ...step('leader', 'member', 'add', 'v1', '--peer-urls=http://127.0.0.1:${port.v1}', '-w', 'json'), adds: 'v1' },
        step('follower', 'member', 'list'),
        { ...step('leader', 'member', 'add', 'v2', '--peer-urls=http://127.0.0.1:${port.v2}'), unhealthy: true },
        { ...step('follower', 'member', 'add', 'v2', '--learner', '--peer-urls=http://127.0.0.1:${port.v2}'), unhealthy: true },
        step('follower', 'member', 'remove', '${v1}'),
        ...formats.flatMap((w) => [step('follower', 'member', 'list', '-w', w)]),
      ]),
    );
    for (const side of sides) {
      const id = side.vars.get('a1') ?? '?';
      assert.ok(addedIdOf(id, [`http://127.0.0.1:${side.vars.get('port.a1') ?? '?'}`]), `${side.kind}: the id ${id} of a member added is not etcd's hash of its URL and the time`);
    }
  });

  test('raw MemberAdd: the server checks and keeps peer URLs as etcd does', async () => {
    expectSame(
      await rawSteps(sides, [
        [],
        [''],
        ['127.0.0.1:${port.a2}'],
        ['http://127.0.0.1'],
        ['http://127.0.0.1:${port.a2}/'],
        ['http://127.0.0.1:${port.a2}/x'],
        ['ftp://127.0.0.1:${port.a2}'],
        ['unix:///tmp/a2.sock'],
        ['unix://a2.sock'],
        ['http://127.0.0.1:${port.a2}', ''],
        ['http://127.0.0.1:abc'],
        ['http://[::1'],
        ['http://a b:1'],
        // Each URL list taken here differs from the others once kept (blanks trimmed, the scheme in
        // lower case): an id hashes the kept URLs and the second, and a removed id is refused, so two
        // equal lists within one second would collide on one side and not on the other.
        [' http://127.0.0.1:${port.a2} '],
        ['HTTP://127.0.0.1:${port.a4}'],
        ['http://127.0.0.1:${port.a2}', 'https://127.0.0.1:${port.a3}'],
        ['http://user@127.0.0.1:${port.a2}?q=1#f'],
        ['http://[::1]:${port.a2}'],
        ['unixs://a2.sock:1'],
        ['http://:${port.a2}'],
        ['http://127.0.0.1:99999'],
      ]),
    );
  });

  test('a started learner refuses what etcd 3.4 refuses; promoted once in sync; removed as a follower, it exits, and again when restarted', async () => {
    const ms = await runSteps(sides, [step('leader', 'put', 'k', 'v')]);
    await Promise.all(sides.map((side) => side.allocPorts('l1')));
    ms.push(...(await startLearner(sides, ws.dir, 'l1')));
    ms.push(
      ...(await runSteps(sides, [
        step('l1', 'get', 'k', '--consistency=s'),
        step('l1', 'get', 'k', '--consistency=s', '-w', 'json'),
        step('l1', 'get', 'k'),
        step('l1', 'put', 'k2', 'v'),
        step('l1', 'del', 'k'),
        step('l1', 'compaction', '1'),
        step('l1', 'lease', 'grant', '10'),
        step('l1', 'lease', 'list'),
        step('l1', 'alarm', 'list'),
        step('l1', 'endpoint', 'hashkv'),
        step('l1', 'endpoint', 'health'),
        step('l1', 'defrag'),
        step('l1', 'user', 'list'),
        step('l1', 'move-leader', '${m2}'),
        step('l1', 'member', 'list'),
        step('l1', 'member', 'promote', '${l1}'),
        step('l1', 'member', 'remove', '${m3}'),
        step('l1', 'member', 'update', '${m3}', '--peer-urls=${m3.peer}'),
        step('l1', 'member', 'add', 'a2', '--learner', '--peer-urls=http://127.0.0.1:${port.a2}'),
      ])),
    );
    // Streams (etcdctl would retry these for ever: the refusal is Unavailable), asked over raw gRPC.
    ms.push(
      ...(await rawStreams(sides, 'l1', [
        ['/etcdserverpb.Maintenance/Snapshot', etcdserverpb.SnapshotRequest.encode(etcdserverpb.SnapshotRequest.create({}))],
        ['/etcdserverpb.Watch/Watch', etcdserverpb.WatchRequest.encode(etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: etcdserverpb.WatchCreateRequest.create({ key: new TextEncoder().encode('k') }) } }))],
        ['/etcdserverpb.Lease/LeaseKeepAlive', etcdserverpb.LeaseKeepAliveRequest.encode(etcdserverpb.LeaseKeepAliveRequest.create({ ID: 1234n }))],
      ])),
    );
    // Status answers on a learner, and says so.
    for (const side of sides) assert.equal((await memberStatus(side.endpoint('l1'))).isLearner, true, side.kind);

    // Promoted through a follower once the leader finds it in sync (until then: "not in sync").
    const promoted = await Promise.all(
      sides.map((side) =>
        eventually(
          `${side.kind}: l1 promoted`,
          async () => {
            const r = await runOn(side, step('follower', 'member', 'promote', '${l1}'));
            if (r.code === 0) return r;
            assert.match(r.stderr, /can only promote a learner member which is in sync with leader/);
            return undefined;
          },
          30_000,
          300,
        ),
      ),
    );
    const [pa, pb] = sides.map((side, i) => observe(side, promoted[i] as CtlResult)) as [Observed, Observed];
    if (pa.stdout !== pb.stdout || pa.stderr !== pb.stderr) ms.push({ step: 'member promote ${l1} (via follower, once in sync)', etcd: pa, etcdTs: pb });
    ms.push(
      ...(await runSteps(sides, [
        ...formats.map((w) => step('leader', 'member', 'list', '-w', w)),
        step('l1', 'put', 'k3', 'v'),
        step('l1', 'get', 'k3', '--print-value-only'),
        ...both('member', 'promote', '${l1}'),
        // A follower now: removed through another follower; it stops by itself.
        step('follower', 'member', 'remove', '${l1}'),
        step('leader', 'member', 'list'),
      ])),
    );
    const exits = await Promise.all(sides.map((side) => side.member('l1').waitExit()));
    const removedLog = sides.map((side) => /permanently removed from the cluster/.test(logOf(side.member('l1'))));
    ms.push(...compare('the removed member: exit, and its log names its removal', sides, (i) => `${JSON.stringify(exits[i])} ${String(removedLog[i])}`));
    // Started again on its data dir, it stops again.
    const again = await Promise.all(sides.map((side) => startRemoved(side, 'l1')));
    ms.push(...compare('the removed member started again: its exit', sides, (i) => again[i] ?? ''));
    expectSame(ms);
  });

  test('with a member down, strict reconfiguration refuses adds and the removal of a running member; the member down can be removed', async () => {
    await Promise.all(sides.map((side) => side.member('m3').stop()));
    await Promise.all(sides.map((side) => peerDown(side, ['m1', 'm2'], 'm3')));
    await Promise.all(sides.map((side) => pinLeader(side)));
    const refused = (via: Via, ...args: string[]): Step => ({ ...step(via, ...args), unhealthy: true });
    expectSame(
      await runSteps(sides, [
        refused('leader', 'member', 'add', 'v2', '--peer-urls=http://127.0.0.1:${port.v2}'),
        refused('follower', 'member', 'add', 'v2', '--peer-urls=http://127.0.0.1:${port.v2}'),
        refused('leader', 'member', 'add', 'v2', '--learner', '--peer-urls=http://127.0.0.1:${port.v2}'),
        refused('follower', 'member', 'add', 'v2', '--learner', '--peer-urls=http://127.0.0.1:${port.v2}'),
        refused('leader', 'member', 'remove', '${m2}'),
        refused('follower', 'member', 'remove', '${m2}'),
        refused('follower', 'member', 'remove', '${m1}'),
        refused('leader', 'member', 'remove', '${m1}'),
        ...both('member', 'promote', '${m2}'),
        ...both('member', 'promote', 'abcdef'),
        ...both('member', 'update', '${m3}', '--peer-urls=${m3.peer}'),
        step('follower', 'member', 'remove', '${m3}'),
        ...formats.map((w) => step('leader', 'member', 'list', '-w', w)),
      ]),
    );
    // m3 was removed while it was down: started again, it learns so from its peers and stops.
    const back = await Promise.all(sides.map((side) => startRemoved(side, 'm3')));
    expectSame(compare('a member removed while down, started again: exit, and its log names its removal', sides, (i) => back[i] ?? ''));
  });
});

describe('membership, differentially, on one member: the started voters would lose quorum', { skip }, () => {
  const ws = useWorkspace('ops-member-diff-one');
  let sides: [Side, Side];

  before(async () => {
    const kinds: MemberKind[] = ['etcd', 'etcd-ts'];
    const clusters = await Promise.all(kinds.map((kind) => ws.startCluster({ kind, size: 1, names: ['m1'], readyTimeoutMs, extraFlags: [...fastElection] })));
    sides = kinds.map((kind, i) => new Side(kind, clusters[i] as Cluster)) as [Side, Side];
    await Promise.all(sides.map((s) => s.learnMembers(s.cluster.members)));
    await Promise.all(sides.map((s) => s.allocPorts('a1', 'a2', 'v1', 'v2')));
  });

  test('removing the only voter, adding a second voter while one is not started, and changes without a leader', async () => {
    const ms = await runSteps(sides, [
      step('leader', 'member', 'remove', '${m1}'),
      { ...step('leader', 'member', 'add', 'a1', '--learner', '--peer-urls=http://127.0.0.1:${port.a1}'), adds: 'a1' },
      step('leader', 'member', 'promote', '${a1}'),
      // One started voter of one may become one of two (how a restored member is grown)...
      { ...step('leader', 'member', 'add', 'v1', '--peer-urls=http://127.0.0.1:${port.v1}'), adds: 'v1' },
    ]);
    // ...which has no quorum: the leader steps down (check quorum).
    await Promise.all(sides.map((side) => eventually(`${side.kind}: no leader`, async () => ((await memberStatus(side.endpoint('leader'))).leader === 0n ? true : undefined), 15_000, 100)));
    ms.push(
      ...(await runSteps(sides, [
        ...formats.map((w) => step('leader', 'member', 'list', '-w', w)),
        // ...and no third voter while the second has not started.
        step('leader', 'member', 'add', 'v2', '--peer-urls=http://127.0.0.1:${port.v2}'),
        { ...step('leader', 'member', 'add', 'a2', '--learner', '--peer-urls=http://127.0.0.1:${port.a2}'), unhealthy: true },
        step('leader', 'member', 'remove', '${m1}'),
        step('leader', 'member', 'update', 'abcdef', '--peer-urls=http://127.0.0.1:${port.a2}'),
        // Without a leader: a promotion waits for one (etcd: up to its request timeout), a change waits for its commit.
        { ...step('leader', 'member', 'promote', '${a1}', '--command-timeout=9s'), timed: true, timeoutMs: 20_000 },
        { ...step('leader', 'member', 'remove', '${v1}', '--command-timeout=9s'), timed: true, timeoutMs: 20_000 },
      ])),
    );
    expectSame(ms);
  });
});
