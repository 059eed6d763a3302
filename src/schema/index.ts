/**
 * schema: what lives where in the backend. Every bucket and fixed key is
 * named in schema.ts, with its on-disk format (the key bucket's revision
 * keys included); the rest are typed accessors over the backend.
 *
 * Promises:
 * - `Schema.open` opens the backend with every bucket.
 * - The applied (consistent) index and term are written only inside the
 *   caller's write scope, so they commit in the same LMDB transaction as the
 *   effects of the entry they cover (etcd 3.5's data-inconsistency lesson).
 * - Maintenance.Hash (`Schema.hash`) skips the applied index and term, as etcd.
 */
export * from './schema.js';
export { Schema, type AppliedIndex, type CompactRevisions, type SchemaBuckets } from './meta.js';
export { AuthStorage, currentAuthStorage, type StoredAuthState } from './auth.js';
export { MembershipStorage } from './membership.js';
export { AlarmStorage } from './alarm.js';
export { LeaseStorage, type StoredLease } from './lease.js';
