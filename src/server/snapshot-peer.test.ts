import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRand, utf8, nopLogger } from '../base/index.js';
import { Schema, revisionToBytes } from '../schema/index.js';
import { exportDb } from './snapshot-export.js';
import { PeerSnapshotDecoder, PeerSnapshotFormatError, receivePeerDb, streamPeerSnapshot } from './snapshot-peer.js';

/** Every entry of every bucket, as hex lines: two backends hold the same when these are equal. */
function dump(schema: Schema): string[] {
  const out: string[] = [];
  for (const bucket of Object.values(schema.buckets)) {
    schema.backend.forEach(bucket, new Uint8Array(0), undefined, (k, v) => void out.push(`${bucket.name} ${Buffer.from(k).toString('hex')} ${Buffer.from(v).toString('hex')}`));
  }
  return out;
}

/** The backend file at path holds exactly what dump gave. */
async function assertHolds(path: string, want: readonly string[]): Promise<void> {
  const dst = Schema.open({ path });
  try {
    assert.deepEqual(dump(dst), want);
  } finally {
    await dst.backend.close();
  }
}

/** A backend with entries in several buckets: empty values, values over a piece (1 MiB), many small ones. */
async function filled(path: string, seed: number): Promise<Schema> {
  const rand = new SeededRand(seed);
  const schema = Schema.open({ path });
  schema.backend.write((tx) => {
    for (let r = 1; r <= 3000; r++) {
      const size = r % 997 === 0 ? (1 << 20) + rand.intn(70_000) : r % 13 === 0 ? 0 : rand.intn(400);
      tx.put(schema.buckets.key, revisionToBytes(r, rand.intn(3)), Buffer.alloc(size, r % 251));
    }
    tx.put(schema.buckets.meta, utf8('consistent_index'), Buffer.from([0, 0, 0, 0, 0, 0, 0x30, 0x39]));
    tx.put(schema.buckets.lease, Buffer.from([0, 0, 0, 0, 0, 0, 0, 7]), utf8('lease 7'));
    tx.put(schema.buckets.members, utf8('a1'), utf8('member record'));
  });
  await schema.backend.forceCommit();
  return schema;
}

/** The stream of a backend: the length the sender counted and the bytes. */
function streamOf(schema: Schema): { size: number; bytes: Buffer } {
  const pieces: Buffer[] = [];
  const size = streamPeerSnapshot(schema, (p) => void pieces.push(Buffer.from(p)));
  const bytes = Buffer.concat(pieces);
  assert.equal(bytes.length, size, 'the length returned is the length streamed');
  return { size, bytes };
}

/** The bytes cut at random places, as a network delivers them, now and then after a turn of the event loop. */
async function* rechunked(bytes: Buffer, rand: SeededRand): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; ) {
    if (rand.intn(20) === 0) await new Promise((resolve) => setImmediate(resolve));
    const n = 1 + rand.intn(rand.intn(2) === 0 ? 64 : 200_000);
    yield bytes.subarray(at, at + n);
    at += n;
  }
}

test('a peer snapshot received in random pieces is the sender backend, entry for entry', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-peer-'));
  const src = await filled(join(dir, 'db'), 20261207);
  try {
    const { bytes } = streamOf(src);
    const want = dump(src);
    for (let run = 0; run < 3; run++) {
      const path = join(dir, `got-${run}.db`);
      const got = await receivePeerDb(`${path}.tmp`, path, rechunked(bytes, new SeededRand(run)), nopLogger);
      assert.equal(got.bytes, bytes.length);
      assert.equal(got.appliedIndex, 12345);
      assert.ok(!existsSync(`${path}.tmp`) && !existsSync(`${path}.tmp-lock`));
      await assertHolds(path, want);
    }
  } finally {
    await src.backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a damaged, short or padded stream is refused and leaves no file', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-peer-'));
  const src = await filled(join(dir, 'db'), 7);
  try {
    const { bytes } = streamOf(src);
    const rand = new SeededRand(99);
    const flipped = (at: number): Buffer => {
      const b = Buffer.from(bytes);
      b[at] = (b[at] ?? 0) ^ (1 + rand.intn(255));
      return b;
    };
    const bad: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['the magic damaged', flipped(3)],
      ['a value byte flipped', flipped(Math.floor(bytes.length / 2))],
      ['the digest damaged', flipped(bytes.length - 5)],
      ['cut before the end', bytes.subarray(0, bytes.length - 40)],
      ['cut in the digest', bytes.subarray(0, bytes.length - 1)],
      ['a byte after the digest', Buffer.concat([bytes, Buffer.from([0])])],
    ];
    for (let i = 0; i < 20; i++) bad.push([`byte ${i} flipped at random`, flipped(rand.intn(bytes.length))]);
    for (const [what, body] of bad) {
      const path = join(dir, 'got.db');
      await assert.rejects(receivePeerDb(`${path}.tmp`, path, rechunked(body, rand), nopLogger), (e: Error) => {
        // A flipped length can also claim a bucket name that is no UTF-8 of a bucket.
        assert.ok(e instanceof PeerSnapshotFormatError, `${what}: ${e.message}`);
        return true;
      });
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('got')), [], `${what}: nothing left`);
    }
  } finally {
    await src.backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the decoder refuses unknown tags and entries before a bucket', () => {
  const magic = Buffer.from('etsdb\u0000\u0000\u0001', 'latin1');
  assert.throws(() => new PeerSnapshotDecoder().push(Buffer.concat([magic, Buffer.from([0x09])])), /unknown record tag 0x9/);
  assert.throws(() => new PeerSnapshotDecoder().push(Buffer.concat([magic, Buffer.from([0x02, 0, 0, 0, 1, 0, 0, 0, 1, 0x61, 0x62])])), /an entry before the first bucket/);
  const d = new PeerSnapshotDecoder();
  assert.deepEqual(d.push(magic.subarray(0, 4)), []);
  assert.throws(() => d.end(), /ended early/);
});

test("a member's export in the peer format streams from a view: what was committed, not what came after", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-peer-'));
  const src = await filled(join(dir, 'db'), 3);
  try {
    const want = dump(src);
    const x = await exportDb(src.backend.path, 'peer', () => undefined);
    src.backend.write((tx) => tx.put(src.buckets.key, revisionToBytes(9999, 0), utf8('later')));
    await src.backend.forceCommit();
    let sent = 0;
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (let p = await x.next(); p !== undefined; p = await x.next()) {
        sent += p.length;
        yield p;
      }
    }
    const path = join(dir, 'got.db');
    const got = await receivePeerDb(`${path}.tmp`, path, pieces(), nopLogger);
    assert.equal(got.bytes, sent);
    await x.ended;
    await assertHolds(path, want);
  } finally {
    await src.backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
