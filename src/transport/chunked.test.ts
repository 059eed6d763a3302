// The chunked db body: whatever way the wire splits it (headers across
// reads included), the payload comes out whole; a body without its empty
// end chunk, or with bytes after it, is cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRand } from '../base/index.js';
import { readChunked } from './chunked.js';

/** A whole number from lo to hi, both included. */
const between = (rand: SeededRand, lo: number, hi: number): number => lo + rand.intn(hi - lo + 1);

const header = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

/** A chunked body of these payload pieces; with its end chunk unless told otherwise. */
function encoded(pieces: readonly Buffer[], end = true): Buffer {
  return Buffer.concat([...pieces.flatMap((p) => [header(p.length), p]), ...(end ? [header(0)] : [])]);
}

/** The bytes in reads cut at random places, some empty. */
async function* reads(bytes: Buffer, rand: SeededRand): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; ) {
    await Promise.resolve();
    const n = between(rand, 0, 9) === 0 ? 0 : between(rand, 1, 12);
    yield bytes.subarray(at, at + n);
    at += n;
  }
}

async function payload(first: Buffer, rest: AsyncIterator<Buffer>): Promise<{ bytes: Buffer; counted: number } | Error> {
  const progress = { bytes: 0 };
  const got: Buffer[] = [];
  try {
    for await (const p of readChunked(first, rest, progress, (reason) => new Error(`cut: ${reason}`))) got.push(Buffer.from(p));
  } catch (e) {
    return e as Error;
  }
  return { bytes: Buffer.concat(got), counted: progress.bytes };
}

test('the payload comes out whole however the reads split the body, headers included', async () => {
  const rand = new SeededRand(7);
  for (let round = 0; round < 200; round++) {
    const pieces = Array.from({ length: between(rand, 0, 6) }, () => Buffer.from(Array.from({ length: between(rand, 1, 40) }, () => between(rand, 0, 255))));
    const body = encoded(pieces);
    const split = between(rand, 0, body.length);
    const got = await payload(body.subarray(0, split), reads(body.subarray(split), rand));
    assert.ok(!(got instanceof Error), `round ${round}: ${got instanceof Error ? got.message : ''}`);
    assert.deepEqual(got.bytes, Buffer.concat(pieces), `round ${round}`);
    assert.equal(got.counted, got.bytes.length);
  }
});

test('a body without its end chunk, cut inside a header or a chunk, or with bytes after its end, is cut', async () => {
  const rand = new SeededRand(8);
  const pieces = [Buffer.from('first piece'), Buffer.from('second')];
  const whole = encoded(pieces);
  const bodies = [
    encoded(pieces, false),
    whole.subarray(0, 2),
    whole.subarray(0, 4 + 5),
    whole.subarray(0, whole.length - 1),
    Buffer.concat([whole, Buffer.from([0])]),
    Buffer.concat([whole, header(3), Buffer.from('abc')]),
    Buffer.alloc(0),
  ];
  for (const [i, body] of bodies.entries()) {
    const got = await payload(Buffer.alloc(0), reads(body, rand));
    assert.ok(got instanceof Error, `body ${i} read as ${JSON.stringify(got)}`);
    assert.match(got.message, /^cut: /);
  }
});

test('a read that fails is a cut', async () => {
  async function* failing(): AsyncGenerator<Buffer> {
    await Promise.resolve();
    yield encoded([Buffer.from('abc')], false);
    throw new Error('stream reset');
  }
  const got = await payload(Buffer.alloc(0), failing());
  assert.ok(got instanceof Error);
  assert.match(got.message, /cut after 3 bytes: stream reset/);
});
