/**
 * A member whose WAL has a damaged record (a flipped bit, not a torn tail)
 * takes its place again under a new id (server/wal-replace.ts):
 *
 * - in a 3-member cluster it has the cluster remove its old id and add it
 *   back as a learner, catches up from the leader, promotes itself, and then
 *   counts in the quorum (a write commits with it and the leader alone); the
 *   damaged WAL is kept aside; a later restart is an ordinary one;
 * - so does a member whose log does not continue from any snapshot it still
 *   has (it started from the leader's snapshot, and every snap file is
 *   damaged);
 * - a replacement cut short (the WAL set aside, no new one; or the new WAL
 *   created but the cluster never asked) is finished at the next start;
 * - alone, a member has no one to replace it with: it refuses to start,
 *   naming the damage, as before.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { idFromHex, idToHex } from '../../src/base/index.js';
import { serverpb } from '../../src/pb/index.js';
import { Wal } from '../../src/wal/index.js';
import { Member, etcdctl, etcdctlMissing, memberStatus, useWorkspace, type Cluster } from '../harness/index.js';
import { assertHashesAgree, eventually } from './kit.js';

const skip = etcdctlMissing();

function walDir(m: Member): string {
  return join(m.dataDir, 'member', 'wal');
}

function valueOf(i: number): string {
  return `wal-value-${String(i).padStart(3, '0')}-${'w'.repeat(40)}`;
}

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = (b[0] as number) ^ 0x10;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

/** Flips one bit inside the first WAL record holding text (an entry's data: its CRC then fails). */
function flipInWal(m: Member, text: string): void {
  const needle = Buffer.from(text);
  for (const name of readdirSync(walDir(m)).filter((n) => n.endsWith('.wal')).sort()) {
    const path = join(walDir(m), name);
    const at = readFileSync(path).indexOf(needle);
    if (at < 0) continue;
    flipByte(path, at + 12);
    return;
  }
  throw new Error(`${text} is in no WAL segment of ${m.name}`);
}

async function put(endpoints: readonly string[], key: string, value: string): Promise<void> {
  const r = await etcdctl(['put', key, value], { endpoints });
  assert.equal(r.code, 0, r.stderr);
}

interface Listed {
  id: bigint;
  name: string;
  isLearner: boolean;
}

async function memberList(endpoint: string): Promise<Listed[]> {
  const r = await etcdctl(['member', 'list'], { endpoints: [endpoint] });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(', ');
      return { id: idFromHex(f[0] ?? '') ?? 0n, name: f[2] ?? '', isLearner: f[5] === 'true' };
    });
}

async function idOf(m: Member): Promise<bigint> {
  return (await memberStatus(m.endpoint)).header?.memberId ?? 0n;
}

/** Waits until m serves key (serializable, from its own state) with value. */
function servedEventually(m: Member, key: string, value: string): Promise<true> {
  return eventually(`${m.name} serving ${key}`, async () => {
    const r = await etcdctl(['get', key, '--print-value-only', '--consistency=s'], { endpoints: [m.endpoint] });
    return r.code === 0 && r.stdout === `${value}\n` ? true : undefined;
  }, 30_000, 200);
}

/** Waits until the cluster lists m under a new id, as a voter, and the old id is gone. */
async function replacedAndPromoted(c: Cluster, m: Member, oldId: bigint): Promise<bigint> {
  return eventually(`${m.name} replaced and promoted`, async () => {
    const list = await memberList(c.member(0) === m ? c.member(1).endpoint : c.member(0).endpoint);
    const mine = list.filter((l) => l.name === m.name);
    if (list.length !== 3 || list.some((l) => l.id === oldId) || mine.length !== 1 || mine[0]?.isLearner !== false) return undefined;
    return mine[0].id;
  }, 60_000, 250);
}

describe('a member with a damaged WAL replaces itself', { skip }, () => {
  const ws = useWorkspace('ops-wal-replace');

  test('a flipped bit in a follower\'s WAL: it comes back as a new member, catches up, promotes itself and counts in the quorum', async () => {
    // Small snapshots, so that the leader's log is compacted and the new member starts from its snapshot.
    const extraFlags = ['--snapshot-count=10', '--experimental-snapshot-catchup-entries=5'];
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, readyTimeoutMs: 60_000, extraFlags });
    for (let i = 0; i < 20; i++) await put(c.endpoints, `wk${i}`, valueOf(i));
    const leader = await c.leader();
    const victim = c.members.find((m) => m !== leader) as Member;
    const other = c.members.find((m) => m !== leader && m !== victim) as Member;
    await servedEventually(victim, 'wk19', valueOf(19));
    const oldId = await idOf(victim);

    await victim.stop();
    flipInWal(victim, valueOf(3));
    await put([leader.endpoint], 'while-down', 'x');
    await victim.start({ timeoutMs: 60_000 });
    assert.match(victim.logTail(400), /the WAL is damaged; this member will take its place again under a new id/);
    assert.ok(existsSync(`${walDir(victim)}.damaged`), 'the damaged WAL is kept aside');
    const newId = await replacedAndPromoted(c, victim, oldId);
    assert.notEqual(newId, oldId);
    assert.equal(await idOf(victim), newId);
    assert.match(victim.logTail(400), /promoted itself to a voting member/);
    await servedEventually(victim, 'wk3', valueOf(3));
    await servedEventually(victim, 'while-down', 'x');

    // A voter now: with the other follower down, a write commits on the leader and the victim.
    await other.stop();
    await put([leader.endpoint], 'quorum-with-victim', 'y');
    await servedEventually(victim, 'quorum-with-victim', 'y');
    await other.start({ timeoutMs: 60_000 });

    // A restart is an ordinary one: same id, no replacement.
    const replacements = (): number => (victim.logTail(5000).match(/the WAL is damaged/g) ?? []).length;
    assert.equal(replacements(), 1);
    await victim.stop();
    await victim.start({ timeoutMs: 60_000 });
    assert.equal(await idOf(victim), newId);
    assert.equal(replacements(), 1, 'no second replacement');
    await servedEventually(victim, 'quorum-with-victim', 'y');
    await assertHashesAgree(c.members);

    // Its log starts at the leader's snapshot. With every snap file damaged (each is set aside), the log does
    // not continue from any snapshot it has: it replaces itself again.
    await victim.stop();
    const snapDir = join(victim.dataDir, 'member', 'snap');
    const snaps = readdirSync(snapDir).filter((n) => n.endsWith('.snap'));
    assert.ok(snaps.length > 0, 'the member has snap files');
    for (const n of snaps) flipByte(join(snapDir, n), 20);
    await put([leader.endpoint], 'snaps-damaged', 'z');
    await victim.start({ timeoutMs: 60_000 });
    assert.equal(replacements(), 2, 'a second replacement');
    assert.match(victim.logTail(400), /the wal continues at index \d+, not right after it/);
    await replacedAndPromoted(c, victim, newId);
    await servedEventually(victim, 'snaps-damaged', 'z');
    await assertHashesAgree(c.members);
  });

  test('a replacement cut short is finished at the next start: the WAL set aside and none made, or made and never sent', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, readyTimeoutMs: 60_000 });
    for (let i = 0; i < 5; i++) await put(c.endpoints, `ck${i}`, valueOf(i));
    const leader = await c.leader();
    const [a, b] = c.members.filter((m) => m !== leader) as [Member, Member];
    await servedEventually(a, 'ck4', valueOf(4));
    await servedEventually(b, 'ck4', valueOf(4));

    // Cut short after the WAL was set aside: no WAL, a damaged one beside it.
    const aOld = await idOf(a);
    await a.stop();
    renameSync(walDir(a), `${walDir(a)}.damaged`);
    await a.start({ timeoutMs: 60_000 });
    assert.match(a.logTail(400), /the WAL was set aside as .* and no new one created/);
    assert.ok(readdirSync(`${walDir(a)}.damaged`).some((n) => n.endsWith('.wal')), 'the copy set aside is kept, not replaced by the empty dir the start made');
    await replacedAndPromoted(c, a, aOld);
    await servedEventually(a, 'ck2', valueOf(2));

    // Cut short after the new WAL was made: the cluster was never asked.
    const bOld = await idOf(b);
    await b.stop();
    for (const d of [walDir(b), join(b.dataDir, 'member', 'snap')]) renameSync(d, `${d}.damaged`);
    const clusterId = (await memberStatus(leader.endpoint)).header?.clusterId ?? 0n;
    const newId = bOld ^ 0x5a5an;
    const md = serverpb.WalMetadata.create({ memberId: newId, clusterId, replaces: bOld });
    const wal = await Wal.create(walDir(b), serverpb.WalMetadata.encode(md));
    await wal.close();
    await b.start({ timeoutMs: 60_000 });
    assert.match(b.logTail(400), /the cluster replaced the member whose WAL was damaged/);
    assert.equal(await replacedAndPromoted(c, b, bOld), newId, `the id the new WAL names (${idToHex(newId)})`);
    await servedEventually(b, 'ck1', valueOf(1));
    await put([leader.endpoint], 'after', 'z');
    await servedEventually(b, 'after', 'z');
    await assertHashesAgree(c.members);
  });

  test('alone, a member with a damaged WAL refuses to start, naming the damage', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 1 });
    const m = c.member(0);
    for (let i = 0; i < 5; i++) await put(c.endpoints, `sk${i}`, valueOf(i));
    await m.stop();
    flipInWal(m, valueOf(2));
    await m.start({ wait: false });
    const exit = await m.waitExit();
    assert.equal(exit.code, 1, m.logTail(20));
    assert.match(m.logTail(40), /wal: corrupt/i);
    assert.equal(existsSync(`${walDir(m)}.damaged`), false, 'nothing set aside');
  });
});
