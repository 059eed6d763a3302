import type { Rand } from '../../src/base/index.js';
import { raftpb } from '../../src/pb/index.js';

/** Fault knobs of the fake network; all probabilities are per message. */
export interface NetFaults {
  drop: number;
  duplicate: number;
  /** Delivery delay in ticks is uniform in [delayMin, delayMax]: unequal delays reorder. */
  delayMin: number;
  delayMax: number;
}

export const healthyNet: NetFaults = { drop: 0, duplicate: 0, delayMin: 0, delayMax: 1 };

interface InFlight {
  deliverAt: number;
  seq: number;
  m: raftpb.Message;
}

/** Bound on messages in flight: past it the network drops, as a full socket buffer would. */
const inflightMax = 20_000;

/**
 * A network in one process: messages wait until their delivery tick; a
 * partition (group per node) is checked at delivery time, so it also cuts
 * messages already on the wire.
 */
export class FakeNetwork {
  faults: NetFaults = healthyNet;
  private queue: InFlight[] = [];
  private seq = 0;
  private group = new Map<bigint, number>();
  dropped = 0;
  delivered = 0;

  constructor(private readonly rand: Rand) {}

  /** Queues m; false when the network lost it. */
  send(m: raftpb.Message, now: number): boolean {
    const f = this.faults;
    if (f.drop > 0 && this.rand.float() < f.drop) {
      this.dropped++;
      return false;
    }
    const copies = f.duplicate > 0 && this.rand.float() < f.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.queue.length >= inflightMax) {
        this.dropped++;
        return i > 0;
      }
      const delay = f.delayMin + this.rand.intn(f.delayMax - f.delayMin + 1);
      // Over the wire: the receiver gets its own decoded copy, never the sender's object.
      this.queue.push({ deliverAt: now + delay, seq: this.seq++, m: raftpb.Message.decode(raftpb.Message.encode(m)) });
    }
    return true;
  }

  /** Messages due at `now`, in (time, send order); removed from the wire. */
  due(now: number): raftpb.Message[] {
    const ready: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const x of this.queue) (x.deliverAt <= now ? ready : rest).push(x);
    this.queue = rest;
    ready.sort((a, b) => a.deliverAt - b.deliverAt || a.seq - b.seq);
    return ready.map((x) => x.m);
  }

  connected(a: bigint, b: bigint): boolean {
    return (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0);
  }

  /** Splits nodes into random groups (2 or 3), or heals with an empty list. */
  partition(ids: readonly bigint[], groups: number): void {
    this.group = new Map();
    if (groups <= 1) return;
    for (const id of ids) this.group.set(id, this.rand.intn(groups));
  }

  heal(): void {
    this.group = new Map();
  }

  size(): number {
    return this.queue.length;
  }
}
