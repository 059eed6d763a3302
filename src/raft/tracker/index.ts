/**
 * tracker: the leader's view of its followers. A Progress per member (match,
 * next, the probe/replicate/snapshot state machine and an inflights buffer
 * capped by count and bytes), the membership configuration, and vote
 * counting for elections.
 */
export { Inflights } from './inflights.js';
export { Progress, ProgressState } from './progress.js';
export {
  ProgressTracker,
  emptyTrackerConfig,
  cloneTrackerConfig,
  isJoint,
  describeTrackerConfig,
  sortedIds,
} from './tracker.js';
export type { TrackerConfig, ProgressMap } from './tracker.js';
