import { assert } from '../base/index.js';
import type { raftpb } from '../pb/index.js';
import { ReadOnlyOption } from './config.js';

/** A read the application may serve once its applied index reaches `index`. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/** A pending ReadIndex request at the leader: the commit index when it arrived, and who acked the heartbeat round. */
export interface ReadIndexStatus {
  req: raftpb.Message;
  index: number;
  acks: Set<bigint>;
}

/** The key of a request context in the pending map. */
export function ctxKey(ctx: Uint8Array): string {
  let s = '';
  for (const b of ctx) s += String.fromCharCode(b);
  return s;
}

/** A bound on pending read requests; more are dropped (the client retries). */
export const pendingReadsMax = 4096;

/**
 * The leader's pending linearizable reads (safe mode). Each request waits
 * for a heartbeat round carrying its context to be acked by a quorum; reads
 * are answered in arrival order, and an ack for a later request confirms
 * every earlier one.
 */
export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  size(): number {
    return this.queue.length;
  }

  /** Registers a read at commit index `index`; false when already pending or full. */
  addRequest(index: number, m: raftpb.Message): boolean {
    const key = ctxKey(m.context);
    if (this.pending.has(key)) return false;
    if (this.queue.length >= pendingReadsMax) return false;
    this.pending.set(key, { index, req: m, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records a heartbeat ack carrying ctx; returns the acks so far, or undefined for an unknown ctx. */
  recvAck(id: bigint, ctx: Uint8Array): ReadonlySet<bigint> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Removes and returns every request up to and including the one with ctx. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const i = this.queue.indexOf(key);
    if (i < 0) return [];
    const keys = this.queue.splice(0, i + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of keys) {
      const rs = this.pending.get(k);
      assert(rs !== undefined, 'cannot find corresponding read state from pending map');
      this.pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  /** The context of the newest pending request: heartbeats carry it. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)?.req.context;
  }

  reset(): void {
    this.pending = new Map();
    this.queue = [];
  }
}
