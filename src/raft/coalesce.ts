/**
 * Merging of a Ready's messages before they are sent.
 *
 * A leader that takes many proposals in one turn appends them one by one,
 * and each append sends every follower a MsgApp with just the new entry:
 * a hundred proposals make a hundred MsgApps per follower, each decoded and
 * stepped there, each answered with its own MsgAppResp. Consecutive appends
 * to one peer that continue each other say the same as one append with all
 * their entries and the last one's commit index, which is what this sends.
 * Likewise consecutive acceptances (MsgAppResp without reject) to one peer:
 * the last one, with the highest index, says all the earlier ones say.
 *
 * The leader's bookkeeping stays right: every MsgApp it sent counted as one
 * message in flight with its last index, and the merged message's ack
 * covers all of them (Inflights frees up to an index).
 */
import { raftpb } from '../pb/index.js';
import { entriesSizeBytes } from './util.js';

const MT = raftpb.MessageType;

/**
 * Returns msgs with runs of consecutive MsgApps to the same peer (each
 * continuing the previous one's log) merged, as long as the merged entries
 * stay within bytesMax, and runs of consecutive accepting MsgAppResps to the
 * same peer reduced to their last. Messages to different peers keep their
 * relative order; nothing is reordered for any one peer. msgs is not changed.
 */
export function coalesceMessages(msgs: readonly raftpb.Message[], bytesMax: number): raftpb.Message[] {
  if (msgs.length < 2) return msgs.slice();
  const out: raftpb.Message[] = [];
  // Per peer: the position in out of the last message to it, when that one may still grow.
  const open = new Map<bigint, { at: number; bytes: number }>();
  for (const m of msgs) {
    const prev = open.get(m.to);
    if (prev !== undefined) {
      const a = out[prev.at] as raftpb.Message;
      if (m.type === MT.MsgApp && continues(a, m)) {
        const bytes = prev.bytes + entriesSizeBytes(m.entries);
        if (bytes <= bytesMax) {
          out[prev.at] = { ...a, entries: a.entries.concat(m.entries), commit: Math.max(a.commit, m.commit) };
          prev.bytes = bytes;
          continue;
        }
      } else if (m.type === MT.MsgAppResp && acceptance(a) && acceptance(m) && a.term === m.term && m.index >= a.index) {
        out[prev.at] = m;
        continue;
      }
    }
    out.push(m);
    if (m.type === MT.MsgApp || acceptance(m)) open.set(m.to, { at: out.length - 1, bytes: entriesSizeBytes(m.entries) });
    else open.delete(m.to);
  }
  return out;
}

/** b is an append that starts right where append a ends, in the same term, from the same sender. */
function continues(a: raftpb.Message, b: raftpb.Message): boolean {
  if (a.type !== MT.MsgApp || a.term !== b.term || a.from !== b.from) return false;
  const last = a.entries[a.entries.length - 1];
  const aEndIndex = last?.index ?? a.index;
  const aEndTerm = last?.term ?? a.logTerm;
  return b.index === aEndIndex && b.logTerm === aEndTerm;
}

function acceptance(m: raftpb.Message): boolean {
  return m.type === MT.MsgAppResp && !m.reject;
}
