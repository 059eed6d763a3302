/**
 * A member whose backend file has a flipped bit (LMDB checksums nothing;
 * etcd-ts stores a checksum with every record) never serves the bad record:
 *
 * - in a 3-member cluster it repairs itself from a peer and serves again,
 *   whether the bad record is met by a read (the read fails with "corrupt
 *   cluster"), by the apply of a write that reads it (a put with prev_kv),
 *   by a watch catching up from an old revision (its stream ends), or at start (every record is checked before the member starts); the
 *   others serve throughout, and the members' HashKV agree after;
 * - alone, it cannot repair: a read fails and the member stops; at start it
 *   refuses to start, naming the record.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Member, etcdctl, etcdctlMissing, memberStatus, useWorkspace, type Cluster } from '../harness/index.js';
import { assertHashesAgree, eventually } from './kit.js';

const skip = etcdctlMissing();

function dbPath(m: Member): string {
  return join(m.dataDir, 'member', 'snap', 'db');
}

/** A value that occurs nowhere else in the database. */
function valueOf(i: number): string {
  return `repair-value-${String(i).padStart(3, '0')}-${'v'.repeat(48)}`;
}

/**
 * Flips one bit in every copy of `text` in the file (LMDB may keep stale
 * copies in free pages; the live one is among them); the copies flipped.
 * Written in place, so a running member's map sees it.
 */
function flipEveryCopy(path: string, text: string): number {
  const needle = Buffer.from(text);
  const file = readFileSync(path);
  const fd = openSync(path, 'r+');
  let flipped = 0;
  try {
    for (let at = file.indexOf(needle); at >= 0; at = file.indexOf(needle, at + 1)) {
      const pos = at + 20;
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, pos);
      byte[0] = (byte[0] as number) ^ 0x04;
      writeSync(fd, byte, 0, 1, pos);
      flipped++;
    }
  } finally {
    closeSync(fd);
  }
  return flipped;
}

/** flipEveryCopy once the value is in the file: the backend commits its batches every 100 ms. */
async function flipWhenStored(path: string, text: string): Promise<number> {
  await eventually(`${text.slice(0, 16)} in ${path}`, () => Promise.resolve(readFileSync(path).includes(Buffer.from(text)) ? true : undefined), 10_000, 50);
  return flipEveryCopy(path, text);
}

async function put(endpoints: readonly string[], key: string, value: string, ...flags: string[]): Promise<string> {
  const r = await etcdctl(['put', key, value, ...flags], { endpoints });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function getValue(m: Member, key: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return etcdctl(['get', key, '--print-value-only', '--consistency=s'], { endpoints: [m.endpoint] });
}

/**
 * A read of key the member refuses, retried until it does: a batch whose
 * commit has not landed yet (its fsync still running) is read from memory,
 * not from the file whose bit was flipped.
 */
function refusedRead(m: Member, key: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return eventually(`${m.name} refusing ${key}`, async () => {
    const r = await getValue(m, key);
    return r.code !== 0 ? r : undefined;
  }, 10_000, 100);
}

/** Waits until every member has applied the last revision. */
async function settled(c: Cluster): Promise<void> {
  const rev = (await memberStatus(c.member(0).endpoint)).header?.revision ?? 0;
  await eventually('all members at the last revision', async () => {
    const revs = await Promise.all(c.members.map((m) => memberStatus(m.endpoint)));
    return revs.every((s) => (s.header?.revision ?? 0) >= rev) ? true : undefined;
  });
}

/** The value a member serves for key, once it serves it. */
function servedEventually(m: Member, key: string, timeoutMs = 30_000): Promise<string> {
  return eventually(`${m.name} serving ${key}`, async () => {
    const r = await getValue(m, key);
    return r.code === 0 ? r.stdout : undefined;
  }, timeoutMs, 200);
}

describe('backend repair from peers', { skip }, () => {
  const ws = useWorkspace('ops-backend-repair');

  test('a flipped bit met by a read, an apply, a watch or the start: the member refuses it, repairs from a peer, serves again', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, readyTimeoutMs: 60_000 });
    for (let i = 0; i < 20; i++) await put(c.endpoints, `rk${i}`, valueOf(i));
    await settled(c);
    const leader = await c.leader();
    const victim = c.members.find((m) => m !== leader) as Member;
    const healthy = c.members.find((m) => m !== leader && m !== victim) as Member;

    // 1. Met by a read: the read fails, the others serve, the victim repairs and serves the right value.
    assert.ok((await flipWhenStored(dbPath(victim), valueOf(7))) > 0);
    const refused = await refusedRead(victim, 'rk7');
    assert.match(refused.stderr, /etcdserver: corrupt cluster/);
    assert.equal((await getValue(healthy, 'rk7')).stdout, `${valueOf(7)}\n`);
    // Writes go on through the others meanwhile.
    await put([leader.endpoint], 'during', 'the repair');
    assert.equal(await servedEventually(victim, 'rk7'), `${valueOf(7)}\n`);
    assert.equal(await servedEventually(victim, 'during'), 'the repair\n');
    assert.match(victim.logTail(400), /backend record corrupt: refusing reads.*"found-by":"read"/);
    assert.match(victim.logTail(400), /backend repaired; serving reads again/);
    assert.ok(existsSync(`${dbPath(victim)}.corrupt`), 'the corrupt file is kept aside');
    await assertHashesAgree(c.members);

    // 2. Met by an apply: a put with prev_kv reads the old value on every member.
    await settled(c);
    assert.ok((await flipWhenStored(dbPath(victim), valueOf(5))) > 0);
    const prev = await put([leader.endpoint], 'rk5', 'new value', '--prev-kv');
    assert.match(prev, new RegExp(valueOf(5)), 'the leader read the old value whole');
    await put([leader.endpoint], 'rk-after', 'x');
    assert.equal(await servedEventually(victim, 'rk5'), 'new value\n');
    assert.equal(await servedEventually(victim, 'rk-after'), 'x\n');
    assert.match(victim.logTail(400), /backend record corrupt: refusing reads.*"found-by":"apply"/);
    await assertHashesAgree(c.members);

    // 3. Met by a watch catching up from an old revision: its stream ends, the member repairs.
    await settled(c);
    assert.ok((await flipWhenStored(dbPath(victim), valueOf(9))) > 0);
    const watch = await etcdctl(['watch', 'rk9', '--rev=1'], { endpoints: [victim.endpoint], timeoutMs: 20_000 });
    assert.equal(watch.timedOut, false, 'the watch ended');
    assert.match(watch.stderr, /corrupt cluster/);
    assert.doesNotMatch(watch.stdout, /rk9/, 'nothing of the bad record was sent');
    await eventually('the repair after the watch', () => Promise.resolve(/"found-by":"watch"[^\n]*\n(.*\n)*.*backend repaired; serving reads again/.test(victim.logTail(600)) ? true : undefined), 30_000, 200);
    assert.equal(await servedEventually(victim, 'rk9'), `${valueOf(9)}\n`);
    await assertHashesAgree(c.members);

    // 4. At start: the member checks every record before it starts, and pulls a good copy.
    await settled(c);
    await victim.stop();
    assert.ok((await flipWhenStored(dbPath(victim), valueOf(3))) > 0);
    await put([leader.endpoint], 'while-down', 'y');
    await victim.start({ timeoutMs: 60_000 });
    assert.match(victim.logTail(200), /backend record corrupt at start/);
    assert.equal((await getValue(victim, 'rk3')).stdout, `${valueOf(3)}\n`);
    assert.equal(await servedEventually(victim, 'while-down'), 'y\n');
    await assertHashesAgree(c.members);
  });

  test('alone, a member cannot repair: a read is refused and it stops; at start it refuses to start', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 1 });
    const m = c.member(0);
    for (let i = 0; i < 5; i++) await put(c.endpoints, `rk${i}`, valueOf(i));
    await settled(c);
    assert.ok((await flipWhenStored(dbPath(m), valueOf(2))) > 0);
    const refused = await refusedRead(m, 'rk2');
    assert.match(refused.stderr, /etcdserver: corrupt cluster/);
    const exit = await m.waitExit();
    assert.equal(exit.code, 1, m.logTail(20));
    assert.match(m.logTail(40), /backend corrupt and no peer to repair it from/);

    await m.start({ wait: false });
    const again = await m.waitExit();
    assert.equal(again.code, 1, m.logTail(20));
    assert.match(m.logTail(40), /backend corrupt and no peer to repair it from: backend record corrupt: bucket "key"/);
  });
});
