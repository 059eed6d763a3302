import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromUtf8, utf8 } from '../base/index.js';
import { BboltReader } from '../backend/index.js';
import { Schema, revisionToBytes } from '../schema/index.js';
import { exportDb, exportInFlightMax, exportPieces, exportWorkersStarted } from './snapshot-export.js';

/** A backend of `n` key-bucket entries of 1 KiB, open (as a member's is while a client snapshots it). */
async function filled(dir: string, n: number): Promise<Schema> {
  const schema = Schema.open({ path: join(dir, 'db') });
  for (let rev = 1; rev <= n; rev += 1000) {
    schema.backend.write((tx) => {
      for (let r = rev; r < Math.min(n + 1, rev + 1000); r++) tx.put(schema.buckets.key, revisionToBytes(r, 0), Buffer.alloc(1024, r % 251));
    });
  }
  await schema.backend.forceCommit();
  return schema;
}

/** Runs fn on a backend of `n` entries (filled) in a new temporary dir; closes it and removes the dir after. */
async function withFilled(n: number, fn: (schema: Schema, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-export-'));
  const schema = await filled(dir, n);
  try {
    await fn(schema, dir);
  } finally {
    await schema.backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an export streams the bbolt file of what was committed: its size first, then bytes that open as that database', { timeout: 60_000 }, () =>
  withFilled(6000, async (schema, dir) => {
    let viewed = 0;
    const x = await exportDb(schema.backend.path, 'bbolt', () => viewed++);
    assert.equal(viewed, 1);
    // Written after the view was taken: not in the stream.
    schema.backend.write((tx) => tx.put(schema.buckets.key, revisionToBytes(6001, 0), utf8('later')));
    await schema.backend.forceCommit();
    const pieces: Uint8Array[] = [];
    for (let p = await x.next(); p !== undefined; p = await x.next()) pieces.push(p);
    const bytes = Buffer.concat(pieces);
    assert.equal(bytes.length, x.size);
    await x.ended;
    const file = join(dir, 'snap.bbolt');
    writeFileSync(file, bytes);
    const db = BboltReader.open(file);
    try {
      assert.equal(db.size, x.size);
      assert.deepEqual([...(db.entries(utf8('key')) ?? [])].length, 6000);
      assert.ok(db.bucketNames().map(fromUtf8).includes('meta'));
    } finally {
      db.close();
    }
  }),
);

test('a slow taker holds the worker a few pieces ahead; an export stopped midway ends its worker, and next() says so', { timeout: 60_000 }, () =>
  withFilled(24_000, async (schema) => {
    // About 32 MiB: many more pieces than the worker may post ahead.
    const x = await exportDb(schema.backend.path, 'bbolt', () => undefined);
    assert.ok(x.size > 24_000 * 1024);
    assert.ok((await x.next()) !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const ahead = x.queuedBytes();
    assert.ok(ahead > 0 && ahead <= (exportInFlightMax + 1) * 1.25 * 2 ** 20, `${ahead} bytes of ${x.size} sent ahead while nobody took them`);
    await x.stop();
    await x.ended;
    await assert.rejects(x.next(), /stopped/);
    assert.equal(x.queuedBytes(), 0);
  }),
);

/**
 * A peer export whose taker leaves after `taken` pieces (as `for await` does
 * when the loop is left: return() on the iterator) stops, its `done` runs
 * once, and its view goes: a defrag runs after.
 */
function leftEarly(taken: number): Promise<void> {
  return withFilled(24_000, async (schema) => {
    let done = 0;
    await schema.backend.whileViewed(async (viewed) => {
      const x = await exportDb(schema.backend.path, 'peer', viewed);
      const it = exportPieces(x, () => done++)[Symbol.asyncIterator]();
      for (let i = 0; i < taken; i++) assert.equal((await it.next()).done, false);
      await it.return?.(undefined);
      await x.ended;
      await assert.rejects(x.next(), /stopped/);
    });
    assert.equal(done, 1);
    // The view is closed: a defrag does not wait forever.
    await schema.backend.defrag();
  });
}

test('a peer export left early by its taker (the transport giving up) stops, and its view goes: a defrag runs after', { timeout: 60_000 }, () => leftEarly(1));

test('a peer export let go before its first piece (the peer gone before the transfer started) stops, and a defrag runs after', { timeout: 60_000 }, () => leftEarly(0));

test('exports one after another share a worker, and one stopped midway leaves it fit for the next: whole, with what came since, a defrag between included', { timeout: 60_000 }, () =>
  withFilled(6000, async (schema, dir) => {
    const before = exportWorkersStarted();
    const first = await exportDb(schema.backend.path, 'bbolt', () => undefined);
    assert.ok((await first.next()) !== undefined);
    await first.stop();
    schema.backend.write((tx) => tx.put(schema.buckets.key, revisionToBytes(6001, 0), utf8('later')));
    await schema.backend.forceCommit();
    // A defrag swaps the file under the kept worker: its next view must be of the new one.
    await schema.backend.defrag();
    schema.backend.write((tx) => tx.put(schema.buckets.key, revisionToBytes(6002, 0), utf8('after the defrag')));
    await schema.backend.forceCommit();
    const second = await exportDb(schema.backend.path, 'bbolt', () => undefined);
    const pieces: Uint8Array[] = [];
    for (let p = await second.next(); p !== undefined; p = await second.next()) pieces.push(p);
    await second.ended;
    assert.ok(exportWorkersStarted() - before <= 1, `${exportWorkersStarted() - before} workers started for two exports in turn`);
    const file = join(dir, 'snap.bbolt');
    writeFileSync(file, Buffer.concat(pieces));
    const db = BboltReader.open(file);
    try {
      assert.equal([...(db.entries(utf8('key')) ?? [])].length, 6002);
    } finally {
      db.close();
    }
  }),
);
