/**
 * Property: a Wal driven by random appends, overwrites, snapshots, releases
 * and reopens always reads back what a naive model of the raft log holds;
 * and after losing any part of what was written since the last fsync (whole
 * sectors zeroed, or the file cut anywhere), it reads back the model's state
 * after some prefix of the unsynced records, never less than what was synced.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { raftpb } from '../pb/index.js';
import { Wal, WalCorruptError, WalNotFoundError, type WalOptions, type WalSnapshotMarker } from './index.js';
import { describeEntries, makeEntries, makeTmpDir, removeDir } from './test-helpers.js';

const root = makeTmpDir('prop');
after(() => removeDir(root));
let runs = 0;

type Op =
  | { kind: 'append'; n: number; hs: boolean; sync: boolean }
  | { kind: 'overwrite'; back: number; n: number; sync: boolean }
  | { kind: 'snapshot' }
  | { kind: 'release' }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 0, max: 8 }), hs: fc.boolean(), sync: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), back: fc.integer({ min: 1, max: 6 }), n: fc.integer({ min: 1, max: 5 }), sync: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

interface State {
  entries: raftpb.Entry[];
  hardState: raftpb.HardState;
}

/** The raft log as the WAL should reproduce it: entries after the released-to snapshot. */
class Model {
  entries: raftpb.Entry[] = [];
  hardState = raftpb.HardState.create();
  term = 1;
  marker: WalSnapshotMarker = { index: 0, term: 0 };
  released: WalSnapshotMarker = { index: 0, term: 0 };

  get lastIndex(): number {
    return this.entries.at(-1)?.index ?? this.released.index;
  }

  /** Applies one saved batch as the WAL replays it (entries, then the hard state). */
  apply(entries: readonly raftpb.Entry[], hs: raftpb.HardState | undefined, onRecord?: () => void): void {
    for (const e of entries) {
      const first = this.entries[0]?.index ?? e.index;
      this.entries.length = Math.max(0, e.index - first);
      this.entries.push(e);
      onRecord?.();
    }
    if (hs !== undefined) {
      this.hardState = hs;
      onRecord?.();
    }
  }

  /** The state as open() after the released-to snapshot shows it; state defaults to the current one. */
  view(state: State = this.state()): string[] {
    return viewOf(state.entries.filter((e) => e.index > this.released.index), state.hardState);
  }

  state(): State {
    return { entries: [...this.entries], hardState: this.hardState };
  }
}

function viewOf(entries: readonly raftpb.Entry[], hs: raftpb.HardState): string[] {
  return [...describeEntries(entries), `hs ${hs.term}/${hs.commit}`];
}

/** Runs one op against both; returns the model's states before and after each record it wrote (for crash checks). */
async function step(wal: Wal, m: Model, op: Exclude<Op, { kind: 'reopen' }>): Promise<{ views: State[] }> {
  const views: State[] = [];
  switch (op.kind) {
    case 'append':
    case 'overwrite': {
      let from = m.lastIndex + 1;
      if (op.kind === 'overwrite') {
        m.term++;
        from = Math.max(m.hardState.commit + 1, m.marker.index + 1, m.released.index + 1, from - op.back);
      }
      const n = op.n;
      const entries = makeEntries(from, from + n - 1, m.term, 200);
      const withHs = op.kind === 'overwrite' || op.hs;
      const commit = Math.max(m.hardState.commit, Math.min(from + n - 1, from + n - 3));
      const hs = withHs ? raftpb.HardState.create({ term: m.term, commit }) : undefined;
      if (hs === undefined && entries.length === 0) return { views };
      views.push(m.state());
      m.apply(entries, hs, () => views.push(m.state()));
      await wal.save(hs, entries, op.sync);
      return { views };
    }
    case 'snapshot': {
      if (m.hardState.commit <= m.marker.index) return { views };
      const at = m.entries.find((e) => e.index === m.hardState.commit);
      if (at === undefined) return { views };
      m.marker = { index: at.index, term: at.term };
      await wal.saveSnapshot(m.marker);
      return { views };
    }
    case 'release':
      await wal.releaseTo(m.marker.index);
      m.released = m.marker;
      m.entries = m.entries.filter((e) => e.index > m.released.index);
      return { views };
  }
}

async function openView(dir: string, opts: WalOptions, m: Model): Promise<{ wal: Wal; view: string[] }> {
  const r = await Wal.open(dir, { ...opts, snapshot: m.released });
  return { wal: r.wal, view: viewOf(r.entries, r.hardState) };
}

/** Loses unsynced bytes of the tail: zeroes some of its sectors past syncedBytes, or cuts the file there. */
function crash(file: string, syncedBytes: number, offset: number, damage: { cutAt: number; sectors: boolean[] }): void {
  if (offset <= syncedBytes) return;
  const buf = fs.readFileSync(file);
  const first = Math.floor(syncedBytes / 512);
  const last = Math.floor((offset - 1) / 512);
  for (let s = first; s <= last; s++) {
    if (damage.sectors[(s - first) % damage.sectors.length] === true) buf.fill(0, Math.max(s * 512, syncedBytes), Math.min((s + 1) * 512, offset));
  }
  const cut = damage.cutAt < 0 ? buf.length : syncedBytes + (damage.cutAt % (offset - syncedBytes + 1));
  fs.writeFileSync(file, buf.subarray(0, cut));
}

test('the WAL reads back what the model holds, across reopens, releases and lost unsynced writes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 40, size: 'medium' }),
      fc.constantFrom(1024, 2048, 8192),
      fc.constantFrom('zero' as const, 'sparse' as const, 'none' as const),
      fc.record({ cutAt: fc.oneof(fc.constant(-1), fc.nat()), sectors: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }) }),
      async (ops, segmentBytes, preallocate, damage) => {
        const dir = join(root, `run${runs++}`);
        const opts: WalOptions = { segmentBytes, preallocate };
        let wal = await Wal.create(dir, new Uint8Array([7]), opts);
        const m = new Model();
        let pending: State[] = [];
        try {
          for (const op of ops) {
            if (op.kind === 'reopen') {
              await wal.close();
              const o = await openView(dir, opts, m);
              wal = o.wal;
              assert.deepEqual(o.view, m.view());
              pending = [];
              continue;
            }
            const r = await step(wal, m, op);
            // Everything saved is written and synced (a sync, or a cut, which syncs the old tail): no older
            // state can come back. A record held in memory for the next write is not (it can be lost).
            const pos = wal.position();
            pending = pos.syncedBytes === pos.offset && !pos.held ? [] : [...pending, ...r.views];
          }
          const { file, syncedBytes, offset } = wal.position();
          await wal.close();
          const whole = await openView(dir, opts, m);
          await whole.wal.close();
          assert.deepEqual(whole.view, m.view());
          crash(file, syncedBytes, offset, damage);
          const o = await openView(dir, opts, m);
          await o.wal.close();
          const allowed = [...pending.map((st) => m.view(st)), m.view()];
          assert.ok(
            allowed.some((v) => JSON.stringify(v) === JSON.stringify(o.view)),
            `after a crash read ${JSON.stringify(o.view)}, allowed ${JSON.stringify(allowed)}`,
          );
        } finally {
          removeDir(dir);
        }
      },
    ),
    { numRuns: Number(process.env['WAL_PROPERTY_RUNS'] ?? 100) },
  );
});

type Mutation =
  | { kind: 'byte'; file: number; at: number; value: number }
  | { kind: 'run'; file: number; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; file: number; at: number }
  | { kind: 'remove'; file: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), file: fc.nat(), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('run' as const), file: fc.nat(), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(), at: fc.nat() }),
  fc.record({ kind: fc.constant('remove' as const), file: fc.nat() }),
);

function mutate(dir: string, m: Mutation): void {
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
  const name = names[m.file % names.length];
  if (name === undefined) return;
  const file = join(dir, name);
  if (m.kind === 'remove') return fs.rmSync(file);
  const buf = fs.readFileSync(file);
  const at = buf.length === 0 ? 0 : m.at % buf.length;
  switch (m.kind) {
    case 'byte':
      buf[at] = m.value;
      return fs.writeFileSync(file, buf);
    case 'run':
      buf.set(m.bytes.subarray(0, buf.length - at), at);
      return fs.writeFileSync(file, buf);
    case 'truncate':
      return fs.truncateSync(file, at);
  }
}

test('a damaged log opens to entries it really holds, or is refused with WalCorruptError; nothing else', async () => {
  const base = join(root, 'fuzz-base');
  const opts: WalOptions = { segmentBytes: 2048 };
  const w = await Wal.create(base, new Uint8Array([1, 2]), opts);
  for (let i = 1; i <= 60; i += 4) await w.save(raftpb.HardState.create({ term: 1, commit: i + 3 }), makeEntries(i, i + 3, 1, 200), true);
  await w.close();
  const written = new Map(describeEntries(makeEntries(1, 63, 1, 200)).map((d) => [d.split('/')[0], d]));
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(mutationArb, { minLength: 1, maxLength: 3 }), async (mutations) => {
      const dir = join(root, `fuzz${runs++}`);
      fs.cpSync(base, dir, { recursive: true });
      try {
        for (const m of mutations) mutate(dir, m);
        let r;
        try {
          r = await Wal.open(dir, opts);
        } catch (e: unknown) {
          if (e instanceof WalCorruptError || e instanceof WalNotFoundError) {
            refused++;
            return;
          }
          throw e;
        }
        await r.wal.close();
        const got = describeEntries(r.entries);
        got.forEach((d, i) => {
          assert.equal(d, written.get(d.split('/')[0] as string), 'an entry that was never written');
          if (i > 0) assert.equal(Number(d.split('/')[0]), Number((got[i - 1] as string).split('/')[0]) + 1);
        });
      } finally {
        removeDir(dir);
      }
    }),
    { numRuns: Number(process.env['WAL_FUZZ_RUNS'] ?? 300) },
  );
  assert.ok(refused > 0);
});
