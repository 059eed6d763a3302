/**
 * The run's own maintenance, as an operator's cron would do it: compaction
 * every second and defrag every few seconds, on a member picked at random.
 * Compaction stays below where every guarded watch has got (the history is
 * replayed from them); every other time it may pass the passable ones,
 * which are then canceled as compacted and start again at the compact
 * revision (P12). Snapshots are taken every few seconds, every other one
 * beside a defrag of the same member (snapshots.ts). The space fault compacts through the same Compactor, past
 * its own deletes, once the guarded watches have seen them.
 */
import type { Rand } from '../../src/base/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, methods, type Cluster, type Member } from '../harness/index.js';
import type { Access } from './access.js';
import type { RecordingClient } from './client.js';
import { nowMs, type SnapshotRecord } from './history.js';
import { takeSnapshot } from './snapshots.js';

export interface WatchPosition {
  /** The last revision the watch has seen everything up to. */
  readonly last: number;
}

export class Compactor {
  /** The highest revision a compaction was acknowledged at. */
  private compacted = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly access: Access,
    private readonly guarded: readonly WatchPosition[],
    /** Every compaction asked for, at the time it was sent (the history's). */
    private readonly compactions: { atMs: number; revision: number }[],
    /** Where snapshots are taken to, and their records (the history's); none taken without. */
    private readonly snapshots?: { readonly dir: string; readonly records: SnapshotRecord[] },
  ) {}

  /** Compacts at revision through member m; false when it failed (a fault), or was below an earlier one. */
  async compact(m: Member, revision: number): Promise<boolean> {
    if (revision <= this.compacted) return false;
    const ch = this.access.channel(m.endpoint, 'admin');
    this.compactions.push({ atMs: nowMs(), revision });
    try {
      await ch.unary(methods.kv.Compact, etcdserverpb.CompactionRequest.create({ revision }), { timeoutMs: 3000 });
      this.compacted = Math.max(this.compacted, revision);
      return true;
    } catch (e) {
      // A compaction lost to a fault is retried at the next tick.
      this.access.noteError('admin', e, m.endpoint);
      return false;
    } finally {
      ch.close();
    }
  }

  /**
   * Compacts at revision once every guarded watch has seen it (waiting at most
   * timeoutMs), through any running member, retried while members fail.
   */
  async compactOnceSeen(revision: number, timeoutMs: number): Promise<boolean> {
    const deadline = nowMs() + timeoutMs;
    while (nowMs() < deadline && Math.min(...this.guarded.map((w) => w.last)) < revision) await delay(100);
    while (nowMs() < deadline) {
      if (Math.min(...this.guarded.map((w) => w.last)) < revision) return false;
      if (revision <= this.compacted) return true;
      const running = this.cluster.members.filter((m) => m.running);
      for (const m of running) if (await this.compact(m, revision)) return true;
      await delay(300);
    }
    return false;
  }

  /**
   * Compaction every second and defrag every fifth, until stopped. The target
   * is 20 revisions behind the newest any client saw (a client behind that
   * may read a compacted revision, P12) and behind every guarded watch, and
   * every other second every passable one too.
   */
  async run(rand: Rand, passable: readonly WatchPosition[], clients: readonly RecordingClient[], stopped: () => boolean, note: (w: string) => void): Promise<void> {
    let tick = 0;
    while (!stopped()) {
      await delay(1000);
      tick++;
      const running = this.cluster.members.filter((m) => m.running);
      if (running.length === 0) continue;
      const m = running[rand.intn(running.length)] as Member;
      const bounding = tick % 2 === 0 ? [...this.guarded, ...passable] : this.guarded;
      const target = Math.min(...bounding.map((w) => w.last), Math.max(...clients.map((c) => c.lastRevision))) - 20;
      if (target > this.compacted + 10) await this.compact(m, target);
      if (tick % 5 === 0) {
        // Every other defrag has a snapshot of the same member beside it.
        const snapshot = tick % 10 === 0 ? this.snapshot(m, note) : undefined;
        const error = await defragment(this.access, m.endpoint).then(() => undefined, (e: unknown) => (e as Error).message);
        if (error !== undefined) note(`defrag of ${m.name} failed: ${error}`);
        await snapshot;
      }
      if (tick % 5 === 3) await this.snapshot(m, note);
    }
  }

  /** A Maintenance.Snapshot of m, recorded (a fault may fail it: noted). */
  private async snapshot(m: Member, note: (w: string) => void): Promise<void> {
    if (this.snapshots === undefined) return;
    try {
      this.snapshots.records.push(await takeSnapshot(this.access, m.endpoint, this.snapshots.dir, 10_000));
    } catch (e) {
      note(`snapshot of ${m.name} failed: ${(e as Error).message.split('\n')[0] ?? ''}`);
    }
  }
}

export async function defragment(access: Access, endpoint: string): Promise<void> {
  const ch = access.channel(endpoint, 'admin');
  try {
    await ch.unary(methods.maintenance.Defragment, etcdserverpb.DefragmentRequest.create({}), { timeoutMs: 10_000 });
  } catch (e) {
    access.noteError('admin', e, endpoint);
    throw e;
  } finally {
    ch.close();
  }
}
