/**
 * Maintenance: RPCs about one member (status, hash, defragment, snapshot,
 * move-leader) take the endpoint to ask, as clientv3's do; alarms go to any.
 * Status, hashes and defragment go as clientv3 sends them, over a connection
 * dialled to that member alone (which its logs name passthrough:///<endpoint>).
 */
import { etcdserverpb } from '../pb/index.js';
import type { CallOptions, Connection } from './connection.js';
import { toClientError } from './errors.js';

const m = etcdserverpb.MaintenanceService.methods;

export type AlarmName = 'NONE' | 'NOSPACE' | 'CORRUPT';

export class Maintenance {
  constructor(private readonly conn: Connection) {}

  alarmList(o: CallOptions = {}): Promise<etcdserverpb.AlarmResponse> {
    const req = { action: etcdserverpb.AlarmRequest_AlarmAction.GET, memberID: 0n, alarm: etcdserverpb.AlarmType.NONE };
    return this.conn.unary(m.Alarm, req, 'repeatable', o);
  }

  /** Deactivates one alarm; with memberID 0 and alarm NONE, every raised alarm (as clientv3's AlarmDisarm of each). */
  alarmDisarm(member: etcdserverpb.AlarmMember, o: CallOptions = {}): Promise<etcdserverpb.AlarmResponse> {
    const req = { action: etcdserverpb.AlarmRequest_AlarmAction.DEACTIVATE, memberID: member.memberID, alarm: member.alarm };
    return this.conn.unary(m.Alarm, req, 'nonRepeatable', o);
  }

  status(endpoint: string, o: CallOptions = {}): Promise<etcdserverpb.StatusResponse> {
    return this.conn.unary(m.Status, {}, 'repeatable', o, endpoint, true);
  }

  hashKV(endpoint: string, revision: number, o: CallOptions = {}): Promise<etcdserverpb.HashKVResponse> {
    return this.conn.unary(m.HashKV, { revision }, 'repeatable', o, endpoint, true);
  }

  hash(endpoint: string, o: CallOptions = {}): Promise<etcdserverpb.HashResponse> {
    return this.conn.unary(m.Hash, {}, 'repeatable', o, endpoint, true);
  }

  defragment(endpoint: string, o: CallOptions = {}): Promise<etcdserverpb.DefragmentResponse> {
    return this.conn.unary(m.Defragment, {}, 'nonRepeatable', o, endpoint, true);
  }

  moveLeader(endpoint: string, targetID: bigint, o: CallOptions = {}): Promise<etcdserverpb.MoveLeaderResponse> {
    return this.conn.unary(m.MoveLeader, { targetID }, 'nonRepeatable', o, endpoint);
  }

  /** The member's backend as a stream of chunks (the last ends with the sha256 etcd appends). */
  async *snapshot(endpoint: string | undefined, o: CallOptions = {}): AsyncGenerator<Uint8Array> {
    const call = await this.conn.serverStream(m.Snapshot, {}, o, endpoint);
    try {
      for (;;) {
        const resp = await call.read();
        if (resp === undefined) return;
        yield resp.blob;
      }
    } catch (err) {
      throw toClientError(err);
    } finally {
      call.cancel();
    }
  }
}
