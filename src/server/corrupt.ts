/**
 * Corruption checks (etcd 3.4's --experimental-initial-corrupt-check and
 * --experimental-corrupt-check-time): members compare HashKV at a common
 * revision, asked of each other over the peer transport.
 *
 * - Initial: before serving clients, the member hashes its store at its
 *   current revision and asks every peer for the hash at that revision. A
 *   peer with the same compact revision and a different hash is a mismatch,
 *   and the member refuses to start ("<id> found data inconsistency with
 *   peers"). Peers that are down, behind (future revision) or compacted past
 *   it are skipped with a warning.
 * - Periodic: the leader hashes, asks the followers at its revision, checks
 *   itself again after a linearizable read, and raises the CORRUPT alarm
 *   (through raft: cluster-wide) naming the first member found at fault: a
 *   follower ahead of the leader in revision or compact revision, or one with
 *   the leader's compact revision and another hash; or the leader itself if
 *   its own hash changed while nothing was written. With CORRUPT raised,
 *   writes are refused everywhere with "etcdserver: corrupt cluster".
 */
import { idToHex, type Logger } from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';

export const hashKvRpc = 'hashKv';

/** What a corruption check needs from the member. */
export interface CorruptCheckHost {
  readonly memberId: bigint;
  readonly logger: Logger;
  /** HashKV of the local store at rev (0: current); throws on compacted / future revisions. */
  hashKv(rev: number): Promise<etcdserverpb.HashKVResponse>;
  /** The other members' ids. */
  peerIds(): bigint[];
  /** HashKV asked of one peer. */
  peerHashKv(id: bigint, rev: number): Promise<etcdserverpb.HashKVResponse>;
  linearizableRead(): Promise<void>;
  raiseCorrupt(memberId: bigint): void;
}

interface PeerHash {
  readonly id: bigint;
  readonly resp?: etcdserverpb.HashKVResponse;
  readonly error?: string;
}

async function peerHashes(h: CorruptCheckHost, rev: number): Promise<PeerHash[]> {
  return Promise.all(
    h.peerIds().map(async (id): Promise<PeerHash> => {
      try {
        return { id, resp: await h.peerHashKv(id, rev) };
      } catch (e) {
        return { id, error: (e as Error).message };
      }
    }),
  );
}

/** The start-up check; returns the error message when this member disagrees with a peer. */
export async function checkInitialHashKv(h: CorruptCheckHost): Promise<string | undefined> {
  const local = await h.hashKv(0);
  const rev = local.header?.revision ?? 0;
  const log = h.logger;
  log.info('starting initial corruption check', { 'local-member-id': idToHex(h.memberId), revision: rev });
  let mismatch = 0;
  for (const p of await peerHashes(h, rev)) {
    if (p.resp === undefined) {
      log.warn('cannot fetch hash from remote peer', { 'remote-peer-id': idToHex(p.id), error: p.error });
      continue;
    }
    if (p.resp.hash === local.hash) continue;
    if (p.resp.compactRevision === local.compactRevision) {
      log.warn('found different hash values from remote peer', {
        'local-member-id': idToHex(h.memberId), 'local-member-revision': rev, 'local-member-hash': local.hash,
        'remote-peer-id': idToHex(p.id), 'remote-peer-hash': p.resp.hash,
      });
      mismatch++;
    } else {
      log.warn('found different compact revision values from remote peer', {
        'local-member-compact-revision': local.compactRevision, 'remote-peer-id': idToHex(p.id), 'remote-peer-compact-revision': p.resp.compactRevision,
      });
    }
  }
  if (mismatch > 0) return `${idToHex(h.memberId)} found data inconsistency with peers`;
  log.info('initial corruption checking passed; no corruption', { 'local-member-id': idToHex(h.memberId) });
  return undefined;
}

/** The leader's periodic check; raises CORRUPT at most once per pass. */
export async function checkHashKv(h: CorruptCheckHost): Promise<void> {
  const first = await h.hashKv(0);
  const rev = first.header?.revision ?? 0;
  const crev = first.compactRevision;
  const peers = await peerHashes(h, rev);
  await h.linearizableRead();
  const second = await h.hashKv(0);
  const rev2 = second.header?.revision ?? 0;
  const crev2 = second.compactRevision;
  let alarmed = false;
  const mismatch = (id: bigint, why: string, fields: Record<string, unknown>): void => {
    h.logger.warn(why, { 'member-id': idToHex(id), ...fields });
    if (alarmed) return;
    alarmed = true;
    h.raiseCorrupt(id);
  };
  if (second.hash !== first.hash && rev2 === rev && crev2 === crev) {
    mismatch(h.memberId, 'found hash mismatch', { revision: rev, 'compact-revision': crev, 'first-hash': first.hash, 'second-hash': second.hash });
  }
  let checked = 0;
  for (const p of peers) {
    const r = p.resp;
    if (r === undefined) continue;
    checked++;
    const id = r.header?.memberId ?? p.id;
    const peerRev = r.header?.revision ?? 0;
    if (peerRev > rev2) mismatch(id, "revision from follower must be less than or equal to leader's", { 'leader-revision': rev2, 'follower-revision': peerRev });
    if (r.compactRevision > crev2) mismatch(id, "compact revision from follower must be less than or equal to leader's", { 'leader-compact-revision': crev2, 'follower-compact-revision': r.compactRevision });
    if (r.compactRevision === crev && r.hash !== first.hash) {
      mismatch(id, 'same compact revision then hashes must match', { 'leader-compact-revision': crev2, 'leader-hash': first.hash, 'follower-compact-revision': r.compactRevision, 'follower-hash': r.hash });
    }
  }
  h.logger.info('finished peer corruption check', { 'number-of-peers-checked': checked });
}
