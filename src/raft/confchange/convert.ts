import { raftpb } from '../../pb/index.js';

const { ConfChangeTransition, ConfChangeV2, ConfChangeSingle } = raftpb;

export type AnyConfChange = raftpb.ConfChange | raftpb.ConfChangeV2;

export function isConfChangeV2(cc: AnyConfChange): cc is raftpb.ConfChangeV2 {
  return 'changes' in cc;
}

/** A single-change ConfChange as the equivalent ConfChangeV2 (context kept as is). */
export function asV2(cc: AnyConfChange): raftpb.ConfChangeV2 {
  if (isConfChangeV2(cc)) return cc;
  return ConfChangeV2.create({
    transition: ConfChangeTransition.ConfChangeTransitionAuto,
    changes: [ConfChangeSingle.create({ type: cc.type, nodeId: cc.nodeId })],
    context: cc.context,
  });
}

/**
 * Whether the change goes through a joint config, and if so whether raft
 * leaves it by itself. More than one change, or an explicit transition,
 * means joint; Auto and JointImplicit leave automatically.
 */
export function enterJoint(cc: raftpb.ConfChangeV2): { joint: boolean; autoLeave: boolean } {
  const joint = cc.transition !== ConfChangeTransition.ConfChangeTransitionAuto || cc.changes.length > 1;
  const autoLeave = cc.transition !== ConfChangeTransition.ConfChangeTransitionJointExplicit;
  return { joint, autoLeave: joint && autoLeave };
}

/** An empty V2 change (any context) asks to leave the joint config. */
export function leaveJoint(cc: raftpb.ConfChangeV2): boolean {
  return cc.changes.length === 0 && cc.transition === ConfChangeTransition.ConfChangeTransitionAuto;
}

/** The entry type and payload that carry a conf change in the log. */
export function confChangeToEntryData(cc: AnyConfChange): { type: raftpb.EntryType; data: Uint8Array } {
  if (isConfChangeV2(cc)) return { type: raftpb.EntryType.EntryConfChangeV2, data: ConfChangeV2.encode(cc) };
  return { type: raftpb.EntryType.EntryConfChange, data: raftpb.ConfChange.encode(cc) };
}

/** Decodes the conf change an entry carries, or undefined for a normal entry. */
export function confChangeFromEntry(e: raftpb.Entry): AnyConfChange | undefined {
  switch (e.type) {
    case raftpb.EntryType.EntryConfChange:
      return raftpb.ConfChange.decode(e.data);
    case raftpb.EntryType.EntryConfChangeV2:
      return ConfChangeV2.decode(e.data);
    case raftpb.EntryType.EntryNormal:
      return undefined;
  }
}

const typeNames: Record<raftpb.ConfChangeType, string> = {
  0: 'v',
  1: 'r',
  2: 'u',
  3: 'l',
};

/** "v2 l3 r4": v = voter, l = learner, r = remove, u = update. */
export function describeConfChange(cc: AnyConfChange): string {
  const v2 = asV2(cc);
  const parts = v2.changes.map((c) => `${typeNames[c.type]}${c.nodeId}`);
  if (v2.transition === ConfChangeTransition.ConfChangeTransitionJointImplicit) parts.unshift('implicit');
  if (v2.transition === ConfChangeTransition.ConfChangeTransitionJointExplicit) parts.unshift('explicit');
  return parts.length === 0 ? 'leave-joint' : parts.join(' ');
}

/** Parses the describeConfChange syntax ("v2 l3 r4", "explicit v1 v2"). */
export function parseConfChanges(s: string): raftpb.ConfChangeV2 {
  const cc = ConfChangeV2.create();
  for (const tok of s.split(/\s+/).filter((t) => t.length > 0)) {
    if (tok === 'implicit') cc.transition = ConfChangeTransition.ConfChangeTransitionJointImplicit;
    else if (tok === 'explicit') cc.transition = ConfChangeTransition.ConfChangeTransitionJointExplicit;
    else if (tok === 'leave-joint') continue;
    else {
      const kind = tok[0];
      const id = BigInt(tok.slice(1));
      const type =
        kind === 'v'
          ? raftpb.ConfChangeType.ConfChangeAddNode
          : kind === 'l'
            ? raftpb.ConfChangeType.ConfChangeAddLearnerNode
            : kind === 'r'
              ? raftpb.ConfChangeType.ConfChangeRemoveNode
              : kind === 'u'
                ? raftpb.ConfChangeType.ConfChangeUpdateNode
                : undefined;
      if (type === undefined) throw new Error(`unknown conf change ${tok}`);
      cc.changes.push(ConfChangeSingle.create({ type, nodeId: id }));
    }
  }
  return cc;
}
