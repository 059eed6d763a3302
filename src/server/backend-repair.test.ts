import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nopLogger } from '../base/index.js';
import { Schema } from '../schema/index.js';
import { ConfigError } from './config.js';
import { openCheckedAtStart, type StartCheck } from './backend-repair.js';

const marker = 'db-check-running';
const value = `a value to flip ${'z'.repeat(40)}`;

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backend-repair-test-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

async function writeDb(path: string): Promise<void> {
  const s = Schema.open({ path });
  s.backend.write((tx) => tx.put(s.buckets.key, Buffer.from('0000000000000001_0000000000000000'), Buffer.from(value)));
  await s.backend.forceCommit();
  await s.backend.close();
}

function flip(path: string): void {
  const file = readFileSync(path);
  const at = file.indexOf(Buffer.from(value));
  assert.ok(at >= 0);
  file[at + 3] = (file[at + 3] as number) ^ 1;
  writeFileSync(path, file);
}

/** A start check with no peer to repair from. */
function check(dir: string): StartCheck {
  const dbPath = join(dir, 'db');
  return {
    open: () => Schema.open({ path: dbPath }),
    dbPath,
    dir,
    logger: nopLogger,
    clusterId: 1n,
    memberId: 2n,
    snapshot: undefined,
    initialPeerUrls: [],
    tls: undefined,
    answerTimeoutMs: 1000,
    rounds: 1,
  };
}

test('start check: a whole database opens, no check is left marked running, and pulls a stop interrupted are removed', withDir(async (dir) => {
  await writeDb(join(dir, 'db'));
  writeFileSync(join(dir, 'repair-00000000000000aa.db.tmp'), 'half a pull');
  const s = await openCheckedAtStart(check(dir));
  await s.backend.close();
  assert.equal(existsSync(join(dir, marker)), false);
  assert.equal(existsSync(join(dir, 'repair-00000000000000aa.db.tmp')), false);
}));

test('start check: a corrupt record with no peer to repair from refuses the start, naming the record', withDir(async (dir) => {
  await writeDb(join(dir, 'db'));
  flip(join(dir, 'db'));
  await assert.rejects(openCheckedAtStart(check(dir)), (e) => e instanceof ConfigError && /backend corrupt and no peer to repair it from: backend record corrupt: bucket "key", key 30303030/.test(e.message));
  // The check did not end well: the next start checks in a process of its own, and finds it again.
  assert.equal(existsSync(join(dir, marker)), true);
  await assert.rejects(openCheckedAtStart(check(dir)), (e) => e instanceof ConfigError && /checksum mismatch/.test(e.message));
}));

test('start check: a check that never ended (the process died in it) is done again in a child process', withDir(async (dir) => {
  await writeDb(join(dir, 'db'));
  writeFileSync(join(dir, marker), '');
  const s = await openCheckedAtStart(check(dir));
  await s.backend.close();
  assert.equal(existsSync(join(dir, marker)), false);
}));
