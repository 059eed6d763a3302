/**
 * Cluster membership: who the members are, their ids, and the rules a
 * configuration change must pass. Ids are derived exactly as etcd derives them,
 * so a cluster bootstrapped with the same flags has the same member and
 * cluster ids as a real etcd one:
 * - member id: the first 8 bytes (big-endian) of SHA-1 over the sorted peer
 *   URLs concatenated, then the cluster token (a member of --initial-cluster)
 *   or the decimal Unix time in seconds (a member added at run time: etcd's
 *   MemberAdd hashes no token);
 * - cluster id: the first 8 bytes of SHA-1 over the sorted member ids, each
 *   as 8 big-endian bytes.
 */
import { createHash } from 'node:crypto';
import { assert, idToHex } from '../base/index.js';
import { serverpb } from '../pb/index.js';
import { ConfigError } from './config.js';
import { ServerError } from './errors.js';
import { checkOwnUrl, checkUrl } from './urls.js';

export { checkOwnUrl, checkUrl } from './urls.js';

export interface Member {
  readonly id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export function computeMemberId(peerUrls: readonly string[], clusterToken: string, unixSeconds?: number): bigint {
  const h = createHash('sha1');
  for (const u of [...peerUrls].sort()) h.update(u);
  h.update(clusterToken);
  if (unixSeconds !== undefined) h.update(String(unixSeconds));
  return h.digest().readBigUInt64BE(0);
}

export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const b = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => b.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}

/** Parses a comma-separated list of this member's own URLs ("http://a:1,http://b:2"). */
export function parseUrls(s: string): string[] {
  const urls = s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  if (urls.length === 0) throw new ConfigError('no valid URLs given');
  return urls.map(checkOwnUrl).sort();
}

/** Parses --initial-cluster: "name=url,name=url2,other=url3" (a name may repeat). */
export function parseUrlsMap(s: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const pair of s.split(',').filter((x) => x.trim() !== '')) {
    // As Go's query parsing that etcd uses: "name" alone is a name with an empty URL.
    const eq = pair.indexOf('=');
    const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    const url = checkUrl(eq < 0 ? '' : pair.slice(eq + 1).trim());
    const list = out.get(name) ?? [];
    list.push(url);
    out.set(name, list);
  }
  for (const list of out.values()) list.sort();
  return out;
}

/** Whether two URL lists hold the same URLs, in any order. */
export function sameUrls(a: readonly string[], b: readonly string[]): boolean {
  return [...a].sort().join(',') === [...b].sort().join(',');
}

/** The largest number of learners a cluster may have (etcd 3.4 allows one). */
export const learnersMax = 1;

export class RaftCluster {
  readonly members = new Map<bigint, Member>();
  readonly removed = new Set<bigint>();
  clusterId: bigint;
  version = '';

  constructor(
    readonly token: string,
    clusterId = 0n,
  ) {
    this.clusterId = clusterId;
  }

  /** A new cluster from --initial-cluster; the cluster id is derived from the member ids. */
  static fromInitialCluster(token: string, urlsMap: ReadonlyMap<string, readonly string[]>): RaftCluster {
    const c = new RaftCluster(token);
    for (const [name, urls] of urlsMap) {
      const id = computeMemberId(urls, token);
      if (c.members.has(id)) throw new ConfigError(`member exists with identical ID ${idToHex(id)}`);
      if (id === 0n) throw new ConfigError('cannot use 0 as member id');
      c.members.set(id, { id, name, peerUrls: [...urls].sort(), clientUrls: [], isLearner: false });
    }
    c.clusterId = computeClusterId([...c.members.keys()]);
    return c;
  }

  /** Members sorted by id (the order etcd's MemberList returns). */
  memberList(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  memberByName(name: string): Member | undefined {
    for (const m of this.members.values()) if (m.name === name) return m;
    return undefined;
  }

  voterIds(): bigint[] {
    return this.memberList()
      .filter((m) => !m.isLearner)
      .map((m) => m.id);
  }

  learnerCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.isLearner) n++;
    return n;
  }

  /** Rejects an add that etcd would reject, before it is proposed. */
  checkAdd(m: Member): void {
    if (this.removed.has(m.id)) throw new ServerError('IDRemoved', `member ${idToHex(m.id)} was removed`);
    if (this.members.has(m.id)) throw new ServerError('MemberExist');
    for (const other of this.members.values()) {
      if (other.peerUrls.some((u) => m.peerUrls.includes(u))) throw new ServerError('PeerURLExist');
    }
    if (m.isLearner && this.learnerCount() >= learnersMax) throw new ServerError('TooManyLearners');
  }

  checkRemove(id: bigint): void {
    if (this.removed.has(id)) throw new ServerError('IDRemoved', `member ${idToHex(id)} was removed`);
    if (!this.members.has(id)) throw new ServerError('MemberNotFound');
  }

  checkUpdate(id: bigint, peerUrls: readonly string[]): void {
    const m = this.members.get(id);
    if (m === undefined) throw new ServerError('MemberNotFound');
    for (const other of this.members.values()) {
      if (other.id !== id && other.peerUrls.some((u) => peerUrls.includes(u))) throw new ServerError('PeerURLExist');
    }
  }

  /** etcd's check of a promotion when it applies: the member must exist and be a learner. */
  checkPromote(id: bigint): void {
    const m = this.members.get(id);
    if (m === undefined) throw new ServerError('MemberNotFound');
    if (!m.isLearner) throw new ServerError('MemberNotLearner');
  }

  // Strict reconfiguration, as etcd counts it: a voter is "started" once it
  // has published its name through raft (whether it runs now is the transport's
  // question, asked separately).

  private startedVoters(excluding?: bigint): { voters: number; started: number } {
    let voters = 0;
    let started = 0;
    for (const m of this.members.values()) {
      if (m.isLearner || m.id === excluding) continue;
      voters++;
      if (m.name !== '') started++;
    }
    return { voters, started };
  }

  /** Whether the started voters stay a quorum with one more voter (not yet started). */
  isReadyToAddVoter(): boolean {
    const { voters, started } = this.startedVoters();
    // A one-member cluster may grow to two: how a single restored member is grown.
    if (started === 1 && voters === 1) return true;
    return started >= Math.floor((voters + 1) / 2) + 1;
  }

  /** Whether the other started voters stay a quorum without this one. */
  isReadyToRemoveVoter(id: bigint): boolean {
    const { voters, started } = this.startedVoters(id);
    return started >= Math.floor(voters / 2) + 1;
  }

  /** Whether the started voters and the promoted learner make a quorum of the voters after the promotion. */
  isReadyToPromote(): boolean {
    const { voters, started } = this.startedVoters();
    return started + 1 >= Math.floor((voters + 1) / 2) + 1;
  }

  // The mutations below run in apply, identically on every member.

  add(m: Member): void {
    assert(!this.members.has(m.id), `member ${idToHex(m.id)} added twice`);
    this.members.set(m.id, { ...m, peerUrls: [...m.peerUrls].sort(), clientUrls: [...m.clientUrls] });
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  updatePeerUrls(id: bigint, peerUrls: readonly string[]): void {
    const m = this.members.get(id);
    if (m !== undefined) m.peerUrls = [...peerUrls].sort();
  }

  promote(id: bigint): void {
    const m = this.members.get(id);
    if (m !== undefined) m.isLearner = false;
  }

  setAttributes(id: bigint, name: string, clientUrls: readonly string[]): void {
    const m = this.members.get(id);
    if (m !== undefined) {
      m.name = name;
      m.clientUrls = [...clientUrls];
    }
  }

  /** Whether the local --initial-cluster entry for name matches this cluster's record. */
  matchesInitial(name: string, peerUrls: readonly string[]): boolean {
    const m = this.memberByName(name);
    return m !== undefined && sameUrls(m.peerUrls, peerUrls);
  }

  toSnapshotData(): serverpb.SnapshotData {
    return serverpb.SnapshotData.create({
      members: this.memberList().map(memberToRecord),
      removed: [...this.removed].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      clusterVersion: this.version,
    });
  }

  restoreFrom(data: serverpb.SnapshotData): void {
    this.load(data.members, data.removed, data.clusterVersion);
  }

  /** Replaces the whole membership: from a snapshot's data, or from the backend (MembershipStorage). */
  load(members: Iterable<serverpb.MemberRecord>, removed: Iterable<bigint>, version: string): void {
    this.members.clear();
    this.removed.clear();
    for (const r of members) this.members.set(r.ID, memberFromRecord(r));
    for (const id of removed) this.removed.add(id);
    this.version = version;
  }
}

export function memberToRecord(m: Member): serverpb.MemberRecord {
  return serverpb.MemberRecord.create({
    ID: m.id,
    name: m.name,
    peerUrls: [...m.peerUrls],
    clientUrls: [...m.clientUrls],
    isLearner: m.isLearner,
  });
}

export function memberFromRecord(r: serverpb.MemberRecord): Member {
  return { id: r.ID, name: r.name, peerUrls: [...r.peerUrls], clientUrls: [...r.clientUrls], isLearner: r.isLearner };
}
