/**
 * Crash safety: a child applies batches (data + applied index in one scope)
 * and is killed with SIGKILL at random moments. After each kill the store
 * reopens with every acknowledged batch present, and the applied index is
 * exactly the last batch whose data is there: no batch half present, no
 * data without its index or index without its data. The next child resumes
 * after the stored index, as the server replays its WAL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeededRand } from '../base/index.js';
import { Schema } from '../schema/index.js';
import { KvStore } from './kv-store.js';

const childPath = fileURLToPath(new URL('./crash-child.js', import.meta.url));

/**
 * Runs the child for killAfterMs from the moment it has opened the store
 * (process start-up on a loaded machine can take longer than the run itself),
 * then SIGKILLs it wherever it is; returns the last batch it acked.
 */
async function runAndKill(path: string, first: number, killAfterMs: number): Promise<number> {
  const child = spawn(process.execPath, [childPath, path, String(first)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lastAck = first - 1;
  let buffered = '';
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number): void => {
    clearTimeout(timer);
    timer = setTimeout(() => child.kill('SIGKILL'), ms);
  };
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'ready') arm(killAfterMs);
      const m = /^ack (\d+)$/.exec(line);
      if (m !== null) lastAck = Number(m[1]);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  arm(30_000); // a child that never gets ready is killed all the same
  await exited;
  clearTimeout(timer);
  return lastAck;
}

async function verify(path: string, lastAck: number): Promise<number> {
  const schema = Schema.open({ path });
  try {
    const kv = KvStore.open({ schema });
    const { index } = schema.consistentIndex();
    assert.ok(index >= lastAck, `applied index ${index} covers every acked batch (${lastAck})`);
    assert.equal(kv.rev, index + 1, 'one revision per batch, nothing beyond the applied index');
    // Every batch up to the index is whole; none after it is there at all.
    const all = kv.range(Buffer.from('b'), Buffer.from('c'), { countOnly: true }).count;
    assert.equal(all, index * 5);
    for (const n of [1, Math.max(1, lastAck), index]) {
      if (n === 0 || n > index) continue;
      const got = kv.range(Buffer.from(`b${n}/`), Buffer.from(`b${n}0`), {}).kvs.length;
      assert.equal(got, 5, `batch ${n} whole`);
      assert.equal(kv.range(Buffer.from(`b${n}/4`), new Uint8Array(0)).kvs[0]?.modRevision, n + 1);
    }
    assert.equal(kv.range(Buffer.from(`b${index + 1}/0`), new Uint8Array(0)).count, 0);
    kv.close();
    return index;
  } finally {
    await schema.backend.close();
  }
}

test('crash: SIGKILL at random moments never loses an acked batch nor splits one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mvcc-crash-'));
  const path = join(dir, 'db');
  const rand = new SeededRand(Number(process.env['MVCC_CRASH_SEED'] ?? 7));
  const rounds = Number(process.env['MVCC_CRASH_ROUNDS'] ?? 8);
  try {
    let next = 1;
    for (let round = 0; round < rounds; round++) {
      const lastAck = await runAndKill(path, next, 150 + rand.intn(400));
      const index = await verify(path, lastAck);
      if (process.env["MVCC_CRASH_LOG"] !== undefined) console.log(`round ${round}: acked ${lastAck}, applied index ${index}`);
      next = index + 1;
    }
    assert.ok(next > rounds, 'the writer made progress');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
