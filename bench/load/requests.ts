/**
 * The requests of the load generator, encoded once: protobuf bytes from
 * src/pb, wrapped in gRPC's 5-byte message frame. A pool of frames with
 * random keys from the key space is cycled through, so issuing a request
 * costs no encoding at all.
 */
import { frameMessage } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';

export type UnaryKind = 'put' | 'range' | 'txn-put';

export interface UnaryWorkload {
  readonly kind: UnaryKind;
  /** Key length in bytes (put, txn-put). */
  readonly keyBytes: number;
  readonly valueBytes: number;
  /** Keys are drawn uniformly from [0, keySpace). */
  readonly keySpace: number;
  /** range: the one key read. */
  readonly rangeKey: string;
  readonly serializable: boolean;
}

export const paths = {
  put: etcdserverpb.KVService.methods.Put.path,
  range: etcdserverpb.KVService.methods.Range.path,
  txn: etcdserverpb.KVService.methods.Txn.path,
  watch: etcdserverpb.WatchService.methods.Watch.path,
} as const;

export function pathOf(kind: UnaryKind): string {
  switch (kind) {
    case 'put':
      return paths.put;
    case 'range':
      return paths.range;
    case 'txn-put':
      return paths.txn;
  }
}

/** A small, fast, seedable PRNG (mulberry32), so every run draws the same keys. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Key i of the key space: its decimal digits, zero-padded (or cut) to keyBytes. */
export function keyOf(i: number, keyBytes: number): Uint8Array {
  const digits = String(i).padStart(keyBytes, '0');
  return Buffer.from(digits.slice(digits.length - keyBytes), 'latin1');
}

export function valueOf(valueBytes: number): Uint8Array {
  return Buffer.alloc(valueBytes, 0x76);
}

function putRequest(w: UnaryWorkload, key: number): etcdserverpb.PutRequest {
  return etcdserverpb.PutRequest.create({ key: keyOf(key, w.keyBytes), value: valueOf(w.valueBytes) });
}

/** The protobuf bytes of one request of the workload, for the given key number. */
export function encodeRequest(w: UnaryWorkload, key: number): Uint8Array {
  switch (w.kind) {
    case 'put':
      return etcdserverpb.PutRequest.encode(putRequest(w, key));
    case 'range':
      return etcdserverpb.RangeRequest.encode(
        etcdserverpb.RangeRequest.create({ key: Buffer.from(w.rangeKey), serializable: w.serializable }),
      );
    case 'txn-put':
      return etcdserverpb.TxnRequest.encode(
        etcdserverpb.TxnRequest.create({ success: [{ request: { case: 'requestPut', value: putRequest(w, key) } }] }),
      );
  }
}

/** poolSize framed requests with keys drawn from the key space by the seeded PRNG. */
export function framePool(w: UnaryWorkload, poolSize: number, seed: number): Buffer[] {
  const rand = prng(seed);
  const size = w.kind === 'range' ? 1 : poolSize;
  return Array.from({ length: size }, () => frameMessage(encodeRequest(w, Math.floor(rand() * w.keySpace))));
}

/** WatchRequest{create_request{key}}, framed. */
export function watchCreateFrame(key: Uint8Array): Buffer {
  return frameMessage(
    etcdserverpb.WatchRequest.encode(
      etcdserverpb.WatchRequest.create({ requestUnion: { case: 'createRequest', value: etcdserverpb.WatchCreateRequest.create({ key }) } }),
    ),
  );
}

/**
 * Splits a stream of gRPC frames into payloads. Used for watch responses
 * only, which are small; a message split over chunks is joined once whole.
 */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onMessage: (payload: Buffer) => void): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf[0] !== 0) throw new Error(`unexpected compressed frame flag ${String(buf[0])}`);
      if (buf.length < 5 + len) break;
      onMessage(buf.subarray(5, 5 + len));
      buf = buf.subarray(5 + len);
    }
    this.pending = buf;
  }
}
