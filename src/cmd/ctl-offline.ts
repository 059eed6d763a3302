/**
 * The offline operations of etcdctl-ts (snapshot status/restore, defrag
 * --data-dir, migrate): ctl may import only the client, so these, which read
 * and write the server's files, are supplied from here. Loaded only when a
 * command needs them, so the other commands do not pay for the server code.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import type { LogFields, Logger } from '../base/index.js';
import type { MigrateOptions, OfflineOps, SnapshotRestoreOptions } from '../ctl/index.js';
import { raftpb, serverpb } from '../pb/index.js';
import { Schema } from '../schema/index.js';
import { dataLayout, restoreSnapshot, snapshotStatus } from '../server/index.js';
import { DirLock, Snapshotter, Wal, WalLockedError, entriesAfterSnapshot, type WalOpenResult } from '../wal/index.js';

const lockPollMs = 100;
/** As etcd: say that the member still holds the data after a second of waiting. */
const waitingNoticeMs = 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A Logger that hands info lines to fn (the restore's zap lines). */
function lineLogger(fn: (msg: string, fields: Record<string, unknown>) => void): Logger {
  const logger: Logger = {
    debug: () => undefined,
    info: (msg: string, fields?: LogFields) => fn(msg, { ...fields }),
    warn: (msg: string, fields?: LogFields) => fn(msg, { ...fields }),
    error: (msg: string, fields?: LogFields) => fn(msg, { ...fields }),
    with: () => logger,
  };
  return logger;
}

/**
 * Waits until no live member holds the WAL directory's lock (a running
 * etcd-ts member holds it as etcd holds its bbolt file lock), telling once
 * after a second; then fn runs under the lock.
 */
async function underMemberLock<T>(walDir: string, waiting: () => void, fn: () => Promise<T>): Promise<T> {
  const start = Date.now();
  let told = false;
  for (;;) {
    let lock: DirLock | undefined;
    try {
      lock = existsSync(walDir) ? DirLock.acquire(walDir) : undefined;
    } catch (err) {
      if (!(err instanceof WalLockedError)) throw err;
      if (!told && Date.now() - start >= waitingNoticeMs) {
        told = true;
        waiting();
      }
      await sleep(lockPollMs);
      continue;
    }
    try {
      return await fn();
    } finally {
      lock?.release();
    }
  }
}

async function defragDataDir(dataDir: string, waiting: () => void): Promise<void> {
  const layout = dataLayout(dataDir, '');
  await underMemberLock(layout.walDir, waiting, async () => {
    const schema = Schema.open({ path: layout.dbPath });
    try {
      await schema.backend.defrag();
    } finally {
      await schema.backend.close();
    }
  });
}

/** Go's version.Cluster: "major.minor" of a version. */
function clusterVersion(v: string): string {
  return v.split('.').slice(0, 2).join('.');
}

/**
 * What etcd 3.4's v2 applier logs replaying a member's snapshot and log into
 * a cluster of id 0 (migrate does not know the cluster's id): recovered
 * members and version, then each conf change and cluster version set.
 */
class MembershipReplay {
  private readonly members = new Map<bigint, string[]>();
  private readonly removed = new Set<bigint>();
  private version = '';
  private capability = '';

  constructor(private readonly log: (msg: string, fields: Record<string, unknown>) => void) {}

  private enableCapability(v: string): void {
    if (this.capability !== '' && this.capability >= v) return;
    this.capability = v;
    this.log('enabled capabilities for version', { 'cluster-version': v });
  }

  recover(data: serverpb.SnapshotData): void {
    for (const m of data.members) this.members.set(m.ID, m.peerUrls);
    for (const id of data.removed) this.removed.add(id);
    this.version = data.clusterVersion === '' ? '' : clusterVersion(data.clusterVersion);
    if (this.version !== '') this.enableCapability(this.version);
    for (const [id, urls] of this.members) {
      this.log('recovered/added member from store', { 'cluster-id': '0', 'local-member-id': '0', 'recovered-remote-peer-id': id.toString(16), 'recovered-remote-peer-urls': urls });
    }
    if (this.version !== '') this.log('set cluster version from store', { 'cluster-version': this.version });
  }

  confChange(cc: raftpb.ConfChange): void {
    const T = raftpb.ConfChangeType;
    const id = cc.nodeId;
    const urls = cc.context.length > 0 ? serverpb.MemberRecord.decode(cc.context).peerUrls : [];
    switch (cc.type) {
      case T.ConfChangeAddNode:
        if (this.members.has(id) || this.removed.has(id)) return;
        this.members.set(id, urls);
        this.log('added member', { 'cluster-id': '0', 'local-member-id': '0', 'added-peer-id': id.toString(16), 'added-peer-peer-urls': urls });
        return;
      case T.ConfChangeRemoveNode: {
        const old = this.members.get(id);
        if (old === undefined) return;
        this.members.delete(id);
        this.removed.add(id);
        this.log('removed member', { 'cluster-id': '0', 'local-member-id': '0', 'removed-remote-peer-id': id.toString(16), 'removed-remote-peer-urls': old });
        return;
      }
      case T.ConfChangeUpdateNode:
        if (!this.members.has(id)) return;
        this.members.set(id, urls);
        this.log('updated member', { 'cluster-id': '0', 'local-member-id': '0', 'updated-remote-peer-id': id.toString(16), 'updated-remote-peer-urls': urls });
        return;
      default:
        // etcd 3.4's migrate applies only these three kinds (a learner add is skipped).
        return;
    }
  }

  setVersion(raw: string): void {
    const v = clusterVersion(raw);
    if (this.version === '') this.log('set initial cluster version', { 'cluster-id': '0', 'local-member-id': '0', 'cluster-version': v });
    // etcd logs the new version under a second "from" key; JSON keeps the last.
    else this.log('updated cluster version', { 'cluster-id': '0', 'local-member-id': '0', from: v });
    this.version = v;
    this.enableCapability(v);
  }
}

/** Starts the user's transformer as etcd does; it gets no input, as there are no v2 keys. */
function startTransformer(path: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'ENOENT' ? `fork/exec ${path}: no such file or directory` : `fork/exec ${path}: ${e.message}`));
    });
    child.once('spawn', () =>
      resolve(() => {
        child.stdin.end();
        child.kill();
      }),
    );
  });
}

async function openLog(walDir: string, waiting: () => void): Promise<WalOpenResult> {
  if (!existsSync(walDir)) throw new Error(`open ${walDir}: no such file or directory`);
  if (!readdirSync(walDir).some((n) => n.endsWith('.wal'))) throw new Error('wal: file not found');
  let told = false;
  for (;;) {
    try {
      return await Wal.open(walDir);
    } catch (err) {
      if (!(err instanceof WalLockedError)) throw err;
      if (!told) {
        told = true;
        waiting();
      }
      await sleep(lockPollMs);
    }
  }
}

async function migrate(o: MigrateOptions): Promise<void> {
  const stopTransformer = o.transformer === '' ? undefined : await startTransformer(o.transformer);
  try {
    const layout = dataLayout(o.dataDir, o.walDir);
    if (!existsSync(layout.snapDir)) throw new Error(`open ${layout.snapDir}: no such file or directory`);
    const r = await openLog(layout.walDir, () => o.waiting(layout.dbPath));
    try {
      const replay = new MembershipReplay(o.log);
      const snap = await new Snapshotter(layout.snapDir).loadNewestAvailable(r.snapshots);
      if (snap !== undefined) replay.recover(serverpb.SnapshotData.decode(snap.data));
      for (const e of entriesAfterSnapshot(r, snap?.metadata ?? { index: 0, term: 0 })) {
        if (e.type === raftpb.EntryType.EntryConfChange) replay.confChange(raftpb.ConfChange.decode(e.data));
        else if (e.data.length > 0) {
          const req = serverpb.InternalRaftRequest.decode(e.data);
          if (req.request?.case === 'clusterVersionSet') replay.setVersion(req.request.value.version);
        }
      }
      // etcd opens (and creates) the backend with its key and meta buckets before it looks for v2 keys.
      const schema = Schema.open({ path: layout.dbPath });
      await schema.backend.close();
    } finally {
      await r.wal.close();
    }
  } finally {
    stopTransformer?.();
  }
}

export const offlineOps: OfflineOps = {
  snapshotStatus: async (path) => {
    if (!existsSync(path)) throw new Error(`stat ${path}: no such file or directory`);
    return snapshotStatus(path);
  },
  snapshotRestore: (o: SnapshotRestoreOptions) =>
    restoreSnapshot({
      snapshotPath: o.snapshotPath,
      name: o.name,
      dataDir: o.dataDir,
      walDir: o.walDir,
      peerUrls: o.peerUrls,
      initialCluster: o.initialCluster,
      initialClusterToken: o.initialClusterToken,
      skipHashCheck: o.skipHashCheck,
      bumpRevision: 0,
      markCompacted: false,
      logger: lineLogger(o.log),
    }),
  defragDataDir,
  migrate,
};
