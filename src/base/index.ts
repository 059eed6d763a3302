/**
 * base: the vocabulary every module shares and nothing else. It imports no
 * other module of the project.
 *
 * - assert / unreachable / maybe: always-on invariants.
 * - ids: Term, Index, Revision (numbers) and MemberId, ClusterId, LeaseId (bigints).
 * - Clock and Rand: injected time and randomness (real and seeded/manual).
 * - Logger: structured JSON lines.
 * - bytes: key comparison, prefix ends, hex, protocol prefaces.
 * - limits: etcd's default bounds.
 * - crc32c: the Castagnoli checksum of WAL records and HashKV.
 * - metrics: a Prometheus registry (counters, gauges, histograms) for /metrics.
 * - go-sort: Go's sort.Sort, whose order of ties etcd's sorted ranges show.
 * - go-int: Go's base-0 integer parsing, as both Go flag packages read integer flags.
 * - failpoints: crash or stall sites in the persistence path, holds in
 *   the watch path and a drop site for peer messages, armed only by
 *   ETCD_TS_FAILPOINTS (robustness tests); free when unset.
 */
export * from './assert.js';
export * from './ids.js';
export * from './clock.js';
export * from './rand.js';
export * from './logger.js';
export * from './bytes.js';
export * from './limits.js';
export * from './crc32c.js';
export * from './metrics.js';
export * from './failpoints.js';
export * from './rpctypes.js';
export * from './dns-text.js';
export * from './go-quote.js';
export * from './go-sort.js';
export * from './go-int.js';
