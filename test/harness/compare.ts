/**
 * Answers of two servers as comparable data, for the differential tests: a
 * response's bytes with the header's cluster id, member id and raft term left
 * out (they differ between any two clusters), and decoded responses as plain
 * data for assert's diffs.
 */
import assert from 'node:assert/strict';
import { etcdserverpb as pb } from '../../src/pb/index.js';
import type { RawAnswer } from './raw-grpc.js';

/** Reads a protobuf varint at buf[at]; returns the value (as a number: tags and lengths) and the next offset. */
function varint(buf: Uint8Array, at: number): [number, number] {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    const byte = buf[at++];
    assert.ok(byte !== undefined, 'varint past the end');
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, at];
  }
}

/**
 * A response's bytes with its header (field 1 of every etcd response) written
 * anew with the revision alone: the cluster id, member id and raft term differ
 * between any two clusters. Every other byte is left as the server sent it, so
 * field order, zero values sent or left out and nested encodings are compared.
 */
export function withoutIds(bytes: Uint8Array): string {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const start = at;
    const [tag, afterTag] = varint(bytes, at);
    const wire = tag & 7;
    if (wire === 0) at = varint(bytes, afterTag)[1];
    else if (wire === 1) at = afterTag + 8;
    else if (wire === 5) at = afterTag + 4;
    else {
      assert.equal(wire, 2, `wire type ${wire}`);
      const [len, body] = varint(bytes, afterTag);
      at = body + len;
      if (tag >>> 3 === 1) {
        const header = pb.ResponseHeader.decode(bytes.subarray(body, at));
        const bare = pb.ResponseHeader.encode(pb.ResponseHeader.create({ revision: header.revision }));
        parts.push(Buffer.from([0x0a, bare.length]), Buffer.from(bare));
        continue;
      }
    }
    parts.push(Buffer.from(bytes.subarray(start, at)));
  }
  return Buffer.concat(parts).toString('hex');
}

/** A decoded response as plain data for assert's diffs: ids left out, bytes as text, bigints as strings. */
export function plain(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (k, v: unknown) => {
      if (k === 'clusterId' || k === 'memberId' || k === 'raftTerm') return undefined;
      if (typeof v === 'bigint') return String(v);
      if (v instanceof Uint8Array) return v.length > 64 ? `${v.length} bytes ${createHashHex(v)}` : Buffer.from(v).toString('latin1');
      return v;
    }),
  ) as unknown;
}

/** A short digest of a long value, so that a diff does not print megabytes. */
function createHashHex(v: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const byte of v) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16);
}

/** An answer to compare: status and message, and each message decoded, or as bytes once a normalizer changed it. */
export interface Compared {
  readonly status: string;
  readonly message: string;
  readonly decoded: unknown[];
  readonly bytes: string[];
}

export function compared<Res>(a: RawAnswer, type: { decode(b: Uint8Array): Res; encode(m: Res): Uint8Array }, normalize?: (res: Res) => void): Compared {
  const decoded = a.messages.map((m) => type.decode(m));
  if (normalize === undefined) return { status: a.status, message: a.message, decoded: decoded.map(plain), bytes: a.messages.map(withoutIds) };
  // A normalizer changes what it decoded; the bytes compared are then its re-encoding,
  // and the server's own bytes must be what that encoder writes for what it read.
  a.messages.forEach((m, i) => assert.equal(Buffer.from(type.encode(decoded[i] as Res)).toString('hex'), m.toString('hex'), 'canonical encoding'));
  for (const d of decoded) normalize(d);
  return { status: a.status, message: a.message, decoded: decoded.map(plain), bytes: decoded.map((d) => withoutIds(type.encode(d))) };
}
