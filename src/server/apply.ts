/**
 * Apply: the ONE dispatch from a committed raft request to the state it
 * changes. It runs identically on every member (no clock, no randomness, no
 * local state but what raft delivered), inside the backend write scope that
 * also records the entry's index, so state and applied index commit together.
 *
 * Checks come first and explicitly, before anything is written: the alarms
 * (CORRUPT stops the KV service, NOSPACE refuses what would grow the store),
 * then the auth store's permission check against the user and auth revision
 * the proposer recorded in the header. A refused request changes nothing.
 */
import { assert, type Logger } from '../base/index.js';
import type { AuthStore } from '../auth/index.js';
import {
  authInfoFromHeader,
  checkDeleteRangeRequest,
  checkLeaseRevoke,
  checkPutRequest,
  checkTxnRequest,
  requiresAdmin,
} from '../auth/index.js';
import type { Lessor } from '../lease/index.js';
import { compactionRequest, deleteRangeRequest, putRequest, txnRequest, type KvStore } from '../mvcc/index.js';
import { etcdserverpb, serverpb } from '../pb/index.js';
import type { AlarmSet } from './alarms.js';
import { ServerError } from './errors.js';
import type { RaftCluster } from './membership.js';
import { requestCost } from './quota.js';

const { AlarmType, AlarmRequest_AlarmAction: AlarmAction } = etcdserverpb;

export type ApplyOutcome =
  | { readonly ok: true; readonly response: object; readonly physical?: Promise<void> }
  | { readonly ok: false; readonly error: Error };

export interface ApplyEnv {
  readonly memberId: bigint;
  readonly kv: KvStore;
  readonly lessor: Lessor;
  readonly auth: AuthStore;
  readonly alarms: AlarmSet;
  readonly cluster: RaftCluster;
  readonly logger: Logger;
  /** Whether this member's backend has room for a write of this cost (a local check: see quota.ts). */
  quotaAvailable(costBytes: number): boolean;
  /** Persists a member record (attributes changed). */
  saveMember(id: bigint): void;
  setClusterVersion(version: string): void;
}

function header(rev: number): etcdserverpb.ResponseHeader {
  return etcdserverpb.ResponseHeader.create({ revision: rev });
}

function ok(response: object, physical?: Promise<void>): ApplyOutcome {
  return physical === undefined ? { ok: true, response } : { ok: true, response, physical };
}

function failed(error: Error): ApplyOutcome {
  return { ok: false, error };
}

function txnHasPuts(t: etcdserverpb.TxnRequest): boolean {
  for (const op of [...t.success, ...t.failure]) {
    const r = op.request;
    if (r === undefined) continue;
    if (r.case === 'requestPut') return true;
    if (r.case === 'requestTxn' && txnHasPuts(r.value)) return true;
  }
  return false;
}

/** etcd's capped applier: with NOSPACE raised, what would grow the store is refused. */
function checkAlarms(env: ApplyEnv, req: serverpb.InternalRaftRequest): Error | undefined {
  const r = req.request;
  if (r === undefined) return undefined;
  if (env.alarms.has(AlarmType.CORRUPT)) {
    switch (r.case) {
      case 'put':
      case 'deleteRange':
      case 'txn':
      case 'compaction':
      case 'leaseGrant':
      case 'leaseRevoke':
        return new ServerError('Corrupt');
      default:
        break;
    }
  }
  if (env.alarms.has(AlarmType.NOSPACE)) {
    if (r.case === 'put' || r.case === 'leaseGrant') return new ServerError('NoSpace');
    if (r.case === 'txn' && txnHasPuts(r.value)) return new ServerError('NoSpace');
  }
  return undefined;
}

function checkAuth(env: ApplyEnv, req: serverpb.InternalRaftRequest): Error | undefined {
  const r = req.request;
  if (r === undefined || !env.auth.isEnabled()) return undefined;
  const ai = authInfoFromHeader(req.header);
  if (requiresAdmin(req)) return env.auth.isAdminPermitted(ai);
  const leaseKeys = (id: bigint): readonly Uint8Array[] | undefined => env.lessor.lookup(id)?.keys();
  switch (r.case) {
    case 'put':
      return checkPutRequest(env.auth, ai, r.value, leaseKeys);
    case 'deleteRange':
      return checkDeleteRangeRequest(env.auth, ai, r.value);
    case 'txn':
      return checkTxnRequest(env.auth, ai, r.value, leaseKeys);
    case 'leaseRevoke': {
      // Internal revokes (lease expiry) carry no user and are always allowed.
      if (ai === undefined) return undefined;
      return checkLeaseRevoke(env.auth, ai, env.lessor.lookup(r.value.ID)?.keys() ?? []);
    }
    default:
      return undefined;
  }
}

/**
 * Applies one request. Expected failures come back as outcomes; a thrown
 * error is a bug (and, after a write, poisons the backend: the member stops).
 */
export function applyRequest(env: ApplyEnv, req: serverpb.InternalRaftRequest, index: number): ApplyOutcome {
  const refused = checkAlarms(env, req) ?? checkAuth(env, req);
  if (refused !== undefined) return failed(refused);
  // As etcd's quota applier: a write past the quota is applied all the same (every member
  // applies it), and then answered with NoSpace.
  const fits = env.quotaAvailable(requestCost(req.request));
  try {
    const outcome = dispatch(env, req, index);
    return outcome.ok && !fits ? failed(new ServerError('NoSpace')) : outcome;
  } catch (e) {
    if (e instanceof Error && 'code' in e && typeof e.code === 'string') return failed(e);
    throw e;
  }
}

function dispatch(env: ApplyEnv, req: serverpb.InternalRaftRequest, index: number): ApplyOutcome {
  const r = req.request;
  const kv = env.kv;
  if (r === undefined) return ok(etcdserverpb.ResponseHeader.create());
  switch (r.case) {
    case 'put':
      return ok(putRequest(kv, r.value));
    case 'deleteRange':
      return ok(deleteRangeRequest(kv, r.value));
    case 'txn':
      return ok(txnRequest(kv, r.value));
    case 'compaction': {
      const { response, physical } = compactionRequest(kv, r.value);
      return ok(response, physical);
    }
    case 'leaseGrant': {
      const lease = env.lessor.grant(r.value.ID, r.value.TTL);
      return ok(etcdserverpb.LeaseGrantResponse.create({ header: header(kv.rev), ID: lease.id, TTL: lease.ttlSeconds }));
    }
    case 'leaseRevoke':
      env.lessor.revoke(r.value.ID);
      return ok(etcdserverpb.LeaseRevokeResponse.create({ header: header(kv.rev) }));
    case 'leaseCheckpoint':
      for (const c of r.value.checkpoints) env.lessor.checkpoint(c.ID, c.remainingTTL);
      return ok(etcdserverpb.LeaseCheckpointResponse.create({ header: header(kv.rev) }));
    case 'alarm':
      return ok(applyAlarm(env, r.value));
    case 'memberAttributesSet': {
      const a = r.value;
      if (env.cluster.members.has(a.memberId)) {
        env.cluster.setAttributes(a.memberId, a.name, a.clientUrls);
        env.saveMember(a.memberId);
      }
      return ok(etcdserverpb.ResponseHeader.create());
    }
    case 'clusterVersionSet':
      env.setClusterVersion(r.value.version);
      return ok(etcdserverpb.ResponseHeader.create());
    default:
      return applyAuth(env, req, index);
  }
}

function applyAlarm(env: ApplyEnv, ar: etcdserverpb.AlarmRequest): etcdserverpb.AlarmResponse {
  const resp = etcdserverpb.AlarmResponse.create({ header: header(env.kv.rev) });
  switch (ar.action) {
    case AlarmAction.GET:
      resp.alarms = env.alarms.get(ar.alarm);
      break;
    case AlarmAction.ACTIVATE: {
      // etcd stores whatever member id and type it is sent, NONE included; member 0 with NONE
      // would be an empty key, which makes etcd's backend exit: here it is ignored.
      if (ar.alarm === AlarmType.NONE && ar.memberID === 0n) break;
      const before = env.alarms.get(ar.alarm).length;
      resp.alarms = [env.alarms.activate(ar.memberID, ar.alarm)];
      if (before === 0) env.logger.warn('alarm raised', { alarm: ar.alarm, from: ar.memberID.toString(16) });
      break;
    }
    case AlarmAction.DEACTIVATE: {
      const m = env.alarms.deactivate(ar.memberID, ar.alarm);
      if (m !== undefined) {
        resp.alarms = [m];
        if (env.alarms.get(ar.alarm).length === 0) env.logger.warn('alarm disarmed', { alarm: ar.alarm, from: ar.memberID.toString(16) });
      }
      break;
    }
    default:
      break;
  }
  return resp;
}

function applyAuth(env: ApplyEnv, req: serverpb.InternalRaftRequest, index: number): ApplyOutcome {
  const r = req.request;
  assert(r !== undefined, 'dispatched a request');
  const a = env.auth;
  const empty = (): ApplyOutcome => ok(etcdserverpb.ResponseHeader.create({ revision: env.kv.rev }));
  switch (r.case) {
    case 'authEnable':
      a.authEnable();
      return empty();
    case 'authDisable':
      a.authDisable();
      return empty();
    case 'authenticate':
      // The token is recorded for every member; the response carries it.
      return ok(etcdserverpb.AuthenticateResponse.create({ token: a.authenticate(r.value, index) }));
    case 'authUserAdd':
      a.userAdd(r.value);
      return empty();
    case 'authUserDelete':
      a.userDelete(r.value);
      return empty();
    case 'authUserChangePassword':
      a.userChangePassword(r.value);
      return empty();
    case 'authUserGrantRole':
      a.userGrantRole(r.value);
      return empty();
    case 'authUserRevokeRole':
      a.userRevokeRole(r.value);
      return empty();
    case 'authRoleAdd':
      a.roleAdd(r.value);
      return empty();
    case 'authRoleDelete':
      a.roleDelete(r.value);
      return empty();
    case 'authRoleGrantPermission':
      a.roleGrantPermission(r.value);
      return empty();
    case 'authRoleRevokePermission':
      a.roleRevokePermission(r.value);
      return empty();
    default:
      return failed(new Error(`unexpected request ${r.case}`));
  }
}
