/**
 * Snapshot files, offline (etcdutl-ts): what `etcdctl snapshot save` wrote
 * from Maintenance.Snapshot, a database file with the SHA-256 of its bytes
 * appended as its last 32 bytes. The database is a bbolt file in etcd 3.4's
 * layout (snapshot-bbolt.ts), whether etcd-ts or etcd served it; etcd-ts
 * releases before that served an LMDB copy of their backend, which is read
 * too.
 *
 * - `snapshotStatus`: etcdctl's hash (CRC-32C over every bucket's name, keys
 *   and values), the newest revision in the key bucket, the number of entries
 *   in all buckets, and the size. An LMDB file is read through a copy.
 * - `restoreSnapshot` builds the data dir of one member of a NEW cluster, as
 *   etcd's restore does: the digest is checked, a bbolt file's buckets are
 *   copied into a new etcd-ts backend, the old membership is dropped
 *   from the backend and the cluster from --initial-cluster written instead
 *   (new cluster and member ids, derived from the flags as at any bootstrap);
 *   the WAL holds one conf change per member (term 1) and a raft snapshot at
 *   the last of them, and the backend's applied index is set to that index,
 *   so the member starts as a restart of an already bootstrapped member.
 *   --bump-revision N with --mark-compacted moves the store's revision N past
 *   the snapshot's and compacts there, so that no revision a client has seen
 *   is handed out again and no watch resumes from before the restore.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert, nopLogger, type Logger } from '../base/index.js';
import { BboltFormatError } from '../backend/index.js';
import { KvStore } from '../mvcc/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import { MembershipStorage, Schema, bytesToMainRevision } from '../schema/index.js';
import { Snapshotter, Wal } from '../wal/index.js';
import { ConfigError, defaultConfig, validateConfig, verifyBootstrap } from './config.js';
import { isBboltFile } from './bootstrap.js';
import { dataLayout } from './layout.js';
import { RaftCluster, memberToRecord, parseUrls, parseUrlsMap } from './membership.js';
import { bboltSnapshotStatus, importBboltSnapshot } from './snapshot-bbolt.js';

const shaBytes = 32;
const copyChunkBytes = 1 << 20;

/** As etcd: a file whose size is 32 bytes past a 512-byte boundary carries a digest (database files are page multiples). */
function hasDigest(size: number): boolean {
  return size % 512 === shaBytes;
}

/** Go's %v of a byte slice: "[1 2 3]". */
function goBytes(b: Uint8Array): string {
  return `[${Array.from(b).join(' ')}]`;
}

/**
 * Copies the database part of a snapshot file to dest; returns the digest
 * the file carries (undefined if none) and the digest of the copied bytes.
 */
function copyDatabase(src: string, dest: string): { carried: Buffer | undefined; actual: Buffer } {
  const size = statSync(src).size;
  const carriesDigest = hasDigest(size);
  const dbBytes = carriesDigest ? size - shaBytes : size;
  const sha = createHash('sha256');
  const inFd = openSync(src, 'r');
  const outFd = openSync(dest, 'wx', 0o600);
  try {
    const buf = Buffer.allocUnsafe(copyChunkBytes);
    for (let at = 0; at < dbBytes; ) {
      const n = readSync(inFd, buf, 0, Math.min(buf.length, dbBytes - at), at);
      if (n === 0) throw new ConfigError(`unexpected end of ${src}`);
      sha.update(buf.subarray(0, n));
      writeSync(outFd, buf, 0, n);
      at += n;
    }
    let carried: Buffer | undefined;
    if (carriesDigest) {
      carried = Buffer.alloc(shaBytes);
      readSync(inFd, carried, 0, shaBytes, dbBytes);
    }
    return { carried, actual: sha.digest() };
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
}

/** Opens a database file, refusing what LMDB cannot read with etcd's "invalid database". */
function openDatabase(path: string, logger: Logger): Schema {
  // An empty file would open as a new database.
  if (statSync(path).size === 0) throw new ConfigError('invalid database');
  try {
    return Schema.open({ path, logger });
  } catch {
    throw new ConfigError('invalid database');
  }
}

export interface SnapshotStatus {
  /** CRC-32C over every bucket's name, keys and values. */
  readonly hash: number;
  /** The newest revision in the key bucket (0: none). */
  readonly revision: number;
  /** Entries in all buckets. */
  readonly totalKey: number;
  /** Bytes of the database (the digest excluded). */
  readonly totalSize: number;
}

/** Reads a snapshot file's status; the file itself is not modified (a copy is opened). */
export async function snapshotStatus(path: string): Promise<SnapshotStatus> {
  statSync(path); // ENOENT first, as etcd's "stat <file>: no such file or directory"
  if (isBboltFile(path)) return bboltStatus(path);
  const dir = mkdtempSync(join(tmpdir(), 'etcdutl-status-'));
  try {
    const db = join(dir, 'db');
    copyDatabase(path, db);
    const schema = openDatabase(db, nopLogger);
    try {
      let totalKey = 0;
      let revision = 0;
      const first = new Uint8Array([0]);
      for (const bucket of Object.values(schema.buckets)) {
        schema.backend.forEach(bucket, first, undefined, (key) => {
          totalKey++;
          if (bucket === schema.buckets.key) revision = bytesToMainRevision(key);
        });
      }
      return { hash: schema.backend.hash(), revision, totalKey, totalSize: statSync(db).size };
    } finally {
      await schema.backend.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** etcdctl's status of a bbolt snapshot; a file bbolt cannot read is etcd's "invalid database". */
function bboltStatus(path: string): SnapshotStatus {
  try {
    return bboltSnapshotStatus(path);
  } catch (e) {
    if (e instanceof BboltFormatError) throw new ConfigError('invalid database');
    throw e;
  }
}

/** Replaces the bbolt file at dbPath (a copied snapshot) with an etcd-ts backend holding its buckets. */
async function importIntoLmdb(dbPath: string, logger: Logger): Promise<void> {
  const bbolt = `${dbPath}.bbolt`;
  renameSync(dbPath, bbolt);
  try {
    const schema = Schema.open({ path: dbPath, logger });
    try {
      await importBboltSnapshot(bbolt, schema);
      await schema.backend.forceCommit();
    } finally {
      await schema.backend.close();
      rmSync(`${dbPath}-lock`, { force: true });
    }
  } catch (e) {
    if (e instanceof BboltFormatError) throw new ConfigError('invalid database');
    throw e;
  } finally {
    rmSync(bbolt, { force: true });
  }
}

export interface RestoreOptions {
  readonly snapshotPath: string;
  readonly name: string;
  /** '' = <name>.etcd */
  readonly dataDir: string;
  /** '' = <data-dir>/member/wal */
  readonly walDir: string;
  /** --initial-advertise-peer-urls, comma-separated. */
  readonly peerUrls: string;
  /** --initial-cluster. */
  readonly initialCluster: string;
  readonly initialClusterToken: string;
  readonly skipHashCheck: boolean;
  /** Revisions to add to the snapshot's newest one (0: none); needs markCompacted. */
  readonly bumpRevision: number;
  readonly markCompacted: boolean;
  readonly logger?: Logger;
}

/** Checks the flags as etcd's restore does (its bootstrap checks, then the directories). */
function planRestore(o: RestoreOptions): { cluster: RaftCluster; self: bigint; dataDir: string; walDir: string } {
  const cfg = defaultConfig();
  cfg.name = o.name;
  cfg.initialAdvertisePeerUrls = parseUrls(o.peerUrls);
  cfg.initialCluster = parseUrlsMap(o.initialCluster);
  cfg.initialClusterToken = o.initialClusterToken;
  cfg.dataDir = o.dataDir === '' ? `${o.name}.etcd` : o.dataDir;
  validateConfig(cfg);
  verifyBootstrap(cfg);
  const cluster = RaftCluster.fromInitialCluster(o.initialClusterToken, cfg.initialCluster);
  const self = cluster.memberByName(o.name);
  assert(self !== undefined, 'verifyBootstrap found the member in --initial-cluster');
  if (existsSync(cfg.dataDir)) throw new ConfigError(`data-dir "${cfg.dataDir}" exists`);
  if (o.walDir !== '' && existsSync(o.walDir)) throw new ConfigError(`wal-dir "${o.walDir}" exists`);
  return { cluster, self: self.id, dataDir: cfg.dataDir, walDir: o.walDir };
}

/** The checks etcd makes opening the snapshot file, before it creates any directory: it exists and can hold a digest. */
function checkSnapshotFile(path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new ConfigError(`open ${path}: no such file or directory`);
  }
  // etcd seeks to the digest 32 bytes before the end first.
  if (size < shaBytes) throw new ConfigError(`seek ${path}: invalid argument`);
}

/** Rewrites the copied backend for the new cluster; the applied point is the last bootstrap entry. */
async function prepareBackend(dbPath: string, cluster: RaftCluster, applied: number, o: RestoreOptions, logger: Logger): Promise<void> {
  const schema = openDatabase(dbPath, logger);
  try {
    const membership = new MembershipStorage(schema);
    membership.trim();
    for (const m of cluster.memberList()) membership.putMember(memberToRecord(m));
    schema.backend.write(() => schema.setConsistentIndex({ index: applied, term: 1 }));
    schema.setConfState(raftpb.ConfState.create({ voters: cluster.voterIds() }));
    if (o.bumpRevision > 0) await bumpRevision(schema, o.bumpRevision, logger);
    await schema.backend.forceCommit();
  } finally {
    await schema.backend.close();
    rmSync(`${dbPath}-lock`, { force: true });
  }
}

/**
 * Compacts the history at the snapshot's revision (removing it from the
 * file), then records revision + bump as both compacted and current: the
 * store opens at that revision, and every read or watch below it is told
 * "required revision has been compacted".
 */
async function bumpRevision(schema: Schema, bump: number, logger: Logger): Promise<void> {
  const kv = KvStore.open({ schema, logger });
  try {
    await kv.compactionsDone();
    const latest = kv.rev;
    if (latest > kv.compactRev) await kv.compact(latest);
    const bumped = latest + bump;
    logger.info('bumping latest revision', { 'latest-revision': latest, 'bump-amount': bump, 'new-latest-revision': bumped });
    schema.setScheduledCompactRevision(bumped);
    schema.setFinishedCompactRevision(bumped);
    logger.info('marking revision compacted', { revision: bumped });
  } finally {
    kv.close();
  }
}

/** The WAL and snap file of a member that has applied the bootstrap conf changes (one per member). */
async function writeWalAndSnap(walDir: string, snapDir: string, cluster: RaftCluster, memberId: bigint, logger: Logger): Promise<void> {
  const metadata = serverpb.WalMetadata.encode(serverpb.WalMetadata.create({ memberId, clusterId: cluster.clusterId }));
  const wal = await Wal.create(walDir, metadata, { logger });
  try {
    const members = cluster.memberList();
    const entries = members.map((m, i) =>
      raftpb.Entry.create({
        type: raftpb.EntryType.EntryConfChange,
        term: 1,
        index: i + 1,
        data: raftpb.ConfChange.encode(
          raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeAddNode, nodeId: m.id, context: serverpb.MemberRecord.encode(memberToRecord(m)) }),
        ),
      }),
    );
    const commit = entries.length;
    const first = members[0];
    if (first === undefined) throw new ConfigError('no members in the initial cluster');
    await wal.save(raftpb.HardState.create({ term: 1, vote: first.id, commit }), entries, true);
    const confState = raftpb.ConfState.create({ voters: cluster.voterIds() });
    const snap = raftpb.Snapshot.create({
      data: serverpb.SnapshotData.encode(cluster.toSnapshotData()),
      metadata: raftpb.SnapshotMetadata.create({ index: commit, term: 1, confState }),
    });
    await new Snapshotter(snapDir, { logger }).save(snap);
    await wal.saveSnapshot({ index: commit, term: 1, confState });
  } finally {
    await wal.close();
  }
}

/** Builds a new member's data dir from a snapshot file (etcd's `snapshot restore`). */
export async function restoreSnapshot(o: RestoreOptions): Promise<void> {
  const logger = o.logger ?? nopLogger;
  if ((o.bumpRevision === 0) === o.markCompacted) throw new ConfigError('--mark-compacted required if --revision-bump > 0');
  const { cluster, self, dataDir, walDir } = planRestore(o);
  const layout = dataLayout(dataDir, walDir);
  const where = { path: o.snapshotPath, 'wal-dir': layout.walDir, 'data-dir': dataDir, 'snap-dir': layout.snapDir };
  logger.info('restoring snapshot', where);
  checkSnapshotFile(o.snapshotPath);
  mkdirSync(layout.snapDir, { recursive: true, mode: 0o700 });
  const { carried, actual } = copyDatabase(o.snapshotPath, layout.dbPath);
  if (!o.skipHashCheck) {
    if (carried === undefined) throw new ConfigError('snapshot missing hash but --skip-hash-check=false');
    if (!carried.equals(actual)) throw new ConfigError(`expected sha256 ${goBytes(carried)}, got ${goBytes(actual)}`);
  }
  if (isBboltFile(layout.dbPath)) await importIntoLmdb(layout.dbPath, logger);
  await prepareBackend(layout.dbPath, cluster, cluster.members.size, o, logger);
  // As etcd's: the restoring cluster has no local member yet, so its id logs as 0.
  for (const m of cluster.memberList()) logger.info('added member', { 'cluster-id': cluster.clusterId.toString(16), 'local-member-id': '0', 'added-peer-id': m.id.toString(16), 'added-peer-peer-urls': m.peerUrls });
  await writeWalAndSnap(layout.walDir, layout.snapDir, cluster, self, logger);
  logger.info('restored snapshot', where);
}
