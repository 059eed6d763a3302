/**
 * A fake disk for the WAL and the snapshotter (src/wal's WalFs), modelling
 * what a crash can do to a real one:
 * - a file's data is durable up to its last fdatasync/fsync; at a crash each
 *   512-byte sector written since then independently keeps its new or its
 *   old content (torn and reordered write-back), and a file that grew keeps
 *   a random number of its new sectors;
 * - a create, rename or unlink is durable once its directory is fsynced; at
 *   a crash a random prefix of the directory's later changes survives.
 * Directories themselves are durable when made. Every async call completes
 * on the simulation's loop, so a crash can fall between a call and its
 * completion (an fdatasync that never returned made nothing durable).
 */
import { basename, dirname } from 'node:path';
import type { Rand } from '../../src/base/index.js';
import { WalLockedError, type WalFs } from '../../src/wal/index.js';
import type { Proc } from './loop.js';

const sectorBytes = 512;

interface Inode {
  data: Buffer;
  durable: Buffer;
}

/** One atomic change of a directory: names set to an inode, or removed (undefined). */
type DirOp = readonly (readonly [string, Inode | undefined])[];

interface Dir {
  readonly names: Map<string, Inode>;
  durable: Map<string, Inode>;
  /** Changes since the last fsync, oldest first (inode undefined: unlinked). */
  pending: DirOp[];
}

function enoent(what: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, ${what}`), { code: 'ENOENT' });
}

/** What survives crashes: the directories and the files' durable contents. */
export class FakeDisk {
  private readonly dirs = new Map<string, Dir>();
  fsyncs = 0;
  /** Set: the next fdatasync/fsync never completes; this runs instead (the process crashes while the write is in flight). */
  crashAtNextSync: (() => void) | undefined;

  dir(path: string): Dir | undefined {
    return this.dirs.get(path);
  }

  mkdirp(path: string): string | undefined {
    let made: string | undefined;
    for (let p = path; !this.dirs.has(p); p = dirname(p)) {
      this.dirs.set(p, { names: new Map(), durable: new Map(), pending: [] });
      made = p;
      if (dirname(p) === p) break;
    }
    return made;
  }

  /** A crash: everything not durable is lost or torn, as the header describes. */
  crash(rand: Rand): void {
    const survivors = new Set<Inode>();
    for (const d of this.dirs.values()) {
      const keep = d.pending.length === 0 ? 0 : rand.intn(d.pending.length + 1);
      const names = new Map(d.durable);
      for (const op of d.pending.slice(0, keep)) {
        for (const [name, inode] of op) {
          if (inode === undefined) names.delete(name);
          else names.set(name, inode);
        }
      }
      d.names.clear();
      for (const [n, i] of names) d.names.set(n, i);
      d.durable = new Map(names);
      d.pending = [];
      for (const i of names.values()) survivors.add(i);
    }
    for (const inode of survivors) {
      inode.durable = tear(inode, rand);
      inode.data = Buffer.from(inode.durable);
    }
  }

  /** Applies one atomic change to dir's names (a rename is one change of two names). */
  change(dir: string, op: DirOp): void {
    const d = this.dirs.get(dir);
    if (d === undefined) throw enoent(`open '${dir}'`);
    for (const [name, inode] of op) {
      if (inode === undefined) d.names.delete(name);
      else d.names.set(name, inode);
    }
    d.pending.push(op);
  }

  lookup(path: string): Inode | undefined {
    return this.dirs.get(dirname(path))?.names.get(basename(path));
  }

  syncDir(path: string): void {
    const d = this.dirs.get(path);
    if (d === undefined) throw enoent(`open '${path}'`);
    d.durable = new Map(d.names);
    d.pending = [];
  }
}

/** The contents a crash leaves of a file: durable bytes, with unsynced sectors kept or not at random. */
function tear(inode: Inode, rand: Rand): Buffer {
  const { data, durable } = inode;
  if (data.equals(durable)) return durable;
  const sectors = Math.ceil(Math.max(data.length, durable.length) / sectorBytes);
  let length = durable.length;
  if (data.length < durable.length && rand.intn(2) === 0) length = data.length;
  const out = Buffer.alloc(Math.max(data.length, durable.length));
  durable.copy(out);
  for (let s = 0; s < sectors; s++) {
    const from = s * sectorBytes;
    const to = Math.min(from + sectorBytes, data.length);
    if (from >= data.length) break;
    if (data.subarray(from, to).equals(durable.subarray(from, Math.min(to, durable.length))) && to <= durable.length) continue;
    if (rand.intn(2) === 0) continue;
    data.copy(out, from, from, to);
    if (to > length) length = to;
  }
  return out.subarray(0, length);
}

/** One process's view of the disk: its open files and locks; async calls complete on its loop. */
export class FakeFs implements WalFs {
  private readonly fds = new Map<number, Inode>();
  private nextFd = 3;
  private readonly locks = new Set<string>();

  /**
   * Present when this process syncs small writes on its own thread, as the
   * real fs does (wal.ts): such a sync takes no simulated time, and a crash
   * armed for it happens inside the call, so nothing after it runs.
   */
  readonly fdatasyncSync: ((fd: number) => void) | undefined;

  constructor(
    private readonly disk: FakeDisk,
    private readonly proc: Proc,
    private readonly rand: Rand,
    syncInline = false,
  ) {
    this.fdatasyncSync = syncInline ? (fd) => this.syncNow(fd) : undefined;
  }

  private syncNow(fd: number): void {
    const inode = this.inode(fd);
    const crash = this.disk.crashAtNextSync;
    if (crash !== undefined) {
      this.disk.crashAtNextSync = undefined;
      crash();
      throw new Error('simulated crash inside fdatasync');
    }
    this.makeDurable(inode);
  }

  private makeDurable(inode: Inode): void {
    inode.durable = Buffer.from(inode.data);
    this.disk.fsyncs++;
  }

  /** Completes on a later event of this process, minMs..maxMs from now (never, if it crashes first). */
  private later<T>(fn: () => T, minMs = 0, maxMs = minMs): Promise<T> {
    return new Promise((resolve, reject) => {
      this.proc.after(minMs + this.rand.intn(maxMs - minMs + 1), () => {
        try {
          resolve(fn());
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
  }

  private inode(fd: number): Inode {
    const i = this.fds.get(fd);
    if (i === undefined) throw Object.assign(new Error('EBADF: bad file descriptor'), { code: 'EBADF' });
    return i;
  }

  readdir(dir: string): string[] {
    const d = this.disk.dir(dir);
    if (d === undefined) throw enoent(`scandir '${dir}'`);
    return [...d.names.keys()].sort();
  }

  mkdirp(dir: string): string | undefined {
    return this.disk.mkdirp(dir);
  }

  open(path: string, flags: 'w+' | 'r+'): number {
    let inode = this.disk.lookup(path);
    if (flags === 'r+') {
      if (inode === undefined) throw enoent(`open '${path}'`);
    } else if (inode === undefined) {
      inode = { data: Buffer.alloc(0), durable: Buffer.alloc(0) };
      this.disk.change(dirname(path), [[basename(path), inode]]);
    } else {
      inode.data = Buffer.alloc(0);
    }
    const fd = this.nextFd++;
    this.fds.set(fd, inode);
    return fd;
  }

  close(fd: number): void {
    this.inode(fd);
    this.fds.delete(fd);
  }

  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const inode = this.inode(fd);
    const end = position + length;
    if (end > inode.data.length) {
      const grown = Buffer.alloc(end);
      inode.data.copy(grown);
      inode.data = grown;
    }
    inode.data.set(buf.subarray(offset, offset + length), position);
    return length;
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.later(() => this.writeSync(fd, buf, offset, length, position));
  }

  fdatasync(fd: number): Promise<void> {
    const inode = this.inode(fd);
    const crash = this.disk.crashAtNextSync;
    if (crash !== undefined) {
      this.disk.crashAtNextSync = undefined;
      // Before the sync can complete (it takes at least 1 ms).
      this.proc.loop.at(0, crash);
    }
    return this.later(() => this.makeDurable(inode), 1, 5);
  }

  fsync(fd: number): Promise<void> {
    return this.fdatasync(fd);
  }

  ftruncate(fd: number, length: number): void {
    const inode = this.inode(fd);
    const next = Buffer.alloc(length);
    inode.data.copy(next, 0, 0, Math.min(length, inode.data.length));
    inode.data = next;
  }

  fsize(fd: number): number {
    return this.inode(fd).data.length;
  }

  size(path: string): number {
    const inode = this.disk.lookup(path);
    if (inode === undefined) throw enoent(`stat '${path}'`);
    return inode.data.length;
  }

  readFile(path: string): Promise<Buffer> {
    return this.later(() => {
      const inode = this.disk.lookup(path);
      if (inode === undefined) throw enoent(`open '${path}'`);
      return Buffer.from(inode.data);
    });
  }

  async writeFileSynced(path: string, data: Uint8Array): Promise<void> {
    const fd = this.open(path, 'w+');
    try {
      this.writeSync(fd, data, 0, data.length, 0);
      await this.fdatasync(fd);
    } finally {
      this.close(fd);
    }
  }

  rm(path: string): Promise<void> {
    return this.later(() => this.rmSync(path));
  }

  rmSync(path: string): void {
    if (this.disk.lookup(path) !== undefined) this.disk.change(dirname(path), [[basename(path), undefined]]);
  }

  rename(from: string, to: string): Promise<void> {
    return this.later(() => {
      const inode = this.disk.lookup(from);
      if (inode === undefined) throw enoent(`rename '${from}' -> '${to}'`);
      if (dirname(from) !== dirname(to)) throw new Error(`fake fs: rename across directories: ${from} -> ${to}`);
      this.disk.change(dirname(from), [
        [basename(from), undefined],
        [basename(to), inode],
      ]);
    });
  }

  fsyncDir(dir: string): Promise<void> {
    return this.later(() => this.disk.syncDir(dir), 0, 2);
  }

  lock(dir: string): { release(): void } {
    if (this.locks.has(dir)) throw new WalLockedError(dir, 0);
    this.locks.add(dir);
    return { release: () => this.locks.delete(dir) };
  }
}
