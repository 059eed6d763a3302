/**
 * The directory lock. Node has no flock(2), so the lock is a file, `LOCK`,
 * created with O_EXCL and holding "<pid> <start time>" of its owner. A lock
 * whose owner is gone (its pid is dead, or now belongs to a process that
 * started at another time: pid reuse after a crash) is stale and is taken
 * over. Within one process a set of held directories refuses a second open.
 *
 * NB: taking over a stale lock is unlink-then-create, so two processes that
 * find the same stale lock at the same instant could both win. Starting two
 * members on one data directory at the same moment after a crash is the only
 * way to get there; flock would close it.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { assert } from '../base/index.js';
import { WalLockedError } from './errors.js';
import { isErrno } from './files.js';

export const lockFileName = 'LOCK';

const heldDirs = new Set<string>();

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or '' where /proc is missing. */
function processStartTime(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '';
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: unknown) {
    return isErrno(e, 'EPERM');
  }
}

/** The pid of a live owner of this lock content, or undefined when stale. */
function liveOwner(content: string): number | undefined {
  const [pidText, start] = content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  if (pid === process.pid) return undefined; // Not in heldDirs: a previous process with our pid.
  if (start !== undefined && start !== '' && processStartTime(pid) !== start) return undefined;
  return pid;
}

export class DirLock {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly key: string,
  ) {}

  /** Takes the lock on dir (which must exist) or throws WalLockedError. */
  static acquire(dir: string): DirLock {
    const key = fs.realpathSync(dir);
    if (heldDirs.has(key)) throw new WalLockedError(dir, process.pid);
    const path = join(dir, lockFileName);
    const content = `${process.pid} ${processStartTime(process.pid)}\n`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(path, content, { flag: 'wx', mode: 0o600 });
        heldDirs.add(key);
        return new DirLock(dir, key);
      } catch (e: unknown) {
        if (!isErrno(e, 'EEXIST')) throw e;
      }
      let existing: string;
      try {
        existing = fs.readFileSync(path, 'utf8');
      } catch (e: unknown) {
        if (isErrno(e, 'ENOENT')) continue;
        throw e;
      }
      const owner = liveOwner(existing);
      if (owner !== undefined) throw new WalLockedError(dir, owner);
      fs.rmSync(path, { force: true });
    }
    throw new WalLockedError(dir, 0);
  }

  release(): void {
    assert(!this.released, 'wal: lock released twice');
    this.released = true;
    heldDirs.delete(this.key);
    fs.rmSync(join(this.dir, lockFileName), { force: true });
  }
}
