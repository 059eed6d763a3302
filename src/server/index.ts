/**
 * server: the etcd-ts member. It owns the raft-node loop (persist, send,
 * apply, advance), the one apply dispatch, membership, linearizable reads,
 * leases driven by the leader, alarms and quotas, and the configuration.
 *
 * Promises: nothing is acknowledged before it is fsynced on a quorum (and on
 * this member); apply is deterministic and commits state with the applied
 * index in one backend transaction; ids are derived as etcd derives them.
 * Divergence is looked for all the time: the leader compares the hashes of
 * the revisions every member applied recently and names a member that
 * applied differently with the CORRUPT alarm (revision-check.ts); etcd's
 * HashKV checks run when flagged (corrupt.ts).
 */
export * from './config.js';
export * from './errors.js';
export * from './membership.js';
export * from './server.js';
export * from './layout.js';
export { AlarmSet } from './alarms.js';
export * from './request-checks.js';
export { restoreSnapshot, snapshotStatus, type RestoreOptions, type SnapshotStatus } from './snapshot-file.js';
export type { DbExport, SizedDbExport } from './snapshot-export.js';
export { BackendQuota, leaseGrantCost, noSpaceAlarm, putCost, requestCost, txnCost } from './quota.js';
export { initialClusterFromSrv, type SrvDns } from './srv-discovery.js';
export { clientCertRefusal, prepareAutoTls, selfSignedCert, tlsCiphers, unknownCipherSuite } from './tls.js';
