/**
 * The robustness smoke run of `npm test`: a short fault mix on a 3-member
 * cluster (kill, pause, isolation, failpoint crashes, clock jumps) and on a single
 * member (kill, failpoint crashes: the case where a crash must not lose an
 * acknowledged write), each fully checked. The seed is random and printed;
 * `npm run robustness -- --seed N` replays the same choices (with
 * `--peer-tls` for an odd seed and `--auth simple|jwt` for a multiple of 3,
 * on 3 members).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runRobustness } from './run.js';

function seedOf(): number {
  const fixed = process.env['ROBUSTNESS_SEED'];
  return fixed !== undefined ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
}

async function smoke(size: number, durationMs: number, faults: Parameters<typeof runRobustness>[0]['faults']): Promise<void> {
  const seed = seedOf();
  const lines: string[] = [];
  // Every other seed runs the peers over TLS (reliability §8: the scenarios run with peer TLS too), every third with auth
  // on, its tokens simple (member-local) or JWT by the seed's parity.
  const peerTls = size > 1 && seed % 2 === 1;
  const auth = size > 1 && seed % 3 === 0 ? (seed % 2 === 0 ? 'simple' : 'jwt') : undefined;
  const report = await runRobustness({ seed, durationMs, size, faults, peerTls, ...(auth !== undefined ? { auth } : {}), log: (l) => lines.push(l) });
  const summary = `seed ${seed} (${size} member(s)): ${JSON.stringify(report.stats)}\n${lines.join('\n')}`;
  process.stderr.write(`# robustness ${summary}\n`);
  assert.deepEqual(
    report.violations.map((v) => `[${v.check}] ${v.message}`),
    [],
    `robustness violations, seed ${seed}, history ${report.historyPath ?? '-'}; replay: npm run robustness -- --seed ${seed} --size ${size}${peerTls ? ' --peer-tls' : ''}${auth !== undefined ? ` --auth ${auth}` : ''}`,
  );
  assert.ok(report.stats['ok'] !== undefined && report.stats['ok'] > 50, `too little traffic got through: ${summary}`);
  if (faults.length > 0) assert.ok(report.faults.length >= 1, `no fault injected: ${summary}`);
}

test('robustness smoke: 3 members under kill, pause, isolation, failpoint crashes, clock jumps (and auth changes when auth is on)', { timeout: 240_000 }, () =>
  smoke(3, 30_000, ['kill', 'pause', 'isolate', 'failpoint', 'clock', 'auth']),
);

test('robustness smoke: 1 member under kill and failpoint crashes', { timeout: 120_000 }, () => smoke(1, 12_000, ['kill', 'failpoint']));
