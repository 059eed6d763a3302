import { raftpb } from '../../pb/index.js';
import type { ProgressMap, TrackerConfig } from '../tracker/index.js';
import { emptyTrackerConfig } from '../tracker/index.js';
import { type ChangeResult, Changer } from './confchange.js';

const { ConfChangeType, ConfChangeSingle } = raftpb;

function single(type: raftpb.ConfChangeType, nodeId: bigint): raftpb.ConfChangeSingle {
  return ConfChangeSingle.create({ type, nodeId });
}

/**
 * Rebuilds the configuration described by a ConfState (from a snapshot or
 * storage) by replaying changes from an empty config: first the outgoing
 * voters one at a time, then, for a joint state, one joint change that
 * produces the incoming half, the learners and learnersNext.
 */
export function restoreConfState(
  cs: raftpb.ConfState,
  lastIndex: number,
  inflightCountMax: number,
  inflightBytesMax: number,
): ChangeResult {
  const outgoing: raftpb.ConfChangeSingle[] = [];
  const incoming: raftpb.ConfChangeSingle[] = [];
  for (const id of cs.votersOutgoing) {
    outgoing.push(single(ConfChangeType.ConfChangeAddNode, id));
    // The incoming half starts from scratch: take each outgoing voter out
    // again (it keeps its progress, being an outgoing voter).
    incoming.push(single(ConfChangeType.ConfChangeRemoveNode, id));
  }
  for (const id of cs.voters) incoming.push(single(ConfChangeType.ConfChangeAddNode, id));
  for (const id of cs.learners) incoming.push(single(ConfChangeType.ConfChangeAddLearnerNode, id));
  // Learners-next are outgoing voters; adding them as learners in the joint
  // config puts them into learnersNext.
  for (const id of cs.learnersNext) incoming.push(single(ConfChangeType.ConfChangeAddLearnerNode, id));

  let r: ChangeResult = { config: emptyTrackerConfig(), progress: new Map() };
  const changer = (c: TrackerConfig, p: ProgressMap): Changer =>
    new Changer(c, p, lastIndex, inflightCountMax, inflightBytesMax);
  if (outgoing.length === 0) {
    for (const cc of incoming) r = changer(r.config, r.progress).simple([cc]);
    return r;
  }
  for (const cc of outgoing) r = changer(r.config, r.progress).simple([cc]);
  return changer(r.config, r.progress).enterJoint(cs.autoLeave, incoming);
}
