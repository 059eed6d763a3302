/**
 * Every bound in one place, named with the qualifier last (TigerStyle). Module
 * specific limits live beside their module but are asserted against these.
 */
import { assert } from './assert.js';

/** etcd's --max-request-bytes default: 1.5 MiB. */
export const requestBytesMaxDefault = 1.5 * 1024 * 1024;
/** gRPC's receive limit is the request limit plus this overhead, as etcd sets it. */
export const grpcOverheadBytes = 512 * 1024;
/** etcd's --max-txn-ops default. */
export const txnOpsMaxDefault = 128;
/** etcd's MaxLeaseTTL: 9,000,000,000 seconds. */
export const leaseTtlSecondsMax = 9_000_000_000;
/** Applied index lagging committed index by more than this rejects requests ("too many requests"). */
export const applyLagEntriesMax = 5000;
/** Snapshot stream chunk size, as etcd's. */
export const snapshotChunkBytes = 32 * 1024;
/** Default backend quota when --quota-backend-bytes is 0: 2 GiB. */
export const quotaBackendBytesDefault = 2 * 1024 * 1024 * 1024;

assert(grpcOverheadBytes < requestBytesMaxDefault, 'gRPC overhead must be below the request limit');
assert(Number.isSafeInteger(leaseTtlSecondsMax * 1000), 'lease TTL in ms must be a safe integer');
