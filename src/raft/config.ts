import { type Logger, type Rand, assertSafeInteger, nopLogger } from '../base/index.js';
import { RaftError, RaftErrorCode } from './errors.js';
import type { Storage } from './storage.js';

/** How ReadIndex confirms leadership. */
export const ReadOnlyOption = {
  /**
   * Safe (default): the leader confirms it still leads by a round of
   * heartbeats acknowledged by a quorum before answering (thesis §6.4).
   */
  ReadOnlySafe: 'ReadOnlySafe',
  /**
   * Lease-based: the leader answers at once, trusting that no other leader
   * can exist within an election timeout of its last quorum contact (thesis
   * §6.4.1). Needs checkQuorum, and bounded clock drift between members.
   */
  ReadOnlyLeaseBased: 'ReadOnlyLeaseBased',
} as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

/** Every parameter and limit of a raft node. Defaults are filled by validate(). */
export interface Config {
  /** This node's id; never 0. */
  id: bigint;
  /**
   * Ticks without hearing from a leader before a follower campaigns; a leader
   * with checkQuorum steps down after this many ticks without a quorum. The
   * actual timeout is randomized in [electionTicks, 2*electionTicks).
   * Default 10. Must exceed heartbeatTicks (etcd suggests 10x): smaller
   * detects failures sooner but risks needless elections on a slow network.
   */
  electionTicks?: number;
  /** Ticks between a leader's heartbeats. Default 1. */
  heartbeatTicks?: number;
  /** The log and persisted state. For a restart it holds what was persisted. */
  storage: Storage;
  /**
   * The last index applied by the application before a restart; committed
   * entries up to here are not handed out again. Default 0 (from the start
   * of the log, i.e. the snapshot).
   */
  applied?: number;
  /**
   * Upper bound on the entry bytes of one append message. Default 1 MiB.
   * Smaller lowers the cost of a lost message and of a slow follower's
   * probe; larger amortizes per-message cost during catch-up. 0 sends one
   * entry per message.
   */
  msgAppBytesMax?: number;
  /**
   * Upper bound on the bytes of committed entries in one Ready. Default:
   * msgAppBytesMax. Bounds the apply batch (and the memory it pins).
   */
  readyCommittedBytesMax?: number;
  /**
   * Upper bound on the payload bytes of entries the leader has appended but
   * not yet committed; proposals past it are dropped (ProposalDropped).
   * Default 0: no limit. Protects the leader's memory when a quorum is slow.
   */
  uncommittedBytesMax?: number;
  /**
   * Append messages in flight to one follower in replicate state. Default
   * 256. More hides latency (pipelining) but buffers more in the transport.
   */
  inflightMsgsMax?: number;
  /**
   * Entry bytes in flight to one follower; 0 means no limit (default). Caps
   * the transport's buffer per follower when entries are large.
   */
  inflightBytesMax?: number;
  /**
   * A leader steps down when it has not heard from a quorum within an
   * election timeout; followers ignore votes while they have a leader
   * (leases). Default false (etcd's server turns it on).
   */
  checkQuorum?: boolean;
  /**
   * Campaign in two phases: a pre-vote that changes no terms first, so a
   * partitioned node rejoining does not depose a healthy leader. Default false.
   */
  preVote?: boolean;
  /** How ReadIndex confirms leadership. Default ReadOnlySafe. */
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. Default false. */
  disableProposalForwarding?: boolean;
  /** Randomness for election timeouts. Required: a SeededRand in tests, seeded from the OS in production. */
  rand: Rand;
  logger?: Logger;
}

/** A Config with every default filled in. */
export type ValidConfig = Required<Config>;

const mib = 1024 * 1024;

function bad(msg: string): RaftError {
  return new RaftError(RaftErrorCode.ConfigInvalid, msg);
}

/** Checks a Config against raft's rules and fills in the defaults. */
export function validateConfig(c: Config): ValidConfig {
  if (c.id === 0n) throw bad('cannot use none as id');
  const heartbeatTicks = c.heartbeatTicks ?? 1;
  const electionTicks = c.electionTicks ?? 10;
  if (!Number.isSafeInteger(heartbeatTicks) || heartbeatTicks <= 0) throw bad('heartbeat tick must be greater than 0');
  if (!Number.isSafeInteger(electionTicks) || electionTicks <= heartbeatTicks) {
    throw bad('election tick must be greater than heartbeat tick');
  }
  const msgAppBytesMax = c.msgAppBytesMax ?? mib;
  const inflightMsgsMax = c.inflightMsgsMax ?? 256;
  const inflightBytesMax = c.inflightBytesMax ?? 0;
  if (inflightMsgsMax <= 0) throw bad('max inflight messages must be greater than 0');
  if (inflightBytesMax !== 0 && inflightBytesMax < msgAppBytesMax) {
    throw bad('max inflight bytes must be >= max message size');
  }
  const readOnlyOption = c.readOnlyOption ?? ReadOnlyOption.ReadOnlySafe;
  const checkQuorum = c.checkQuorum ?? false;
  if (readOnlyOption === ReadOnlyOption.ReadOnlyLeaseBased && !checkQuorum) {
    throw bad('checkQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased');
  }
  const v: ValidConfig = {
    id: c.id,
    electionTicks,
    heartbeatTicks,
    storage: c.storage,
    applied: c.applied ?? 0,
    msgAppBytesMax,
    readyCommittedBytesMax: c.readyCommittedBytesMax ?? msgAppBytesMax,
    uncommittedBytesMax: c.uncommittedBytesMax ?? 0,
    inflightMsgsMax,
    inflightBytesMax,
    checkQuorum,
    preVote: c.preVote ?? false,
    readOnlyOption,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    rand: c.rand,
    logger: c.logger ?? nopLogger,
  };
  for (const k of ['applied', 'msgAppBytesMax', 'readyCommittedBytesMax', 'uncommittedBytesMax', 'inflightBytesMax'] as const) {
    assertSafeInteger(v[k], k, 0);
  }
  return v;
}

/** `Config.validate(c)`: the rules and defaults of validateConfig, under the interface's name. */
export const Config = { validate: validateConfig } as const;
