/**
 * Raw gRPC access to a member through src/grpc's GrpcChannel and src/pb's
 * codecs — no client library in between, so tests see exactly what the
 * server sent (codes, messages, headers).
 */
import { GrpcChannel, GrpcError, type ChannelOptions } from '../../src/grpc/index.js';
import { etcdserverpb, v3electionpb, v3lockpb } from '../../src/pb/index.js';

export const methods = {
  kv: etcdserverpb.KVService.methods,
  watch: etcdserverpb.WatchService.methods,
  lease: etcdserverpb.LeaseService.methods,
  cluster: etcdserverpb.ClusterService.methods,
  maintenance: etcdserverpb.MaintenanceService.methods,
  auth: etcdserverpb.AuthService.methods,
  lock: v3lockpb.LockService.methods,
  election: v3electionpb.ElectionService.methods,
} as const;

/**
 * A channel to host:port that gives up connecting quickly (tests poll
 * instead of waiting 20 s); callMetadata: per-call credentials (a token).
 */
export function openChannel(endpoint: string, connectTimeoutMs = 2_000, callMetadata?: ChannelOptions['callMetadata']): GrpcChannel {
  return new GrpcChannel({ address: endpoint, connectTimeoutMs, backoffInitialMs: 100, backoffMaxMs: 500, ...(callMetadata !== undefined ? { callMetadata } : {}) });
}

/** Maintenance.Status of one member, on a channel of its own. */
export async function memberStatus(endpoint: string, timeoutMs = 2_000): Promise<etcdserverpb.StatusResponse> {
  const ch = openChannel(endpoint, timeoutMs);
  try {
    return await ch.unary(methods.maintenance.Status, etcdserverpb.StatusRequest.create({}), { timeoutMs });
  } finally {
    ch.close();
  }
}

/** A call's outcome as data: the response, or the gRPC code and message it failed with. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: number; readonly message: string };

export async function outcome<T>(p: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    if (e instanceof GrpcError) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}
