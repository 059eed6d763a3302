/** Active alarms in the backend: the key is the encoded AlarmMember, the value empty. */
import { assert } from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';
import type { Schema } from './meta.js';

const emptyValue = new Uint8Array(0);
const firstKey = new Uint8Array([0]);

export class AlarmStorage {
  constructor(private readonly schema: Schema) {}

  /**
   * Stores the alarm. Any member id goes, 0 included, as in etcd, whose API
   * takes what a client sends; the one alarm whose key would be empty (member
   * 0, NONE) is refused by AlarmSet before it gets here.
   */
  put(alarm: etcdserverpb.AlarmMember): void {
    assert(alarm.memberID !== 0n || alarm.alarm !== etcdserverpb.AlarmType.NONE, 'an alarm with an empty key');
    this.schema.backend.write((tx) => tx.put(this.schema.buckets.alarm, etcdserverpb.AlarmMember.encode(alarm), emptyValue));
  }

  delete(alarm: etcdserverpb.AlarmMember): void {
    this.schema.backend.write((tx) => tx.delete(this.schema.buckets.alarm, etcdserverpb.AlarmMember.encode(alarm)));
  }

  all(): etcdserverpb.AlarmMember[] {
    return this.schema.backend.range(this.schema.buckets.alarm, firstKey, undefined).map((e) => etcdserverpb.AlarmMember.decode(e.key));
  }
}
