/**
 * A member whose WAL is damaged takes its place in the cluster again, under a
 * new id, instead of refusing to start (A2 for the WAL). So does one whose
 * WAL does not continue from any snapshot it still has: its newer snap files
 * were damaged and set aside, and the log had moved past the older ones (a
 * member that installed a leader's snapshot has no entries before it).
 *
 * Why a new id. A WAL record that fails its check in the middle of the log
 * (not a torn tail, which wal/read.ts cuts away) loses what follows it: entries
 * this member acknowledged, and the term and vote it promised. Coming back under
 * the same id with less than it acknowledged is unsafe: an entry committed by
 * this member's ack and the leader's alone would be lost if it then voted for a
 * member without it, and a vote it gave and forgot could be given twice in one
 * term. A new id has acknowledged nothing and voted for no one. The old id is
 * removed by a conf change, which commits only on a quorum of the others: the
 * others that commit it hold every entry committed before it, so nothing the
 * cluster acknowledged depends on the damaged copy once it is removed. This is
 * what etcd's runbook has an operator do (member remove, wipe, member add); here
 * the member does it itself.
 *
 * The steps, each safe to crash after and redo:
 *
 * 1. startReplacement: learn the members from the peers in --initial-cluster
 *    and find this one by its advertised peer URLs (the old id); choose a new
 *    id; set the WAL dir and the snap dir (raft snapshots and the backend)
 *    aside as `<dir>.damaged` (the previous ones removed), for an operator to
 *    look at; create an empty WAL whose metadata names the new id and, in
 *    `replaces`, the old one. A crash after the WAL dir was set aside and
 *    before the new WAL exists leaves no WAL beside a `.damaged` one: the
 *    next start does this step again (replacementInterrupted).
 * 2. completeReplacement: ask a peer (rpc memberReplace, admitted as the new
 *    id) to remove the old id and add the new one as a learner. The peer's
 *    handler is idempotent; this is redone at every start until raft has
 *    saved anything (a WAL with `replaces` set and nothing else).
 * 3. The member starts empty, as a joining one: the leader sends it a
 *    snapshot. Once it has caught up it promotes itself to a voter (the
 *    server, while its WAL metadata has `replaces` set and it is a learner).
 *
 * A member without peers in --initial-cluster, or not among the members the
 * peers report, or started with --force-new-cluster, cannot be replaced: it
 * refuses to start, naming the damage, as before.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { idToHex, type Logger } from '../base/index.js';
import { etcdserverpb, serverpb } from '../pb/index.js';
import { callPeerUrls, fetchClusterFromPeers } from '../transport/index.js';
import { Wal, nodeWalFs, type WalMetrics } from '../wal/index.js';
import { ConfigError, otherPeerUrls, type ServerConfig } from './config.js';
import { prepareLayout, type DataLayout } from './layout.js';
import { computeMemberId, sameUrls } from './membership.js';
import { peerTransportTls } from './tls.js';

/** The peer rpc of step 2 (serverpb.MemberReplaceRequest in, etcdserverpb.MemberListResponse out). */
export const memberReplaceRpc = 'memberReplace';

const peerTimeoutMs = 5000;
const retryFirstMs = 500;
const retryMaxMs = 5000;

/** Where a damaged directory is set aside. */
export function damagedPath(dir: string): string {
  return `${dir}.damaged`;
}

/** Whether a damaged WAL can be replaced through peers at all. */
export function mayReplace(cfg: ServerConfig): boolean {
  return !cfg.forceNewCluster && otherPeerUrls(cfg).length > 0;
}

/** Step 1 was cut short: the WAL was set aside and no new one was created. */
export function replacementInterrupted(layout: DataLayout): boolean {
  return !Wal.exists(layout.walDir) && existsSync(damagedPath(layout.walDir));
}

/** Calls attempt until it resolves, waiting longer after each failure (logged). */
async function untilDone<T>(what: string, logger: Logger, attempt: () => Promise<T>): Promise<T> {
  let waitMs = retryFirstMs;
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      logger.warn(`${what} failed; trying again`, { error: (e as Error).message, 'retry-in-ms': waitMs });
    }
    await new Promise((r) => setTimeout(r, waitMs));
    waitMs = Math.min(retryMaxMs, waitMs * 2);
  }
}

/**
 * Renames dir to its .damaged name (removing an older one), durably. Nothing
 * when dir is gone or empty: an attempt cut short set it aside already, and
 * the start made it again (the copy set aside is kept).
 */
async function setAside(dir: string): Promise<void> {
  if (!existsSync(dir) || readdirSync(dir).length === 0) return;
  const to = damagedPath(dir);
  rmSync(to, { recursive: true, force: true });
  renameSync(dir, to);
  await nodeWalFs.fsyncDir(dirname(dir));
}

/**
 * Step 1, then step 2. `cause` is why the member's own state was refused (for
 * the log); a WAL or snap dir that an earlier attempt set aside already is
 * not there to set aside again.
 */
export async function startReplacement(
  cfg: ServerConfig,
  layout: DataLayout,
  logger: Logger,
  metrics: WalMetrics | undefined,
  cause: string,
): Promise<{ wal: Wal; metadata: serverpb.WalMetadata; members: etcdserverpb.Member[] }> {
  logger.error('the WAL is damaged; this member will take its place again under a new id, through its peers', { error: cause });
  const urls = [...cfg.initialAdvertisePeerUrls].sort();
  const tls = peerTransportTls(cfg);
  const cluster = await untilDone('fetching the members from the peers', logger, () => fetchClusterFromPeers(otherPeerUrls(cfg), peerTimeoutMs, tls));
  const self = cluster.members.find((m) => sameUrls(m.peerURLs, urls));
  if (self === undefined || (self.name !== '' && self.name !== cfg.name)) {
    throw new ConfigError(`${cause}; no member of the cluster has this member's peer URLs ${urls.join(',')}, so it cannot replace itself`);
  }
  let newId = 0n;
  for (let t = Math.floor(Date.now() / 1000); newId === 0n || cluster.members.some((m) => m.ID === newId); t++) {
    newId = computeMemberId(urls, cfg.initialClusterToken, t);
  }
  await setAside(layout.walDir);
  await setAside(layout.snapDir);
  prepareLayout(layout);
  const metadata = serverpb.WalMetadata.create({ memberId: newId, clusterId: cluster.clusterId, replaces: self.ID });
  const wal = await Wal.create(layout.walDir, serverpb.WalMetadata.encode(metadata), { logger, metrics });
  logger.warn('set the damaged WAL and snap dirs aside; remove them once the member serves again', {
    wal: damagedPath(layout.walDir),
    snap: damagedPath(layout.snapDir),
    'old-member-id': idToHex(self.ID),
    'new-member-id': idToHex(newId),
  });
  try {
    return { wal, metadata, members: await completeReplacement(cfg, metadata, logger) };
  } catch (e) {
    await wal.close();
    throw e;
  }
}

/** Step 2: the members once the cluster has the new id as a learner in place of the old one. */
export async function completeReplacement(cfg: ServerConfig, metadata: serverpb.WalMetadata, logger: Logger): Promise<etcdserverpb.Member[]> {
  const req = serverpb.MemberReplaceRequest.create({
    oldId: metadata.replaces,
    newId: metadata.memberId,
    peerUrls: [...cfg.initialAdvertisePeerUrls].sort(),
  });
  const body = serverpb.MemberReplaceRequest.encode(req);
  const tls = peerTransportTls(cfg);
  const sender = { clusterId: metadata.clusterId, from: metadata.memberId };
  const answer = await untilDone('asking the cluster to replace the member', logger, () =>
    callPeerUrls(otherPeerUrls(cfg), memberReplaceRpc, body, peerTimeoutMs * 2, tls, sender),
  );
  logger.info('the cluster replaced the member whose WAL was damaged; starting as a learner', {
    'old-member-id': idToHex(metadata.replaces),
    'new-member-id': idToHex(metadata.memberId),
  });
  return etcdserverpb.MemberListResponse.decode(answer.body).members;
}
