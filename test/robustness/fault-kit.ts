/**
 * What the faults share: their context, finding the leader and a target,
 * Cluster RPCs through whichever member answers, and putting a wiped member
 * back (faults.ts, and the faults of their own files: space.ts, bitflip.ts).
 */
import { rmSync } from 'node:fs';
import type { Rand } from '../../src/base/index.js';
import { GrpcError, type MethodDef } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { delay, memberStatus, methods, type Cluster, type Member } from '../harness/index.js';
import type { Access, RunAuth } from './access.js';
import type { MemberClocks } from './clock.js';
import type { RecordingClient } from './client.js';

export interface FaultContext {
  readonly cluster: Cluster;
  readonly rand: Rand;
  readonly readyTimeoutMs: number;
  /** The file every member re-arms its failpoints from on SIGUSR2 (ETCD_TS_FAILPOINTS_FILE). */
  readonly failpointsFile: string;
  /** Records what happened, for the history and the summary. */
  readonly note: (what: string) => void;
  /** How to reach the members (as root for the faults' own calls). */
  readonly access: Access;
  /** Set when the run has auth on: the auth fault changes it under traffic. */
  readonly auth: RunAuth | undefined;
  /** A cluster-wide client whose requests are ops of the history, for the faults that write (space). */
  readonly recorder: RecordingClient;
  /** Compacts at rev once the watch that defines the history has seen it (false: not within timeoutMs). */
  readonly compactOnceSeen: (rev: number, timeoutMs: number) => Promise<boolean>;
  /** Reports a broken promise the fault itself observed. */
  readonly violation: (check: string, message: string) => void;
  /** The members' wall clocks (the clock fault), when libfaketime is installed. */
  readonly clocks: MemberClocks | undefined;
  /**
   * With overlapping faults: waits for the network lane's current fault to
   * end (every link healed) and holds the lane until the returned function
   * is called, for a check that every member must pass (an isolated member
   * cannot learn of an alarm). Without overlap the network is whole already.
   */
  readonly quietNetwork: () => Promise<() => void>;
}

export async function leaderIndex(c: Cluster): Promise<number | undefined> {
  for (let i = 0; i < c.members.length; i++) {
    const m = c.members[i] as Member;
    if (!m.running) continue;
    const s = await memberStatus(m.endpoint).catch(() => undefined);
    if (s === undefined || s.leader === 0n) continue;
    const idx = await indexOfMemberId(c, s.leader);
    if (idx !== undefined) return idx;
  }
  return undefined;
}

async function indexOfMemberId(c: Cluster, id: bigint): Promise<number | undefined> {
  for (let i = 0; i < c.members.length; i++) {
    const s = await memberStatus((c.members[i] as Member).endpoint).catch(() => undefined);
    if (s?.header?.memberId === id) return i;
  }
  return undefined;
}

export async function pickTarget(ctx: FaultContext, role: 'leader' | 'follower' | 'any'): Promise<number> {
  const n = ctx.cluster.members.length;
  if (n === 1 || role === 'any') return ctx.rand.intn(n);
  const leader = (await leaderIndex(ctx.cluster)) ?? 0;
  if (role === 'leader') return leader;
  return (leader + 1 + ctx.rand.intn(n - 1)) % n;
}

const clusterCallRetryMs = 60_000;

/**
 * A Cluster RPC through whichever other member answers, retried for a minute:
 * with overlapping faults the cluster may have no quorum for most of one
 * (a member down while another is cut off until a snapshot, up to 20 s, then
 * cut off again).
 */
export async function clusterCall<Req, Res>(
  access: Access,
  c: Cluster,
  except: number,
  method: MethodDef<Req, Res>,
  req: Req,
  done: (e: GrpcError) => boolean = () => false,
): Promise<Res | undefined> {
  const deadline = performance.now() + clusterCallRetryMs;
  let last = '';
  for (let attempt = 0; performance.now() < deadline; attempt++) {
    const candidates = c.members.filter((x, j) => j !== except && x.running);
    const m = candidates[attempt % Math.max(1, candidates.length)];
    if (m === undefined) break;
    const ch = access.channel(m.endpoint, 'admin');
    try {
      return await ch.unary(method, req, { timeoutMs: 5000 });
    } catch (e) {
      if (!(e instanceof GrpcError)) throw e;
      access.noteError('admin', e, m.endpoint);
      if (done(e)) return undefined;
      last = e.message;
    } finally {
      ch.close();
    }
    await delay(300);
  }
  throw new Error(`cluster call failed for ${clusterCallRetryMs / 1000} s: ${last}`);
}

/** Member i, stopped and removed from the cluster: wiped, added back (a new id), started, promoted when a learner. */
export async function rejoinWiped(ctx: FaultContext, i: number, learner: boolean, how: string): Promise<void> {
  const c = ctx.cluster;
  const m = c.members[i] as Member;
  rmSync(m.dataDir, { recursive: true, force: true });
  const added = await addMember(ctx.access, c, i, m.peerUrl, learner);
  ctx.note(`replace ${m.name}: ${how}; wiped; added back as ${added.toString(16)}${learner ? ' (learner)' : ''}`);
  const fresh = c.replaceMember(i, { initialClusterState: 'existing' });
  await fresh.start({ timeoutMs: ctx.readyTimeoutMs });
  if (!learner) return;
  const promoted = await clusterCall(ctx.access, c, -1, methods.cluster.MemberPromote, etcdserverpb.MemberPromoteRequest.create({ ID: added }));
  ctx.note(`replace ${m.name}: learner ${added.toString(16)} promoted${promoted === undefined ? '?' : ''}`);
}

/** MemberAdd, or when an earlier attempt was applied (the peer URL exists), the id it got. */
async function addMember(access: Access, c: Cluster, except: number, peerUrl: string, learner: boolean): Promise<bigint> {
  const req = etcdserverpb.MemberAddRequest.create({ peerURLs: [peerUrl], isLearner: learner });
  const res = await clusterCall<etcdserverpb.MemberAddRequest, etcdserverpb.MemberAddResponse>(access, c, except, methods.cluster.MemberAdd, req, (e) => /Peer URLs already exists/.test(e.message));
  if (res?.member !== undefined) return res.member.ID;
  const list = await clusterCall<etcdserverpb.MemberListRequest, etcdserverpb.MemberListResponse>(access, c, except, methods.cluster.MemberList, etcdserverpb.MemberListRequest.create({}));
  const found = list?.members.find((x) => x.peerURLs.includes(peerUrl));
  if (found === undefined) throw new Error(`MemberAdd of ${peerUrl}: neither added nor listed`);
  return found.ID;
}
