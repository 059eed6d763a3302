// Framing: encode → split into arbitrary chunks → decode gives back the same
// messages; corruption and oversize are caught; queue and backoff bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SeededRand } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { backoffDelayMs, defaultBackoff } from './backoff.js';
import { FrameCorruptError, FrameTooLargeError } from './errors.js';
import { encodeFrame, encodeFrames, FrameDecoder, frameHeaderBytes } from './frame.js';
import { BoundedQueue } from './queue.js';

const arbMessage = fc.record({
  type: fc.constantFrom(...Object.values(raftpb.MessageType)),
  to: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  from: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  term: fc.nat(),
  index: fc.nat(),
  commit: fc.nat(),
  entries: fc.array(fc.record({ term: fc.nat(), index: fc.nat(), data: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 4 }),
}).map((r) => raftpb.Message.create({
  ...r,
  entries: r.entries.map((e) => raftpb.Entry.create({ ...e, type: raftpb.EntryType.EntryNormal })),
}));

function decodeAll(chunks: readonly Uint8Array[], crc: boolean): raftpb.Message[] {
  const d = new FrameDecoder(1 << 20, crc);
  const out: raftpb.Message[] = [];
  for (const c of chunks) {
    const used = d.push(c, (p) => out.push(raftpb.Message.decode(p)));
    assert.equal(used, c.length);
  }
  assert.ok(d.idle, 'no partial frame left');
  return out;
}

function split(buf: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(buf.subarray(at, p));
    at = p;
  }
  out.push(buf.subarray(at));
  return out;
}

test('frames survive any chunking, with and without CRC, whatever the size hint', () => {
  fc.assert(
    fc.property(fc.array(arbMessage, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), fc.boolean(), fc.nat({ max: 4096 }), (msgs, cuts, crc, hint) => {
      const buf = encodeFrames(msgs, crc, hint);
      const got = decodeAll(split(buf, cuts), crc);
      assert.deepEqual(got.map((m) => raftpb.Message.encode(m)), msgs.map((m) => raftpb.Message.encode(m)));
    }),
    { numRuns: 300 },
  );
});

test('an empty message is a frame of length 0, even at the end of a chunk', () => {
  const buf = encodeFrames([raftpb.Message.create(), raftpb.Message.create({ type: raftpb.MessageType.MsgHeartbeat })], true);
  assert.equal(new DataView(buf.buffer, buf.byteOffset).getUint32(0), 0);
  const got = decodeAll([buf.subarray(0, frameHeaderBytes), buf.subarray(frameHeaderBytes)], true);
  assert.equal(got.length, 2);
  assert.equal(got[1]?.type, raftpb.MessageType.MsgHeartbeat);
});

test('every flipped payload bit is caught by the CRC', () => {
  const m = raftpb.Message.create({ type: raftpb.MessageType.MsgApp, to: 2n, from: 1n, entries: [raftpb.Entry.create({ data: new Uint8Array(64).fill(7) })] });
  const good = encodeFrame(raftpb.Message.encode(m), true);
  for (let bit = frameHeaderBytes * 8; bit < good.length * 8; bit += 13) {
    const bad = Uint8Array.from(good);
    bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
    assert.throws(() => new FrameDecoder(1 << 20, true).push(bad, () => undefined), FrameCorruptError);
  }
});

test('a frame longer than frameBytesMax is refused from its header alone', () => {
  const header = Buffer.alloc(frameHeaderBytes);
  header.writeUInt32BE(1025, 0);
  assert.throws(() => new FrameDecoder(1024, true).push(header, () => undefined), FrameTooLargeError);
});

test('stopAfterOne leaves the bytes after the first frame unconsumed', () => {
  const frame = encodeFrame(raftpb.Message.encode(raftpb.Message.create({ type: raftpb.MessageType.MsgSnap })), true);
  const tail = Buffer.from('db-bytes');
  const chunk = Buffer.concat([frame, tail]);
  let frames = 0;
  const used = new FrameDecoder(1024, true).push(chunk, () => frames++, true);
  assert.equal(frames, 1);
  assert.equal(used, frame.length);
});

test('bounded queue matches an array model and never exceeds its limit', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.nat({ max: 20 }), fc.constant(-1)), { maxLength: 200 }), (ops) => {
      const q = new BoundedQueue<number>(8);
      const model: number[] = [];
      for (const op of ops) {
        if (op < 0) {
          assert.equal(q.shift(), model.shift());
        } else {
          const limit = 1 + (op % 8);
          const ok = q.push(op, limit);
          assert.equal(ok, model.length < limit);
          if (ok) model.push(op);
        }
        assert.equal(q.length, model.length);
        assert.ok(q.length <= 8);
      }
    }),
  );
});

test('backoff grows, is capped, and keeps half of the nominal delay', () => {
  const rand = new SeededRand(7);
  let prevNominal = 0;
  for (let attempt = 0; attempt < 80; attempt++) {
    const nominal = Math.min(defaultBackoff.maxMs, defaultBackoff.initialMs * 2 ** Math.min(attempt, 64));
    const d = backoffDelayMs(defaultBackoff, attempt, rand);
    assert.ok(d >= Math.floor(nominal / 2) && d <= nominal, `attempt ${attempt}: ${d} vs ${nominal}`);
    assert.ok(nominal >= prevNominal);
    prevNominal = nominal;
  }
  assert.equal(prevNominal, defaultBackoff.maxMs);
});
