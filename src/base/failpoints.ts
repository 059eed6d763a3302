/**
 * Failpoints: named places in the persistence path where a robustness test
 * can make a member crash or stall, the way etcd's gofail failpoints do.
 *
 * They are activated only through the environment, read once when this
 * module loads:
 *
 *   ETCD_TS_FAILPOINTS='raftBeforeSave=crash@40,backendAfterCommit=sleep(1000)'
 *
 * Each term is NAME=ACTION[@HIT]: ACTION is `crash` (the process kills
 * itself with SIGKILL, so nothing is flushed and no handler runs, as in a
 * power cut of the process) or `sleep(MS)`; it fires once, on the HIT-th
 * (default first) time the point is reached, or every time with `@*`. A
 * malformed value or an unknown name throws at startup rather than silently
 * testing nothing.
 *
 * What sleep does depends on the site. At the persistence sites the whole
 * event loop blocks for MS milliseconds, as a disk stall would. The watch
 * sites are holds (`failpointHoldMs`): only that path waits, the member
 * goes on, as one goroutine sleeping at etcd's gofail point would.
 *
 * A third action, `drop(P)`, is for the drop sites (`failpointDrops`): each
 * hit it fires on loses its item (a peer message) with probability P %.
 * A fourth, `corrupt`, is for the corrupt sites (`failpointCorrupts`): each
 * hit it fires on alters its item (a value this member applies, and no
 * other member does): a member whose state diverged, for the checks that
 * must find it.
 *
 * With the variable unset, `failpoint()` is one comparison against an empty
 * table's size: nothing measurable on the write path.
 *
 * armFailpoints() replaces the table at run time, hit counts starting over
 * (etcd-ts does it on SIGUSR2 from the file ETCD_TS_FAILPOINTS_FILE names:
 * a disk stall on whichever member leads right now, with no restart).
 */

/** Every failpoint, where it sits. */
export const failpointNames = [
  /** raft-node: before / after a Ready's entries and hard state are written (and synced) to the WAL. */
  'raftBeforeSave',
  'raftAfterSave',
  /** Before / after a snapshot (snap file, then its WAL marker) is saved: a received one or our own. */
  'raftBeforeSaveSnap',
  'raftAfterSaveSnap',
  /** Follower: before / after the database that came with a leader's snapshot is installed. */
  'raftBeforeApplySnap',
  'raftAfterApplySnap',
  /** After WAL segments below a new snapshot are released. */
  'raftAfterWalRelease',
  /** backend: before a batch goes to LMDB / after its commit has landed. */
  'backendBeforeCommit',
  'backendAfterCommit',
  /** mvcc: before / after each batch of a compaction's removal of old revisions. */
  'compactBeforeBatch',
  'compactAfterBatch',
  /** mvcc: after the last batch, which marks the compaction finished. */
  'compactAfterFinish',
  /** backend defrag: before the copy is made / before it is renamed over the database. */
  'defragBeforeCopy',
  'defragBeforeRename',
  /** Holds. Watch service: before a response of the store is sent on a stream (etcd's beforeSendWatchResponse). */
  'beforeSendWatchResponse',
  /** mvcc watchable store: before a pass that moves victims and catches up unsynced watchers. */
  'beforeSyncWatchers',
  /** Drop site. Transport: before a raft message is queued for its peer (a lost MsgSnap is reported failed). */
  'peerBeforeSendMessage',
  /** Corrupt site. mvcc: a put's value, before it is written (one bit flipped). */
  'mvccBeforePutValue',
] as const;
export type FailpointName = (typeof failpointNames)[number];

export type FailpointAction =
  | { readonly kind: 'crash' }
  | { readonly kind: 'sleep'; readonly ms: number }
  | { readonly kind: 'drop'; readonly percent: number }
  | { readonly kind: 'corrupt' };

/** The sites that take `drop(P)`, and only that action. */
const dropSites: readonly FailpointName[] = ['peerBeforeSendMessage'];
/** The sites that take `corrupt`, and only that action. */
const corruptSites: readonly FailpointName[] = ['mvccBeforePutValue'];

export interface FailpointSpec {
  readonly action: FailpointAction;
  /** The hit (1-based) on which the action fires; 0: on every hit. */
  readonly hit: number;
}

/** The environment variable read at startup. */
export const failpointsEnv = 'ETCD_TS_FAILPOINTS';
/** The file etcd-ts re-arms the table from on SIGUSR2. */
export const failpointsFileEnv = 'ETCD_TS_FAILPOINTS_FILE';

const termPattern = /^([A-Za-z]+)=(crash|corrupt|sleep\((\d+)\)|drop\((\d+)\))(?:@(\d+|\*))?$/;

/** Parses the variable's value; throws on anything it does not understand. */
export function parseFailpoints(text: string): Map<FailpointName, FailpointSpec> {
  const table = new Map<FailpointName, FailpointSpec>();
  for (const raw of text.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    const m = termPattern.exec(term);
    if (m === null) throw new Error(`${failpointsEnv}: cannot parse ${JSON.stringify(term)} (want NAME=crash|sleep(MS)|drop(P)|corrupt[@HIT|@*])`);
    const name = m[1] as string;
    if (!(failpointNames as readonly string[]).includes(name)) throw new Error(`${failpointsEnv}: unknown failpoint ${JSON.stringify(name)}`);
    const action: FailpointAction =
      m[3] !== undefined ? { kind: 'sleep', ms: Number(m[3]) }
      : m[4] !== undefined ? { kind: 'drop', percent: Number(m[4]) }
      : m[2] === 'corrupt' ? { kind: 'corrupt' }
      : { kind: 'crash' };
    if ((action.kind === 'drop') !== dropSites.includes(name as FailpointName)) {
      throw new Error(`${failpointsEnv}: ${name}: ${action.kind === 'drop' ? 'not a drop site' : 'a drop site takes only drop(P)'}`);
    }
    if ((action.kind === 'corrupt') !== corruptSites.includes(name as FailpointName)) {
      throw new Error(`${failpointsEnv}: ${name}: ${action.kind === 'corrupt' ? 'not a corrupt site' : 'a corrupt site takes only corrupt'}`);
    }
    if (action.kind === 'drop' && (action.percent < 1 || action.percent > 100)) throw new Error(`${failpointsEnv}: ${name}: drop(P) wants P in 1..100`);
    const hit = m[5] === undefined ? 1 : m[5] === '*' ? 0 : Number(m[5]);
    if (hit < 1 && m[5] !== '*') throw new Error(`${failpointsEnv}: ${name}: the hit count starts at 1`);
    table.set(name as FailpointName, { action, hit });
  }
  return table;
}

let active = parseFailpoints(process.env[failpointsEnv] ?? '');
const hits = new Map<FailpointName, number>();

/** Replaces the armed table (throws, changing nothing, on text parseFailpoints refuses); hit counts start over. */
export function armFailpoints(text: string): void {
  active = parseFailpoints(text);
  hits.clear();
}

/** Whether any failpoint is armed in this process. */
export function failpointsArmed(): boolean {
  return active.size > 0;
}

/** Marks a failpoint site: does nothing unless the environment armed this name. */
export function failpoint(name: FailpointName): void {
  const spec = due(name);
  if (spec !== undefined) fire(name, spec.action);
}

/**
 * Marks a hold site: the milliseconds its caller must wait before going on
 * (0 unless a sleep armed for this name fires now); a crash fires at once.
 */
export function failpointHoldMs(name: FailpointName): number {
  const spec = due(name);
  if (spec === undefined) return 0;
  if (spec.action.kind !== 'sleep') {
    // A crash fires at once; a drop is never armed here (parsing keeps it to the drop sites).
    fire(name, spec.action);
    return 0;
  }
  // An every-hit hold would log each response: its first hit says it for all.
  if (spec.hit !== 0 || hits.get(name) === 1) process.stderr.write(`failpoint ${name}: hold ${spec.action.ms} ms${spec.hit === 0 ? ' (every hit)' : ''}\n`);
  return spec.action.ms;
}

/** Marks a drop site: whether its item is lost now (a drop armed for this name fires, and the dice say so). */
export function failpointDrops(name: FailpointName): boolean {
  const spec = due(name);
  if (spec === undefined || spec.action.kind !== 'drop') return false;
  if (spec.hit !== 0 || hits.get(name) === 1) process.stderr.write(`failpoint ${name}: drop ${spec.action.percent} %${spec.hit === 0 ? ' (every hit)' : ''}\n`);
  return Math.random() * 100 < spec.action.percent;
}

/** Marks a corrupt site: whether its item is to be altered now (a corrupt armed for this name fires). */
export function failpointCorrupts(name: FailpointName): boolean {
  const spec = due(name);
  if (spec === undefined || spec.action.kind !== 'corrupt') return false;
  if (spec.hit !== 0 || hits.get(name) === 1) process.stderr.write(`failpoint ${name}: corrupt${spec.hit === 0 ? ' (every hit)' : ''}\n`);
  return true;
}

/** The spec of name if it fires on this hit (counted), else undefined. */
function due(name: FailpointName): FailpointSpec | undefined {
  if (active.size === 0) return undefined;
  const spec = active.get(name);
  if (spec === undefined) return undefined;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  return spec.hit === 0 || n === spec.hit ? spec : undefined;
}

function fire(name: FailpointName, action: FailpointAction): void {
  switch (action.kind) {
    case 'crash':
      // stderr to a file or pipe is written synchronously; then SIGKILL: no exit hook or finally runs.
      process.stderr.write(`failpoint ${name}: crash (pid ${process.pid})\n`);
      process.kill(process.pid, 'SIGKILL');
      // SIGKILL to oneself is delivered before kill() returns; block in case it is not.
      sleepSync(60_000);
      return;
    case 'sleep':
      process.stderr.write(`failpoint ${name}: sleep ${action.ms} ms\n`);
      sleepSync(action.ms);
      return;
    case 'drop':
    case 'corrupt':
      // Parsing keeps drop(P) and corrupt to their own sites, which never get here.
      return;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
