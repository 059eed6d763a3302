/**
 * etcdctl's printers: simple, fields, json, protobuf and table, each writing
 * exactly what etcdctl 3.4 writes for the same response. A printer that has
 * no rendering for a response ends the command as etcdctl does:
 * "<format> not supported as output format" (exit 4).
 */
import { authpb, etcdserverpb, mvccpb, prefixRangeEnd, type MessageType, type WatchResponse } from '../client/index.js';
import { compactText, goDuration, goQuote, hex16, hexId, humanizeBytes, jsonString, messageJson, u64 } from './go-format.js';
import { ExitCode, fail, type Output } from './output.js';

export interface EpHealth {
  readonly ep: string;
  readonly health: boolean;
  readonly took: string;
  readonly error: string;
}

export interface EpStatus {
  readonly ep: string;
  readonly resp: etcdserverpb.StatusResponse;
}

export interface EpHashKV {
  readonly ep: string;
  readonly resp: etcdserverpb.HashKVResponse;
}

export interface DbStatus {
  readonly hash: number;
  readonly revision: number;
  readonly totalKey: number;
  readonly totalSize: number;
}

export type OutputFormat = 'simple' | 'fields' | 'json' | 'protobuf' | 'table';

export interface Printer {
  del(r: etcdserverpb.DeleteRangeResponse): void;
  get(r: etcdserverpb.RangeResponse): void;
  put(r: etcdserverpb.PutResponse): void;
  txn(r: etcdserverpb.TxnResponse): void;
  watch(r: WatchResponse): void;
  grant(r: etcdserverpb.LeaseGrantResponse): void;
  revoke(id: bigint, r: etcdserverpb.LeaseRevokeResponse): void;
  keepAlive(r: etcdserverpb.LeaseKeepAliveResponse): void;
  timeToLive(r: etcdserverpb.LeaseTimeToLiveResponse, keys: boolean): void;
  leases(r: etcdserverpb.LeaseLeasesResponse): void;
  memberAdd(r: etcdserverpb.MemberAddResponse): void;
  memberRemove(id: bigint, r: etcdserverpb.MemberRemoveResponse): void;
  memberUpdate(id: bigint, r: etcdserverpb.MemberUpdateResponse): void;
  memberPromote(id: bigint, r: etcdserverpb.MemberPromoteResponse): void;
  memberList(r: etcdserverpb.MemberListResponse): void;
  endpointHealth(hs: readonly EpHealth[]): void;
  endpointStatus(ss: readonly EpStatus[]): void;
  endpointHashKV(hs: readonly EpHashKV[]): void;
  moveLeader(leader: bigint, target: bigint, r: etcdserverpb.MoveLeaderResponse): void;
  alarm(r: etcdserverpb.AlarmResponse): void;
  dbStatus(s: DbStatus): void;
  roleAdd(role: string, r: etcdserverpb.AuthRoleAddResponse): void;
  roleGet(role: string, r: etcdserverpb.AuthRoleGetResponse): void;
  roleDelete(role: string, r: etcdserverpb.AuthRoleDeleteResponse): void;
  roleList(r: etcdserverpb.AuthRoleListResponse): void;
  roleGrantPermission(role: string, r: etcdserverpb.AuthRoleGrantPermissionResponse): void;
  roleRevokePermission(role: string, key: string, end: string, r: etcdserverpb.AuthRoleRevokePermissionResponse): void;
  userAdd(user: string, r: etcdserverpb.AuthUserAddResponse): void;
  userGet(user: string, r: etcdserverpb.AuthUserGetResponse): void;
  userList(r: etcdserverpb.AuthUserListResponse): void;
  userChangePassword(r: etcdserverpb.AuthUserChangePasswordResponse): void;
  userGrantRole(user: string, role: string, r: etcdserverpb.AuthUserGrantRoleResponse): void;
  userRevokeRole(user: string, role: string, r: etcdserverpb.AuthUserRevokeRoleResponse): void;
  userDelete(user: string, r: etcdserverpb.AuthUserDeleteResponse): void;
}

const pb = etcdserverpb;
const eventTypeName = (t: mvccpb.Event_EventType): string => (t === 1 ? 'DELETE' : 'PUT');
const str = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
const noHeader = pb.ResponseHeader.create();

/** A printer whose every method ends the command with "<name> not supported as output format". */
function unsupported(name: string): Printer {
  const stop = (): never => fail(ExitCode.badFeature, `${name} not supported as output format`);
  return new Proxy({} as Printer, { get: () => stop });
}

// ---------------------------------------------------------------- tables

/** The rows etcdctl shows for members, endpoints and snapshots (printer.go's make*Table). */
export function memberListTable(r: etcdserverpb.MemberListResponse): { hdr: string[]; rows: string[][] } {
  const hdr = ['ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner'];
  const rows = r.members.map((m) => [
    hexId(m.ID),
    m.name.length === 0 ? 'unstarted' : 'started',
    m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    String(m.isLearner),
  ]);
  return { hdr, rows };
}

function healthTable(hs: readonly EpHealth[]): { hdr: string[]; rows: string[][] } {
  return { hdr: ['endpoint', 'health', 'took', 'error'], rows: hs.map((h) => [h.ep, String(h.health), h.took, h.error]) };
}

function statusTable(ss: readonly EpStatus[]): { hdr: string[]; rows: string[][] } {
  const hdr = ['endpoint', 'ID', 'version', 'db size', 'is leader', 'is learner', 'raft term', 'raft index', 'raft applied index', 'errors'];
  const rows = ss.map(({ ep, resp }) => {
    const id = resp.header?.memberId ?? 0n;
    return [
      ep,
      hexId(id),
      resp.version,
      humanizeBytes(resp.dbSize),
      String(resp.leader === id),
      String(resp.isLearner),
      String(resp.raftTerm),
      String(resp.raftIndex),
      String(resp.raftAppliedIndex),
      resp.errors.join(', '),
    ];
  });
  return { hdr, rows };
}

function hashKVTable(hs: readonly EpHashKV[]): { hdr: string[]; rows: string[][] } {
  return { hdr: ['endpoint', 'hash'], rows: hs.map((h) => [h.ep, String(h.resp.hash)]) };
}

function dbStatusTable(s: DbStatus): { hdr: string[]; rows: string[][] } {
  return {
    hdr: ['hash', 'revision', 'total keys', 'total size'],
    rows: [[s.hash.toString(16), String(s.revision), String(s.totalKey), humanizeBytes(s.totalSize)]],
  };
}

/** olekukonko/tablewriter's default rendering with right-aligned cells and centred, upper-cased headers. */
export function renderTable(hdr: readonly string[], rows: readonly (readonly string[])[]): string {
  const headers = hdr.map((h) => h.toUpperCase().replace(/_/g, ' '));
  const widths = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+\n`;
  const center = (s: string, w: number): string => {
    const gap = w - displayWidth(s);
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  };
  const right = (s: string, w: number): string => ' '.repeat(w - displayWidth(s)) + s;
  let out = line;
  out += `| ${headers.map((h, i) => center(h, widths[i] ?? 0)).join(' | ')} |\n`;
  out += line;
  for (const r of rows) out += `| ${widths.map((w, i) => right(r[i] ?? '', w)).join(' | ')} |\n`;
  out += line;
  return out;
}

function displayWidth(s: string): number {
  return [...s].length;
}

// ---------------------------------------------------------------- simple

export class SimplePrinter implements Printer {
  valueOnly = false;

  constructor(
    private readonly o: Output,
    private readonly isHex: boolean,
  ) {}

  private println(s = ''): void {
    this.o.out(`${s}\n`);
  }

  private err(s: string): void {
    this.o.err(`${s}\n`);
  }

  kv(kv: mvccpb.KeyValue | undefined): void {
    const k = kv?.key ?? new Uint8Array();
    const v = kv?.value ?? new Uint8Array();
    const fmt = (b: Uint8Array): string => (this.isHex ? [...b].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('') : str(b));
    if (!this.valueOnly) this.o.out(Buffer.concat([this.isHex ? Buffer.from(fmt(k)) : Buffer.from(k), Buffer.from('\n')]));
    this.o.out(Buffer.concat([this.isHex ? Buffer.from(fmt(v)) : Buffer.from(v), Buffer.from('\n')]));
  }

  del(r: etcdserverpb.DeleteRangeResponse): void {
    this.println(String(r.deleted));
    for (const kv of r.prevKvs) this.kv(kv);
  }

  get(r: etcdserverpb.RangeResponse): void {
    for (const kv of r.kvs) this.kv(kv);
  }

  put(r: etcdserverpb.PutResponse): void {
    this.println('OK');
    if (r.prevKv !== undefined) this.kv(r.prevKv);
  }

  txn(r: etcdserverpb.TxnResponse): void {
    this.println(r.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const op of r.responses) {
      this.println('');
      const x = op.response;
      if (x?.case === 'responseDeleteRange') this.del(x.value);
      else if (x?.case === 'responsePut') this.put(x.value);
      else if (x?.case === 'responseRange') this.get(x.value);
      else this.println(`unexpected response ${messageJson(pb.ResponseOp, op)}`);
    }
  }

  watch(r: WatchResponse): void {
    for (const e of r.events) {
      this.println(eventTypeName(e.type));
      if (e.prevKv !== undefined) this.kv(e.prevKv);
      this.kv(e.kv);
    }
  }

  grant(r: etcdserverpb.LeaseGrantResponse): void {
    this.println(`lease ${hex16(r.ID)} granted with TTL(${r.TTL}s)`);
  }

  revoke(id: bigint): void {
    this.println(`lease ${hex16(id)} revoked`);
  }

  keepAlive(r: etcdserverpb.LeaseKeepAliveResponse): void {
    this.println(`lease ${hex16(r.ID)} keepalived with TTL(${r.TTL})`);
  }

  timeToLive(r: etcdserverpb.LeaseTimeToLiveResponse, keys: boolean): void {
    if (r.grantedTTL === 0 && r.TTL === -1) {
      this.println(`lease ${hex16(r.ID)} already expired`);
      return;
    }
    let txt = `lease ${hex16(r.ID)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`;
    if (keys) txt += `, attached keys([${r.keys.map(str).join(' ')}])`;
    this.println(txt);
  }

  leases(r: etcdserverpb.LeaseLeasesResponse): void {
    this.println(`found ${r.leases.length} leases`);
    for (const l of r.leases) this.println(hex16(l.ID));
  }

  alarm(r: etcdserverpb.AlarmResponse): void {
    for (const a of r.alarms) this.println(`memberID:${u64(a.memberID)} alarm:${alarmName(a.alarm)} `);
  }

  memberAdd(r: etcdserverpb.MemberAddResponse): void {
    this.println(`Member ${hexId(r.member?.ID ?? 0n, 16)} added to cluster ${hexId(r.header?.clusterId ?? 0n, 16)}`);
  }

  memberRemove(id: bigint, r: etcdserverpb.MemberRemoveResponse): void {
    this.println(`Member ${hexId(id, 16)} removed from cluster ${hexId(r.header?.clusterId ?? 0n, 16)}`);
  }

  memberUpdate(id: bigint, r: etcdserverpb.MemberUpdateResponse): void {
    this.println(`Member ${hexId(id, 16)} updated in cluster ${hexId(r.header?.clusterId ?? 0n, 16)}`);
  }

  memberPromote(id: bigint, r: etcdserverpb.MemberPromoteResponse): void {
    this.println(`Member ${hexId(id, 16)} promoted in cluster ${hexId(r.header?.clusterId ?? 0n, 16)}`);
  }

  memberList(r: etcdserverpb.MemberListResponse): void {
    for (const row of memberListTable(r).rows) this.println(row.join(', '));
  }

  endpointHealth(hs: readonly EpHealth[]): void {
    for (const h of hs) {
      if (h.error === '') this.err(`${h.ep} is healthy: successfully committed proposal: took = ${h.took}`);
      else this.err(`${h.ep} is unhealthy: failed to commit proposal: ${h.error}`);
    }
  }

  endpointStatus(ss: readonly EpStatus[]): void {
    for (const row of statusTable(ss).rows) this.println(row.join(', '));
  }

  endpointHashKV(hs: readonly EpHashKV[]): void {
    for (const row of hashKVTable(hs).rows) this.println(row.join(', '));
  }

  dbStatus(s: DbStatus): void {
    for (const row of dbStatusTable(s).rows) this.println(row.join(', '));
  }

  moveLeader(leader: bigint, target: bigint): void {
    this.println(`Leadership transferred from ${hexId(leader)} to ${hexId(target)}`);
  }

  roleAdd(role: string): void {
    this.println(`Role ${role} created`);
  }

  roleGet(role: string, r: etcdserverpb.AuthRoleGetResponse): void {
    this.println(`Role ${role}`);
    const printPerm = (p: authpb.Permission): void => {
      if (p.rangeEnd.length === 0) {
        this.o.out(`\t${str(p.key)}\n`);
        return;
      }
      const k = str(p.key);
      const end = str(p.rangeEnd);
      let line = end !== '\x00' ? `\t[${k}, ${end})` : `\t[${k}, <open ended>`;
      if (Buffer.compare(Buffer.from(prefixRangeEnd(p.key)), Buffer.from(p.rangeEnd)) === 0) line += ` (prefix ${k})`;
      this.o.out(`${line}\n`);
    };
    this.println('KV Read:');
    for (const p of r.perm) if (p.permType === authpb.Permission_Type.READ || p.permType === authpb.Permission_Type.READWRITE) printPerm(p);
    this.println('KV Write:');
    for (const p of r.perm) if (p.permType === authpb.Permission_Type.WRITE || p.permType === authpb.Permission_Type.READWRITE) printPerm(p);
  }

  roleList(r: etcdserverpb.AuthRoleListResponse): void {
    for (const role of r.roles) this.println(role);
  }

  roleDelete(role: string): void {
    this.println(`Role ${role} deleted`);
  }

  roleGrantPermission(role: string): void {
    this.println(`Role ${role} updated`);
  }

  roleRevokePermission(role: string, key: string, end: string): void {
    if (end.length === 0) this.println(`Permission of key ${key} is revoked from role ${role}`);
    else if (end !== '\x00') this.println(`Permission of range [${key}, ${end}) is revoked from role ${role}`);
    else this.println(`Permission of range [${key}, <open ended> is revoked from role ${role}`);
  }

  userAdd(user: string): void {
    this.println(`User ${user} created`);
  }

  userGet(user: string, r: etcdserverpb.AuthUserGetResponse): void {
    this.println(`User: ${user}`);
    this.println(`Roles:${r.roles.map((x) => ` ${x}`).join('')}`);
  }

  userList(r: etcdserverpb.AuthUserListResponse): void {
    for (const u of r.users) this.println(u);
  }

  userChangePassword(): void {
    this.println('Password updated');
  }

  userGrantRole(user: string, role: string): void {
    this.println(`Role ${role} is granted to user ${user}`);
  }

  userRevokeRole(user: string, role: string): void {
    this.println(`Role ${role} is revoked from user ${user}`);
  }

  userDelete(user: string): void {
    this.println(`User ${user} deleted`);
  }
}

function alarmName(a: etcdserverpb.AlarmType): string {
  return a === pb.AlarmType.NOSPACE ? 'NOSPACE' : a === pb.AlarmType.CORRUPT ? 'CORRUPT' : 'NONE';
}

// ---------------------------------------------------------------- fields

export class FieldsPrinter implements Printer {
  private readonly rest = unsupported('fields');

  constructor(private readonly o: Output) {}

  private line(name: string, v: string): void {
    this.o.out(`"${name}" : ${v}\n`);
  }

  private hdr(h: etcdserverpb.ResponseHeader | undefined): void {
    const x = h ?? noHeader;
    this.line('ClusterID', u64(x.clusterId));
    this.line('MemberID', u64(x.memberId));
    this.line('Revision', String(x.revision));
    this.line('RaftTerm', String(x.raftTerm));
  }

  private kv(pfx: string, kv: mvccpb.KeyValue | undefined): void {
    const x = kv ?? mvccpb.KeyValue.create();
    this.line(`${pfx}Key`, goQuote(x.key));
    this.line(`${pfx}CreateRevision`, String(x.createRevision));
    this.line(`${pfx}ModRevision`, String(x.modRevision));
    this.line(`${pfx}Version`, String(x.version));
    this.line(`${pfx}Value`, goQuote(x.value));
    this.line(`${pfx}Lease`, String(x.lease));
  }

  del(r: etcdserverpb.DeleteRangeResponse): void {
    this.hdr(r.header);
    this.line('Deleted', String(r.deleted));
    for (const kv of r.prevKvs) this.kv('Prev', kv);
  }

  get(r: etcdserverpb.RangeResponse): void {
    this.hdr(r.header);
    for (const kv of r.kvs) this.kv('', kv);
    this.line('More', String(r.more));
    this.line('Count', String(r.count));
  }

  put(r: etcdserverpb.PutResponse): void {
    this.hdr(r.header);
    if (r.prevKv !== undefined) this.kv('Prev', r.prevKv);
  }

  txn(r: etcdserverpb.TxnResponse): void {
    this.hdr(r.header);
    this.line('Succeeded', String(r.succeeded));
    for (const op of r.responses) {
      const x = op.response;
      if (x?.case === 'responseDeleteRange') this.del(x.value);
      else if (x?.case === 'responsePut') this.put(x.value);
      else if (x?.case === 'responseRange') this.get(x.value);
    }
  }

  watch(r: WatchResponse): void {
    this.hdr(r.header);
    for (const e of r.events) {
      this.line('Type', eventTypeName(e.type));
      if (e.prevKv !== undefined) this.kv('Prev', e.prevKv);
      this.kv('', e.kv);
    }
  }

  grant(r: etcdserverpb.LeaseGrantResponse): void {
    this.hdr(r.header);
    this.line('ID', String(r.ID));
    this.line('TTL', String(r.TTL));
  }

  revoke(_id: bigint, r: etcdserverpb.LeaseRevokeResponse): void {
    this.hdr(r.header);
  }

  keepAlive(r: etcdserverpb.LeaseKeepAliveResponse): void {
    this.hdr(r.header);
    this.line('ID', String(r.ID));
    this.line('TTL', String(r.TTL));
  }

  timeToLive(r: etcdserverpb.LeaseTimeToLiveResponse): void {
    this.hdr(r.header);
    this.line('ID', String(r.ID));
    this.line('TTL', String(r.TTL));
    this.line('GrantedTTL', String(r.grantedTTL));
    for (const k of r.keys) this.line('Key', goQuote(k));
  }

  leases(r: etcdserverpb.LeaseLeasesResponse): void {
    this.hdr(r.header);
    for (const l of r.leases) this.line('ID', String(l.ID));
  }

  memberList(r: etcdserverpb.MemberListResponse): void {
    this.hdr(r.header);
    for (const m of r.members) {
      this.line('ID', u64(m.ID));
      this.line('Name', goQuote(m.name));
      for (const u of m.peerURLs) this.line('PeerURL', goQuote(u));
      for (const u of m.clientURLs) this.line('ClientURL', goQuote(u));
      this.line('IsLearner', String(m.isLearner));
      this.o.out('\n');
    }
  }

  endpointHealth(hs: readonly EpHealth[]): void {
    for (const h of hs) {
      this.line('Endpoint', goQuote(h.ep));
      this.line('Health', String(h.health));
      this.line('Took', h.took);
      this.line('Error', h.error);
      this.o.out('\n');
    }
  }

  endpointStatus(ss: readonly EpStatus[]): void {
    for (const { ep, resp } of ss) {
      this.hdr(resp.header);
      this.line('Version', goQuote(resp.version));
      this.line('DBSize', String(resp.dbSize));
      this.line('Leader', u64(resp.leader));
      this.line('IsLearner', String(resp.isLearner));
      this.line('RaftIndex', String(resp.raftIndex));
      this.line('RaftTerm', String(resp.raftTerm));
      this.line('RaftAppliedIndex', String(resp.raftAppliedIndex));
      this.line('Errors', `[${resp.errors.join(' ')}]`);
      this.line('Endpoint', goQuote(ep));
      this.o.out('\n');
    }
  }

  endpointHashKV(hs: readonly EpHashKV[]): void {
    for (const h of hs) {
      this.hdr(h.resp.header);
      this.line('Endpoint', goQuote(h.ep));
      this.line('Hash', String(h.resp.hash));
      this.o.out('\n');
    }
  }

  alarm(r: etcdserverpb.AlarmResponse): void {
    this.hdr(r.header);
    for (const a of r.alarms) {
      this.line('MemberID', u64(a.memberID));
      this.line('AlarmType', alarmName(a.alarm));
      this.o.out('\n');
    }
  }

  dbStatus(s: DbStatus): void {
    this.line('Hash', String(s.hash));
    this.line('Revision', String(s.revision));
    this.line('Keys', String(s.totalKey));
    this.line('Size', String(s.totalSize));
  }

  roleAdd(_role: string, r: etcdserverpb.AuthRoleAddResponse): void {
    this.hdr(r.header);
  }

  roleGet(_role: string, r: etcdserverpb.AuthRoleGetResponse): void {
    this.hdr(r.header);
    const names = ['READ', 'WRITE', 'READWRITE'];
    for (const p of r.perm) {
      // etcdctl prints this one with two spaces after the colon.
      this.o.out(`"PermType" :  ${names[p.permType] ?? String(p.permType)}\n`);
      this.line('Key', goQuote(p.key));
      this.line('RangeEnd', goQuote(p.rangeEnd));
    }
  }

  roleDelete(_role: string, r: etcdserverpb.AuthRoleDeleteResponse): void {
    this.hdr(r.header);
  }

  roleList(r: etcdserverpb.AuthRoleListResponse): void {
    this.hdr(r.header);
    this.o.out(`"Roles" :${r.roles.map((x) => ` ${goQuote(x)}`).join('')}\n`);
  }

  roleGrantPermission(_role: string, r: etcdserverpb.AuthRoleGrantPermissionResponse): void {
    this.hdr(r.header);
  }

  roleRevokePermission(_role: string, _key: string, _end: string, r: etcdserverpb.AuthRoleRevokePermissionResponse): void {
    this.hdr(r.header);
  }

  userAdd(_user: string, r: etcdserverpb.AuthUserAddResponse): void {
    this.hdr(r.header);
  }

  userChangePassword(r: etcdserverpb.AuthUserChangePasswordResponse): void {
    this.hdr(r.header);
  }

  userGrantRole(_user: string, _role: string, r: etcdserverpb.AuthUserGrantRoleResponse): void {
    this.hdr(r.header);
  }

  userRevokeRole(_user: string, _role: string, r: etcdserverpb.AuthUserRevokeRoleResponse): void {
    this.hdr(r.header);
  }

  userDelete(_user: string, r: etcdserverpb.AuthUserDeleteResponse): void {
    this.hdr(r.header);
  }

  memberAdd(r: etcdserverpb.MemberAddResponse): void {
    this.rest.memberAdd(r);
  }
  memberRemove(id: bigint, r: etcdserverpb.MemberRemoveResponse): void {
    this.rest.memberRemove(id, r);
  }
  memberUpdate(id: bigint, r: etcdserverpb.MemberUpdateResponse): void {
    this.rest.memberUpdate(id, r);
  }
  memberPromote(id: bigint, r: etcdserverpb.MemberPromoteResponse): void {
    this.rest.memberPromote(id, r);
  }
  moveLeader(leader: bigint, target: bigint, r: etcdserverpb.MoveLeaderResponse): void {
    this.rest.moveLeader(leader, target, r);
  }
  userGet(user: string, r: etcdserverpb.AuthUserGetResponse): void {
    this.rest.userGet(user, r);
  }
  userList(r: etcdserverpb.AuthUserListResponse): void {
    this.rest.userList(r);
  }
}

// ---------------------------------------------------------------- json and protobuf

/**
 * etcdctl's printerRPC: each response rendered whole by emit (JSON or wire
 * bytes); what it has no rendering for fails as "<name> not supported".
 */
abstract class RpcPrinter implements Printer {
  protected readonly rest: Printer;

  constructor(
    protected readonly o: Output,
    name: string,
  ) {
    this.rest = unsupported(name);
  }

  protected abstract emit<T extends object>(type: MessageType<T>, msg: T): void;
  abstract watch(r: WatchResponse): void;
  abstract grant(r: etcdserverpb.LeaseGrantResponse): void;
  abstract keepAlive(r: etcdserverpb.LeaseKeepAliveResponse): void;
  abstract timeToLive(r: etcdserverpb.LeaseTimeToLiveResponse, keys: boolean): void;
  abstract leases(r: etcdserverpb.LeaseLeasesResponse): void;

  del(r: etcdserverpb.DeleteRangeResponse): void {
    this.emit(pb.DeleteRangeResponse, r);
  }
  get(r: etcdserverpb.RangeResponse): void {
    this.emit(pb.RangeResponse, r);
  }
  put(r: etcdserverpb.PutResponse): void {
    this.emit(pb.PutResponse, r);
  }
  txn(r: etcdserverpb.TxnResponse): void {
    this.emit(pb.TxnResponse, r);
  }
  revoke(_id: bigint, r: etcdserverpb.LeaseRevokeResponse): void {
    this.emit(pb.LeaseRevokeResponse, r);
  }
  memberAdd(r: etcdserverpb.MemberAddResponse): void {
    this.emit(pb.MemberAddResponse, r);
  }
  memberRemove(_id: bigint, r: etcdserverpb.MemberRemoveResponse): void {
    this.emit(pb.MemberRemoveResponse, r);
  }
  memberUpdate(_id: bigint, r: etcdserverpb.MemberUpdateResponse): void {
    this.emit(pb.MemberUpdateResponse, r);
  }
  memberPromote(_id: bigint, r: etcdserverpb.MemberPromoteResponse): void {
    this.emit(pb.MemberPromoteResponse, r);
  }
  memberList(r: etcdserverpb.MemberListResponse): void {
    this.emit(pb.MemberListResponse, r);
  }
  moveLeader(_l: bigint, _t: bigint, r: etcdserverpb.MoveLeaderResponse): void {
    this.emit(pb.MoveLeaderResponse, r);
  }
  alarm(r: etcdserverpb.AlarmResponse): void {
    this.emit(pb.AlarmResponse, r);
  }
  endpointHealth(hs: readonly EpHealth[]): void {
    this.rest.endpointHealth(hs);
  }
  endpointStatus(ss: readonly EpStatus[]): void {
    this.rest.endpointStatus(ss);
  }
  endpointHashKV(hs: readonly EpHashKV[]): void {
    this.rest.endpointHashKV(hs);
  }
  dbStatus(s: DbStatus): void {
    this.rest.dbStatus(s);
  }
  roleAdd(_role: string, r: etcdserverpb.AuthRoleAddResponse): void {
    this.emit(pb.AuthRoleAddResponse, r);
  }
  roleGet(_role: string, r: etcdserverpb.AuthRoleGetResponse): void {
    this.emit(pb.AuthRoleGetResponse, r);
  }
  roleDelete(_role: string, r: etcdserverpb.AuthRoleDeleteResponse): void {
    this.emit(pb.AuthRoleDeleteResponse, r);
  }
  roleList(r: etcdserverpb.AuthRoleListResponse): void {
    this.emit(pb.AuthRoleListResponse, r);
  }
  roleGrantPermission(_role: string, r: etcdserverpb.AuthRoleGrantPermissionResponse): void {
    this.emit(pb.AuthRoleGrantPermissionResponse, r);
  }
  roleRevokePermission(_role: string, _k: string, _e: string, r: etcdserverpb.AuthRoleRevokePermissionResponse): void {
    this.emit(pb.AuthRoleRevokePermissionResponse, r);
  }
  userAdd(_user: string, r: etcdserverpb.AuthUserAddResponse): void {
    this.emit(pb.AuthUserAddResponse, r);
  }
  userGet(_user: string, r: etcdserverpb.AuthUserGetResponse): void {
    this.emit(pb.AuthUserGetResponse, r);
  }
  userList(r: etcdserverpb.AuthUserListResponse): void {
    this.emit(pb.AuthUserListResponse, r);
  }
  userChangePassword(r: etcdserverpb.AuthUserChangePasswordResponse): void {
    this.emit(pb.AuthUserChangePasswordResponse, r);
  }
  userGrantRole(_user: string, _role: string, r: etcdserverpb.AuthUserGrantRoleResponse): void {
    this.emit(pb.AuthUserGrantRoleResponse, r);
  }
  userRevokeRole(_user: string, _role: string, r: etcdserverpb.AuthUserRevokeRoleResponse): void {
    this.emit(pb.AuthUserRevokeRoleResponse, r);
  }
  userDelete(_user: string, r: etcdserverpb.AuthUserDeleteResponse): void {
    this.emit(pb.AuthUserDeleteResponse, r);
  }
}

/** The response header flattened into its parent, as Go embeds *pb.ResponseHeader in clientv3's lease responses. */
function flatHeader(h: etcdserverpb.ResponseHeader | undefined): string {
  const body = messageJson(pb.ResponseHeader, h ?? noHeader);
  return body.slice(1, -1);
}

function joinJson(...parts: string[]): string {
  return `{${parts.filter((p) => p !== '').join(',')}}`;
}

/** Go's encoding/json of what etcdctl passes to printJSON. */
export class JsonPrinter extends RpcPrinter {
  constructor(o: Output) {
    super(o, 'json');
  }

  protected emit<T extends object>(type: MessageType<T>, msg: T): void {
    this.raw(messageJson(type, msg));
  }

  private raw(json: string): void {
    this.o.out(`${json}\n`);
  }

  watch(r: WatchResponse): void {
    const events = r.events.map((e) => messageJson(mvccpb.Event, e)).join(',');
    this.raw(
      // clientv3 makes a list for each response it passes on, so an empty one is [] (not Go's nil, null).
      `{"Header":${messageJson(pb.ResponseHeader, r.header ?? noHeader)},"Events":[${events}],` +
        `"CompactRevision":${r.compactRevision},"Canceled":${r.canceled},"Created":false}`,
    );
  }
  grant(r: etcdserverpb.LeaseGrantResponse): void {
    this.raw(joinJson(flatHeader(r.header), `"ID":${r.ID}`, `"TTL":${r.TTL}`, `"Error":${jsonString(r.error)}`));
  }
  keepAlive(r: etcdserverpb.LeaseKeepAliveResponse): void {
    this.raw(joinJson(flatHeader(r.header), `"ID":${r.ID}`, `"TTL":${r.TTL}`));
  }
  timeToLive(r: etcdserverpb.LeaseTimeToLiveResponse): void {
    const keys = r.keys.length === 0 ? 'null' : `[${r.keys.map((k) => jsonString(Buffer.from(k).toString('base64'))).join(',')}]`;
    this.raw(joinJson(flatHeader(r.header), `"id":${r.ID}`, `"ttl":${r.TTL}`, `"granted-ttl":${r.grantedTTL}`, `"keys":${keys}`));
  }
  leases(r: etcdserverpb.LeaseLeasesResponse): void {
    // clientv3 makes this slice: an empty list is [], not null.
    const leases = `[${r.leases.map((l) => `{"id":${l.ID}}`).join(',')}]`;
    this.raw(joinJson(flatHeader(r.header), `"leases":${leases}`));
  }
  override endpointHealth(hs: readonly EpHealth[]): void {
    const items = hs.map((h) =>
      joinJson(`"endpoint":${jsonString(h.ep)}`, `"health":${h.health}`, `"took":${jsonString(h.took)}`, h.error === '' ? '' : `"error":${jsonString(h.error)}`),
    );
    this.raw(`[${items.join(',')}]`);
  }
  override endpointStatus(ss: readonly EpStatus[]): void {
    this.raw(`[${ss.map((s) => `{"Endpoint":${jsonString(s.ep)},"Status":${messageJson(pb.StatusResponse, s.resp)}}`).join(',')}]`);
  }
  override endpointHashKV(hs: readonly EpHashKV[]): void {
    this.raw(`[${hs.map((h) => `{"Endpoint":${jsonString(h.ep)},"HashKV":${messageJson(pb.HashKVResponse, h.resp)}}`).join(',')}]`);
  }
  override dbStatus(s: DbStatus): void {
    this.raw(`{"hash":${s.hash},"revision":${s.revision},"totalKey":${s.totalKey},"totalSize":${s.totalSize}}`);
  }
}

/** Writes the response's protobuf encoding; lease replies are their embedded header's, as Go's method promotion makes them. */
export class ProtobufPrinter extends RpcPrinter {
  constructor(o: Output) {
    super(o, 'protobuf');
  }

  protected emit<T extends object>(type: MessageType<T>, msg: T): void {
    this.o.out(Buffer.from(type.encode(msg)));
  }

  watch(r: WatchResponse): void {
    this.emit(pb.WatchResponse, pb.WatchResponse.create({ header: r.header, events: [...r.events], compactRevision: r.compactRevision, canceled: r.canceled }));
  }
  grant(r: etcdserverpb.LeaseGrantResponse): void {
    this.emit(pb.ResponseHeader, r.header ?? noHeader);
  }
  keepAlive(r: etcdserverpb.LeaseKeepAliveResponse): void {
    this.emit(pb.ResponseHeader, r.header ?? noHeader);
  }
  timeToLive(r: etcdserverpb.LeaseTimeToLiveResponse): void {
    this.emit(pb.ResponseHeader, r.header ?? noHeader);
  }
  leases(r: etcdserverpb.LeaseLeasesResponse): void {
    this.emit(pb.ResponseHeader, r.header ?? noHeader);
  }
  /**
   * etcdctl passes this one by value, a clientv3 type without a Marshal method:
   * printPB refuses it with %T and %v (the header through its String()).
   */
  override revoke(_id: bigint, r: etcdserverpb.LeaseRevokeResponse): void {
    fail(ExitCode.badFeature, `marshal unsupported for type clientv3.LeaseRevokeResponse ({${compactText(pb.ResponseHeader, r.header)}})`);
  }
}

// ---------------------------------------------------------------- table

/** Tables for members, endpoints and snapshot status; everything else is unsupported. */
function tablePrinter(o: Output): Printer {
  const rest = unsupported('table');
  const t = ({ hdr, rows }: { hdr: string[]; rows: string[][] }): void => o.out(renderTable(hdr, rows));
  const own: Partial<Printer> = {
    memberList: (r) => t(memberListTable(r)),
    endpointHealth: (hs) => t(healthTable(hs)),
    endpointStatus: (ss) => t(statusTable(ss)),
    endpointHashKV: (hs) => t(hashKVTable(hs)),
    dbStatus: (s) => t(dbStatusTable(s)),
  };
  return new Proxy(own as Printer, { get: (target, k): unknown => (Reflect.get(target, k) as unknown) ?? Reflect.get(rest, k) });
}

export function newPrinter(format: string, isHex: boolean, o: Output): Printer | undefined {
  switch (format) {
    case 'simple':
      return new SimplePrinter(o, isHex);
    case 'fields':
      return new FieldsPrinter(o);
    case 'json':
      return new JsonPrinter(o);
    case 'protobuf':
      return new ProtobufPrinter(o);
    case 'table':
      return tablePrinter(o);
    default:
      return undefined;
  }
}

/** "took" as etcdctl shows it: Go's Duration.String of nanoseconds. */
export function tookString(ns: bigint): string {
  return goDuration(ns);
}
