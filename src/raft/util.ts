import { raftpb } from '../pb/index.js';

/**
 * The size an entry counts for in every byte limit: its payload plus a small
 * fixed overhead for term, index and type. Cheap (no encoding) and close
 * enough to the encoded size for flow control.
 */
export const entryOverheadBytes = 16;

export function entrySizeBytes(e: raftpb.Entry): number {
  return e.data.length + entryOverheadBytes;
}

/** The payload size, which is what the uncommitted-bytes limit counts. */
export function payloadSizeBytes(e: raftpb.Entry): number {
  return e.data.length;
}

export function entriesSizeBytes(ents: readonly raftpb.Entry[]): number {
  let n = 0;
  for (const e of ents) n += e.data.length + entryOverheadBytes;
  return n;
}

/**
 * The longest prefix of ents within bytesMax, but at least one entry (a
 * single entry larger than the limit must still make progress). Returns the
 * same array when nothing is cut.
 */
export function limitSize(ents: raftpb.Entry[], bytesMax: number): raftpb.Entry[] {
  if (ents.length <= 1) return ents;
  let size = 0;
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i];
    if (e === undefined) break;
    size += e.data.length + entryOverheadBytes;
    if (i > 0 && size > bytesMax) return ents.slice(0, i);
  }
  return ents;
}

export function isEmptyHardState(hs: raftpb.HardState): boolean {
  return hs.term === 0 && hs.vote === 0n && hs.commit === 0;
}

export function hardStateEqual(a: raftpb.HardState, b: raftpb.HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function isEmptySnapshot(s: raftpb.Snapshot | undefined): boolean {
  return s === undefined || (s.metadata?.index ?? 0) === 0;
}

export function snapshotIndex(s: raftpb.Snapshot): number {
  return s.metadata?.index ?? 0;
}

export function snapshotTerm(s: raftpb.Snapshot): number {
  return s.metadata?.term ?? 0;
}

/** Message types a node generates for itself; the network never delivers them. */
export function isLocalMsg(t: raftpb.MessageType): boolean {
  const T = raftpb.MessageType;
  return (
    t === T.MsgHup ||
    t === T.MsgBeat ||
    t === T.MsgUnreachable ||
    t === T.MsgSnapStatus ||
    t === T.MsgCheckQuorum
  );
}

/** Responses: stepping one from an unknown peer is an error. */
export function isResponseMsg(t: raftpb.MessageType): boolean {
  const T = raftpb.MessageType;
  return (
    t === T.MsgAppResp ||
    t === T.MsgVoteResp ||
    t === T.MsgHeartbeatResp ||
    t === T.MsgUnreachable ||
    t === T.MsgPreVoteResp
  );
}

/** The response type matching a (pre-)vote request. */
export function voteRespMsgType(t: raftpb.MessageType): raftpb.MessageType {
  return t === raftpb.MessageType.MsgVote ? raftpb.MessageType.MsgVoteResp : raftpb.MessageType.MsgPreVoteResp;
}
