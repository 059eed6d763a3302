/**
 * What the differential tests of a 3-member real etcd and a 3-member etcd-ts
 * share: a side (one cluster, with the names its ids, URLs and ports stand
 * for), the normalizations of what legitimately differs between two clusters
 * (ids, terms, the row order that follows ids, the deadline race), and
 * pinning the leader to m1 on both.
 */
import assert from 'node:assert/strict';
import { delay, etcdctl, freePorts, memberStatus, type Cluster, type CtlResult, type Member, type MemberKind, type Workspace } from '../harness/index.js';
import { fastElection, readyTimeoutMs } from '../cluster/kit.js';
import { formatMismatches, idForms, replaceLongestFirst, type Mismatch, type Observed } from '../e2e/diff-kit.js';
import { eventually, memberIds } from './kit.js';

/** Where a step's etcdctl connects: 'leader' (m1), 'follower' (m2), or a member's name. */
export type Via = string;

/** One cluster of one kind, with what its values stand for. */
export class Side {
  /** ${name} -> value, for the arguments. */
  readonly vars = new Map<string, string>();
  /** Members started later (learners), by name. */
  readonly joined = new Map<string, Member>();
  /** What the last step printed here. */
  last: CtlResult | undefined;

  constructor(
    readonly kind: MemberKind,
    readonly cluster: Cluster,
  ) {}

  member(name: string): Member {
    const m = this.joined.get(name) ?? this.cluster.members.find((x) => x.name === name);
    if (m === undefined) throw new Error(`${this.kind}: no member ${name}`);
    return m;
  }

  at(via: Via): Member {
    return this.member(via === 'leader' ? 'm1' : via === 'follower' ? 'm2' : via);
  }

  endpoint(via: Via): string {
    return this.at(via).endpoint;
  }

  subst(arg: string): string {
    return arg.replace(/\$\{([a-zA-Z0-9_.-]+)\}/g, (_m, name: string) => {
      // Not known (an add that failed on this side): a value that shows in the comparison.
      return this.vars.get(name) ?? `no-${name}`;
    });
  }

  /** Every value of this side replaced by its name: ids (hex, %16x, decimal), URLs, endpoints, ports. */
  normIds(s: string): string {
    const pairs: [string, string][] = [];
    for (const [name, v] of this.vars) {
      if (name.startsWith('port.')) pairs.push([`127.0.0.1:${v}`, `<${name}>`]);
      else if (/^[0-9a-f]+$/.test(v)) pairs.push(...idForms(name, v));
      else pairs.push([v, `<${name}>`]);
    }
    let out = replaceLongestFirst(s, pairs);
    // A port after another host ("[::1]:P", "http://:P").
    for (const [name, v] of this.vars) if (name.startsWith('port.')) out = out.replace(new RegExp(`:${v}(?![0-9])`, 'g'), `:<${name}>`);
    // `Member %16x added to cluster %16x`: the padding follows the id's length.
    return out.replace(/(Member|cluster) +</g, '$1 <');
  }

  /** Learns the ids, URLs and endpoints of the members it has. */
  async learnMembers(members: readonly Member[]): Promise<void> {
    const ids = await memberIds(members);
    for (const m of members) {
      this.vars.set(m.name, ids.get(m) ?? '?');
      this.vars.set(`${m.name}.peer`, m.peerUrl);
      this.vars.set(`${m.name}.client`, m.clientUrl);
      this.vars.set(`${m.name}.ep`, m.endpoint);
    }
    const st = await memberStatus(members[0]?.endpoint ?? '');
    this.vars.set('cluster', (st.header?.clusterId ?? 0n).toString(16));
  }

  /** Ports for members added (free ports, so that nothing unrelated is dialled). */
  async allocPorts(...names: string[]): Promise<void> {
    // In increasing order on both sides, so that URLs sort alike.
    const ports = (await freePorts(names.length)).sort((a, b) => a - b);
    names.forEach((n, i) => this.vars.set(`port.${n}`, String(ports[i] ?? 0)));
  }
}

/**
 * A change that cannot reach raft ends on the client's deadline, and etcd's
 * answer then races the client's own timer: etcdctl shows either its own
 * "context deadline exceeded" or etcd's (gRPC Unknown, same words).
 */
export function normDeadlineRace(s: string): string {
  return s.replace(/rpc error: code = Unknown desc = context deadline exceeded/g, 'rpc error: code = DeadlineExceeded desc = context deadline exceeded').replace(/^Error: rpc error: code = DeadlineExceeded desc = context deadline exceeded$/gm, 'Error: context deadline exceeded');
}

/** Terms follow elections, which follow timing; a term of 0 (none) stays visible. */
export function normTerm(s: string): string {
  return s.replace(/"raft_term":[1-9]\d*/g, '"raft_term":<term>').replace(/^"RaftTerm" : [1-9]\d*$/gm, '"RaftTerm" : <term>');
}

/** Members come sorted by id, and ids are hashes: rows of a table and member blocks of -w fields compared as sets. */
export function normRowOrder(s: string): string {
  return s
    .replace(/^(\| [^\n]*\|\n)+/gm, (block) => `${block.split('\n').filter((l) => l !== '').sort().join('\n')}\n`)
    .replace(/^("ID" : [^\n]*\n(?:"[A-Za-z]+" : [^\n]*\n)*\n)+/gm, (block) => block.split(/\n\n/).filter((b) => b !== '').sort().map((b) => `${b}\n\n`).join(''));
}

/** A mismatch when what each side shows differs. */
export function compare(what: string, sides: readonly [Side, Side], shown: (i: number) => string): Mismatch[] {
  const [a, b] = [0, 1].map((i) => ({ code: 0, stdout: shown(i), stderr: '' })) as [Observed, Observed];
  if (process.env['DIFF_SHOW'] === '1') process.stderr.write(`# ${what}\n${a.stdout}\n${b.stdout}\n`);
  return a.stdout === b.stdout ? [] : [{ step: `${what} (${sides.map((s) => s.kind).join(' / ')})`, etcd: a, etcdTs: b }];
}

export function expectSame(ms: readonly Mismatch[]): void {
  assert.equal(ms.length, 0, `${ms.length} difference(s) between etcd and etcd-ts:\n\n${formatMismatches(ms)}`);
}

/** Moves leadership to m1 (the steps' "leader") and waits until every running member agrees. */
export async function pinLeader(side: Side): Promise<void> {
  const running = [...side.cluster.members, ...side.joined.values()].filter((m) => m.running);
  await eventually(
    `${side.kind}: m1 leads`,
    async () => {
      const st = await Promise.all(running.map((m) => memberStatus(m.endpoint)));
      const leaders = new Set(st.map((s) => s.leader.toString(16)));
      if (leaders.size === 1 && leaders.has(side.vars.get('m1') ?? '')) return true;
      await etcdctl(['move-leader', side.vars.get('m1') ?? ''], { endpoints: running.map((m) => m.endpoint) });
      return undefined;
    },
    20_000,
    300,
  );
}

/**
 * A 3-member real etcd and a 3-member etcd-ts (fast elections) in ws, their
 * ids and URLs learned, free ports named port.<name> for each of ports, and
 * m1 leading on both.
 */
/** How long after the clusters are ready their peer links count as up for 5 s, with a margin. */
const linksAgedMs = 6_000;

export async function startSides(ws: Workspace, ports: readonly string[]): Promise<[Side, Side]> {
  const kinds: MemberKind[] = ['etcd', 'etcd-ts'];
  const clusters = await Promise.all(kinds.map((kind) => ws.startCluster({ kind, size: 3, readyTimeoutMs, extraFlags: [...fastElection] })));
  const readyAtMs = Date.now();
  const sides = kinds.map((kind, i) => new Side(kind, clusters[i] as Cluster)) as [Side, Side];
  await Promise.all(sides.map((s) => s.learnMembers(s.cluster.members)));
  await Promise.all(sides.map((s) => s.allocPorts(...ports)));
  await Promise.all(sides.map((s) => pinLeader(s)));
  // Strict reconfiguration refuses any add until the member's links to every voter have been up
  // for 5 s (etcd's HealthInterval): on a fast machine the first add could come sooner on one side.
  await delay(Math.max(0, readyAtMs + linksAgedMs - Date.now()));
  return sides;
}
