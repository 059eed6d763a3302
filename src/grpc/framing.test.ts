// Message framing, grpc-timeout and grpc-message codecs, against hand-built
// frames and naive models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { decodeTimeout, encodeTimeout, frameMessage, MessageDeframer } from './framing.js';
import { decodeGrpcMessage, encodeGrpcMessage, GrpcError, GrpcStatus, statusFromRstCode } from './status.js';

function deframeAll(chunks: Buffer[], max = 1 << 20, encoding: 'identity' | 'gzip' = 'identity'): Buffer[] | GrpcError {
  const d = new MessageDeframer(max, encoding);
  const out: Buffer[] = [];
  for (const c of chunks) {
    const err = d.push(c, (m) => out.push(Buffer.from(m)));
    if (err !== undefined) return err;
  }
  assert.ok(d.idle, 'no partial message left');
  return out;
}

test('frames are flag 0, big-endian length, payload', () => {
  assert.deepEqual([...frameMessage(new Uint8Array([7, 8, 9]))], [0, 0, 0, 0, 3, 7, 8, 9]);
  assert.deepEqual([...frameMessage(new Uint8Array(0))], [0, 0, 0, 0, 0]);
});

test('any split of a stream of frames yields the same messages', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (messages, cuts) => {
        const wire = Buffer.concat(messages.map((m) => frameMessage(m)));
        const points = [...new Set(cuts.map((c) => (wire.length === 0 ? 0 : c % wire.length)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of [...points, wire.length]) {
          if (p > prev) chunks.push(wire.subarray(prev, p));
          prev = Math.max(prev, p);
        }
        const got = deframeAll(chunks);
        assert.ok(!(got instanceof GrpcError));
        assert.deepEqual(got.map((b) => [...b]), messages.map((m) => [...m]));
      },
    ),
  );
});

test('a message over the limit is refused from its header, with grpc-go text', () => {
  const header = Buffer.from([0, 0, 0, 0x10, 0]); // 4096 bytes announced, none sent
  const err = deframeAll([header], 4095);
  assert.ok(err instanceof GrpcError);
  assert.equal(err.code, GrpcStatus.RESOURCE_EXHAUSTED);
  assert.equal(err.details, 'grpc: received message larger than max (4096 vs. 4095)');
  const ok = deframeAll([frameMessage(new Uint8Array(4095))], 4095);
  assert.ok(!(ok instanceof GrpcError) && ok.length === 1);
});

test('compressed flag: gzip is inflated; identity or a bad flag is an error', () => {
  const plain = Buffer.from('hello hello hello hello');
  const z = gzipSync(plain);
  const frame = Buffer.concat([Buffer.from([1, 0, 0, 0, z.length]), z]);
  const got = deframeAll([frame], 1000, 'gzip');
  assert.ok(!(got instanceof GrpcError));
  assert.equal(got[0]?.toString(), plain.toString());

  const idErr = deframeAll([frame], 1000, 'identity');
  assert.ok(idErr instanceof GrpcError);
  assert.equal(idErr.details, 'grpc: compressed flag set with identity or empty encoding');

  const bomb = gzipSync(Buffer.alloc(10_000));
  const bombFrame = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), bomb]);
  bombFrame.writeUInt32BE(bomb.length, 1);
  const bombErr = deframeAll([bombFrame], 1000, 'gzip');
  assert.ok(bombErr instanceof GrpcError);
  assert.equal(bombErr.details, 'grpc: received message larger than max (1001 vs. 1000)');

  const badFlag = deframeAll([Buffer.from([2, 0, 0, 0, 0])]);
  assert.ok(badFlag instanceof GrpcError);
  assert.equal(badFlag.details, 'grpc: received unexpected payload format 2');
});

test('grpc-timeout: units, limits, malformed values', () => {
  assert.equal(decodeTimeout('100m'), 100);
  assert.equal(decodeTimeout('5S'), 5000);
  assert.equal(decodeTimeout('2M'), 120_000);
  assert.equal(decodeTimeout('1H'), 3_600_000);
  assert.equal(decodeTimeout('1500u'), 1.5);
  assert.equal(decodeTimeout('2000000n'), 2);
  for (const bad of ['', '5', '123456789S', '5x', 'abS']) {
    const e = decodeTimeout(bad);
    assert.ok(e instanceof GrpcError, bad);
    assert.equal(e.code, GrpcStatus.INTERNAL);
    assert.match(e.details, /^transport: malformed time-out: /);
  }
  assert.equal(encodeTimeout(0), '0n');
  assert.equal(encodeTimeout(5), '5000000n');
  assert.equal(encodeTimeout(5000), '5000000u');
  assert.equal(encodeTimeout(3_600_000), '3600000m');
  fc.assert(
    fc.property(fc.double({ min: 0.001, max: 1e12, noNaN: true }), (ms) => {
      const enc = encodeTimeout(ms);
      assert.ok(enc.length <= 9, enc);
      const back = decodeTimeout(enc);
      assert.ok(typeof back === 'number');
      // Encoding rounds up, and never by more than one unit of the chosen resolution.
      const unitMs = { n: 1e-6, u: 1e-3, m: 1, S: 1000, M: 60_000, H: 3_600_000 }[enc.slice(-1)] ?? NaN;
      assert.ok(back >= ms - 1e-9, `${enc} ${back} < ${ms}`);
      assert.ok(back - ms <= unitMs * (1 + 1e-9), `${enc} ${back} vs ${ms}`);
    }),
  );
});

test('grpc-message: percent-encoding as grpc-go writes it, and round trips', () => {
  assert.equal(encodeGrpcMessage('plain text: ok'), 'plain text: ok');
  assert.equal(encodeGrpcMessage('100%'), '100%25');
  assert.equal(encodeGrpcMessage('ü\n'), '%C3%BC%0A');
  assert.equal(decodeGrpcMessage('%C3%BC%0A%zz%'), 'ü\n%zz%');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      const enc = encodeGrpcMessage(s);
      assert.match(enc, /^[\x20-\x7e]*$/);
      assert.equal(decodeGrpcMessage(enc), s);
    }),
  );
});

test('RST_STREAM codes map to grpc-go statuses', () => {
  assert.equal(statusFromRstCode(8), GrpcStatus.CANCELLED);
  assert.equal(statusFromRstCode(7), GrpcStatus.UNAVAILABLE);
  assert.equal(statusFromRstCode(11), GrpcStatus.RESOURCE_EXHAUSTED);
  assert.equal(statusFromRstCode(2), GrpcStatus.INTERNAL);
  assert.equal(statusFromRstCode(99), GrpcStatus.UNKNOWN);
});
