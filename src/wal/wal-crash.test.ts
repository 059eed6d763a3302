/**
 * Crash test: a child process appends batches and acknowledges each after
 * save() resolves; the parent SIGKILLs it at random moments (during open and
 * repair, mid-batch, mid-cut, mid-release), reopens the log, and checks that
 * every acknowledged batch is there and intact. Then the next child carries
 * on with the same directory.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { SeededRand, equalBytes } from '../base/index.js';
import { Wal } from './index.js';
import { crashEntryMinBytes, crashEntrySpread, makeTmpDir, payloadFor, removeDir } from './test-helpers.js';

const childPath = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const root = makeTmpDir('crash');
after(() => removeDir(root));

const budgetMs = Number(process.env['WAL_CRASH_MS'] ?? 15_000);
const roundsMax = 60;
/** A child that neither acks nor exits within this long is a failure, not a hang. */
const childTimeoutMs = 20_000;

interface Round {
  /** The last index acknowledged, or -1 when none was. */
  acked: number;
}

/** Runs one child until it has printed `killAfterAcks` acks or `killAfterMs` passed, then SIGKILLs it. */
function runChild(args: string[], killAfterAcks: number, killAfterMs: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acked = -1;
    let acks = 0;
    let stderr = '';
    let buffered = '';
    let killed = false;
    const kill = (): void => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(kill, killAfterMs);
    const hang = setTimeout(() => {
      kill();
      reject(new Error('crash child hung'));
    }, childTimeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        const m = /^ack (\d+)$/.exec(line);
        if (m !== null) {
          acked = Number(m[1]);
          if (++acks >= killAfterAcks) kill();
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(hang);
      if (signal !== 'SIGKILL') reject(new Error(`crash child exited on its own (code ${code}): ${stderr}`));
      else resolve({ acked });
    });
  });
}

/** Opens the log as the next incarnation would and checks it against everything acknowledged so far. */
async function verify(dir: string, ackedMax: number): Promise<number> {
  const r = await Wal.open(dir, { segmentBytes: 256 * 1024 });
  await r.wal.close();
  const markerMax = r.snapshots.reduce((m, s) => Math.max(m, s.index), 0);
  const first = r.entries[0]?.index ?? markerMax + 1;
  assert.ok(first <= markerMax + 1, `entries start at ${first}, after the newest snapshot ${markerMax}`);
  r.entries.forEach((e, i) => {
    assert.equal(e.index, first + i, 'entries are contiguous');
    assert.equal(e.term, 1);
    assert.ok(equalBytes(e.data, payloadFor(e.index, 1, crashEntrySpread, crashEntryMinBytes)), `entry ${e.index} intact`);
  });
  const last = r.entries.at(-1)?.index ?? markerMax;
  assert.ok(last >= ackedMax, `acknowledged up to ${ackedMax} but the log ends at ${last}`);
  assert.ok(r.hardState.commit >= ackedMax, `hard state commit ${r.hardState.commit} < acknowledged ${ackedMax}`);
  return last;
}

test('every acknowledged batch survives SIGKILL at random moments', async () => {
  const seed = Number(process.env['WAL_CRASH_SEED'] ?? Date.now() % 1_000_000);
  const rand = new SeededRand(seed);
  const dir = `${root}/wal`;
  const startMs = performance.now();
  let ackedMax = 0;
  let rounds = 0;
  let killedMidRun = 0;
  while (rounds < roundsMax && (rounds < 4 || performance.now() - startMs < budgetMs)) {
    const preallocate = (['zero', 'sparse', 'none'] as const)[rounds % 3] as string;
    const args = [dir, String(rand.uint32()), String(256 * 1024), preallocate];
    // Kill after a few acks, after many, or on a timer that may fire while the child is still opening.
    const mode = rand.intn(3);
    const killAfterAcks = mode === 0 ? 1 + rand.intn(5) : mode === 1 ? 20 + rand.intn(300) : Number.MAX_SAFE_INTEGER;
    const killAfterMs = mode === 2 ? 30 + rand.intn(400) : childTimeoutMs / 2;
    const round = await runChild(args, killAfterAcks, killAfterMs);
    rounds++;
    if (round.acked >= 0) killedMidRun++;
    ackedMax = Math.max(ackedMax, round.acked);
    try {
      // A child killed inside create() leaves no segment (the first one appears by rename, whole).
      if (Wal.exists(dir)) await verify(dir, ackedMax);
      else assert.equal(ackedMax, 0);
    } catch (e: unknown) {
      throw new Error(`round ${rounds} failed; replay with WAL_CRASH_SEED=${seed}`, { cause: e });
    }
  }
  assert.ok(killedMidRun >= rounds / 3, `only ${killedMidRun} of ${rounds} children got to write`);
  assert.ok(ackedMax > 0);
});
