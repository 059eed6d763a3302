import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { raftpb } from '../../pb/index.js';
import { ProgressTracker, describeTrackerConfig, emptyTrackerConfig } from '../tracker/index.js';
import { Changer, type ChangeResult, parseConfChanges, restoreConfState } from './index.js';

const changer = (r: ChangeResult): Changer => new Changer(r.config, r.progress, 10, 256, 0);
const empty = (): ChangeResult => ({ config: emptyTrackerConfig(), progress: new Map() });

const ccArb = fc.record({
  type: fc.constantFrom(
    raftpb.ConfChangeType.ConfChangeAddNode,
    raftpb.ConfChangeType.ConfChangeAddLearnerNode,
    raftpb.ConfChangeType.ConfChangeRemoveNode,
    raftpb.ConfChangeType.ConfChangeUpdateNode,
  ),
  nodeId: fc.bigInt({ min: 1n, max: 7n }),
});
const ccsArb = fc.array(ccArb.map((c) => raftpb.ConfChangeSingle.create(c)), { minLength: 1, maxLength: 8 });

function learnersOf(r: ChangeResult): string {
  return [...r.progress].filter(([, p]) => p.isLearner).map(([id]) => id).sort().join(',');
}

function tryRun(f: () => ChangeResult): ChangeResult | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

test('joint and one-at-a-time changes reach the same configuration', () => {
  let compared = 0;
  fc.assert(
    fc.property(ccsArb, ccsArb, (setup, ccs) => {
      // Start from a config built one change at a time (at least one voter).
      let base: ChangeResult | undefined = changer(empty()).simple([parseConfChanges('v1').changes[0]!]);
      for (const cc of setup) base = base && tryRun(() => changer(base!).simple([cc]));
      if (base === undefined) return;
      let simple: ChangeResult | undefined = base;
      for (const cc of ccs) simple = simple && tryRun(() => changer(simple!).simple([cc]));
      if (simple === undefined) return; // e.g. it removed the last voter on the way
      const joint = changer(changer(base).enterJoint(false, ccs)).leaveJoint();
      assert.equal(describeTrackerConfig(joint.config), describeTrackerConfig(simple.config));
      assert.deepEqual([...joint.progress.keys()].sort(), [...simple.progress.keys()].sort());
      assert.equal(learnersOf(joint), learnersOf(simple));
      compared++;
    }),
    { numRuns: 1000 },
  );
  assert.ok(compared > 200, `only ${compared} comparable runs`);
});

test('restoring a ConfState reproduces the configuration, joint or not', () => {
  fc.assert(
    fc.property(ccsArb, ccsArb, fc.boolean(), fc.boolean(), (setup, ccs, joint, autoLeave) => {
      let r: ChangeResult | undefined = changer(empty()).simple([parseConfChanges('v1').changes[0]!]);
      for (const cc of setup) r = r && tryRun(() => changer(r!).simple([cc]));
      if (r === undefined) return;
      const next = tryRun(() => (joint ? changer(r).enterJoint(autoLeave, ccs) : changer(r).simple(ccs.slice(0, 1))));
      if (next === undefined) return;
      const trk = new ProgressTracker(256, 0);
      trk.config = next.config;
      trk.progress = next.progress;
      const cs = trk.confState();
      const restored = restoreConfState(cs, 10, 256, 0);
      assert.equal(describeTrackerConfig(restored.config), describeTrackerConfig(next.config));
      assert.equal(learnersOf(restored), learnersOf(next));
    }),
    { numRuns: 1000 },
  );
});

test('invalid changes are refused with ConfChangeInvalid', () => {
  const r = changer(empty()).simple(parseConfChanges('v1').changes);
  assert.throws(() => changer(r).simple(parseConfChanges('r1').changes), /removed all voters/);
  assert.throws(() => changer(r).simple(parseConfChanges('v2 v3').changes), /more than one voter/);
  const j = changer(r).enterJoint(true, parseConfChanges('v2 v3').changes);
  assert.equal(describeTrackerConfig(j.config), 'voters=(1 2 3)&&(1) autoleave');
  assert.throws(() => changer(j).enterJoint(false, []), /already joint/);
  assert.throws(() => changer(j).simple([]), /joint/);
  assert.throws(() => changer(r).leaveJoint(), /non-joint/);
  const demote = changer(changer(j).leaveJoint()).enterJoint(false, parseConfChanges('l1').changes);
  assert.equal(describeTrackerConfig(demote.config), 'voters=(2 3)&&(1 2 3) learners_next=(1)');
  assert.equal(describeTrackerConfig(changer(demote).leaveJoint().config), 'voters=(2 3) learners=(1)');
});
