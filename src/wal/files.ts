/**
 * File-system helpers shared by the WAL and the snapshotter: names, listing,
 * complete writes and zero filling, over the WalFs (fs.ts) they are given.
 */
import { assert } from '../base/index.js';
import type { WalFs } from './fs.js';

const hex16 = /^[0-9a-f]{16}$/;

/** Formats n as 16 lower-case hex digits, as segment and snap names use. */
export function hex16Of(n: number): string {
  assert(Number.isSafeInteger(n) && n >= 0, `wal: bad name number ${n}`);
  return n.toString(16).padStart(16, '0');
}

/** Parses 16 hex digits; undefined when malformed or past 2^53. */
export function parseHex16(s: string): number | undefined {
  if (!hex16.test(s)) return undefined;
  const v = Number.parseInt(s, 16);
  return Number.isSafeInteger(v) ? v : undefined;
}

/** A pair name "<a>-<b><ext>" with two 16-digit hex numbers. */
export function parsePairName(name: string, ext: string): [number, number] | undefined {
  if (name.length !== 33 + ext.length || !name.endsWith(ext) || name[16] !== '-') return undefined;
  const a = parseHex16(name.slice(0, 16));
  const b = parseHex16(name.slice(17, 33));
  return a === undefined || b === undefined ? undefined : [a, b];
}

export function pairName(a: number, b: number, ext: string): string {
  return `${hex16Of(a)}-${hex16Of(b)}${ext}`;
}

/** Names in dir, or [] when dir does not exist. */
export function readDirNames(fs: WalFs, dir: string): string[] {
  try {
    return fs.readdir(dir);
  } catch (e: unknown) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
}

export function isErrno(e: unknown, code: string): boolean {
  return e instanceof Error && (e as NodeJS.ErrnoException).code === code;
}

/** Writes all of buf at position, looping over short writes. Page-cache speed: a memcpy. */
export function writeAllSync(fs: WalFs, fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  for (let guard = 0; done < buf.length; guard++) {
    assert(guard <= buf.length, 'wal: write makes no progress');
    done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
  }
}

const zeroFillChunk = Buffer.alloc(1024 * 1024);

/**
 * Writes zeros over [from, to) asynchronously, 1 MiB at a time so that the
 * event loop and the live segment's fsyncs interleave with it; with
 * syncEveryBytes, fdatasyncs after each such stretch, so that the fill's
 * writeback never queues much ahead of the live segment's fdatasyncs.
 * Returns early once stop() says so (the file will not be used).
 */
export async function zeroFill(fs: WalFs, fd: number, from: number, to: number, syncEveryBytes = 0, stop?: () => boolean): Promise<void> {
  let p = from;
  let unsynced = 0;
  while (p < to && stop?.() !== true) {
    const n = Math.min(zeroFillChunk.length, to - p);
    const bytesWritten = await fs.write(fd, zeroFillChunk, 0, n, p);
    assert(bytesWritten > 0, 'wal: zero fill makes no progress');
    p += bytesWritten;
    unsynced += bytesWritten;
    if (syncEveryBytes > 0 && unsynced >= syncEveryBytes) {
      await fs.fdatasync(fd);
      unsynced = 0;
    }
  }
}
