/**
 * Helpers shared by this folder's tests and its crash child: temporary
 * directories and deterministic entries whose payload can be recomputed
 * from the index alone (so a reader can check any entry it gets back).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../base/index.js';
import { raftpb } from '../pb/index.js';

/** Entries of the crash test: 280..319 bytes of payload, about the 300 of a small put. */
export const crashEntrySpread = 40;
export const crashEntryMinBytes = 280;

export function makeTmpDir(prefix: string): string {
  return fs.mkdtempSync(join(os.tmpdir(), `etcd-ts-wal-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The payload of the entry at index in term: minBytes..(minBytes + spread - 1) bytes derived from both. */
export function payloadFor(index: number, term: number, spread = 600, minBytes = 20): Uint8Array {
  const seed = crc32c(Buffer.from(`${index}/${term}`));
  const n = minBytes + (seed % spread);
  const out = new Uint8Array(n);
  let x = seed || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function makeEntry(index: number, term: number, spread?: number, minBytes?: number): raftpb.Entry {
  return raftpb.Entry.create({ index, term, data: payloadFor(index, term, spread, minBytes) });
}

export function makeEntries(from: number, to: number, term: number, spread?: number, minBytes?: number): raftpb.Entry[] {
  const out: raftpb.Entry[] = [];
  for (let i = from; i <= to; i++) out.push(makeEntry(i, term, spread, minBytes));
  return out;
}

/** Compact, comparable form of entries: "index/term/crc-of-data". */
export function describeEntries(entries: readonly raftpb.Entry[]): string[] {
  return entries.map((e) => `${e.index}/${e.term}/${crc32c(e.data).toString(16)}`);
}

/** Copies a directory's regular files (a WAL dir is flat). */
export function copyDir(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const name of fs.readdirSync(from)) fs.copyFileSync(join(from, name), join(to, name));
}
