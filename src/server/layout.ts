/**
 * The data directory, laid out as etcd's:
 *
 *   <data-dir>/member/wal/          WAL segments (or --wal-dir)
 *   <data-dir>/member/snap/         raft snap files (<term>-<index>.snap)
 *   <data-dir>/member/snap/db       the backend (LMDB file; db-lock beside it)
 *   <data-dir>/member/snap/<index>.snap.db   a database received from the leader, before it is installed
 *
 * Directories are created 0700, as etcd creates them.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config.js';

export interface DataLayout {
  readonly dataDir: string;
  readonly memberDir: string;
  readonly walDir: string;
  readonly snapDir: string;
  readonly dbPath: string;
}

export function dataLayout(dataDir: string, walDir: string): DataLayout {
  const memberDir = join(dataDir, 'member');
  const snapDir = join(memberDir, 'snap');
  return {
    dataDir,
    memberDir,
    walDir: walDir !== '' ? walDir : join(memberDir, 'wal'),
    snapDir,
    dbPath: join(snapDir, 'db'),
  };
}

/** The file a database received with a snapshot at this index waits in. */
export function receivedDbPath(layout: DataLayout, index: number): string {
  return join(layout.snapDir, `${index.toString(16).padStart(16, '0')}.snap.db`);
}

/** Creates the directories, failing with etcd's message when the data dir cannot be used. */
export function prepareLayout(layout: DataLayout): void {
  try {
    mkdirSync(layout.snapDir, { recursive: true, mode: 0o700 });
    mkdirSync(layout.walDir, { recursive: true, mode: 0o700 });
    accessSync(layout.dataDir, constants.W_OK);
    if (!statSync(layout.dataDir).isDirectory()) throw new Error(`${layout.dataDir} is not a directory`);
  } catch (e) {
    throw new ConfigError(`cannot access data directory: ${(e as Error).message}`);
  }
}
