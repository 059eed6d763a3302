/**
 * node dist/test/raft-sim/throughput.js [entries] [batch] [bytes]
 *
 * Measures the raft core alone: a 3-voter cluster in one process (memory
 * storage, no disk, no network), proposals in batches at the leader, every
 * Ready persisted, sent and applied. Prints proposals per second.
 */
import { SeededRand } from '../../src/base/index.js';
import type { raftpb } from '../../src/pb/index.js';
import { MemoryStorage, RawNode } from '../../src/raft/index.js';

const total = Number(process.argv[2] ?? '200000');
const batch = Number(process.argv[3] ?? '1000');
const bytes = Number(process.argv[4] ?? '100');

const nodes = [1n, 2n, 3n].map((id) => {
  const storage = new MemoryStorage();
  const rn = new RawNode({ id, storage, rand: new SeededRand(Number(id)), inflightMsgsMax: 256, msgAppBytesMax: 1024 * 1024 });
  rn.bootstrap([{ id: 1n }, { id: 2n }, { id: 3n }]);
  return { id, storage, rn, applied: 0 };
});
const wire: raftpb.Message[] = [];

function pump(): void {
  for (let round = 0; round < 10_000; round++) {
    let moved = false;
    for (const n of nodes) {
      if (!n.rn.hasReady()) continue;
      const rd = n.rn.ready();
      if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) wire.push(m);
      const last = rd.committedEntries[rd.committedEntries.length - 1];
      if (last !== undefined) n.applied = last.index;
      n.rn.advance(rd);
      moved = true;
    }
    const msgs = wire.splice(0);
    for (const m of msgs) nodes[Number(m.to) - 1]?.rn.step(m);
    if (!moved && msgs.length === 0) return;
  }
}

pump();
nodes[0]?.rn.campaign();
pump();
const leader = nodes[0];
if (leader === undefined) throw new Error('no leader');
const data = new Uint8Array(bytes);
const start = performance.now();
for (let done = 0; done < total; done += batch) {
  for (let i = 0; i < batch; i++) leader.rn.propose(data);
  pump();
}
const secs = (performance.now() - start) / 1000;
const target = leader.rn.status().commit;
if (!nodes.every((n) => n.applied === target)) throw new Error('not all applied');
console.log(`raft throughput: ${total} proposals of ${bytes} B in batches of ${batch}: ${(total / secs).toFixed(0)}/s (${secs.toFixed(2)} s)`);
