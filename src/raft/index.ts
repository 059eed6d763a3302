/**
 * raft: the Raft consensus algorithm as a deterministic state machine (Raft
 * thesis, organised like etcd-io/raft). No I/O, no timers, no clock, no
 * Promises, no randomness but the Config's Rand: the application drives it
 * with `tick()` and `step(message)` and executes the `Ready` batches it hands
 * out. What it promises:
 *
 * - Elections with randomized timeouts in [electionTicks, 2*electionTicks);
 *   term and vote are in the hard state; optional pre-vote and check-quorum
 *   (a leader that has not heard from a quorum for an election timeout steps
 *   down; a follower in contact with its leader ignores votes). A new leader
 *   appends an empty entry and commits only entries of its own term.
 * - Replication with pipelining per follower (probe / replicate / snapshot),
 *   inflight messages and bytes capped, fast backtracking by term hints, and
 *   a snapshot for a follower behind the compacted log.
 * - ReadIndex (safe: a heartbeat quorum confirms leadership; or lease-based),
 *   forwarded by followers; leader transfer; learners; membership changes one
 *   at a time or through joint consensus. A change takes effect when applied
 *   (applyConfChange), and a second one is refused until the first is.
 * - Expected failures throw RaftError with a stable code (errors.ts).
 *
 * ## The Ready loop (what the application must do)
 *
 * ```
 * for (;;) {
 *   // on a timer: node.tick(); on a message: node.step(m); on a client write: node.propose(data)
 *   if (!node.hasReady()) continue;
 *   const rd = node.ready();
 *   1. if rd.sendBeforePersist: send rd.messages now (a leader may replicate in
 *      parallel with its own disk write, thesis §10.2.1).
 *   2. persist, in this order: rd.snapshot (if set), rd.entries (appending; an
 *      entry at index i replaces the stored entries from i on), rd.hardState
 *      (if set). If rd.mustSync, fsync before going on. Then make them visible
 *      to the Storage raft reads (MemoryStorage.applySnapshot / append /
 *      setHardState).
 *   3. if not sent in step 1: send rd.messages now. A follower's append
 *      responses and vote grants promise that step 2 is durable, so they must
 *      never be sent earlier. A MsgSnap message: call reportSnapshot(to, ok)
 *      when its delivery finished or failed. A message that cannot be
 *      delivered: reportUnreachable(to) (optional).
 *   4. install rd.snapshot into the state machine, then apply
 *      rd.committedEntries in order. For an EntryConfChange/EntryConfChangeV2
 *      entry decode the change (raftpb.ConfChange / ConfChangeV2) and call
 *      applyConfChange(cc) (the membership changes now, not when proposed);
 *      its context bytes are the proposer's, untouched. Entries with empty
 *      data are the leaders' no-op entries. After a restart raft hands out
 *      again the committed entries after its snapshot: skip those your state
 *      machine already has, but still call applyConfChange for the conf
 *      changes among them (raft's membership restarts from the snapshot's).
 *      Committed entries that earlier Readys already made durable (below the
 *      first of rd.entries, and without rd.snapshot) wait for no write: they
 *      may be applied before step 2, e.g. while its fsync runs.
 *   5. serve rd.readStates: a read with requestCtx may answer once the applied
 *      index reaches its index.
 *   6. node.advance(rd). Only now may ready() be called again. On advance the
 *      leader counts its own entries as durable; Readys are strictly
 *      sequential, so nothing committed leaves raft before it is durable.
 *      What that commits is in the very next Ready: take it at once rather
 *      than on a later turn (a single voter's write then costs one turn).
 * }
 * ```
 * tick(), step(), propose() and the other inputs may be called between
 * ready() and advance() (e.g. while awaiting an fsync); their effects come out
 * in the next Ready.
 *
 * localReadIndex() answers a ReadIndex without a Ready when the node needs
 * nobody to confirm it (the sole voter, leading, with an entry of its term
 * committed); otherwise it is undefined and readIndex() is the way.
 *
 * Snapshots and compaction: compact the Storage only up to an index raft
 * itself delivered as committed since this boot (status().applied). A
 * MsgSnap carries Storage.snapshot(); a server may put a fresher snapshot of
 * its applied state in it (etcd's "merged snapshot"), and should: a follower
 * refuses a snapshot whose ConfState does not contain it (a member added
 * after the stored snapshot). Report every MsgSnap's fate with
 * reportSnapshot(to, ok): until then the leader sends that follower nothing.
 *
 * Membership: one change at a time (a second is dropped until the first is
 * applied); changes are validated at proposal time against the applied
 * configuration, so applying never fails. A leader that removes or demotes
 * itself takes no proposals after that change, keeps replicating until the
 * remaining voters have its whole log, then hands over (MsgTimeoutNow) and
 * steps down. Prefer transferring leadership before removing the leader.
 *
 * ## Starting
 * - A brand-new cluster: every initial member creates an empty MemoryStorage,
 *   `new RawNode(config)` and calls `bootstrap(peers)` with the same peer
 *   list (id + opaque context); the first Ready carries the bootstrap
 *   entries (one ConfChangeAddNode each) to persist and apply.
 * - A member joining an existing cluster: an empty storage and no bootstrap;
 *   the leader (after the conf change adding it is applied) sends it a
 *   snapshot or the log.
 * - A restart: load the last snapshot, the entries after it and the hard
 *   state into a MemoryStorage (applySnapshot, append, setHardState), then
 *   `new RawNode(config)`, leaving `applied` at its default (the snapshot
 *   index) so that conf changes after the snapshot are re-delivered (step 4).
 */
export { RaftError, RaftErrorCode, isRaftError } from './errors.js';
export { Config, ReadOnlyOption, validateConfig } from './config.js';
export type { ValidConfig } from './config.js';
export { MemoryStorage } from './storage.js';
export type { Storage } from './storage.js';
export { RawNode } from './raw-node.js';
export { coalesceMessages } from './coalesce.js';
export type { Ready, SoftState, Peer } from './raw-node.js';
export { StateType, CampaignType } from './raft.js';
export type { ReadState } from './read-only.js';
export type { Status, ProgressStatus } from './status.js';
export { ProgressState } from './tracker/index.js';
export {
  asV2,
  isConfChangeV2,
  confChangeToEntryData,
  confChangeFromEntry,
  describeConfChange,
  parseConfChanges,
} from './confchange/index.js';
export type { AnyConfChange } from './confchange/index.js';
export {
  describeEntry,
  describeEntries,
  describeMessage,
  describeReady,
  describeHardState,
  describeSoftState,
  describeConfState,
  describeSnapshot,
} from './describe.js';
export type { EntryFormatter } from './describe.js';
export { entrySizeBytes, isEmptySnapshot, isEmptyHardState } from './util.js';
