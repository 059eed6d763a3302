/**
 * A member repairs its backend from a peer when a stored record fails its
 * checksum (backend/lmdb-engine.ts), instead of serving wrong data or
 * stopping for an operator: protocol-aware recovery of the state machine.
 *
 * Only the backend is lost; raft's log and hard state (the WAL, checksummed
 * record by record) are intact, so raft's safety is untouched: the member
 * keeps voting and acknowledging appends while it repairs. What it stops is
 * everything that reads its state: KV reads and watches are refused ("corrupt
 * cluster"), proposals from its clients too, and the committed entries raft
 * hands out are held, not applied.
 *
 * The repair pulls a peer's database (the leader first) once that peer has
 * applied at least everything this member had applied, checks every record
 * of it and its applied index, then, on the raft loop between two Readys,
 * swaps it in and hands the loop the held entries again from the last one
 * this member had applied: those the new database already holds are skipped
 * (raft still learns their conf changes), the rest are applied. A snapshot
 * the leader sends meanwhile ends the repair the same way.
 *
 * A member with no peer cannot repair: it stops, as etcd does on a backend
 * it cannot read.
 *
 * At start the same pull happens before the member is built (repairAtStart):
 * the member's state is read whole when it starts, so the backend is checked
 * whole first, and a corrupt one is replaced by a peer's, found by URL (the
 * corrupt database's membership if it still reads, the last snapshot's, the
 * initial cluster), at least as new as what it had applied.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { idToHex, type Logger } from '../base/index.js';
import { BackendCorruptError, installSnapshotFile, isBackendCorrupt } from '../backend/index.js';
import { serverpb, type raftpb } from '../pb/index.js';
import { MembershipStorage, Schema } from '../schema/index.js';
import { receivePeerDb } from './snapshot-peer.js';
import { fetchDbFromUrl, type PeerTlsOptions, type PulledDb } from '../transport/index.js';
import { ConfigError } from './config.js';

export interface RepairHost {
  readonly logger: Logger;
  /** Where pulled databases are written (the snap directory). */
  readonly dir: string;
  /** Members to pull from, the leader first; empty when there is none. */
  peersToAsk(): bigint[];
  fetchDb(id: bigint, minIndex: number, timeoutMs: number): Promise<PulledDb>;
  /** How long a peer may take to answer (it waits to have applied enough first). */
  answerTimeoutMs(): number;
  /**
   * On the raft loop: makes the checked database at path the member's backend
   * and applies the entries held until then (lastApplied + 1 through
   * heldThrough, read when it runs: more may be held while it waits).
   */
  install(path: string): Promise<void>;
  /** The member is stopping (or stopped): give up. */
  stopping(): boolean;
  /** No peer to repair from, or the swap failed: the member must stop. */
  fail(err: Error): void;
}

/** Pauses between rounds over every peer, growing to the last. */
const retryDelaysMs = [200, 500, 1000, 2000, 5000];

export class BackendRepair {
  /** The last index handed to apply; everything after `lastApplied` up to it is held. */
  private heldTo: number;
  private done = false;

  constructor(
    private readonly host: RepairHost,
    /** The last entry fully applied before the corruption showed. */
    readonly lastApplied: number,
    readonly cause: BackendCorruptError,
  ) {
    this.heldTo = lastApplied;
  }

  /** Committed entries raft handed out while the backend is unusable. */
  hold(entries: readonly raftpb.Entry[]): void {
    const last = entries[entries.length - 1];
    if (last !== undefined && last.index > this.heldTo) this.heldTo = last.index;
  }

  /** The entries held so far: lastApplied + 1 through this. */
  get heldThrough(): number {
    return this.heldTo;
  }

  /** A leader's snapshot was installed meanwhile: this repair is over. */
  end(): void {
    this.done = true;
  }

  get ended(): boolean {
    return this.done;
  }

  /** Pulls, checks and installs a peer's database; retries until that works or the member stops. */
  async run(): Promise<void> {
    const h = this.host;
    const pull = (id: bigint): Promise<string | undefined> => pullChecked(
      h.logger, join(h.dir, `repair-${idToHex(id)}.db`), idToHex(id), this.lastApplied, () => h.fetchDb(id, this.lastApplied, h.answerTimeoutMs()),
    );
    for (let round = 0; !this.done && !h.stopping(); round++) {
      const peers = h.peersToAsk();
      if (peers.length === 0) {
        h.fail(new Error(`backend corrupt and no peer to repair it from: ${this.cause.message}`));
        return;
      }
      for (const id of peers) {
        if (this.done || h.stopping()) return;
        const path = await pull(id);
        if (path === undefined) continue;
        if (this.done || h.stopping()) {
          await rm(path, { force: true });
          return;
        }
        try {
          await h.install(path);
        } catch (e) {
          await rm(path, { force: true });
          if (h.stopping()) return;
          h.fail(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        this.done = true;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, retryDelaysMs[Math.min(round, retryDelaysMs.length - 1)]));
    }
  }
}

/**
 * Pulls a database into path (written into path.tmp as it comes, checked,
 * synced) and checks that it has applied at least minIndex; the path, or
 * undefined after logging why not.
 */
async function pullChecked(logger: Logger, path: string, peer: string, minIndex: number, pull: () => Promise<PulledDb>): Promise<string | undefined> {
  try {
    const { body } = await pull();
    const got = await receivePeerDb(`${path}.tmp`, path, body, logger);
    if (got.appliedIndex < minIndex) {
      await rm(path, { force: true });
      throw new Error(`its applied index ${got.appliedIndex} is below this member's ${minIndex}`);
    }
    logger.info('pulled a database to repair the backend', { from: peer, bytes: got.bytes, 'applied-index': got.appliedIndex });
    return path;
  } catch (e) {
    logger.warn('could not repair the backend from a peer', { peer, error: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
}

/** Opens the database, reads and checks every record; its applied index. */
export async function checkDb(path: string, logger: Logger): Promise<number> {
  const schema = Schema.open({ path, logger });
  try {
    schema.backend.verify();
    return schema.consistentIndex().index;
  } finally {
    await schema.backend.close();
    await rm(`${path}-lock`, { force: true });
  }
}

export interface StartCheck {
  /** Opens the database at dbPath. */
  open(): Schema;
  readonly dbPath: string;
  readonly dir: string;
  readonly logger: Logger;
  readonly clusterId: bigint;
  readonly memberId: bigint;
  /** The last raft snapshot's index and membership, if any. */
  readonly snapshot: raftpb.Snapshot | undefined;
  /** --initial-cluster's URLs of the other members (a fallback). */
  readonly initialPeerUrls: readonly string[];
  readonly tls: PeerTlsOptions | undefined;
  readonly answerTimeoutMs: number;
  /** How many rounds over every URL before giving up (each waits longer). */
  readonly rounds: number;
}

/**
 * Opens the database and checks every record; one that does not open or
 * has a corrupt record is replaced with a peer's before the member starts.
 * Resolves with the database open; rejects with a ConfigError when no peer
 * gave a good one.
 */
export async function openCheckedAtStart(c: StartCheck): Promise<Schema> {
  // Databases pulled by a repair that a crash or stop interrupted.
  for (const name of readdirSync(c.dir)) if (/^repair-.*\.db(\.tmp)?(-lock)?$/.test(name)) rmSync(join(c.dir, name), { force: true });
  let cause: BackendCorruptError | undefined;
  let schema: Schema | undefined;
  // Present while a check runs: found at start, the last check did not end (LMDB aborted the
  // process on a damaged page, or a kill). The check runs in a process of its own then.
  const marker = join(c.dir, 'db-check-running');
  let checked = false;
  if (existsSync(marker)) {
    cause = await checkInChild(c.dbPath, c.logger);
    checked = cause === undefined;
  }
  if (cause === undefined) {
    writeFileSync(marker, '');
    try {
      schema = c.open();
      if (!checked) schema.backend.verify();
      rmSync(marker, { force: true });
      return schema;
    } catch (e) {
      if (!isBackendCorrupt(e)) throw e;
      cause = e;
    }
  }
  const snapshotIndex = c.snapshot?.metadata?.index ?? 0;
  const opened = schema;
  const minIndex = Math.max(snapshotIndex, opened === undefined ? 0 : readOr(() => opened.consistentIndex().index, 0));
  const urls = peerUrlsOf(c, opened);
  c.logger.error('backend record corrupt at start: repairing the backend from a peer before starting', { error: cause.message, 'applied-index': minIndex, 'peer-urls': urls });
  try {
    await opened?.backend.close();
  } catch {
    // Nothing was written to it.
  }
  if (urls.length === 0) throw new ConfigError(`backend corrupt and no peer to repair it from: ${cause.message}`);
  for (let round = 0; round < c.rounds; round++) {
    for (const url of urls) {
      const path = await pullChecked(c.logger, join(c.dir, 'repair-at-start.db'), url, minIndex, () =>
        fetchDbFromUrl(url, { clusterId: c.clusterId, localId: c.memberId }, minIndex, c.answerTimeoutMs, c.tls));
      if (path === undefined) continue;
      renameSync(c.dbPath, `${c.dbPath}.corrupt`);
      installSnapshotFile(path, c.dbPath);
      rmSync(marker, { force: true });
      c.logger.warn('backend repaired from a peer; starting', { from: url });
      return c.open();
    }
    await new Promise((resolve) => setTimeout(resolve, retryDelaysMs[Math.min(round, retryDelaysMs.length - 1)]));
  }
  throw new ConfigError(`backend corrupt and no peer gave a good copy after ${c.rounds} rounds: ${cause.message}`);
}

/** Checks the database in a child process (db-check-child.ts); the corruption it found or met, if any. */
async function checkInChild(path: string, logger: Logger): Promise<BackendCorruptError | undefined> {
  logger.warn('the last check of the backend did not end; checking it in a process of its own', { path });
  const child = spawn(process.execPath, [fileURLToPath(new URL('./db-check-child.js', import.meta.url)), path], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (stderr += s.slice(0, 4096)));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code === 0) return undefined;
  const reason = code === 2 ? stderr.trim() : `the check ended with ${signal ?? `exit code ${code}`}: ${stderr.trim().split('\n').pop() ?? ''}`;
  return new BackendCorruptError('(the file)', new Uint8Array(0), reason);
}

function readOr<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** The other members' peer URLs: the corrupt database's membership if it reads, the snapshot's, the initial cluster's. */
function peerUrlsOf(c: StartCheck, schema: Schema | undefined): string[] {
  const records = schema === undefined ? [] : readOr(() => new MembershipStorage(schema).members(), [] as serverpb.MemberRecord[]);
  const data = c.snapshot?.data;
  if (data !== undefined && data.length > 0) records.push(...readOr(() => serverpb.SnapshotData.decode(data).members, [] as serverpb.MemberRecord[]));
  const urls = new Set<string>();
  for (const r of records) if (r.ID !== c.memberId) for (const u of r.peerUrls) urls.add(u);
  for (const u of c.initialPeerUrls) urls.add(u);
  return [...urls];
}
