/** Cluster: membership RPCs (list, add, remove, update, promote). */
import { etcdserverpb } from '../pb/index.js';
import type { CallOptions, Connection } from './connection.js';

const m = etcdserverpb.ClusterService.methods;

export class Cluster {
  constructor(private readonly conn: Connection) {}

  memberList(o: CallOptions = {}): Promise<etcdserverpb.MemberListResponse> {
    return this.conn.unary(m.MemberList, { linearizable: false }, 'repeatable', o);
  }

  memberAdd(peerURLs: string[], o: CallOptions & { isLearner?: boolean } = {}): Promise<etcdserverpb.MemberAddResponse> {
    return this.conn.unary(m.MemberAdd, { peerURLs, isLearner: o.isLearner ?? false }, 'nonRepeatable', o);
  }

  memberRemove(id: bigint, o: CallOptions = {}): Promise<etcdserverpb.MemberRemoveResponse> {
    return this.conn.unary(m.MemberRemove, { ID: id }, 'nonRepeatable', o);
  }

  memberUpdate(id: bigint, peerURLs: string[], o: CallOptions = {}): Promise<etcdserverpb.MemberUpdateResponse> {
    return this.conn.unary(m.MemberUpdate, { ID: id, peerURLs }, 'nonRepeatable', o);
  }

  memberPromote(id: bigint, o: CallOptions = {}): Promise<etcdserverpb.MemberPromoteResponse> {
    return this.conn.unary(m.MemberPromote, { ID: id }, 'nonRepeatable', o);
  }
}
