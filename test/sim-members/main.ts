/**
 * `npm run sim-members -- --seeds 1..200 [--members 3] [--duration-ms 20000] [--quiet-ms N --busy-ms M]`:
 * runs the whole-member simulation once per seed; on the first seed with a
 * violation prints it (and where its history was saved) and exits 1.
 * `--twice` also runs each seed a second time and fails unless the trace
 * digests are equal (determinism). `--trace` prints the event trace. `--status-ms N` prints every member's
 * raft state every N simulated milliseconds.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runSim } from './sim.js';

function parseSeeds(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(part.trim());
    if (m === null) throw new Error(`bad --seeds part: ${part}`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let s = from; s <= to; s++) out.push(s);
  }
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '1..20' },
      members: { type: 'string', default: '3' },
      'duration-ms': { type: 'string', default: '20000' },
      'quiet-ms': { type: 'string', default: '0' },
      'busy-ms': { type: 'string', default: '20000' },
      twice: { type: 'boolean', default: false },
      'status-ms': { type: 'string', default: '0' },
      trace: { type: 'boolean', default: false },
    },
  });
  const members = Number(values.members);
  const durationMs = Number(values['duration-ms']);
  const soak = { quietMs: Number(values['quiet-ms']), busyMs: Number(values['busy-ms']) };
  for (const seed of parseSeeds(values.seeds)) {
    const started = performance.now();
    const r = await runSim({ seed, members, durationMs, ...soak, statusEveryMs: Number(values['status-ms']), trace: values.trace });
    const took = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `seed ${seed}: ${r.violations.length === 0 ? 'ok' : 'VIOLATION'} (${members} members, ${r.ops} ops, ${r.okOps} ok, ${r.watchEvents} watch events, ${r.faults} faults, ${r.crashes} crashes, ${r.tornTails} torn WAL tails, ${r.replaced} replaced, ${r.compactions} compactions up to ${r.compactRevision}, ${r.defrags} defrags, snapshots ${r.snapshots.taken} taken ${r.snapshots.sent} sent ${r.snapshots.installed} installed, ${r.auth.on ? `auth (${r.auth.changes} changes, ${r.auth.refused} refused), ` : ''}leases ${r.leases.granted} (${r.leases.abandoned} abandoned, ${r.leases.revoked} revoked, ${r.leases.keepAlives} keep-alives), ${r.revisionChecks.compared} revision hash comparisons, rev ${r.lastRevision}, ${r.events} events, ${(r.simulatedMs / 1000).toFixed(0)} s simulated in ${took} s) ${r.digest.slice(0, 16)}`,
    );
    if (r.violations.length > 0) {
      const path = join(tmpdir(), `etcd-sim-members-${seed}.json`);
      writeFileSync(path, JSON.stringify(r.history));
      for (const v of r.violations.slice(0, 20)) console.log(`  [${v.check}] ${v.message}${v.ops ? ` ops ${v.ops.join(',')}` : ''}`);
      console.log(`seed ${seed} failed: history saved to ${path} (npm run robustness -- --check ${path})`);
      return 1;
    }
    if (values.twice) {
      const again = await runSim({ seed, members, durationMs, ...soak });
      if (again.digest !== r.digest) {
        console.log(`seed ${seed} is not deterministic: digest ${r.digest} then ${again.digest}`);
        return 1;
      }
    }
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
