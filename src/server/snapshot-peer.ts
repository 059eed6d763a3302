/**
 * The database as one member sends it to another: to a follower with a
 * MsgSnap, and to a member repairing its backend. Streamed from a read view
 * of the sender's backend, with no file on the sender's disk; the receiver
 * writes it into a new backend file as it comes.
 *
 * Unlike the bbolt file a client's snapshot gets (snapshot-bbolt.ts), this
 * carries every bucket and every entry as the backend holds them, etcd-ts's
 * own meta keys and membership records included: the receiver must end up
 * with the sender's state, not etcd's view of it.
 *
 * The stream (its length is not known before its end, which the end record
 * and the digest mark):
 *
 *   magic "etsdb\0\0\x01" (8 bytes)
 *   then for each bucket, in the sender's order:
 *     0x01, name length (u16 BE), name (UTF-8)
 *     then for each entry, keys ascending:
 *       0x02, key length (u32 BE), value length (u32 BE), key, value
 *   0x03 (the end)
 *   SHA-256 of every byte before it (32 bytes)
 *
 * The digest is checked before the receiver's file is used: a stream cut
 * short, damaged or padded fails as a whole.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { fromUtf8, utf8, type Logger } from '../base/index.js';
import type { Bucket } from '../backend/index.js';
import { Schema } from '../schema/index.js';

const magic = Buffer.from('etsdb\u0000\u0000\u0001', 'latin1');
const tagBucket = 0x01;
const tagEntry = 0x02;
const tagEnd = 0x03;
const digestBytes = 32;
const bucketHeaderBytes = 1 + 2;
const entryHeaderBytes = 1 + 4 + 4;
/** The sender's pieces: about this many bytes each (an entry larger goes whole in one). */
const pieceBytes = 1 << 20;
/** Entries read between two calls of the sender's `poll`. */
const pollEntries = 4096;
/** Entries the receiver writes between two commits of its new backend: bounds its batch in memory. */
const importBatchEntries = 20_000;
/** Bytes of values the receiver writes between two commits. */
const importBatchBytes = 16 << 20;

export class PeerSnapshotFormatError extends Error {
  override readonly name = 'PeerSnapshotFormatError';
}

/**
 * Streams the schema's backend (a read view that does not change while it
 * is read): `emit` gets its bytes in pieces of about 1 MiB it may keep.
 * `poll`, called every few thousand entries, may throw to stop. Returns the
 * stream's length.
 */
export function streamPeerSnapshot(schema: Schema, emit: (bytes: Buffer) => void, poll: () => void = () => undefined): number {
  const backend = schema.backend;
  const buckets = backend.bucketsInNameOrder();
  let n = 0;
  const polled = (): void => {
    if (++n % pollEntries === 0) poll();
  };
  const hash = createHash('sha256');
  let piece = Buffer.allocUnsafe(pieceBytes);
  let at = 0;
  let emitted = 0;
  const flush = (): void => {
    if (at === 0) return;
    const out = at === piece.length ? piece : piece.subarray(0, at);
    hash.update(out);
    emitted += out.length;
    emit(out);
    piece = Buffer.allocUnsafe(pieceBytes);
    at = 0;
  };
  /** Room for `bytes` in the piece, flushing it first if needed; a larger record gets a piece of its own. */
  const room = (bytes: number): void => {
    if (at + bytes <= piece.length) return;
    flush();
    if (bytes > piece.length) piece = Buffer.allocUnsafe(bytes);
  };
  room(magic.length);
  at += magic.copy(piece, at);
  for (const bucket of buckets) {
    const name = utf8(bucket.name);
    room(bucketHeaderBytes + name.length);
    piece[at] = tagBucket;
    piece.writeUInt16BE(name.length, at + 1);
    piece.set(name, at + bucketHeaderBytes);
    at += bucketHeaderBytes + name.length;
    backend.forEach(bucket, new Uint8Array(0), undefined, (key, value) => {
      polled();
      room(entryHeaderBytes + key.length + value.length);
      piece[at] = tagEntry;
      piece.writeUInt32BE(key.length, at + 1);
      piece.writeUInt32BE(value.length, at + 5);
      piece.set(key, at + entryHeaderBytes);
      piece.set(value, at + entryHeaderBytes + key.length);
      at += entryHeaderBytes + key.length + value.length;
    });
  }
  room(1);
  piece[at++] = tagEnd;
  flush();
  const digest = hash.digest();
  emitted += digest.length;
  emit(digest);
  return emitted;
}

/** What the decoder gives: the start of a bucket, or an entry of the last bucket started. */
export type PeerRecord = { readonly bucket: string } | { readonly key: Uint8Array; readonly value: Uint8Array };

/**
 * Decodes a peer snapshot stream pushed in pieces of any size. Records come
 * out as soon as they are whole, as views of the pieces (which must not be
 * reused: the records may be kept) or of a buffer of the decoder's own that
 * it never reuses either; end() checks that the stream ended where it
 * should, with the right digest.
 */
export class PeerSnapshotDecoder {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes received and not yet decoded. */
  private held: Buffer = Buffer.alloc(0);
  private state: 'magic' | 'records' | 'digest' | 'done' = 'magic';
  private inBucket = false;

  /** The records the pieces so far complete. */
  push(piece: Uint8Array): PeerRecord[] {
    if (this.state === 'done') throw new PeerSnapshotFormatError('bytes after the digest');
    // A view of the piece, not a copy: records come out as copies, and only the undecoded tail is held.
    const view = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    this.held = this.held.length === 0 ? view : Buffer.concat([this.held, view]);
    const out: PeerRecord[] = [];
    let at = 0;
    const held = this.held;
    for (;;) {
      const left = held.length - at;
      if (this.state === 'magic') {
        if (left < magic.length) break;
        if (!held.subarray(at, at + magic.length).equals(magic)) throw new PeerSnapshotFormatError('not a peer snapshot stream (bad magic)');
        this.consume(held, at, magic.length);
        at += magic.length;
        this.state = 'records';
      } else if (this.state === 'records') {
        if (left < 1) break;
        const tag = held[at];
        if (tag === tagEnd) {
          this.consume(held, at, 1);
          at += 1;
          this.state = 'digest';
        } else if (tag === tagBucket) {
          if (left < bucketHeaderBytes) break;
          const len = held.readUInt16BE(at + 1);
          if (left < bucketHeaderBytes + len) break;
          const name = fromUtf8(held.subarray(at + bucketHeaderBytes, at + bucketHeaderBytes + len));
          this.consume(held, at, bucketHeaderBytes + len);
          at += bucketHeaderBytes + len;
          this.inBucket = true;
          out.push({ bucket: name });
        } else if (tag === tagEntry) {
          if (!this.inBucket) throw new PeerSnapshotFormatError('an entry before the first bucket');
          if (left < entryHeaderBytes) break;
          const klen = held.readUInt32BE(at + 1);
          const vlen = held.readUInt32BE(at + 5);
          if (klen === 0) throw new PeerSnapshotFormatError('an entry with an empty key');
          const total = entryHeaderBytes + klen + vlen;
          if (left < total) break;
          const k = at + entryHeaderBytes;
          out.push({ key: held.subarray(k, k + klen), value: held.subarray(k + klen, k + klen + vlen) });
          this.consume(held, at, total);
          at += total;
        } else {
          throw new PeerSnapshotFormatError(`unknown record tag 0x${(tag ?? 0).toString(16)}`);
        }
      } else if (this.state === 'digest') {
        if (left < digestBytes) break;
        if (left > digestBytes) throw new PeerSnapshotFormatError('bytes after the digest');
        if (!held.subarray(at, at + digestBytes).equals(this.hash.digest())) throw new PeerSnapshotFormatError('the digest does not match the stream');
        at += digestBytes;
        this.state = 'done';
      } else {
        break;
      }
    }
    this.held = at === held.length ? Buffer.alloc(0) : held.subarray(at);
    return out;
  }

  /** Throws unless the whole stream, digest included, has come and checked out. */
  end(): void {
    if (this.state !== 'done') throw new PeerSnapshotFormatError(`the stream ended early (${this.state === 'digest' ? 'before its digest' : 'before its end'})`);
  }

  private consume(held: Buffer, at: number, bytes: number): void {
    this.hash.update(held.subarray(at, at + bytes));
  }
}

/**
 * Writes a peer snapshot stream into the schema's new, empty backend as it
 * comes, committing every few thousand entries (while one commit runs, the
 * next batch is read; the body waits for it only then). The last entries
 * wait in the backend's batch for the caller's commit. Throws, with the
 * backend left partly written, if the stream is not a whole, valid one or
 * names a bucket the schema does not have. Returns the bytes read.
 */
export async function importPeerSnapshot(body: AsyncIterable<Uint8Array>, schema: Schema): Promise<number> {
  const byName = new Map(Object.values(schema.buckets).map((b) => [b.name, b]));
  const backend = schema.backend;
  const decoder = new PeerSnapshotDecoder();
  let bucket: Bucket | undefined;
  let batched = 0;
  let batchedBytes = 0;
  let bytes = 0;
  // One commit runs while the next batch comes: the stream is not held for each.
  let committing: Promise<void> = Promise.resolve();
  for await (const piece of body) {
    bytes += piece.length;
    const records = decoder.push(piece);
    if (records.length === 0) continue;
    backend.write((tx) => {
      for (const r of records) {
        if ('bucket' in r) {
          bucket = byName.get(r.bucket);
          if (bucket === undefined) throw new PeerSnapshotFormatError(`unknown bucket ${JSON.stringify(r.bucket)}`);
          continue;
        }
        tx.put(bucket as Bucket, r.key, r.value);
        batched++;
        batchedBytes += r.key.length + r.value.length;
      }
    });
    if (batched >= importBatchEntries || batchedBytes >= importBatchBytes) {
      batched = 0;
      batchedBytes = 0;
      await committing;
      committing = backend.forceCommit();
    }
  }
  await committing;
  decoder.end();
  return bytes;
}

/** What receivePeerDb wrote. */
export interface ReceivedDb {
  /** Bytes of the stream. */
  readonly bytes: number;
  /** The applied index the database holds. */
  readonly appliedIndex: number;
}

/**
 * Writes a peer snapshot stream into a new backend file at `tmp` (anything
 * there is removed first), and renames it to `path` once whole, checked and
 * synced; on any failure nothing is left at either. The caller syncs the
 * directory. The file's commits are not synced one by one: nothing uses it
 * before the one sync at the end, whose milliseconds `synced` gets (as the
 * whole file was written, then synced, when it came as a copy).
 */
export async function receivePeerDb(tmp: string, path: string, body: AsyncIterable<Uint8Array>, logger: Logger, synced?: (ms: number) => void): Promise<ReceivedDb> {
  const clear = async (): Promise<void> => {
    await rm(tmp, { force: true });
    await rm(`${tmp}-lock`, { force: true });
  };
  await clear();
  let schema: Schema | undefined;
  try {
    schema = Schema.open({ path: tmp, noSync: true, logger });
    const bytes = await importPeerSnapshot(body, schema);
    await schema.backend.forceCommit();
    const appliedIndex = schema.consistentIndex().index;
    const closing = schema.backend.close();
    schema = undefined;
    await closing;
    await rm(`${tmp}-lock`, { force: true });
    const syncStartedMs = performance.now();
    const fh = await open(tmp, 'r+');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
    synced?.(performance.now() - syncStartedMs);
    await rename(tmp, path);
    return { bytes, appliedIndex };
  } catch (e) {
    await schema?.backend.close().catch(() => undefined);
    await clear();
    throw e;
  }
}
