/**
 * The active alarms (NOSPACE, CORRUPT), raised and disarmed through raft so
 * every member agrees, persisted in the backend's alarm bucket. While NOSPACE
 * is active writes that grow the store fail; while CORRUPT is active the KV
 * service stops serving (etcd's capped and corrupt appliers). `onChange`
 * hears of every change (raised, disarmed, reloaded), after it is made.
 */
import type { AlarmStorage } from '../schema/index.js';
import { etcdserverpb } from '../pb/index.js';

const { AlarmType } = etcdserverpb;

function keyOf(memberId: bigint, alarm: number): string {
  return `${alarm}:${memberId.toString(16)}`;
}

function compareAlarms(a: etcdserverpb.AlarmMember, b: etcdserverpb.AlarmMember): number {
  if (a.alarm !== b.alarm) return a.alarm - b.alarm;
  return a.memberID < b.memberID ? -1 : a.memberID > b.memberID ? 1 : 0;
}

export class AlarmSet {
  private readonly active = new Map<string, etcdserverpb.AlarmMember>();

  constructor(
    private readonly storage: AlarmStorage,
    private readonly onChange: (set: AlarmSet) => void = () => undefined,
  ) {
    this.reload();
  }

  /** Re-reads the backend (after a snapshot was installed). */
  reload(): void {
    this.active.clear();
    for (const a of this.storage.all()) this.active.set(keyOf(a.memberID, a.alarm), a);
    this.onChange(this);
  }

  /** Every active alarm of this type (NONE: of every type), in a stable order. */
  get(alarm: etcdserverpb.AlarmType = AlarmType.NONE): etcdserverpb.AlarmMember[] {
    const out = [...this.active.values()].filter((a) => alarm === AlarmType.NONE || a.alarm === alarm);
    return out.sort(compareAlarms);
  }

  /** Whether this alarm is active for this member. */
  names(memberId: bigint, alarm: etcdserverpb.AlarmType): boolean {
    return this.active.has(keyOf(memberId, alarm));
  }

  has(alarm: etcdserverpb.AlarmType): boolean {
    for (const a of this.active.values()) if (a.alarm === alarm) return true;
    return false;
  }

  /** Raises the alarm; returns the (possibly already active) alarm. Runs in apply. */
  activate(memberId: bigint, alarm: etcdserverpb.AlarmType): etcdserverpb.AlarmMember {
    const k = keyOf(memberId, alarm);
    const existing = this.active.get(k);
    if (existing !== undefined) return existing;
    const m = etcdserverpb.AlarmMember.create({ memberID: memberId, alarm });
    this.active.set(k, m);
    this.storage.put(m);
    this.onChange(this);
    return m;
  }

  /** Disarms the alarm; returns it, or undefined when it was not active. Runs in apply. */
  deactivate(memberId: bigint, alarm: etcdserverpb.AlarmType): etcdserverpb.AlarmMember | undefined {
    const k = keyOf(memberId, alarm);
    const m = this.active.get(k);
    if (m === undefined) return undefined;
    this.active.delete(k);
    this.storage.delete(m);
    this.onChange(this);
    return m;
  }
}
