/**
 * The file-system calls the WAL and the snapshotter make, behind one
 * interface: node:fs in production (nodeWalFs); a simulation passes a fake
 * that keeps unsynced writes apart from synced ones, so that a simulated
 * crash can lose or tear exactly what a real one could.
 *
 * What the WAL relies on, and a fake must model:
 * - write data reaches the disk only with fdatasync/fsync of its file;
 * - a create, rename or unlink reaches the disk only with fsyncDir of its
 *   directory;
 * - readdir, readFile and size see every change at once, synced or not.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';
import { DirLock } from './lock.js';

export interface WalFs {
  /** Names in dir; throws an ENOENT error when dir does not exist. */
  readdir(dir: string): string[];
  /** mkdir -p with mode 0700; the top-most directory it created, or undefined. */
  mkdirp(dir: string): string | undefined;
  /** Opens a file: 'w+' creates or truncates, 'r+' opens an existing one. */
  open(path: string, flags: 'w+' | 'r+'): number;
  close(fd: number): void;
  /** write(2) at position: may write fewer bytes than asked, returns how many. */
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  /** The same on the thread pool. */
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  /**
   * fdatasync on the calling thread. Optional: a file system whose sync
   * must not block its caller (a simulation, where a crash may strike while
   * a sync is in flight) leaves it out, and the WAL then always uses
   * fdatasync.
   */
  fdatasyncSync?(fd: number): void;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): void;
  /** The size of an open file. */
  fsize(fd: number): number;
  /** The size of a file by name. */
  size(path: string): number;
  readFile(path: string): Promise<Buffer>;
  /** Writes a whole new file (created or truncated) and fsyncs it. */
  writeFileSynced(path: string, data: Uint8Array): Promise<void>;
  /** Removes a file; no error if it does not exist. */
  rm(path: string): Promise<void>;
  rmSync(path: string): void;
  rename(from: string, to: string): Promise<void>;
  /** Makes the names in dir durable (after a create, rename or unlink). */
  fsyncDir(dir: string): Promise<void>;
  /** Takes the directory's exclusive lock (WalLockedError when another holder has it). */
  lock(dir: string): { release(): void };
}

const fdatasyncAsync = promisify(fs.fdatasync);
const fsyncAsync = promisify(fs.fsync);
const writeAsync = promisify(fs.write);

export const nodeWalFs: WalFs = {
  readdir: (dir) => fs.readdirSync(dir),
  mkdirp: (dir) => fs.mkdirSync(dir, { recursive: true, mode: 0o700 }),
  open: (path, flags) => fs.openSync(path, flags, 0o600),
  close: (fd) => fs.closeSync(fd),
  writeSync: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
  write: async (fd, buf, offset, length, position) => (await writeAsync(fd, buf, offset, length, position)).bytesWritten,
  fdatasync: (fd) => fdatasyncAsync(fd),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  fsync: (fd) => fsyncAsync(fd),
  ftruncate: (fd, length) => fs.ftruncateSync(fd, length),
  fsize: (fd) => fs.fstatSync(fd).size,
  size: (path) => fs.statSync(path).size,
  readFile: (path) => fsp.readFile(path),
  async writeFileSynced(path, data) {
    const fh = await fsp.open(path, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  rm: (path) => fsp.rm(path, { force: true }),
  rmSync: (path) => fs.rmSync(path, { force: true }),
  rename: (from, to) => fsp.rename(from, to),
  async fsyncDir(dir) {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  lock: (dir) => DirLock.acquire(dir),
};
