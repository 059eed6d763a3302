/**
 * Snapshots taken during the run, as an operator's backup job would take
 * them (Maintenance.Snapshot of a member picked at random), while traffic,
 * compaction, defrags and faults go on. Each file must end with the SHA-256
 * of what precedes it, and its key bucket must be the store at one
 * revision: for every key, the newest record up to the file's newest
 * revision must be what the replayed history held at that revision. A
 * snapshot made of a database read while commits land, or torn by a
 * defrag, shows another state. What the file holds is recorded in the
 * history (the key space of the traffic is small), so a saved history is
 * checked again offline.
 */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BboltReader } from '../../src/backend/index.js';
import { utf8 } from '../../src/base/index.js';
import { etcdserverpb, mvccpb } from '../../src/pb/index.js';
import { bucketNames, bytesToMainRevision, markedRevisionBytesLen, tombstoneMark } from '../../src/schema/index.js';
import { methods } from '../harness/index.js';
import type { Access } from './access.js';
import { toKv } from './client.js';
import { nowMs, type Kv, type SnapshotRecord } from './history.js';
import { sameKv, showKv, type Replay } from './model.js';

const shaBytes = 32;

/** Streams a snapshot from endpoint into memory; throws on an error or a wrong digest. */
async function fetchSnapshot(access: Access, endpoint: string, timeoutMs: number): Promise<Buffer> {
  const ch = access.channel(endpoint, 'admin');
  try {
    const call = ch.serverStream(methods.maintenance.Snapshot, etcdserverpb.SnapshotRequest.create({}), { timeoutMs });
    const chunks: Uint8Array[] = [];
    for (;;) {
      const r = await call.read();
      if (r === undefined) break;
      chunks.push(r.blob);
    }
    const file = Buffer.concat(chunks);
    if (file.length <= shaBytes) throw new Error(`a snapshot of ${file.length} bytes`);
    const body = file.subarray(0, file.length - shaBytes);
    const digest = createHash('sha256').update(body).digest();
    if (!digest.equals(file.subarray(file.length - shaBytes))) throw new Error('the snapshot does not end with the SHA-256 of its content');
    return body;
  } catch (e) {
    access.noteError('admin', e, endpoint);
    throw e;
  } finally {
    ch.close();
  }
}

/** The store a bbolt snapshot holds at its newest revision: each key's newest record, tombstones dropped. */
function storeOf(path: string): { revision: number; kvs: Kv[] } {
  const db = BboltReader.open(path);
  try {
    const newest = new Map<string, Kv | undefined>();
    let revision = 0;
    for (const e of db.entries(utf8(bucketNames.key)) ?? []) {
      revision = Math.max(revision, bytesToMainRevision(e.key));
      const kv = toKv(mvccpb.KeyValue.decode(e.value));
      const tombstone = e.key.length === markedRevisionBytesLen && e.key[markedRevisionBytesLen - 1] === tombstoneMark;
      newest.set(kv.key, tombstone ? undefined : kv);
    }
    return { revision, kvs: [...newest.values()].filter((kv): kv is Kv => kv !== undefined) };
  } finally {
    db.close();
  }
}

/** Takes one snapshot of the member at endpoint; the record of what it holds. */
export async function takeSnapshot(access: Access, endpoint: string, dir: string, timeoutMs: number): Promise<SnapshotRecord> {
  const atMs = nowMs();
  const body = await fetchSnapshot(access, endpoint, timeoutMs);
  const path = join(dir, `snapshot-${Math.round(atMs)}.db`);
  writeFileSync(path, body);
  try {
    return { atMs, endpoint, ...storeOf(path) };
  } finally {
    rmSync(path, { force: true });
  }
}

/** Each snapshot against the replayed history at its revision. */
export function checkSnapshots(snapshots: readonly SnapshotRecord[], replay: Replay): { check: string; message: string }[] {
  const out: { check: string; message: string }[] = [];
  for (const s of snapshots) {
    const what = `snapshot of ${s.endpoint} at revision ${s.revision}`;
    if (s.revision > replay.maxRev) continue; // past what the reference watch delivered: nothing to compare with
    const held = new Map(s.kvs.map((kv) => [kv.key, kv]));
    const keys = new Set([...replay.keys(), ...held.keys()]);
    for (const key of keys) {
      const want = replay.stateAt(key, s.revision);
      const got = held.get(key);
      if (!sameKv(got, want)) out.push({ check: 'snapshot', message: `${what}: ${key} is ${showKv(got)}, the history has ${showKv(want)}` });
    }
  }
  return out;
}

