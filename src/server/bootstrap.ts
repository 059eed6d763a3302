/**
 * Bootstrap: decide what this member is at start and load what it persisted.
 *
 * - A WAL exists and holds what raft saved: a restart. The WAL metadata
 *   names the member and cluster;
 *   the newest snap file whose marker the WAL holds, and the entries after
 *   it, fill raft's storage. The flags' cluster settings are ignored, as etcd
 *   ignores them. With --force-new-cluster the log is first made that of a
 *   one-member cluster (force-new-cluster.ts) and saved so.
 * - A WAL exists but holds nothing raft saved, --initial-cluster-state new
 *   (a first start stopped between creating it and raft's first save: a port
 *   in use, a kill): it is removed and the member bootstraps again from its
 *   flags. It promised nothing to anyone, and a restart from that log would
 *   leave raft without a configuration: a member that never campaigns. (etcd
 *   opens its listeners before it writes any data, so a port in use cannot
 *   do this there. A joining member restarts from such a log: raft starts
 *   empty for it anyway.)
 * - The WAL fails its checks (a damaged record, not a torn tail), or does
 *   not continue from any snapshot the member still has (the newer snap
 *   files damaged and set aside), and the member has peers: it takes its
 *   place again under a new id, starting empty as a learner that promotes
 *   itself (wal-replace.ts). So does a member whose earlier replacement
 *   stopped half way: one whose WAL has `replaces` set and nothing raft
 *   saved, or none beside a WAL set aside.
 * - No WAL, --initial-cluster-state new: a new cluster. Ids come from the
 *   initial cluster (etcd's derivation); raft is bootstrapped with one
 *   conf-change entry per member, whose context is the member record.
 * - No WAL, --initial-cluster-state existing: joining. The cluster id and the
 *   members come from the peers listed in --initial-cluster; this member is
 *   the one with our --initial-advertise-peer-urls. Raft starts empty and the
 *   leader sends the log or a snapshot.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { assert, idToHex, type Logger } from '../base/index.js';
import { etcdserverpb, raftpb, serverpb } from '../pb/index.js';
import { MemoryStorage, type Peer } from '../raft/index.js';
import { fetchClusterFromPeers } from '../transport/index.js';
import { Snapshotter, Wal, WalCorruptError, WalSnapshotNotFoundError, entriesAfterSnapshot, nodeWalFs, type WalMetrics, type WalOpenResult } from '../wal/index.js';
import { ConfigError, otherPeerUrls, verifyBootstrap, type ServerConfig } from './config.js';
import { appliedIndexAtStart, standaloneLog } from './force-new-cluster.js';
import type { DataLayout } from './layout.js';
import { RaftCluster, computeMemberId, memberToRecord, sameUrls } from './membership.js';
import { peerTransportTls } from './tls.js';
import { completeReplacement, damagedPath, mayReplace, replacementInterrupted, startReplacement } from './wal-replace.js';

export interface BootState {
  readonly kind: 'restart' | 'new' | 'join';
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly wal: Wal;
  readonly snapshotter: Snapshotter;
  readonly storage: MemoryStorage;
  /** The snapshot raft's storage starts from (restart only). */
  readonly snapshot: raftpb.Snapshot | undefined;
  /** New cluster: the peers to bootstrap raft with. */
  readonly peers: Peer[];
  /** Join: the cluster's members as the peers reported them (transport peers until the log says more). */
  readonly remotes: etcdserverpb.Member[];
  /** This member replaced one whose WAL was damaged (wal-replace.ts): it promotes itself from learner once caught up. */
  readonly promoteSelf: boolean;
}

const fetchTimeoutMs = 5000;

/** bbolt's meta page magic, after the 16-byte page header: the mark of a database etcd wrote. */
const bboltMagic = 0xed0cdaed;

/** Whether the file at path is a bbolt database (false when it cannot be read). */
export function isBboltFile(path: string): boolean {
  let head: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      head = Buffer.alloc(20);
      if (readSync(fd, head, 0, 20, 0) < 20) return false;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  return head.readUInt32LE(16) === bboltMagic;
}

/** A data dir etcd wrote is refused by name, before its WAL (another format too) reads as corrupt. */
function refuseEtcdDataDir(layout: DataLayout): void {
  if (isBboltFile(layout.dbPath)) {
    throw new ConfigError(
      `${layout.dbPath} is a bbolt database: this data dir was written by etcd, whose files etcd-ts does not read; ` +
        'restore its db file (with --skip-hash-check) or a snapshot of it with etcdutl-ts snapshot restore, or copy the keys with etcdctl make-mirror',
    );
  }
}

export async function bootstrap(cfg: ServerConfig, layout: DataLayout, logger: Logger, metrics?: WalMetrics): Promise<BootState> {
  refuseEtcdDataDir(layout);
  const snapshotter = new Snapshotter(layout.snapDir, { logger });
  if (Wal.exists(layout.walDir)) {
    let r: WalOpenResult;
    try {
      r = await Wal.open(layout.walDir, { logger, metrics });
    } catch (e) {
      if (!(e instanceof WalCorruptError) || !mayReplace(cfg)) throw e;
      return replaced(await startReplacement(cfg, layout, logger, metrics, e.message), snapshotter);
    }
    const md = serverpb.WalMetadata.decode(r.metadata);
    // A replacement (wal-replace.ts) whose raft never saved anything may not have reached the cluster yet.
    if (md.replaces !== 0n && neverUsed(r)) return replaced({ wal: r.wal, metadata: md, members: await completeReplacement(cfg, md, logger) }, snapshotter);
    // A joining member starts raft empty anyway; a new cluster's member needs its bootstrap entries.
    if (!neverUsed(r) || cfg.initialClusterState !== 'new') {
      try {
        return await restart(r, snapshotter, logger, cfg.forceNewCluster ? layout : undefined);
      } catch (e) {
        // The log does not continue from any snapshot the member still has (the newer ones damaged and set aside).
        if (!(e instanceof WalSnapshotNotFoundError) || !mayReplace(cfg)) throw e;
        await r.wal.close();
        return replaced(await startReplacement(cfg, layout, logger, metrics, e.message), snapshotter);
      }
    }
    // A first start that stopped before raft saved anything (a port in use, a kill): the member
    // promised nothing to anyone, and a restart from this log would have no configuration at all.
    logger.warn('the WAL holds nothing raft saved; bootstrapping the member again', { 'wal-dir': layout.walDir });
    await r.wal.close();
    await removeDirEntries(layout.walDir);
  }
  if (replacementInterrupted(layout) && mayReplace(cfg)) {
    const cause = `the WAL was set aside as ${damagedPath(layout.walDir)} and no new one created`;
    return replaced(await startReplacement(cfg, layout, logger, metrics, cause), snapshotter);
  }
  if (cfg.initialClusterState === 'new') return newCluster(cfg, layout, snapshotter, metrics);
  return join(cfg, layout, snapshotter, logger, metrics);
}

/** A log with nothing but its metadata: no entry, no hard state, no snapshot but the initial one. */
function neverUsed(r: WalOpenResult): boolean {
  const hs = r.hardState;
  return r.entries.length === 0 && hs.term === 0 && hs.vote === 0n && hs.commit === 0 && r.snapshots.every((s) => s.index === 0);
}

/** Removes what the WAL dir holds (it stays, as prepareLayout made it), durably, through the WAL's own file system. */
async function removeDirEntries(dir: string): Promise<void> {
  for (const name of nodeWalFs.readdir(dir)) await nodeWalFs.rm(joinPath(dir, name));
  await nodeWalFs.fsyncDir(dir);
}

/** forceNewCluster: the layout of the member to restart as a one-member cluster (--force-new-cluster). */
async function restart(r: WalOpenResult, snapshotter: Snapshotter, logger: Logger, forceNewCluster: DataLayout | undefined): Promise<BootState> {
  const md = serverpb.WalMetadata.decode(r.metadata);
  const snapshot = await snapshotter.loadNewestAvailable(r.snapshots);
  const meta = snapshot?.metadata;
  let entries = entriesAfterSnapshot(r, {
    index: meta?.index ?? 0,
    term: meta?.term ?? 0,
    ...(meta?.confState ? { confState: meta.confState } : {}),
  });
  let hardState = r.hardState;
  if (forceNewCluster !== undefined) {
    const forced = standaloneLog(md.memberId, {
      hardState,
      entries,
      snapshotIndex: meta?.index ?? 0,
      snapshotConfState: meta?.confState,
      appliedIndex: await appliedIndexAtStart(forceNewCluster, meta?.index ?? 0),
    });
    if (forced.discarded > 0) {
      logger.info('discarding uncommitted WAL entries', {
        'entry-index': forced.discardedFrom,
        'commit-index-from-wal': hardState.commit,
        'number-of-discarded-entries': forced.discarded,
      });
    }
    // Durable before raft starts: a crash from here on restarts (with or without the flag) as the
    // one-member cluster, its removals committed in the log.
    await r.wal.save(forced.hardState, forced.appended, true);
    entries = forced.entries;
    hardState = forced.hardState;
    logger.info('forcing restart member', {
      'cluster-id': idToHex(md.clusterId),
      'local-member-id': idToHex(md.memberId),
      'commit-index': hardState.commit,
      'removed-members': forced.removed.map(idToHex),
    });
  }
  const storage = new MemoryStorage();
  if (snapshot !== undefined) storage.applySnapshot(snapshot);
  storage.setHardState(hardState);
  if (entries.length > 0) storage.append(entries);
  logger.info('restarting member', {
    'local-member-id': idToHex(md.memberId),
    'cluster-id': idToHex(md.clusterId),
    commit: hardState.commit,
    'snapshot-index': meta?.index ?? 0,
    entries: entries.length,
  });
  return {
    kind: 'restart',
    memberId: md.memberId,
    clusterId: md.clusterId,
    wal: r.wal,
    snapshotter,
    storage,
    snapshot,
    peers: [],
    remotes: [],
    promoteSelf: md.replaces !== 0n,
  };
}

/** A member that replaced a damaged one (wal-replace.ts): it starts empty, as a joining member. */
function replaced(r: { wal: Wal; metadata: serverpb.WalMetadata; members: etcdserverpb.Member[] }, snapshotter: Snapshotter): BootState {
  return {
    kind: 'join',
    memberId: r.metadata.memberId,
    clusterId: r.metadata.clusterId,
    wal: r.wal,
    snapshotter,
    storage: new MemoryStorage(),
    snapshot: undefined,
    peers: [],
    remotes: r.members,
    promoteSelf: true,
  };
}

async function newCluster(cfg: ServerConfig, layout: DataLayout, snapshotter: Snapshotter, metrics: WalMetrics | undefined): Promise<BootState> {
  verifyBootstrap(cfg);
  const cluster = RaftCluster.fromInitialCluster(cfg.initialClusterToken, cfg.initialCluster);
  const self = cluster.memberByName(cfg.name);
  assert(self !== undefined, 'verifyBootstrap found the member in --initial-cluster');
  const metadata = serverpb.WalMetadata.encode(serverpb.WalMetadata.create({ memberId: self.id, clusterId: cluster.clusterId }));
  const wal = await Wal.create(layout.walDir, metadata, { metrics });
  const peers = cluster.memberList().map((m) => ({ id: m.id, context: serverpb.MemberRecord.encode(memberToRecord(m)) }));
  return {
    kind: 'new',
    memberId: self.id,
    clusterId: cluster.clusterId,
    wal,
    snapshotter,
    storage: new MemoryStorage(),
    snapshot: undefined,
    peers,
    remotes: [],
    promoteSelf: false,
  };
}

async function join(cfg: ServerConfig, layout: DataLayout, snapshotter: Snapshotter, logger: Logger, metrics: WalMetrics | undefined): Promise<BootState> {
  const mine = [...cfg.initialAdvertisePeerUrls].sort();
  const others = otherPeerUrls(cfg);
  let fetched: { clusterId: bigint; members: etcdserverpb.Member[] };
  try {
    // Over the peer transport's TLS, as etcd's GetClusterFromRemotePeers: https peers and client-certificate auth.
    fetched = await fetchClusterFromPeers(others, fetchTimeoutMs, peerTransportTls(cfg));
  } catch (e) {
    logger.error('cannot fetch cluster info from peer urls', { error: (e as Error).message });
    throw new ConfigError('cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs');
  }
  const self = fetched.members.find((m) => sameUrls(m.peerURLs, mine));
  if (self === undefined) {
    throw new ConfigError(`member with peer URLs ${mine.join(',')} has not been added to the cluster (run 'member add' first)`);
  }
  // A member added with `member add` has its id derived with the time: take the cluster's.
  const memberId = self.ID !== 0n ? self.ID : computeMemberId(mine, cfg.initialClusterToken);
  const metadata = serverpb.WalMetadata.encode(serverpb.WalMetadata.create({ memberId, clusterId: fetched.clusterId }));
  const wal = await Wal.create(layout.walDir, metadata, { metrics });
  return {
    kind: 'join',
    memberId,
    clusterId: fetched.clusterId,
    wal,
    snapshotter,
    storage: new MemoryStorage(),
    snapshot: undefined,
    peers: [],
    remotes: fetched.members,
    promoteSelf: false,
  };
}
