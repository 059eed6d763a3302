import { raftpb } from '../../pb/index.js';
import { RaftError, RaftErrorCode } from '../errors.js';
import {
  Inflights,
  Progress,
  type ProgressMap,
  type TrackerConfig,
  cloneTrackerConfig,
  isJoint,
} from '../tracker/index.js';

const { ConfChangeType } = raftpb;

/** A configuration and the progress map that goes with it, as a change produces them. */
export interface ChangeResult {
  config: TrackerConfig;
  progress: ProgressMap;
}

function invalid(msg: string): RaftError {
  return new RaftError(RaftErrorCode.ConfChangeInvalid, msg);
}

/**
 * Computes the configuration that a change produces, without touching the
 * tracker it starts from: the caller switches to the result. New members get
 * a Progress that probes from `lastIndex`.
 */
export class Changer {
  constructor(
    private readonly config: TrackerConfig,
    private readonly progress: ProgressMap,
    private readonly lastIndex: number,
    private readonly inflightCountMax: number,
    private readonly inflightBytesMax: number,
  ) {}

  /**
   * Enters a joint configuration: the current voters become the outgoing
   * half and the changes apply to the incoming half. With autoLeave the
   * leader proposes leaving as soon as the joint config is applied.
   */
  enterJoint(autoLeave: boolean, ccs: readonly raftpb.ConfChangeSingle[]): ChangeResult {
    const r = this.checkAndCopy();
    if (isJoint(r.config)) throw invalid('config is already joint');
    if (r.config.voters[0].size === 0) throw invalid("can't make a zero-voter config joint");
    for (const id of r.config.voters[0]) r.config.voters[1].add(id);
    this.apply(r, ccs);
    r.config.autoLeave = autoLeave;
    return checkAndReturn(r);
  }

  /** Leaves a joint configuration: drops the outgoing half and turns learnersNext into learners. */
  leaveJoint(): ChangeResult {
    const r = this.checkAndCopy();
    const cfg = r.config;
    if (!isJoint(cfg)) throw invalid("can't leave a non-joint config");
    for (const id of cfg.learnersNext) {
      cfg.learners.add(id);
      const pr = r.progress.get(id);
      if (pr !== undefined) pr.isLearner = true;
    }
    cfg.learnersNext.clear();
    for (const id of cfg.voters[1]) {
      if (!cfg.voters[0].has(id) && !cfg.learners.has(id)) r.progress.delete(id);
    }
    cfg.voters[1].clear();
    cfg.autoLeave = false;
    return checkAndReturn(r);
  }

  /** Applies changes that alter at most one voter, without a joint config. */
  simple(ccs: readonly raftpb.ConfChangeSingle[]): ChangeResult {
    const r = this.checkAndCopy();
    if (isJoint(r.config)) throw invalid("can't apply simple config change in joint config");
    this.apply(r, ccs);
    let changed = 0;
    for (const id of this.config.voters[0]) if (!r.config.voters[0].has(id)) changed++;
    for (const id of r.config.voters[0]) if (!this.config.voters[0].has(id)) changed++;
    if (changed > 1) throw invalid('more than one voter changed without entering joint config');
    return checkAndReturn(r);
  }

  private apply(r: ChangeResult, ccs: readonly raftpb.ConfChangeSingle[]): void {
    for (const cc of ccs) {
      // Id 0 means "no node": such a change does nothing.
      if (cc.nodeId === 0n) continue;
      switch (cc.type) {
        case ConfChangeType.ConfChangeAddNode:
          this.makeVoter(r, cc.nodeId);
          break;
        case ConfChangeType.ConfChangeAddLearnerNode:
          this.makeLearner(r, cc.nodeId);
          break;
        case ConfChangeType.ConfChangeRemoveNode:
          remove(r, cc.nodeId);
          break;
        case ConfChangeType.ConfChangeUpdateNode:
          break;
      }
    }
    if (r.config.voters[0].size === 0) throw invalid('removed all voters');
  }

  private makeVoter(r: ChangeResult, id: bigint): void {
    const pr = r.progress.get(id);
    if (pr === undefined) {
      this.initProgress(r, id, false);
      return;
    }
    pr.isLearner = false;
    r.config.learners.delete(id);
    r.config.learnersNext.delete(id);
    r.config.voters[0].add(id);
  }

  private makeLearner(r: ChangeResult, id: bigint): void {
    const pr = r.progress.get(id);
    if (pr === undefined) {
      this.initProgress(r, id, true);
      return;
    }
    if (pr.isLearner) return;
    // Demote: drop from the incoming voters, keep the progress.
    remove(r, id);
    r.progress.set(id, pr);
    // A voter of the outgoing half stays a voter until the joint config is
    // left; it becomes a learner then.
    if (r.config.voters[1].has(id)) {
      r.config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      r.config.learners.add(id);
    }
  }

  private initProgress(r: ChangeResult, id: bigint, isLearner: boolean): void {
    if (isLearner) r.config.learners.add(id);
    else r.config.voters[0].add(id);
    // Probing from the last index finds the follower's match quickly; a new
    // member counts as active so that check-quorum does not depose the
    // leader before it had a chance to reach it.
    const pr = new Progress(Math.max(this.lastIndex, 1), new Inflights(this.inflightCountMax, this.inflightBytesMax), isLearner);
    pr.recentActive = true;
    r.progress.set(id, pr);
  }

  private checkAndCopy(): ChangeResult {
    const progress: ProgressMap = new Map();
    for (const [id, pr] of this.progress) progress.set(id, pr.clone());
    const r = { config: cloneTrackerConfig(this.config), progress };
    checkInvariants(r);
    return r;
  }
}

function remove(r: ChangeResult, id: bigint): void {
  if (!r.progress.has(id)) return;
  r.config.voters[0].delete(id);
  r.config.learners.delete(id);
  r.config.learnersNext.delete(id);
  // An outgoing voter keeps its progress until the joint config is left.
  if (!r.config.voters[1].has(id)) r.progress.delete(id);
}

function checkAndReturn(r: ChangeResult): ChangeResult {
  checkInvariants(r);
  return r;
}

/** The structural rules every configuration obeys; a violation is a bug in the change logic. */
export function checkInvariants(r: ChangeResult): void {
  const { config: cfg, progress } = r;
  for (const ids of [cfg.voters[0], cfg.voters[1], cfg.learners, cfg.learnersNext]) {
    for (const id of ids) if (!progress.has(id)) throw invalid(`no progress for ${id}`);
  }
  for (const id of cfg.learnersNext) {
    if (!cfg.voters[1].has(id)) throw invalid(`${id} is in learnersNext, but not in the outgoing voters`);
    if (progress.get(id)?.isLearner === true) throw invalid(`${id} is in learnersNext, but is already marked as learner`);
  }
  for (const id of cfg.learners) {
    if (cfg.voters[0].has(id) || cfg.voters[1].has(id)) throw invalid(`${id} is in learners and voters`);
    if (progress.get(id)?.isLearner !== true) throw invalid(`${id} is in learners, but is not marked as learner`);
  }
  if (!isJoint(cfg)) {
    if (cfg.learnersNext.size > 0) throw invalid('learnersNext must be empty when not joint');
    if (cfg.autoLeave) throw invalid('autoLeave must be false when not joint');
  }
}
