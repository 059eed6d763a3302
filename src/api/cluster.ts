/**
 * The Cluster service: membership changes go through raft as conf changes
 * (applied on every member, then the transport learns the peer); promotion
 * runs on the leader, which knows how far the learner's log is.
 */
import { unary, type ServiceHandlers } from '../grpc/index.js';
import { etcdserverpb, raftpb, serverpb } from '../pb/index.js';
import { ConfigError, ServerError, checkUrl, memberToRecord, toPbMember, type EtcdServer, type RequestContext } from '../server/index.js';
import { check, checkCall, guard, requestContext } from './call-context.js';

type ClusterMethods = typeof etcdserverpb.ClusterService.methods;

/** Cluster responses carry no revision, as etcd's cluster server's header. */
function clusterHeader(s: EtcdServer): etcdserverpb.ResponseHeader {
  return etcdserverpb.ResponseHeader.create({ clusterId: s.cluster.clusterId, memberId: s.memberId, raftTerm: s.appliedTerm });
}

function parsePeerUrls(urls: readonly string[]): string[] {
  try {
    if (urls.length === 0) throw new ConfigError('no URLs');
    return urls.map(checkUrl).sort();
  } catch (e) {
    if (e instanceof ConfigError) throw new ServerError('MemberBadURLs');
    throw e;
  }
}

export function clusterService(s: EtcdServer): ServiceHandlers<ClusterMethods> {
  /** The caller's context, once it may change the membership (admin, when auth is on). */
  const admin = async (call: Parameters<typeof requestContext>[1]): Promise<RequestContext> => {
    const ctx = await requestContext(s, call);
    if (s.auth.isEnabled()) check(s.auth.isAdminPermitted(ctx.user));
    return ctx;
  };
  return {
    MemberAdd: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        // The URLs before the caller, as etcd 3.4 (its ClusterServer parses them before AddMember checks permission).
        const urls = parsePeerUrls(req.peerURLs);
        const ctx = await admin(call);
        const m = s.newMember(urls, req.isLearner);
        // Membership conflicts are refused when the change applies (it takes a raft entry, as in etcd).
        s.checkMayAddMember(req.isLearner);
        const T = raftpb.ConfChangeType;
        const members = await s.proposeConfChange(
          raftpb.ConfChange.create({
            type: req.isLearner ? T.ConfChangeAddLearnerNode : T.ConfChangeAddNode,
            nodeId: m.id,
            context: serverpb.MemberRecord.encode(memberToRecord(m)),
          }),
          ctx,
        );
        return etcdserverpb.MemberAddResponse.create({
          header: clusterHeader(s),
          member: toPbMember(m),
          members: members.map(toPbMember),
        });
      }),
    ),
    MemberRemove: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        const ctx = await admin(call);
        // A leader removing itself keeps leading until the others have the log, then hands over (raft).
        s.checkMayRemoveMember(req.ID);
        const members = await s.proposeConfChange(
          raftpb.ConfChange.create({ type: raftpb.ConfChangeType.ConfChangeRemoveNode, nodeId: req.ID }),
          ctx,
        );
        return etcdserverpb.MemberRemoveResponse.create({ header: clusterHeader(s), members: members.map(toPbMember) });
      }),
    ),
    MemberUpdate: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        const ctx = await admin(call);
        // An unknown id is refused when the change applies, as in etcd, whatever its URLs: etcd 3.4 parses
        // none here. A known member's must parse (etcd would take any string, which its peers could not dial).
        const known = s.cluster.members.get(req.ID);
        const urls = known === undefined ? [...req.peerURLs] : parsePeerUrls(req.peerURLs);
        const m = known ?? { id: req.ID, name: '', peerUrls: [], clientUrls: [], isLearner: false };
        const members = await s.proposeConfChange(
          raftpb.ConfChange.create({
            type: raftpb.ConfChangeType.ConfChangeUpdateNode,
            nodeId: req.ID,
            context: serverpb.MemberRecord.encode(memberToRecord({ ...m, peerUrls: urls })),
          }),
          ctx,
        );
        return etcdserverpb.MemberUpdateResponse.create({ header: clusterHeader(s), members: members.map(toPbMember) });
      }),
    ),
    MemberList: unary((_req, call) =>
      guard(() => {
        // A learner refuses it, as every RPC but Status and serializable reads (etcd 3.4.23).
        checkCall(s, call, false);
        // etcd 3.4 lists members to anyone: the token is not even read.
        return Promise.resolve(etcdserverpb.MemberListResponse.create({ header: clusterHeader(s), members: s.memberList().map(toPbMember) }));
      }),
    ),
    MemberPromote: unary((req, call) =>
      guard(async () => {
        checkCall(s, call, false);
        const members = await s.memberPromote(req.ID, await admin(call));
        return etcdserverpb.MemberPromoteResponse.create({ header: clusterHeader(s), members: members.map(toPbMember) });
      }),
    ),
  };
}
