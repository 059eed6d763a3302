/**
 * The bitflip fault (P17): a follower is stopped, one bit of its newest WAL
 * segment (in the part written so far), of its newest raft snapshot file or
 * of its backend file is flipped, and it is started again. All three carry
 * checksums (CRC-32C per WAL record, one per snapshot file, one per backend
 * record), so the member must either refuse to start (a WAL record that
 * fails its check: it then replaces itself under a new id, server/wal-replace.ts,
 * and must be a voter again within the ready timeout), skip the snapshot file for an older one (renamed
 * *.broken, as etcd does), repair its backend from a peer before it starts
 * (server/backend-repair.ts), or start because the flip landed where nothing
 * is read (a record's padding, a free page); whichever, it must then serve
 * what the others serve, which the run's checks (linearizability, watches,
 * HashKV on every member at the end) hold it to. A member that exits after
 * a WAL flip instead of replacing itself is a violation; one that refused to
 * start for another reason is replaced, as an operator would: removed, wiped
 * and added back.
 *
 * A flip in an LMDB branch page can make LMDB abort the process reading it
 * (2 of 120 random flips in a test; 102 were caught by the checksums, 16
 * landed in free space): a member whose backend flip stopped it is started
 * once more, as a supervisor would, and must then repair (an unfinished
 * check is done again in a child process).
 *
 * One time in four the flip goes into the backend of a follower that runs:
 * the member must meet it on a read, an apply or a watch (or never, if it
 * landed in free space) and repair itself without a restart; if LMDB
 * aborts it instead, it is started again (up to three times) as above.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, memberStatus, methods, type Member } from '../harness/index.js';
import { clusterCall, pickTarget, rejoinWiped, type FaultContext } from './fault-kit.js';

export async function bitflipFault(ctx: FaultContext): Promise<void> {
  const c = ctx.cluster;
  const i = await pickTarget(ctx, 'follower');
  const m = c.members[i] as Member;
  if (ctx.rand.intn(4) === 0) {
    await rotRunning(ctx, m);
    return;
  }
  const id = (await memberStatus(m.endpoint)).header?.memberId ?? 0n;
  const replacements = (): number => (m.logTail(5000).match(/the WAL is damaged; this member will take its place again/g) ?? []).length;
  const replacedBefore = replacements();
  await m.kill();
  const { what: flipped, path } = flipOne(ctx, m);
  ctx.note(`bitflip on follower ${m.name}: ${flipped}`);
  await m.start({ wait: false });
  const ready = (): Promise<boolean> => m.waitReady({ timeoutMs: ctx.readyTimeoutMs }).then(
    () => true,
    () => false,
  );
  let served = await ready();
  if (!served && !m.running && path?.endsWith('/db') === true) {
    ctx.note(`bitflip: ${m.name} stopped (${JSON.stringify(m.exitInfo)}); started again`);
    await m.start({ wait: false });
    served = await ready();
  }
  if (served) {
    const setAside = path?.endsWith('.snap') === true && existsSync(`${path}.broken`);
    const repaired = path?.endsWith('/db') === true && /backend repaired from a peer/.test(m.logTail(200));
    const replaced = replacements() > replacedBefore;
    ctx.note(`bitflip: ${m.name} started${setAside ? ', the snapshot file set aside as .broken' : ''}${repaired ? ', its backend repaired from a peer' : ''}${replaced ? ', replacing itself under a new id' : ''}`);
    if (replaced) await promoted(ctx, m);
    return;
  }
  if (m.running) ctx.violation('bitflip', `after ${flipped}, ${m.name} neither served nor exited within ${ctx.readyTimeoutMs} ms`);
  // A member with peers replaces itself when its WAL is damaged, or when it does not continue from any snapshot it
  // still has (server/wal-replace.ts): exiting after a WAL or snap file flip is a failure (one that never exited
  // was reported above).
  else if (path?.endsWith('.wal') === true || path?.endsWith('.snap') === true) ctx.violation('bitflip', `after ${flipped}, ${m.name} exited instead of replacing itself`);
  const why = m
    .logTail(40)
    .split('\n')
    .filter((l) => /corrupt|crc|mismatch|invalid|error|fatal/i.test(l) && !l.startsWith('==='))
    .pop();
  ctx.note(`bitflip: ${m.name} refused to start: ${(why ?? '(no reason logged)').slice(0, 240)}`);
  await m.kill();
  await clusterCall(ctx.access, c, i, methods.cluster.MemberRemove, etcdserverpb.MemberRemoveRequest.create({ ID: id }), (e) => /member not found/.test(e.message));
  await rejoinWiped(ctx, i, false, 'removed after it refused to start');
}

/** Waits until a member that replaced itself (a learner at first) has promoted itself to a voter. */
async function promoted(ctx: FaultContext, m: Member): Promise<void> {
  const deadline = Date.now() + ctx.readyTimeoutMs;
  for (;;) {
    const learner = await memberStatus(m.endpoint).then((s) => s.isLearner, () => undefined);
    if (learner === false) {
      ctx.note(`bitflip: ${m.name} promoted itself to a voter`);
      return;
    }
    if (Date.now() > deadline) {
      ctx.violation('bitflip', `${m.name} replaced itself but was no voter within ${ctx.readyTimeoutMs} ms`);
      return;
    }
    await delay(250);
  }
}

/** Flips one bit of a running member's backend file, then lets it find and repair it; restarts it if LMDB aborted it. */
async function rotRunning(ctx: FaultContext, m: Member): Promise<void> {
  const repairs = (): number => (m.logTail(2000).match(/backend repaired/g) ?? []).length;
  const before = repairs();
  const path = join(m.dataDir, 'member', 'snap', 'db');
  const size = statSync(path).size;
  const offset = ctx.rand.intn(size);
  const bit = ctx.rand.intn(8);
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = (b[0] as number) ^ (1 << bit);
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
  ctx.note(`bitflip on running follower ${m.name}: db byte ${offset} of ${size} bit ${bit}`);
  await delay(3000);
  for (let starts = 0; !m.running && starts < 3; starts++) {
    ctx.note(`bitflip: ${m.name} stopped (${JSON.stringify(m.exitInfo)}); started again`);
    await m.start({ wait: false });
    await m.waitReady({ timeoutMs: ctx.readyTimeoutMs }).catch(() => undefined);
  }
  if (!m.running) ctx.violation('bitflip', `after a flip in its running backend, ${m.name} did not come back in three starts`);
  if (repairs() > before) ctx.note(`bitflip: ${m.name} repaired its backend from a peer`);
}

/** Flips one bit of m's newest WAL segment, newest snapshot file or backend (a third of the time each, the WAL when there is no snapshot file): what it did, and to which file. */
function flipOne(ctx: FaultContext, m: Member): { what: string; path?: string } {
  const newest = (dir: string, ext: string): string | undefined =>
    readdirSync(dir)
      .filter((f) => f.endsWith(ext))
      .sort()
      .pop();
  const snapDir = join(m.dataDir, 'member', 'snap');
  const walDir = join(m.dataDir, 'member', 'wal');
  const snap = newest(snapDir, '.snap');
  const pick = ctx.rand.intn(3);
  const [dir, file] = pick === 0 ? [snapDir, 'db'] : snap !== undefined && pick === 1 ? [snapDir, snap] : [walDir, newest(walDir, '.wal')];
  if (file === undefined) return { what: 'no file to flip' };
  const path = join(dir, file);
  const bytes = readFileSync(path);
  // A WAL segment is preallocated with zeros: flip inside what was written.
  let used = bytes.length;
  if (file.endsWith('.wal')) while (used > 0 && bytes[used - 1] === 0) used--;
  if (used === 0) return { what: `${file} has nothing written` };
  const offset = ctx.rand.intn(used);
  const bit = ctx.rand.intn(8);
  bytes[offset] = (bytes[offset] as number) ^ (1 << bit);
  writeFileSync(path, bytes);
  return { what: `${file} byte ${offset} of ${used} bit ${bit}`, path };
}
