/**
 * The record codec: how one record sits on disk, how a batch of records is
 * encoded into one buffer, and how a segment's bytes are checked record by
 * record. The format is described in index.ts; this file is its only
 * implementation.
 */
import { assert, crc32cUpdate } from '../base/index.js';
import { Writer, type MessageType } from '../pb/index.js';

export const recordType = {
  crc: 1,
  metadata: 2,
  entry: 3,
  hardState: 4,
  snapshot: 5,
} as const;
export type RecordType = (typeof recordType)[keyof typeof recordType];

export function isRecordType(t: number): t is RecordType {
  return t >= recordType.crc && t <= recordType.snapshot;
}

/** Every record starts with this many header bytes; the header is 8-byte aligned. */
export const recordHeaderBytes = 24;
/** Header bytes 12..16: "EWAL" read as a little-endian u32. Lets a scan skip garbage cheaply. */
export const recordMagic = 0x4c415745;
/**
 * The largest payload of one record. A raft entry is bounded far below this by
 * the request size limit; the bound exists so that a corrupt length can never
 * make the reader allocate or slice past reason.
 */
export const recordDataBytesMax = 256 * 1024 * 1024;
/** Offsets within a segment are u32 on disk; a segment must stay below this. */
export const segmentOffsetMax = 0xffff_fff8;
/** Disks write whole sectors or nothing; a torn write leaves whole sectors unwritten. */
export const sectorBytes = 512;

const magicBytes = Buffer.from([0x45, 0x57, 0x41, 0x4c]);

export function padBytesFor(dataBytes: number): number {
  return (8 - (dataBytes % 8)) % 8;
}

/** How many bytes a record with this payload takes on disk. */
export function recordBytes(dataBytes: number): number {
  return recordHeaderBytes + dataBytes + padBytesFor(dataBytes);
}

/**
 * RecordEncoder builds the records of one batch into one reusable buffer and
 * carries the running CRC chain from batch to batch.
 *
 * Invariant: chainCrc is the crc of the last record encoded (whether or not it
 * has reached the disk yet; a failed write makes the whole Wal unusable).
 */
export class RecordEncoder {
  private w: Writer;

  constructor(
    private crc: number,
    private readonly keepBytesMax = 4 * 1024 * 1024,
  ) {
    this.w = new Writer(64 * 1024);
  }

  get chainCrc(): number {
    return this.crc;
  }

  /** Bytes encoded since the last reset. */
  get length(): number {
    return this.w.pos;
  }

  /** Starts a new batch. Drops a buffer that a huge batch grew past keepBytesMax. */
  reset(): void {
    if (this.w.buf.length > this.keepBytesMax) this.w = new Writer(64 * 1024);
    this.w.pos = 0;
  }

  /** The encoded batch: a view, valid until the next reset or add. */
  bytes(): Buffer {
    return this.w.buf.subarray(0, this.w.pos);
  }

  addMessage<T>(type: RecordType, msgType: MessageType<T>, msg: T, syncedBytes: number): void {
    const start = this.begin();
    msgType.write(msg, this.w);
    this.finish(type, start, syncedBytes);
  }

  addBytes(type: RecordType, data: Uint8Array, syncedBytes: number): void {
    const start = this.begin();
    this.w.ensure(data.length);
    this.w.buf.set(data, this.w.pos);
    this.w.pos += data.length;
    this.finish(type, start, syncedBytes);
  }

  private begin(): number {
    const start = this.w.pos;
    assert(start % 8 === 0, 'wal: record start not aligned');
    this.w.ensure(recordHeaderBytes);
    this.w.pos += recordHeaderBytes;
    return start;
  }

  private finish(type: RecordType, start: number, syncedBytes: number): void {
    const dataStart = start + recordHeaderBytes;
    const dataBytes = this.w.pos - dataStart;
    assert(dataBytes <= recordDataBytesMax, `wal: record of ${dataBytes} bytes exceeds ${recordDataBytesMax}`);
    assert(syncedBytes % 8 === 0 && syncedBytes >= 0 && syncedBytes <= segmentOffsetMax, 'wal: bad synced offset');
    const pad = padBytesFor(dataBytes);
    this.w.ensure(pad);
    // The writer may have grown while the body was written: take its buffer now.
    const buf = this.w.buf;
    buf.fill(0, this.w.pos, this.w.pos + pad);
    this.w.pos += pad;
    buf.writeUInt32LE(dataBytes, start);
    buf[start + 4] = type;
    buf[start + 5] = pad;
    buf.writeUInt16LE(0, start + 6);
    buf.writeUInt32LE(syncedBytes, start + 8);
    buf.writeUInt32LE(recordMagic, start + 12);
    buf.writeUInt32LE(this.crc, start + 16);
    let crc = crc32cUpdate(this.crc, buf.subarray(start, start + 16));
    crc = crc32cUpdate(crc, buf.subarray(dataStart, dataStart + dataBytes));
    buf.writeUInt32LE(crc, start + 20);
    this.crc = crc;
  }
}

/** One record read back: data is a view into the segment's bytes. */
export interface RawRecord {
  type: RecordType;
  offset: number;
  /** Offset of the next record. */
  end: number;
  data: Uint8Array;
  syncedBytes: number;
  prevCrc: number;
  crc: number;
}

export type RecordCheck =
  | { ok: true; rec: RawRecord }
  | {
      ok: false;
      reason: string;
      /** The 24 header bytes are all zero: nothing was written here. */
      zeroHeader: boolean;
      /** The record as its header describes it runs past the end of the file. */
      pastEof: boolean;
      /** End of the bytes this record claims (header, plus payload when the header is sane), clamped to the file. */
      claimedEnd: number;
    };

function isZero(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

const zeroChunk = Buffer.alloc(64 * 1024);

/** True when buf[start, end) holds only zero bytes. Compares 64 KiB at a time (memcmp). */
export function isZeroRange(buf: Buffer, start: number, end: number): boolean {
  let p = start;
  while (p < end) {
    const n = Math.min(zeroChunk.length, end - p);
    if (buf.compare(zeroChunk, 0, n, p, p + n) !== 0) return false;
    p += n;
  }
  return true;
}

/**
 * Checks the record at off on its own (its header, length and its own crc,
 * seeded with the prevCrc it stores); the chain is the caller's business.
 * Every length is bounds-checked before it is used.
 */
export function checkRecordAt(buf: Buffer, off: number): RecordCheck {
  assert(off % 8 === 0 && off >= 0 && off <= buf.length, 'wal: bad scan offset');
  const fail = (reason: string, pastEof: boolean, claimedEnd: number): RecordCheck => ({
    ok: false,
    reason,
    zeroHeader: off + recordHeaderBytes <= buf.length && isZero(buf, off, off + recordHeaderBytes),
    pastEof,
    claimedEnd: Math.min(claimedEnd, buf.length),
  });
  const headerEnd = off + recordHeaderBytes;
  if (headerEnd > buf.length) return fail('truncated record header', true, buf.length);
  if (isZero(buf, off, headerEnd)) return fail('zero record header', false, headerEnd);
  const dataBytes = buf.readUInt32LE(off);
  const type = buf[off + 4] as number;
  const pad = buf[off + 5] as number;
  const syncedBytes = buf.readUInt32LE(off + 8);
  if (buf.readUInt32LE(off + 12) !== recordMagic || buf.readUInt16LE(off + 6) !== 0) {
    return fail('bad record header', false, headerEnd);
  }
  if (!isRecordType(type)) return fail(`bad record type ${type}`, false, headerEnd);
  if (dataBytes > recordDataBytesMax || pad !== padBytesFor(dataBytes)) {
    return fail(`bad record length ${dataBytes}`, false, headerEnd);
  }
  const dataEnd = headerEnd + dataBytes;
  const end = dataEnd + pad;
  if (end > buf.length) return fail(`bad record length ${dataBytes}: past end of file`, true, end);
  if (syncedBytes > off || syncedBytes % 8 !== 0) return fail(`bad synced offset ${syncedBytes}`, false, dataEnd);
  const prevCrc = buf.readUInt32LE(off + 16);
  const crc = buf.readUInt32LE(off + 20);
  let sum = crc32cUpdate(prevCrc, buf.subarray(off, off + 16));
  sum = crc32cUpdate(sum, buf.subarray(headerEnd, dataEnd));
  if (sum !== crc) return fail('crc mismatch', false, dataEnd);
  if (!isZero(buf, dataEnd, end)) return fail('bad record padding', false, end);
  const data = new Uint8Array(buf.buffer, buf.byteOffset + headerEnd, dataBytes);
  return { ok: true, rec: { type, offset: off, end, data, syncedBytes, prevCrc, crc } };
}

/**
 * The first record after `after` that is valid on its own and states that
 * the bytes at `after` had been fsynced before it was written (its
 * syncedBytes is past `after`). Finding one proves that the damage at
 * `after` is not a torn write. Searches for the header magic with memmem.
 */
export function findSyncedClaimAfter(buf: Buffer, after: number): RawRecord | undefined {
  let from = after + 8 + 12;
  for (let guard = 0; guard <= buf.length; guard++) {
    const hit = buf.indexOf(magicBytes, from);
    if (hit < 0) return undefined;
    const off = hit - 12;
    from = hit + 1;
    if (off % 8 !== 0) continue;
    const c = checkRecordAt(buf, off);
    if (!c.ok) continue;
    if (c.rec.syncedBytes > after) return c.rec;
    from = c.rec.end + 12;
  }
  return undefined;
}

/**
 * True when the damage at off looks like an interrupted write on a file whose
 * unwritten parts read as zeros: nothing there, the record runs past the end
 * of the file, or one whole sector's share of the record is still zero. A
 * complete record with a wrong checksum does not look torn.
 */
export function looksTorn(buf: Buffer, off: number, c: Extract<RecordCheck, { ok: false }>): boolean {
  if (c.zeroHeader || c.pastEof) return true;
  const end = c.claimedEnd;
  let s = off - (off % sectorBytes);
  for (let guard = 0; s < end && guard <= buf.length; guard++) {
    const a = Math.max(off, s);
    const b = Math.min(end, s + sectorBytes);
    if (b > a && isZero(buf, a, b)) return true;
    s += sectorBytes;
  }
  return false;
}
