/**
 * Continuous divergence detection, on by default (etcd-ts's own: etcd 3.4
 * has only the HashKV checks of corrupt.ts, off unless flagged, and each
 * pass hashes the whole store).
 *
 * Every member hashes each revision it applies (mvcc/revision-hashes.ts).
 * Every --experimental-revision-hash-check-time (2 s) the leader sends each
 * other member the span of revisions whose hashes it holds; the member
 * answers with the digest of the part of that span it holds too; the leader
 * digests the same revisions and compares. A pass costs one small rpc per
 * member and a checksum over at most 256 KiB on each side.
 *
 * A mismatch means two members applied the same raft entries and wrote
 * different things. The member at fault is the one that disagrees with the
 * others: a member that disagrees with a leader that agrees with some other
 * member; the leader itself when it disagrees with every other member it
 * compared with (two or more); with one comparison only there is no telling,
 * and the other member is named, as etcd's periodic check names the
 * follower. The leader raises the CORRUPT alarm for it through raft, which
 * refuses writes cluster-wide with "etcdserver: corrupt cluster", as a
 * CORRUPT raised by etcd's own checks does.
 *
 * What it does not see: a stored value that changed after it was applied
 * (a bit flip in the file) and that no later write touches; HashKV compares
 * stored state (corrupt.ts).
 */
import { idToHex, type Logger } from '../base/index.js';
import type { RevisionHashes } from '../mvcc/index.js';

export const revisionDigestRpc = 'revisionDigest';

/** What the leader asks: the span (from, to] it holds hashes of. */
export interface DigestRequest {
  readonly from: number;
  readonly to: number;
}

/** The member's answer: the part (from, to] it holds too, and its digest (null: nothing in common). */
export interface DigestReply {
  readonly from: number;
  readonly to: number;
  readonly digest: number | null;
}

export function encodeDigestRequest(r: DigestRequest): Uint8Array {
  return Buffer.from(JSON.stringify(r));
}

export function encodeDigestReply(r: DigestReply): Uint8Array {
  return Buffer.from(JSON.stringify(r));
}

function revisionField(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`revision digest: bad ${name}`);
  return v;
}

export function decodeDigestRequest(body: Uint8Array): DigestRequest {
  const o = JSON.parse(Buffer.from(body).toString()) as Record<string, unknown>;
  return { from: revisionField(o['from'], 'from'), to: revisionField(o['to'], 'to') };
}

export function decodeDigestReply(body: Uint8Array): DigestReply {
  const o = JSON.parse(Buffer.from(body).toString()) as Record<string, unknown>;
  const d = o['digest'];
  if (d !== null && (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > 0xffffffff)) throw new Error('revision digest: bad digest');
  return { from: revisionField(o['from'], 'from'), to: revisionField(o['to'], 'to'), digest: d };
}

/** A member's answer to the leader: the digest of what both hold. */
export function answerDigest(hashes: RevisionHashes, req: DigestRequest): DigestReply {
  const from = Math.max(req.from, hashes.oldest);
  const to = Math.min(req.to, hashes.newest);
  if (from >= to) return { from, to, digest: null };
  return { from, to, digest: hashes.digest(from, to) ?? null };
}

export interface RevisionCheckHost {
  readonly memberId: bigint;
  readonly logger: Logger;
  /** This member's revision hashes (the current store's). */
  hashes(): RevisionHashes;
  /** The other members, learners included. */
  peerIds(): bigint[];
  peerDigest(id: bigint, req: DigestRequest): Promise<DigestReply>;
  raiseCorrupt(memberId: bigint): void;
  /**
   * The newest revision whose divergence was reported, by the member named
   * (the leader's own id when it named itself): later passes compare only
   * revisions after it with that member, so that an operator's disarm is not
   * undone by the same, already reported, divergence; a new one is reported
   * again. Absent: every pass compares everything held.
   */
  readonly reported?: Map<bigint, number>;
}

/** What one pass found; the ids at fault are those it raised CORRUPT for. */
export interface RevisionCheckResult {
  readonly compared: number;
  readonly mismatched: readonly bigint[];
  readonly atFault: readonly bigint[];
}

/** One pass of the leader. */
export async function checkRevisionDigests(h: RevisionCheckHost): Promise<RevisionCheckResult> {
  const own = h.hashes();
  const req: DigestRequest = { from: own.oldest, to: own.newest };
  const none: RevisionCheckResult = { compared: 0, mismatched: [], atFault: [] };
  if (req.to <= req.from) return none;
  const after = (id: bigint): number => Math.max(h.reported?.get(id) ?? 0, h.reported?.get(h.memberId) ?? 0);
  const replies = await Promise.all(
    h.peerIds().map(async (id) => {
      const asked: DigestRequest = { from: Math.max(req.from, after(id)), to: req.to };
      if (asked.to <= asked.from) return { id, reply: undefined };
      try {
        return { id, reply: await h.peerDigest(id, asked) };
      } catch (e) {
        h.logger.debug('cannot fetch revision digest from remote peer', { 'remote-peer-id': idToHex(id), error: (e as Error).message });
        return { id, reply: undefined };
      }
    }),
  );
  // The store may have been replaced (a snapshot installed) while the rpcs were out.
  if (h.hashes() !== own) return none;
  const matched: bigint[] = [];
  const mismatched: bigint[] = [];
  let mismatchedTo = 0;
  for (const { id, reply } of replies) {
    if (reply === undefined || reply.digest === null) continue;
    if (reply.from < Math.max(req.from, after(id)) || reply.to > req.to || reply.from >= reply.to) continue;
    const mine = own.digest(reply.from, reply.to);
    if (mine === undefined) continue;
    if (mine === reply.digest) {
      matched.push(id);
      continue;
    }
    mismatched.push(id);
    mismatchedTo = Math.max(mismatchedTo, reply.to);
    h.logger.warn('found revision hash mismatch with remote peer', {
      'local-member-id': idToHex(h.memberId), 'remote-peer-id': idToHex(id),
      'from-revision': reply.from, 'to-revision': reply.to, 'local-digest': mine, 'remote-digest': reply.digest,
    });
  }
  const compared = matched.length + mismatched.length;
  if (mismatched.length === 0) return { compared, mismatched, atFault: [] };
  let atFault: bigint[];
  if (matched.length > 0) atFault = mismatched;
  else if (mismatched.length >= 2) atFault = [h.memberId];
  else {
    h.logger.warn('one member compared: cannot tell which side diverged; naming the remote peer', { 'remote-peer-id': idToHex(mismatched[0] as bigint) });
    atFault = mismatched;
  }
  for (const id of atFault) {
    h.logger.error('member diverged from the cluster; raising CORRUPT alarm', { 'member-id': idToHex(id) });
    h.raiseCorrupt(id);
    h.reported?.set(id, Math.max(h.reported.get(id) ?? 0, mismatchedTo));
  }
  return { compared, mismatched, atFault };
}
