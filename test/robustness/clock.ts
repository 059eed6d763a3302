/**
 * The clock fault (P9, Jepsen's clock nemesis): the wall clock of one member,
 * or of every member, jumps or strobes while the traffic runs.
 *
 * How: every member runs with libfaketime preloaded, its wall clock
 * (CLOCK_REALTIME, Date.now) offset by what its own file says, read again on
 * every call. The monotonic clock is left alone, as a real step of the
 * system clock (settimeofday, an NTP step) leaves CLOCK_MONOTONIC alone. A
 * member must keep every promise regardless: the run's checks hold it to
 * linearizability and the watch guarantees, and the lease checker to no
 * lease expiring before its TTL (leases, elections and request timeouts run
 * on the monotonic clock; the wall clock only stamps logs, JWT expiries and
 * new ids).
 *
 * - bump: each target's clock is set 1 ms to 262 s ahead or behind (one time
 *   in four, 1 h to 2 days), held 2-6 s, then set right again.
 * - strobe: each target's clock flips between right and an offset of
 *   10 ms to 262 s every 5-50 ms, for 2-5 s.
 *
 * That a member's clock did move is checked, not assumed: the Date header of
 * its /health answer (Node's HTTP server stamps it from the wall clock) must
 * show the offset within two seconds; otherwise the fault reports a
 * violation, since a clock fault that moves nothing tests nothing.
 */
import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { delay, type Member } from '../harness/index.js';
import type { FaultContext } from './fault-kit.js';

/** libfaketime's thread-safe build, wherever this machine's multiarch puts it (Debian: package libfaketime). */
export function findLibfaketime(): string | undefined {
  const fromEnv = process.env['LIBFAKETIME'];
  if (fromEnv !== undefined) return existsSync(fromEnv) ? fromEnv : undefined;
  let dirs: string[];
  try {
    dirs = readdirSync('/usr/lib');
  } catch {
    return undefined;
  }
  for (const d of ['', ...dirs]) {
    const p = join('/usr/lib', d, 'faketime', 'libfaketimeMT.so.1');
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The members' wall clocks, one offset file each. */
export class MemberClocks {
  constructor(
    private readonly dir: string,
    private readonly lib: string,
  ) {}

  private file(name: string): string {
    return join(this.dir, `clock-${name}`);
  }

  /** What member `name` runs with; its clock starts right. */
  env(name: string): Record<string, string> {
    this.set(name, 0);
    return {
      LD_PRELOAD: this.lib,
      FAKETIME_TIMESTAMP_FILE: this.file(name),
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
  }

  /** Offsets member `name`'s wall clock by offsetMs from now on (replaced whole: never read half written). */
  set(name: string, offsetMs: number): void {
    const f = this.file(name);
    writeFileSync(`${f}.tmp`, `${offsetMs >= 0 ? '+' : '-'}${(Math.abs(offsetMs) / 1000).toFixed(3)}\n`);
    renameSync(`${f}.tmp`, f);
  }
}

const smallJumpMaxMs = 262_144;

/** Seconds between the member's wall clock and ours, from the Date header of /health (1 s resolution); undefined if it did not answer. */
function clockSkewS(m: Member): Promise<number | undefined> {
  return new Promise((resolve) => {
    const before = Date.now();
    const req = http.get(`${m.clientUrl}/health`, { timeout: 2000, agent: false }, (res) => {
      res.resume();
      const date = Date.parse(String(res.headers.date ?? ''));
      resolve(Number.isNaN(date) ? undefined : (date - (before + Date.now()) / 2) / 1000);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** The fault, on members running under libfaketime (faults.ts pauses a member instead when they do not). */
export async function clockFault(ctx: FaultContext, clocks: MemberClocks): Promise<void> {
  const members = ctx.cluster.members;
  const targets = ctx.rand.intn(2) === 0 ? [...members] : [members[ctx.rand.intn(members.length)] as Member];
  const sign = (): number => (ctx.rand.intn(2) === 0 ? 1 : -1);
  if (ctx.rand.intn(2) === 0) {
    const offsets = targets.map(() =>
      ctx.rand.intn(4) === 0 ? sign() * (3_600_000 + ctx.rand.intn(2 * 86_400_000 - 3_600_000)) : sign() * (1 + ctx.rand.intn(smallJumpMaxMs)),
    );
    const holdMs = 2000 + ctx.rand.intn(4000);
    targets.forEach((m, i) => clocks.set(m.name, offsets[i] as number));
    const seen = await Promise.all(targets.map((m, i) => checkSkew(ctx, m, offsets[i] as number)));
    ctx.note(`clock bump ${targets.map((m, i) => `${m.name} ${fmtOffset(offsets[i] as number)}`).join(', ')} for ${holdMs} ms (${seen.join(', ')})`);
    await delay(holdMs);
    for (const m of targets) clocks.set(m.name, 0);
    return;
  }
  const offsets = targets.map(() => sign() * (10 + ctx.rand.intn(smallJumpMaxMs - 10)));
  const periodMs = 5 + ctx.rand.intn(46);
  const ms = 2000 + ctx.rand.intn(3000);
  ctx.note(`clock strobe ${targets.map((m, i) => `${m.name} 0/${fmtOffset(offsets[i] as number)}`).join(', ')} every ${periodMs} ms for ${ms} ms`);
  const end = performance.now() + ms;
  let flips = 0;
  for (let on = true; performance.now() < end; on = !on) {
    targets.forEach((m, i) => clocks.set(m.name, on ? (offsets[i] as number) : 0));
    flips++;
    await delay(periodMs);
  }
  for (const m of targets) clocks.set(m.name, 0);
  ctx.note(`clock strobe: ${flips} flips`);
}

/** Whether m's clock shows offsetMs; a violation if it plainly does not (offsets under 3 s are below what a Date header can show). */
async function checkSkew(ctx: FaultContext, m: Member, offsetMs: number): Promise<string> {
  // Node renews its Date header once a second.
  await delay(1100);
  const skew = await clockSkewS(m);
  if (skew === undefined) return `${m.name} did not answer /health`;
  if (Math.abs(offsetMs) >= 3000 && Math.abs(skew - offsetMs / 1000) > 2) {
    ctx.violation('clock', `${m.name}: its clock was set ${fmtOffset(offsetMs)} but its Date header is ${skew.toFixed(0)} s off`);
  }
  return `${m.name} reads ${skew >= 0 ? '+' : ''}${skew.toFixed(0)} s`;
}

function fmtOffset(ms: number): string {
  const a = Math.abs(ms);
  const s = a >= 3_600_000 ? `${(a / 3_600_000).toFixed(1)} h` : a >= 1000 ? `${(a / 1000).toFixed(1)} s` : `${a} ms`;
  return `${ms >= 0 ? '+' : '-'}${s}`;
}
