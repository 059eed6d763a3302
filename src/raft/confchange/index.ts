/**
 * confchange: membership changes as pure functions from a configuration to
 * the next. Simple changes alter at most one voter; joint changes go through
 * a config where the outgoing and incoming voters must both agree (Raft
 * thesis §4.3), left automatically or by an explicit empty change. A
 * ConfState (snapshot, storage) is restored by replaying changes. Nothing
 * here touches the live tracker: raft switches to the result.
 */
export { Changer, checkInvariants } from './confchange.js';
export type { ChangeResult } from './confchange.js';
export { restoreConfState } from './restore.js';
export {
  asV2,
  isConfChangeV2,
  enterJoint,
  leaveJoint,
  confChangeToEntryData,
  confChangeFromEntry,
  describeConfChange,
  parseConfChanges,
} from './convert.js';
export type { AnyConfChange } from './convert.js';
