// Differential test: Debian's etcdctl 3.4 runs the same scripts against a
// fresh real etcd 3.4.23 and a fresh etcd-ts member; stdout, stderr and exit
// codes must be equal after the normalizations listed in diff-kit.ts.
//
// One pair of members serves every section, in order: a section names
// revisions relative to where it starts (`${rev+N}`), so sections can grow
// without renumbering the ones after them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { etcdctl, etcdctlMissing, etcdMissing, useWorkspace } from '../harness/index.js';
import {
  backgroundPair,
  captureLease,
  checkState,
  closePair,
  formatMismatches,
  markRevision,
  normDbSize,
  normIds,
  normLeaseKeys,
  normMemberOrder,
  normProgress,
  normRemaining,
  normTablePadding,
  normTook,
  normZap,
  pollUntil,
  protobufText,
  revokeAllLeases,
  runUntil,
  runSteps,
  startPair,
  type Mismatch,
  type Side,
  type Step,
} from './diff-kit.js';

const skip = etcdMissing() || etcdctlMissing();

/** While the history holds keys put with a lease, HashKV differs (lease ids do). */
const leased = { compareHash: false } as const;

const s = (...args: string[]): Step => ({ args });
const withIn = (stdin: string, ...args: string[]): Step => ({ args, stdin });

function expectNoMismatch(ms: readonly Mismatch[]): void {
  assert.equal(ms.length, 0, `${ms.length} difference(s) between etcd and etcd-ts:\n\n${formatMismatches(ms)}`);
}

const kvSeed: Step[] = [
  s('put', 'foo', 'bar'),
  s('put', 'foo', 'bar2', '--prev-kv'),
  s('put', 'foo1', 'v1'),
  s('put', 'foo2', 'zz'),
  s('put', 'fop', 'aa'),
  s('put', 'foo1', 'v1b'),
  s('put', 'a/1', 'x'),
  s('put', 'b', 'y'),
  s('put', 'z', '\u00e9t\u00e9'),
];

const kvReads: Step[] = [
  s('get', 'foo'),
  s('get', 'foo', '-w', 'json'),
  s('get', 'foo', '-w', 'fields'),
  s('get', 'foo', '-w', 'simple'),
  { args: ['get', 'foo', '--prefix', '-w', 'protobuf'], decode: protobufText },
  s('get', 'foo', '--prefix'),
  s('get', 'foo', '--prefix', '--keys-only'),
  s('get', 'foo', '--prefix', '--print-value-only'),
  s('get', 'foo', '--from-key'),
  s('get', 'foo', 'foo2'),
  s('get', 'a', 'c'),
  s('get', '', '--prefix', '--limit', '2'),
  s('get', 'foo', '--prefix', '--limit=1', '-w', 'json'),
  s('get', '', '--from-key', '--count-only', '-w', 'json'),
  s('get', 'foo', '--rev=${rev+1}'),
  s('get', 'foo', '--rev=${rev+2}', '-w', 'json'),
  s('get', 'foo1', '--rev=${rev+3}'),
  s('get', 'foo1', '--rev=${rev+0}'),
  s('get', 'foo', '--consistency=s'),
  s('get', 'foo', '--prefix', '--consistency=s', '-w', 'json'),
  s('get', 'foo', '--hex'),
  s('get', 'z', '--hex', '-w', 'json'),
  s('get', 'z', '-w', 'fields', '--hex'),
  s('get', 'missing'),
  s('get', 'missing', '-w', 'json'),
  s('get', 'foo', '--prefix', '--order=ASCEND'),
  s('get', 'foo', '--prefix', '--order=DESCEND'),
  s('get', 'foo', '--prefix', '--sort-by=VALUE'),
  ...['ASCEND', 'DESCEND'].flatMap((order) =>
    ['CREATE', 'KEY', 'MODIFY', 'VALUE', 'VERSION'].map((by) => s('get', 'f', '--prefix', `--order=${order}`, `--sort-by=${by}`)),
  ),
  s('get', 'f', '--prefix', '--order=DESCEND', '--sort-by=MODIFY', '--limit=2', '-w', 'json'),
  s('get', 'foo', '--order=BAD'),
  s('get', 'foo', '--sort-by=BAD'),
  s('get', 'foo', '--rev=1000000'),
  s('get', 'foo', '--consistency=x'),
];

const kvWrites: Step[] = [
  s('put', 'foo', 'bar3', '--prev-kv', '-w', 'json'),
  s('put', 'nokey', '--ignore-value'),
  s('put', 'nokey2', '--ignore-lease', 'v'),
  s('put', 'foo', '--ignore-value'),
  s('get', 'foo', '-w', 'json'),
  s('put', 'foo', 'bar4', '--ignore-lease'),
  s('put', 'foo', 'v', '--ignore-value'),
  s('put', 'foo', 'v', '--lease=zz'),
  s('put', '', 'v'),
  s('put', 'foo'),
  s('del', 'foo1'),
  s('del', 'foo1'),
  s('del', 'fo', '--prefix', '--prev-kv'),
  s('del', 'a', '--from-key', '--prev-kv', '-w', 'json'),
  s('del', ''),
  s('get', '', '--prefix'),
  s('put', 'x', 'y'),
  s('del', 'x', '-w', 'fields'),
  s('del', 'nothing', '-w', 'json'),
];

const txnScripts: Step[] = [
  s('put', 'k1', 'v1'),
  s('put', 'k2', 'v2'),
  s('put', 'k1', 'v1b'),
  withIn('value("k1") = "v1b"\n\nput k1 won\nget k1\n\nput k1 lost\n\n', 'txn'),
  withIn('value("k1") = "nope"\n\nput k1 won2\n\nput k1 lost2\nget k1 --prefix\ndel k2 --prev-kv\n\n', 'txn'),
  withIn('mod("k1") > "${rev+2}"\ncreate("k1") = "${rev+1}"\nversion("k1") = "4"\n\nget k1\n\n\n', 'txn'),
  withIn('mod("k1") < "${rev+2}"\n\nget k1\n\nget k2\n\n', 'txn', '-w', 'json'),
  withIn('ver("k1") < "2"\n\nget k1\n\nget k\n\n', 'txn'),
  withIn('c("k2") = "0"\nm("k1") != "0"\n\nput k2 again\n\nput k2 no\n\n', 'txn'),
  withIn('lease("k1") = "0"\n\nput k3 v3\n\n\n', 'txn'),
  withIn('val("k1") > "a"\nvalue("k1") < "z"\n\nget k1 -w json\n\n\n', 'txn', '-w', 'json'),
  withIn('value("k1") = "lost2"\n\nput k1 v\n\ndel k1\n\n', 'txn', '-w', 'fields'),
  withIn('\nput dup 1\nput dup 2\n\n\n', 'txn'),
  withIn('\nput dup 1\ndel dup\n\n\n', 'txn'),
  withIn('\ndel dupr --prefix\nput dupr1 1\n\n\n', 'txn'),
  withIn(`\n${Array.from({ length: 129 }, (_, i) => `put many${i} v`).join('\n')}\n\n\n`, 'txn'),
  withIn(`\n${Array.from({ length: 128 }, (_, i) => `put many${i} v`).join('\n')}\n\n\n`, 'txn'),
  withIn('bogus("k1") = "1"\n\n\n\n', 'txn'),
  withIn('value("k1") = "v1"\n\nput \n\n\n', 'txn'),
  withIn('\nput "" empty\n\n\n', 'txn'),
  withIn('lease("k1") = "zz"\n\n\n\n', 'txn'),
  s('get', 'k', '--prefix', '-w', 'json'),
  s('get', 'many', '--prefix', '--count-only', '-w', 'json'),
];

describe('etcdctl differential: etcd 3.4.23 vs etcd-ts', { skip }, () => {
  const ws = useWorkspace('etcdctl-diff');
  let sides: [Side, Side];

  before(async () => {
    sides = await startPair(ws);
  });
  after(() => closePair(sides));

  /** Runs a section's steps from the current revision and asserts no difference. */
  async function section(steps: readonly Step[]): Promise<void>;
  /** Continues a section that started with other steps (their mismatches given). */
  async function section(earlier: readonly Mismatch[], steps: readonly Step[]): Promise<void>;
  async function section(a: readonly Step[] | readonly Mismatch[], b?: readonly Step[]): Promise<void> {
    if (b === undefined) {
      await markRevision(sides);
      expectNoMismatch(await runSteps(sides, a as readonly Step[]));
    } else {
      expectNoMismatch([...(a as readonly Mismatch[]), ...(await runSteps(sides, b))]);
    }
  }

  test('kv: put, get (every flag and output format), del', async () => {
    await section([...kvSeed, ...kvReads, ...kvWrites]);
  });

  test('txn: both branches, every compare target, op limits and duplicates', async () => {
    await section(txnScripts);
  });

  test('too-large request', async () => {
    const big = 'x'.repeat(1.5 * 1024 * 1024 + 1);
    await section([withIn(big, 'put', 'big'), s('put', 'small', 'x'), withIn('x'.repeat(1024 * 1024), 'put', 'onemeg'), s('get', 'onemeg', '--keys-only'), s('del', 'onemeg')]);
  });

  test('watch: live, from a revision, prefix, prev kv, and below the compaction', async () => {
    await markRevision(sides);
    const ms: Mismatch[] = [];
    ms.push(...(await runSteps(sides, [s('put', 'w/a', '1'), s('put', 'w/b', '2'), s('put', 'other', '3'), s('put', 'w/a', '4')])));
    // History from the section's first put, prefix, with previous values: 3 events known in advance.
    const hist = backgroundPair(sides, ['watch', 'w/', '--prefix', '--rev=${rev+1}', '--prev-kv']);
    await Promise.all(hist.map((p) => p.waitFor((o) => o.split('\n').filter((l) => l === 'PUT').length >= 3)));
    // Live: interactive watches; "progress" is answered on the same stream, so once a
    // progress notification shows, the watches exist and every later put is seen live.
    const live = backgroundPair(sides, ['watch', '-i'], true);
    for (const p of live) p.write('watch w/ --prefix --prev-kv\n');
    await Promise.all(
      live.map(async (p) => {
        for (let i = 0; i < 100 && !p.stdout().includes('progress notify'); i++) {
          p.write('progress\n');
          await p.waitFor((o) => o.includes('progress notify'), 100).catch(() => undefined);
        }
      }),
    );
    ms.push(...(await runSteps(sides, [s('put', 'w/c', '5'), s('del', 'w/a'), s('put', 'other', '6'), withIn('\nput w/x 1\nput w/y 2\n\n\n', 'txn')])));
    // 2 events of w/ before the txn, 2 in it: 4 event lines (PUT/DELETE).
    const events = (o: string): number => o.split('\n').filter((l) => l === 'PUT' || l === 'DELETE').length;
    await Promise.all(live.map((p) => p.waitFor((o) => events(o) >= 4)));
    await Promise.all(hist.map((p) => p.waitFor((o) => events(o) >= 7)));
    const ends = await Promise.all([...hist, ...live].map((p) => p.stop()));
    const out = ends.map((r, i) => normIds(sides[i % 2] as Side, normProgress(r.stdout)));
    ms.push(...compareOut('watch w/ --prefix --rev=${rev+1} --prev-kv', out[0] ?? '', out[1] ?? ''));
    ms.push(...compareOut('watch -i: watch w/ --prefix --prev-kv', out[2] ?? '', out[3] ?? ''));
    ms.push(...(await runSteps(sides, [s('compact', '${rev+3}'), s('watch', 'w/', '--prefix', '--rev=${rev+1}'), s('watch', 'w/', '--prefix', '--rev=${rev+0}')])));
    expectNoMismatch(ms);
  });

  test('lease: grant, attach, time-to-live, list, keep-alive, revoke, expiry', async () => {
    await markRevision(sides);
    const ms = await runSteps(sides, [
      { args: ['lease', 'grant', '100'], capture: { l1: /lease ([0-9a-f]+) granted/ } },
      { args: ['lease', 'grant', '2000', '-w', 'json'], captureDecimal: { l2: /"ID":(\d+)/ } },
      s('lease', 'grant', '9000000000'),
      s('put', 'lk1', 'v', '--lease=${l1}'),
      s('put', 'lk2', 'v', '--lease=${l1}', '-w', 'json'),
      s('put', 'lk3', 'v', '--lease=${l2}'),
      s('put', 'lk2', 'w', '--ignore-lease'),
      s('get', 'lk2', '-w', 'json'),
      s('put', 'lk1', '--ignore-value', '--lease=${l2}'),
      { args: ['lease', 'timetolive', '${l1}'], norm: [normRemaining] },
      { args: ['lease', 'timetolive', '${l1}', '--keys'], norm: [normRemaining, normLeaseKeys] },
      { args: ['lease', 'timetolive', '${l2}', '--keys', '-w', 'json'], norm: [normRemaining, normLeaseKeys] },
      { args: ['lease', 'timetolive', '${l2}', '--keys', '-w', 'fields'], norm: [normRemaining, normLeaseKeys] },
      s('lease', 'list'),
      s('lease', 'list', '-w', 'json'),
      s('lease', 'keep-alive', '--once', '${l1}'),
      s('lease', 'keep-alive', '--once', '${l2}', '-w', 'json'),
      s('lease', 'revoke', '${l1}'),
      s('get', 'lk', '--prefix'),
      s('lease', 'timetolive', '${l1}'),
      s('lease', 'timetolive', '${l1}', '-w', 'json'),
      s('lease', 'revoke', '${l1}'),
      s('lease', 'keep-alive', '--once', '${l1}'),
      s('lease', 'timetolive', '1234'),
      s('lease', 'revoke', '1234'),
      s('put', 'k', 'v', '--lease=1234'),
      withIn('\nput tk v --lease=1234\n\n\n', 'txn'),
      s('lease', 'grant', '9000000001'),
      s('lease', 'grant', 'abc'),
      s('lease', 'revoke', 'zz'),
      s('lease', 'list'),
    ], leased);
    // Short leases (1 s and 0 s asked, both raised to the minimum TTL) expire by
    // themselves and take their keys along. When exactly is up to each server's
    // clock, so the state is compared once both settled.
    const expiring = [
      { args: ['lease', 'grant', '1'], capture: { short: /lease ([0-9a-f]+) granted/ } },
      { args: ['lease', 'grant', '0'], capture: { zero: /lease ([0-9a-f]+) granted/ } },
      s('put', 'sk1', 'v', '--lease=${short}'),
      s('put', 'sk2', 'v', '--lease=${short}'),
      s('put', 'sk0', 'v', '--lease=${zero}'),
    ];
    ms.push(...(await runSteps(sides, expiring, { checkState: false })));
    await Promise.all(sides.map((side) => pollUntil(side, ['get', 'sk', '--prefix', '--count-only', '-w', 'json'], (o) => !o.includes('"count"'), 15_000)));
    await Promise.all(sides.map((side) => pollUntil(side, ['lease', 'list'], (o) => o.startsWith('found 2 leases'), 15_000)));
    const settled = await checkState(sides, 'the short leases expired', false);
    if (settled !== undefined) ms.push(settled);
    ms.push(
      ...(await runSteps(
        sides,
        [
          s('get', 'sk', '--prefix'),
          s('lease', 'timetolive', '${short}'),
          s('lease', 'timetolive', '${zero}', '--keys'),
          s('lease', 'list'),
          // No lease left, so that a compaction can drop every leased revision.
          s('lease', 'revoke', '${l2}'),
          s('lease', 'revoke', '${lease-3}'),
          s('lease', 'list', '-w', 'json'),
          s('get', 'lk', '--prefix'),
        ],
        leased,
      )),
    );
    expectNoMismatch(ms);
  });

  test('compaction: compact, read below it, compact twice, future revision', async () => {
    await markRevision(sides);
    // The history still holds the lease section's leased puts until this compaction.
    const before = await runSteps(sides, [s('put', 'c', '1'), s('put', 'c', '2'), s('put', 'c', '3'), s('put', 'd', '1'), s('del', 'd')], leased);
    await section(before, [
      s('compact', '${rev+2}'),
      s('get', 'c', '--rev=${rev+1}'),
      s('get', 'c', '--rev=${rev+2}'),
      s('get', 'c', '--rev=${rev+3}'),
      s('compact', '${rev+2}'),
      s('compact', '${rev+1}'),
      s('compact', '1000000'),
      s('get', 'c', '--rev=1000000'),
      s('compact', '${rev+4}', '--physical'),
      s('get', 'd', '--rev=${rev+4}'),
      s('get', 'c', '--prefix', '-w', 'json'),
      s('compact', '0'),
      s('compact', 'x'),
    ]);
    // A delete with range end "\0" and a put of a key in its range pass
    // etcd's overlap check: one revision deletes the key and puts it again.
    // A compaction at that revision keeps the put.
    await section([
      s('put', 'z/k', '1'),
      withIn('\ndel z/ --from-key\nput z/k 2\n\n\n', 'txn'),
      s('compact', '${rev+2}'),
      s('get', 'z/', '--prefix', '-w', 'json'),
      s('get', 'z/k', '--rev=${rev+2}'),
    ]);
  });

  test('more: -w protobuf of every command that has it, key ranges, txn edge cases, watch and keep-alive output', async () => {
    await markRevision(sides);
    const pb = (...args: string[]): Step => ({ args: [...args, '-w', 'protobuf'], decode: protobufText });
    const ms = await runSteps(sides, [
      s('put', 'e/a', '1'),
      s('put', 'e/b', '2'),
      s('put', 'e/c', '3'),
      pb('put', 'e/d', '4'),
      pb('put', 'e/d', '5', '--prev-kv'),
      pb('get', 'e/', '--prefix'),
      pb('get', 'e/', '--prefix', '--count-only'),
      pb('del', 'e/d', '--prev-kv'),
      { args: ['txn', '-w', 'protobuf'], stdin: 'value("e/a") = "1"\n\nput e/t 1\nget e/ --prefix\ndel e/t\n\nget e/a\n\n', decode: protobufText },
      pb('member', 'list'),
      pb('endpoint', 'hashkv'),
      pb('alarm', 'list'),
      pb('lease', 'list'),
      pb('compact', '${rev+0}'),
      pb('endpoint', 'status'),
      s('get', 'e/a', 'e/c'),
      s('get', 'e/a', 'e/c', '-w', 'json'),
      s('get', 'e/', '--prefix', '--keys-only', '-w', 'json'),
      s('get', 'e/', '--prefix', '--print-value-only', '-w', 'json'),
      s('get', 'e/', '--prefix', '--count-only'),
      s('get', 'e/', '--prefix', '--count-only', '--keys-only'),
      s('get', 'e/', '--prefix', '--limit=0'),
      s('get', 'e/', '--prefix', '--limit=-1'),
      s('get', 'e/a', '--rev=-1'),
      s('get', 'e/', '--prefix', '--sort-by=CREATE', '--order=DESCEND', '-w', 'json'),
      s('get', 'e/b', '--from-key', '--keys-only'),
      s('get', 'e/c', 'e/a'),
      s('get', 'e/', '--prefix', '--rev=${rev+3}', '-w', 'fields'),
      s('del', 'e/a', 'e/c', '--prev-kv'),
      s('del', 'e/zz', 'e/a'),
      withIn('value("nokey") = ""\n\nput e/y 1\n\nput e/n 1\n\n', 'txn'),
      withIn('version("nokey") = "0"\ncreate("nokey") < "1"\nmod("nokey") = "0"\n\nput e/y2 1\n\n\n', 'txn'),
      withIn('\nget e/ --prefix --limit=1\nget e/c --rev=${rev+3}\n\n\n', 'txn'),
      withIn('\nget e/ --prefix\ndel e/ --prefix\n\n\n', 'txn', '-w', 'json'),
      withIn('\nput e/z 1\nput e/z 2\n\n\n', 'txn', '-w', 'json'),
      withIn('value("e/c") = "3"\n\n\n\n', 'txn'),
      withIn('value("e/c") > "1"\nvalue("e/c") != "3"\n\n\nput e/else 1\n\n', 'txn', '-w', 'fields'),
      withIn('\n\n\n', 'txn', '-w', 'json'),
      s('get', 'e/', '--prefix', '-w', 'json'),
      // The last event of the section, which each watch below waits for.
      s('put', 'e/b', 'end'),
    ]);
    // Watch output in each format, the history since the section began, up to its last event.
    ms.push(...(await runUntil(sides, ['watch', 'e/', '--prefix', '--rev=${rev+1}'], (o) => o.includes('\nend\n'))));
    ms.push(...(await runUntil(sides, ['watch', 'e/a', 'e/c', '--rev=${rev+1}', '--prev-kv', '-w', 'json'], (o) => o.includes(Buffer.from('end').toString('base64')))));
    ms.push(...(await runUntil(sides, ['watch', 'e/b', '--rev=${rev+1}', '-w', 'fields'], (o) => o.includes('"Value" : "end"'))));
    expectNoMismatch(ms);
  });

  test('maintenance: endpoint status and health, member list, alarms, defrag, hashkv, move-leader, snapshot', async () => {
    await section([
      s('put', 'm', '1'),
      { args: ['endpoint', 'status'], norm: [normDbSize] },
      { args: ['endpoint', 'status', '-w', 'table'], norm: [normDbSize, normTablePadding] },
      { args: ['endpoint', 'status', '-w', 'json'], norm: [normDbSize] },
      { args: ['endpoint', 'status', '-w', 'fields'], norm: [normDbSize] },
      // --cluster dials the advertised client URLs (http://...): the :authority of a URL endpoint.
      { args: ['endpoint', 'status', '--cluster'], norm: [normDbSize] },
      { args: ['endpoint', 'status', '--cluster', '-w', 'json'], norm: [normDbSize] },
      { args: ['endpoint', 'health', '--cluster'], norm: [normTook] },
      { args: ['--endpoints=${client-url}', 'get', 'm'] },
      { args: ['endpoint', 'health'], norm: [normTook] },
      { args: ['endpoint', 'health', '-w', 'table'], norm: [normTook, normTablePadding] },
      { args: ['endpoint', 'health', '-w', 'json'], norm: [normTook] },
      s('endpoint', 'hashkv'),
      s('endpoint', 'hashkv', '--rev=${rev+0}', '-w', 'json'),
      s('member', 'list'),
      // Column widths follow the member id's length in hex, which is random.
      { args: ['member', 'list', '-w', 'table'], norm: [normTablePadding] },
      s('member', 'list', '-w', 'json'),
      s('member', 'list', '-w', 'fields'),
      s('alarm', 'list'),
      s('alarm', 'disarm'),
      s('defrag'),
      s('defrag', '-w', 'json'),
      s('move-leader', '${member-id}'),
      s('move-leader', '1234'),
      s('move-leader', 'zz'),
      s('put', 'm', '2'),
      { args: ['snapshot', 'save', '${scratch}/snap.db'], norm: [normZap] },
      s('get', 'm'),
    ]);
    for (const side of sides) {
      const file = join(side.scratch, 'snap.db');
      assert.ok(statSync(file).size > 0, `${side.kind}: empty snapshot`);
    }
    // Both snapshots are bbolt files etcdctl reads (test/ops/snapshot-interop.test.ts goes further).
    for (const side of sides) {
      const st = await etcdctl(['snapshot', 'status', join(side.scratch, 'snap.db'), '-w', 'json'], { endpoints: side.cluster.endpoints });
      assert.equal(st.code, 0, `${side.kind}: ${st.stderr}`);
      assert.match(st.stdout, new RegExp(`"revision":${side.revBase + 2},`), side.kind);
    }
  });

  // Last: the sessions of these commands put keys with leases (HashKV is not compared after).
  test('sessions: lock, elect, observe, lease keep-alive', async () => {
    await markRevision(sides);
    const ms = await runSteps(sides, [s('lock', 'L1', '--', 'echo', 'held'), s('lock', 'L1', '--', 'sh', '-c', 'exit 3')], leased);
    ms.push(...(await runUntil(sides, ['lock', 'L2'], (o) => /^L2\//m.test(o))));
    ms.push(...(await runSteps(sides, [s('get', 'L', '--prefix', '--keys-only')], leased)));
    ms.push(...(await runUntil(sides, ['elect', 'el', 'p1'], (o) => o.includes('\np1\n'))));
    // A candidate stays campaigning in the background while another etcdctl observes it.
    const candidates = backgroundPair(sides, ['elect', 'el', 'p2']);
    const campaigning = await Promise.all(candidates.map((c) => c.waitFor((o) => o.includes('\np2\n'))));
    sides.forEach((side, i) => captureLease(side, ['elect', 'el', 'p2'], campaigning[i] ?? ''));
    ms.push(...(await runUntil(sides, ['elect', '-l', 'el'], (o) => o.includes('\np2\n'))));
    ms.push(...(await runSteps(sides, [s('get', 'el', '--prefix', '--print-value-only')], leased)));
    const stopped = await Promise.all(candidates.map((c) => c.stop()));
    ms.push(...compareOut('elect el p2 (in the background)', normIds(sides[0], stopped[0]?.stdout ?? ''), normIds(sides[1], stopped[1]?.stdout ?? '')));
    ms.push(...(await runSteps(sides, [{ args: ['lease', 'grant', '100'], capture: { ka: /lease ([0-9a-f]+) granted/ } }], leased)));
    ms.push(...(await runUntil(sides, ['lease', 'keep-alive', '${ka}'], (o) => o.includes('keepalived'))));
    ms.push(...(await runUntil(sides, ['lease', 'keep-alive', '-w', 'json', '${ka}'], (o) => o.includes('"TTL"'))));
    ms.push(...(await runSteps(sides, [s('lease', 'revoke', '${ka}'), { args: ['lease', 'keep-alive', '${ka}'], timeoutMs: 10_000 }, s('get', 'el', '--prefix', '--count-only')], leased)));
    // A session etcdctl did not close (its command failed) leaves its lease to expire later.
    ms.push(...(await revokeAllLeases(sides)));
    await checkState(sides, 'revoking the leases left behind', false);
    expectNoMismatch(ms);
  });

  // Last of all: a refused voting member is the one step that could leave a broken server behind.
  test('membership: a learner added, listed, updated, refused promotion, removed; errors', async () => {
    await markRevision(sides);
    const url = 'http://127.0.0.1:2';
    expectNoMismatch(
      await runSteps(
        sides,
        [
          { args: ['member', 'add', 'learner1', '--learner', `--peer-urls=${url}`], capture: { learner: /Member +([0-9a-f]+) added/ }, norm: [normMemberOrder] },
          { args: ['member', 'list'], norm: [normMemberOrder] },
          { args: ['member', 'list', '-w', 'json'], norm: [normMemberOrder] },
          // A URL already taken, in a list of its own: a member ID hashes its peer URLs with the Unix
          // time in seconds (both servers), so the same list again within the same second would
          // collide on the ID ("member ID already exist") before the URLs are checked.
          s('member', 'add', 'learner2', '--learner', `--peer-urls=${url},http://127.0.0.1:9`),
          s('member', 'add', 'learner2', '--learner', '--peer-urls=http://127.0.0.1:3'),
          s('member', 'promote', '${learner}'),
          // Proposed, and refused when they apply (a raft entry each), on both.
          s('member', 'promote', '${member-id}'),
          s('member', 'promote', '1234'),
          // (Not an update of the learner's own URLs: etcd 3.4 then lists it as a voter while raft
          // still has it as a learner; etcd-ts keeps it a learner.)
          s('member', 'update', '${learner}', '--peer-urls=${peer-url}'),
          s('member', 'update', '${member-id}', '--peer-urls=${peer-url}'),
          s('member', 'update', '1234', '--peer-urls=http://127.0.0.1:5'),
          { args: ['member', 'list'], norm: [normMemberOrder] },
          s('member', 'remove', '${learner}'),
          s('member', 'remove', '${learner}'),
          s('member', 'remove', 'zz'),
          s('member', 'add', 'bad', '--peer-urls=127.0.0.1:6'),
          s('member', 'list'),
          // Strict reconfiguration: a second voter could never be reached, so it is refused.
          { args: ['member', 'add', 'voter', '--peer-urls=http://127.0.0.1:7'], capture: { voter: /Member +([0-9a-f]+) added/ }, norm: [normMemberOrder] },
          { args: ['member', 'list'], norm: [normMemberOrder] },
        ],
        leased,
      ),
    );
  });
});

function compareOut(step: string, etcd: string, etcdTs: string): Mismatch[] {
  if (etcd === etcdTs) return [];
  return [{ step, etcd: { code: 0, stdout: etcd, stderr: '' }, etcdTs: { code: 0, stdout: etcdTs, stderr: '' } }];
}
