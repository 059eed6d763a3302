/**
 * The child process of the crash test (wal-crash.test.ts), not part of the
 * module's API. It opens (or creates) the WAL in argv[2] and appends batches
 * forever, printing "ack <last index>" after each save resolves, until the
 * parent kills it with SIGKILL. Entries are makeEntry(index, 1, ...), so the
 * parent can check every one it reads back.
 *
 *   node crash-child.js <dir> <seed> <segmentBytes> <zero|sparse|none>
 */
import { SeededRand } from '../base/index.js';
import { raftpb } from '../pb/index.js';
import { Wal, type Preallocate } from './index.js';
import { crashEntryMinBytes, crashEntrySpread, makeEntries } from './test-helpers.js';

/** Every this many batches the child saves a snapshot marker and releases the segments below it. */
const snapshotEveryBatches = 40;
/** The marker trails the last index by this much, so the released log still holds recent entries. */
const snapshotLagEntries = 150;

async function main(): Promise<void> {
  const [dir, seedText, segmentText, preallocateText] = process.argv.slice(2);
  if (dir === undefined || seedText === undefined || segmentText === undefined) {
    throw new Error('usage: crash-child <dir> <seed> <segmentBytes> <preallocate>');
  }
  const preallocate: Preallocate = preallocateText === 'sparse' || preallocateText === 'none' ? preallocateText : 'zero';
  const opts = { segmentBytes: Number(segmentText), preallocate };
  const rand = new SeededRand(Number(seedText));
  if (!Wal.exists(dir)) await (await Wal.create(dir, new Uint8Array([0xc0, 0xde]), opts)).close();
  const r = await Wal.open(dir, opts);
  const wal = r.wal;
  const markerMax = r.snapshots.reduce((m, s) => Math.max(m, s.index), 0);
  let last = Math.max(r.entries.at(-1)?.index ?? 0, markerMax);
  process.stdout.write(`open ${last}\n`);
  for (let batch = 1; ; batch++) {
    const n = rand.intn(3) === 0 ? 100 : 1 + rand.intn(5);
    const entries = makeEntries(last + 1, last + n, 1, crashEntrySpread, crashEntryMinBytes);
    last += n;
    await wal.save(raftpb.HardState.create({ term: 1, commit: last }), entries, true);
    process.stdout.write(`ack ${last}\n`);
    if (rand.intn(4) === 0) {
      // A hard-state-only Ready (commit moved) need not be synced; it is never acknowledged.
      await wal.save(raftpb.HardState.create({ term: 1, commit: last }), [], false);
    }
    if (batch % snapshotEveryBatches === 0 && last > snapshotLagEntries) {
      const index = last - snapshotLagEntries;
      await wal.saveSnapshot({ index, term: 1 });
      await wal.releaseTo(index);
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`crash-child: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
