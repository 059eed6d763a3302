/**
 * Snapshot files in etcd's own format: the backend's buckets written into a
 * bbolt file laid out as etcd 3.4 lays out its backend, and read back.
 *
 * `etcdctl snapshot save` against etcd-ts receives such a file, so Debian's
 * etcdctl can `snapshot status` and `snapshot restore` it and the real etcd
 * can start from the result; `etcdutl-ts snapshot restore` reads the same
 * files, whether etcd-ts or etcd wrote them.
 *
 * What differs between the two layouts, and how it is carried across:
 * - members: etcd stores each member as the JSON of its Member struct
 *   (`{"id":…,"peerURLs":[…],"isLearner":true,"name":…,"clientURLs":[…]}`,
 *   the last three only when set); etcd-ts stores a serverpb.MemberRecord.
 *   A restore replaces the membership anyway, so importing skips both
 *   membership buckets.
 * - meta: etcd 3.4 keeps consistent_index and the two compaction marks only.
 *   The applied term, the raft ConfState and the refused conf changes are
 *   etcd-ts's own (a later etcd stores its ConfState as JSON, which
 *   etcd-ts's protobuf would break), so they are not exported, and importing
 *   keeps only the keys etcd 3.4 writes.
 * - every other bucket holds the same keys and values byte for byte.
 */
import { crc32cUpdate, fromUtf8, utf8 } from '../base/index.js';
import { BboltReader, BboltWriter, type BboltEntry, type Bucket } from '../backend/index.js';
import { serverpb } from '../pb/index.js';
import { bucketNames, bytesToMainRevision, metaKeys, type Schema } from '../schema/index.js';

/** The meta keys etcd 3.4 writes: the only ones a bbolt snapshot carries. */
const etcdMetaKeys = [metaKeys.consistentIndex, metaKeys.scheduledCompactRev, metaKeys.finishedCompactRev].map(fromUtf8);

const firstKey = new Uint8Array(0);

/** Go's encoding/json text of a string: HTML characters and the JS line separators escaped as Go escapes them. */
function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** etcd 3.4's members-bucket value for a member: json.Marshal of its Member struct. */
export function etcdMemberJson(m: serverpb.MemberRecord): string {
  const parts = [`"id":${BigInt.asUintN(64, m.ID).toString()}`, `"peerURLs":${m.peerUrls.length === 0 ? 'null' : `[${m.peerUrls.map(goJsonString).join(',')}]`}`];
  if (m.isLearner) parts.push('"isLearner":true');
  if (m.name !== '') parts.push(`"name":${goJsonString(m.name)}`);
  if (m.clientUrls.length > 0) parts.push(`"clientURLs":[${m.clientUrls.map(goJsonString).join(',')}]`);
  return `{${parts.join(',')}}`;
}

/** The value etcd would hold for this backend entry, or undefined when etcd 3.4 has no such entry. */
function exportedValue(bucket: Bucket, key: Uint8Array, value: Uint8Array): Uint8Array | undefined {
  if (bucket.name === bucketNames.members) return utf8(etcdMemberJson(serverpb.MemberRecord.decode(value)));
  if (bucket.name === bucketNames.meta && !etcdMetaKeys.includes(fromUtf8(key))) return undefined;
  return value;
}

/** Entries between two calls of a fill's `poll`. */
const pollEntries = 4096;

/** Gives every bucket of the schema's backend, as etcd would hold it, to a bbolt writer; calls poll (which may throw to stop) every pollEntries entries. */
function fillBbolt(schema: Schema, out: BboltWriter, poll: () => void): void {
  let n = 0;
  for (const bucket of schema.backend.bucketsInNameOrder()) {
    out.bucket(utf8(bucket.name));
    schema.backend.forEach(bucket, firstKey, undefined, (key, value) => {
      if (++n % pollEntries === 0) poll();
      const v = exportedValue(bucket, key, value);
      if (v !== undefined) out.put(key, v);
    });
  }
}

/**
 * The bbolt file of the schema's backend as a stream of its bytes, with no
 * file (BboltWriter.stream: the backend is read twice, so it must be a view
 * that does not change, and runs off the event loop): `sized` gets the
 * file's size, then `emit` its bytes in order; `poll`, called every few
 * thousand entries read, may throw to stop early. Returns the size.
 */
export function streamBboltSnapshot(schema: Schema, sized: (bytes: number) => void, emit: (bytes: Buffer) => void, poll: () => void = () => undefined): number {
  return BboltWriter.stream((out) => fillBbolt(schema, out, poll), sized, emit);
}

/** Entries written to the backend between two commits while importing: bounds the memory of one batch. */
const importBatchEntries = 20_000;

/**
 * Copies a bbolt snapshot's buckets into the schema's (new, empty) backend:
 * the buckets etcd-ts knows, the membership left out (a restore writes its
 * own) and meta cut to etcd 3.4's keys. A bucket etcd-ts does not know is
 * left out too: nothing reads it.
 */
export async function importBboltSnapshot(srcPath: string, schema: Schema): Promise<void> {
  const src = BboltReader.open(srcPath);
  try {
    const byName = new Map(Object.values(schema.buckets).map((b) => [b.name, b]));
    const skipped = new Set<string>([bucketNames.members, bucketNames.membersRemoved]);
    for (const name of src.bucketNames()) {
      const bucket = byName.get(fromUtf8(name));
      if (bucket === undefined || skipped.has(bucket.name)) continue;
      let batch: BboltEntry[] = [];
      const flush = async (): Promise<void> => {
        const entries = batch;
        batch = [];
        schema.backend.write((tx) => {
          for (const e of entries) tx.put(bucket, e.key, e.value);
        });
        await schema.backend.forceCommit();
      };
      for (const e of src.entries(name) ?? []) {
        if (bucket.name === bucketNames.meta && !etcdMetaKeys.includes(fromUtf8(e.key))) continue;
        // The reader's arrays are views into chunks it never reuses: the backend may keep them until the batch commits.
        batch.push(e);
        if (batch.length >= importBatchEntries) await flush();
      }
      if (batch.length > 0) await flush();
    }
  } finally {
    src.close();
  }
}

export interface BboltStatus {
  readonly hash: number;
  readonly revision: number;
  readonly totalKey: number;
  readonly totalSize: number;
}

/**
 * etcdctl 3.4's `snapshot status` of a bbolt file: a CRC-32C over each
 * bucket's name and then its keys and values, in order; the main revision of
 * the last key of the key bucket; the entries of all buckets; the bbolt
 * size (its pages up to the high-water mark).
 */
export function bboltSnapshotStatus(path: string): BboltStatus {
  const db = BboltReader.open(path);
  try {
    let hash = 0;
    let revision = 0;
    let totalKey = 0;
    for (const name of db.bucketNames()) {
      hash = crc32cUpdate(hash, name);
      const isKey = fromUtf8(name) === bucketNames.key;
      for (const e of db.entries(name) ?? []) {
        hash = crc32cUpdate(crc32cUpdate(hash, e.key), e.value);
        if (isKey) revision = bytesToMainRevision(e.key);
        totalKey++;
      }
    }
    return { hash, revision, totalKey, totalSize: db.size };
  } finally {
    db.close();
  }
}
