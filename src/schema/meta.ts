/**
 * The backend opened with every bucket of the schema, and the meta keys:
 * the applied (consistent) index and term, compaction progress, the raft
 * ConfState, the cluster version.
 */
import { assert, fromUtf8, utf8 } from '../base/index.js';
import { Backend, type BackendOptions, type Bucket } from '../backend/index.js';
import { raftpb } from '../pb/index.js';
import {
  allBucketNames,
  bucketNames,
  bytesToMainRevision,
  clusterKeys,
  hashIgnores,
  metaKeys,
  readUint64,
  revisionBytesLen,
  revisionToBytes,
  uint64Bytes,
} from './schema.js';

export type SchemaBuckets = { readonly [K in keyof typeof bucketNames]: Bucket };

/** The raft position of the last entry whose effects are in the backend. */
export interface AppliedIndex {
  readonly index: number;
  readonly term: number;
}

export interface CompactRevisions {
  /** The last compaction started (-1: none). */
  readonly scheduled: number;
  /** The last compaction whose deletes all reached the backend (-1: none). */
  readonly finished: number;
}

export class Schema {
  readonly buckets: SchemaBuckets;

  constructor(readonly backend: Backend) {
    const b = {} as Record<keyof typeof bucketNames, Bucket>;
    for (const [k, name] of Object.entries(bucketNames)) b[k as keyof typeof bucketNames] = backend.bucket(name);
    this.buckets = b;
  }

  /** Opens the backend file with every bucket of the schema. */
  static open(options: Omit<BackendOptions, 'bucketNames'>): Schema {
    return new Schema(Backend.open({ ...options, bucketNames: allBucketNames }));
  }

  /** The applied index and term; {0, 0} for a new backend. */
  consistentIndex(): AppliedIndex {
    const i = this.backend.get(this.buckets.meta, metaKeys.consistentIndex);
    const t = this.backend.get(this.buckets.meta, metaKeys.term);
    return { index: i === undefined ? 0 : readUint64(i, 0), term: t === undefined ? 0 : readUint64(t, 0) };
  }

  /**
   * Records the applied index and term. Must run inside the same write scope
   * as the entry's effects so both reach disk in one LMDB transaction.
   */
  setConsistentIndex(applied: AppliedIndex): void {
    assert(this.backend.inWrite, 'the applied index is written in the scope of the entry it covers');
    this.backend.put(this.buckets.meta, metaKeys.consistentIndex, uint64Bytes(applied.index));
    this.backend.put(this.buckets.meta, metaKeys.term, uint64Bytes(applied.term));
  }

  compactRevisions(): CompactRevisions {
    const read = (key: Uint8Array): number => {
      const v = this.backend.get(this.buckets.meta, key);
      if (v === undefined) return -1;
      assert(v.length === revisionBytesLen, 'compact revisions are stored as revision bytes');
      return bytesToMainRevision(v);
    };
    return { scheduled: read(metaKeys.scheduledCompactRev), finished: read(metaKeys.finishedCompactRev) };
  }

  setScheduledCompactRevision(rev: number): void {
    this.backend.write((tx) => tx.put(this.buckets.meta, metaKeys.scheduledCompactRev, revisionToBytes(rev, 0)));
  }

  setFinishedCompactRevision(rev: number): void {
    this.backend.write((tx) => tx.put(this.buckets.meta, metaKeys.finishedCompactRev, revisionToBytes(rev, 0)));
  }

  confState(): raftpb.ConfState | undefined {
    const v = this.backend.get(this.buckets.meta, metaKeys.confState);
    return v === undefined ? undefined : raftpb.ConfState.decode(v);
  }

  setConfState(cs: raftpb.ConfState): void {
    this.backend.write((tx) => tx.put(this.buckets.meta, metaKeys.confState, raftpb.ConfState.encode(cs)));
  }

  /**
   * Whether the conf change at this raft index was refused when it applied.
   * A conf change replayed to raft after a restart or a snapshot install (its
   * effects already in the backend) must have the same effect on raft's
   * configuration as the first time, and the membership it was checked
   * against then is gone.
   */
  confChangeRefused(index: number): boolean {
    const v = this.backend.get(this.buckets.meta, metaKeys.refusedConfChanges);
    if (v === undefined) return false;
    for (let at = 0; at < v.length; at += 8) if (readUint64(v, at) === index) return true;
    return false;
  }

  /** Records a refused conf change; in the write scope of its entry. */
  addRefusedConfChange(index: number): void {
    assert(this.backend.inWrite, 'a refusal is written in the scope of its entry');
    const v = this.backend.get(this.buckets.meta, metaKeys.refusedConfChanges) ?? new Uint8Array();
    this.backend.put(this.buckets.meta, metaKeys.refusedConfChanges, Buffer.concat([v, uint64Bytes(index)]));
  }

  clusterVersion(): string | undefined {
    const v = this.backend.get(this.buckets.cluster, clusterKeys.clusterVersion);
    return v === undefined ? undefined : fromUtf8(v);
  }

  setClusterVersion(version: string): void {
    this.backend.write((tx) => tx.put(this.buckets.cluster, clusterKeys.clusterVersion, utf8(version)));
  }

  /** Maintenance.Hash: the whole backend, without the applied index and term. */
  hash(): number {
    return this.backend.hash(hashIgnores);
  }
}
