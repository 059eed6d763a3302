/**
 * Snap files: one raftpb.Snapshot per file, named after its term and index,
 * with a checksum. Written to a temporary name, synced and renamed, so a file
 * under its final name is complete; a file that fails its checks anyway is
 * renamed *.broken and the next older one is tried.
 */
import { join } from 'node:path';
import { assert, crc32c, nopLogger, type Logger } from '../base/index.js';
import { DecodeError, raftpb } from '../pb/index.js';
import { SnapshotCorruptError } from './errors.js';
import { isErrno, pairName, parsePairName, readDirNames } from './files.js';
import { nodeWalFs, type WalFs } from './fs.js';
import type { WalSnapshotMarker } from './read.js';

const snapExt = '.snap';
const tmpExt = '.tmp';
const brokenExt = '.broken';
/** Header bytes 0..4: "ESNP" read as a little-endian u32. */
const snapMagic = 0x504e5345;
export const snapHeaderBytes = 16;
/** The largest snap file read back: bounds the allocation a corrupt file can cause. */
export const snapFileBytesMax = 1024 * 1024 * 1024;

export interface SnapshotterOptions {
  logger?: Logger;
  /** The file system (default node:fs; a simulation passes a fake). */
  fs?: WalFs;
}

export interface SnapName {
  name: string;
  term: number;
  index: number;
}

/** Encodes a snap file: header (magic, crc32c of the body, body length, zero) then the body. */
export function encodeSnapFile(snap: raftpb.Snapshot): Buffer {
  const body = raftpb.Snapshot.encode(snap);
  assert(body.length + snapHeaderBytes <= snapFileBytesMax, `snap: snapshot of ${body.length} bytes is too large`);
  const out = Buffer.alloc(snapHeaderBytes + body.length);
  out.writeUInt32LE(snapMagic, 0);
  out.writeUInt32LE(crc32c(body), 4);
  out.writeUInt32LE(body.length, 8);
  out.set(body, snapHeaderBytes);
  return out;
}

/** Decodes and checks a snap file's bytes; throws SnapshotCorruptError naming file. */
export function decodeSnapFile(buf: Buffer, file: string): raftpb.Snapshot {
  if (buf.length < snapHeaderBytes) throw new SnapshotCorruptError(file, 'shorter than its header');
  if (buf.readUInt32LE(0) !== snapMagic || buf.readUInt32LE(12) !== 0) throw new SnapshotCorruptError(file, 'bad header');
  const bodyBytes = buf.readUInt32LE(8);
  if (bodyBytes !== buf.length - snapHeaderBytes) {
    throw new SnapshotCorruptError(file, `length ${bodyBytes} does not match the file size ${buf.length}`);
  }
  const body = buf.subarray(snapHeaderBytes);
  if (crc32c(body) !== buf.readUInt32LE(4)) throw new SnapshotCorruptError(file, 'crc mismatch');
  try {
    return raftpb.Snapshot.decode(body);
  } catch (e: unknown) {
    if (e instanceof DecodeError) throw new SnapshotCorruptError(file, `undecodable: ${e.message}`);
    throw e;
  }
}

/** How long one save took, in seconds, by part (etcd's snap save metrics). */
export interface SnapSaveTimes {
  readonly marshalSeconds: number;
  readonly fsyncSeconds: number;
  readonly totalSeconds: number;
}

export class Snapshotter {
  private readonly logger: Logger;
  private readonly fs: WalFs;
  /** Told the timings of each save (metrics). */
  onSave: ((t: SnapSaveTimes) => void) | undefined;

  constructor(
    readonly dir: string,
    opts?: SnapshotterOptions,
  ) {
    this.logger = opts?.logger ?? nopLogger;
    this.fs = opts?.fs ?? nodeWalFs;
  }

  /**
   * Saves snap as <term>-<index>.snap (16 hex digits each): written to a
   * temporary file, fsynced, renamed, and the directory fsynced. Save the snap
   * file before its marker goes into the WAL (Wal.saveSnapshot).
   */
  async save(snap: raftpb.Snapshot): Promise<void> {
    const meta = snap.metadata;
    assert(meta !== undefined, 'snap: snapshot without metadata');
    assert(Number.isSafeInteger(meta.index) && meta.index > 0, `snap: bad snapshot index ${meta.index}`);
    const startedMs = performance.now();
    const bytes = encodeSnapFile(snap);
    const marshalSeconds = (performance.now() - startedMs) / 1000;
    this.fs.mkdirp(this.dir);
    const name = pairName(meta.term, meta.index, snapExt);
    const tmp = join(this.dir, name + tmpExt);
    // The write and its fsync are one call; for a snap file of a few KiB the fsync is nearly all of it.
    const syncStartedMs = performance.now();
    await this.fs.writeFileSynced(tmp, bytes);
    const fsyncSeconds = (performance.now() - syncStartedMs) / 1000;
    await this.fs.rename(tmp, join(this.dir, name));
    await this.fs.fsyncDir(this.dir);
    this.onSave?.({ marshalSeconds, fsyncSeconds, totalSeconds: (performance.now() - startedMs) / 1000 });
  }

  /**
   * The newest snapshot whose file is intact and whose marker (same index
   * and term) is in markers, or undefined. A file that fails its checks is
   * renamed *.broken, logged, and the next older one is tried.
   */
  async loadNewestAvailable(markers: readonly WalSnapshotMarker[]): Promise<raftpb.Snapshot | undefined> {
    for (const s of this.snapNames()) {
      if (!markers.some((m) => m.index === s.index && m.term === s.term)) continue;
      const file = join(this.dir, s.name);
      try {
        return await this.read(file, s);
      } catch (e: unknown) {
        if (isErrno(e, 'ENOENT')) continue; // Purged meanwhile.
        if (!(e instanceof SnapshotCorruptError)) throw e;
        this.logger.warn('snap: skipping a corrupt snapshot file', { file, reason: e.reason });
        await this.fs.rename(file, file + brokenExt);
        await this.fs.fsyncDir(this.dir);
      }
    }
    return undefined;
  }

  /** Deletes all but the newest keep snap files, and leftover temporary files. */
  async purge(keep: number): Promise<void> {
    assert(Number.isSafeInteger(keep) && keep >= 0, `snap: bad keep count ${keep}`);
    const names = this.snapNames();
    const doomed = names.slice(keep).map((s) => s.name);
    for (const name of readDirNames(this.fs, this.dir)) if (name.endsWith(snapExt + tmpExt)) doomed.push(name);
    if (doomed.length === 0) return;
    for (const name of doomed) await this.fs.rm(join(this.dir, name));
    await this.fs.fsyncDir(this.dir);
    this.logger.info('snap: purged snapshot files', { dir: this.dir, count: doomed.length });
  }

  /** The snap files present, newest (highest index, then term) first. */
  snapNames(): SnapName[] {
    const out: SnapName[] = [];
    for (const name of readDirNames(this.fs, this.dir)) {
      const parsed = parsePairName(name, snapExt);
      if (parsed !== undefined) out.push({ name, term: parsed[0], index: parsed[1] });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  private async read(file: string, expect: SnapName): Promise<raftpb.Snapshot> {
    const size = this.fs.size(file);
    if (size > snapFileBytesMax) throw new SnapshotCorruptError(file, `size ${size} exceeds ${snapFileBytesMax}`);
    const buf = await this.fs.readFile(file);
    const snap = decodeSnapFile(buf, file);
    const meta = snap.metadata;
    if (meta === undefined || meta.index !== expect.index || meta.term !== expect.term) {
      throw new SnapshotCorruptError(file, 'metadata does not match the file name');
    }
    return snap;
  }
}
