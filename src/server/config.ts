/**
 * The member's configuration: etcd 3.4's server flags as typed values, with
 * etcd's defaults. src/cmd fills it from flags, ETCD_* variables or a config
 * file; tests build it directly.
 */
import { assert } from '../base/index.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  autoTls: boolean;
  crlFile: string;
  /** Peer only: the CN a peer's client certificate must carry ('' = any). */
  allowedCn: string;
  /** The hostname (or IP) a client certificate must be valid for ('' = any); with allowedCn, either will do. */
  allowedHostname: string;
  /** Peer only: do not check a peer's client certificate against the address it connects from. */
  skipClientSanVerify: boolean;
}

export const emptyTls: TlsFiles = {
  certFile: '',
  keyFile: '',
  trustedCaFile: '',
  clientCertAuth: false,
  autoTls: false,
  crlFile: '',
  allowedCn: '',
  allowedHostname: '',
  skipClientSanVerify: false,
};

export type ClusterState = 'new' | 'existing';
export type AutoCompactionMode = 'periodic' | 'revision';

export interface ServerConfig {
  name: string;
  dataDir: string;
  walDir: string;
  snapshotCount: number;
  /** Entries kept in the raft log after a snapshot, for slow followers to catch up from. */
  snapshotCatchUpEntries: number;
  heartbeatMs: number;
  electionMs: number;
  initialElectionTickAdvance: boolean;
  listenPeerUrls: string[];
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  initialAdvertisePeerUrls: string[];
  /** name -> peer URLs, from --initial-cluster. */
  initialCluster: Map<string, string[]>;
  /** --discovery-srv / --discovery-srv-name: the DNS domain (and service suffix) the initial cluster came from. */
  discoverySrv: string;
  discoverySrvName: string;
  initialClusterState: ClusterState;
  initialClusterToken: string;
  maxSnapshots: number;
  maxWals: number;
  /** 0 means the default quota (2 GiB). */
  quotaBackendBytes: number;
  backendBatchIntervalMs: number;
  backendBatchLimit: number;
  maxTxnOps: number;
  maxRequestBytes: number;
  maxConcurrentStreams: number;
  grpcKeepaliveMinTimeMs: number;
  grpcKeepaliveIntervalMs: number;
  grpcKeepaliveTimeoutMs: number;
  strictReconfigCheck: boolean;
  preVote: boolean;
  autoCompactionMode: AutoCompactionMode;
  /** As given: hours for periodic mode when unitless ("1"), a Go duration ("30m"), or revisions. */
  autoCompactionRetention: string;
  clientTls: TlsFiles;
  peerTls: TlsFiles;
  authToken: string;
  bcryptCost: number;
  authTokenTtlSeconds: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  logOutputs: string[];
  listenMetricsUrls: string[];
  metrics: 'basic' | 'extensive';
  enableGrpcGateway: boolean;
  enablePprof: boolean;
  forceNewCluster: boolean;
  /** Skips fsync (unsafe; tests and benchmarks of CPU paths only). */
  unsafeNoFsync: boolean;
  experimentalInitialCorruptCheck: boolean;
  experimentalCorruptCheckTimeMs: number;
  /** Between the leader's comparisons of recent revision hashes (revision-check.ts); 0 disables. etcd-ts's own. */
  experimentalRevisionHashCheckTimeMs: number;
  experimentalEnableLeaseCheckpoint: boolean;
  experimentalCompactionBatchLimit: number;
  experimentalWatchProgressNotifyIntervalMs: number;
  experimentalWarningApplyDurationMs: number;
  corsOrigins: string[];
  /** --cipher-suites: Go's names of the TLS 1.2 suites to offer, client and peer sides ([] = the TLS stack's defaults). */
  cipherSuites: string[];
  hostWhitelist: string[];
}

export function defaultConfig(): ServerConfig {
  return {
    name: 'default',
    dataDir: '',
    walDir: '',
    snapshotCount: 100_000,
    snapshotCatchUpEntries: 5000,
    heartbeatMs: 100,
    electionMs: 1000,
    initialElectionTickAdvance: true,
    listenPeerUrls: ['http://localhost:2380'],
    listenClientUrls: ['http://localhost:2379'],
    advertiseClientUrls: ['http://localhost:2379'],
    initialAdvertisePeerUrls: ['http://localhost:2380'],
    initialCluster: new Map([['default', ['http://localhost:2380']]]),
    discoverySrv: '',
    discoverySrvName: '',
    initialClusterState: 'new',
    initialClusterToken: 'etcd-cluster',
    maxSnapshots: 5,
    maxWals: 5,
    quotaBackendBytes: 0,
    backendBatchIntervalMs: 100,
    backendBatchLimit: 10_000,
    maxTxnOps: 128,
    maxRequestBytes: 1_572_864,
    maxConcurrentStreams: 0xffffffff,
    grpcKeepaliveMinTimeMs: 5000,
    grpcKeepaliveIntervalMs: 2 * 3600 * 1000,
    grpcKeepaliveTimeoutMs: 20_000,
    strictReconfigCheck: true,
    preVote: false,
    autoCompactionMode: 'periodic',
    autoCompactionRetention: '0',
    clientTls: { ...emptyTls },
    peerTls: { ...emptyTls },
    authToken: 'simple',
    bcryptCost: 10,
    authTokenTtlSeconds: 300,
    logLevel: 'info',
    logOutputs: ['default'],
    listenMetricsUrls: [],
    metrics: 'basic',
    enableGrpcGateway: true,
    enablePprof: false,
    forceNewCluster: false,
    unsafeNoFsync: false,
    experimentalInitialCorruptCheck: false,
    experimentalCorruptCheckTimeMs: 0,
    experimentalRevisionHashCheckTimeMs: 2000,
    experimentalEnableLeaseCheckpoint: true,
    experimentalCompactionBatchLimit: 1000,
    experimentalWatchProgressNotifyIntervalMs: 10 * 60 * 1000,
    experimentalWarningApplyDurationMs: 100,
    corsOrigins: ['*'],
    cipherSuites: [],
    hostWhitelist: ['*'],
  };
}

/** A configuration error; the command prints it and exits non-zero. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Raft ticks derived from the millisecond intervals, as etcd derives them. */
export function electionTicks(cfg: ServerConfig): number {
  return Math.floor(cfg.electionMs / cfg.heartbeatMs);
}

/**
 * The election timeout in whole ticks, as etcd's electionTimeout() counts
 * it (what a new leader extends every lease by): 1600 ms at a 500 ms
 * heartbeat is 1500.
 */
export function electionTimeoutMs(cfg: ServerConfig): number {
  return electionTicks(cfg) * cfg.heartbeatMs;
}

/**
 * Checks the relations between values, with etcd's messages where etcd has one
 * ("error verifying flags"). Whether --initial-cluster holds this member, as
 * advertised, is a question only when a new cluster is bootstrapped: see
 * verifyBootstrap. An out-of-range --bcrypt-cost is no error: etcd warns and
 * uses its default (src/auth normalizeBcryptCost). A bad
 * --auto-compaction-retention is a start-up failure (parseCompactionRetention).
 */
export function validateConfig(cfg: ServerConfig): void {
  if (cfg.heartbeatMs <= 0) throw new ConfigError(`--heartbeat-interval must be >0 (set to ${cfg.heartbeatMs}ms)`);
  if (cfg.electionMs < 5 * cfg.heartbeatMs) {
    throw new ConfigError(
      `--election-timeout[${cfg.electionMs}ms] should be at least as 5 times as --heartbeat-interval[${cfg.heartbeatMs}ms]`,
    );
  }
  if (cfg.electionMs > 50_000) {
    throw new ConfigError(`--election-timeout[${cfg.electionMs}ms] is too long, and should be set less than 50000ms`);
  }
  assert(cfg.dataDir !== '', 'dataDir is filled in before validation');
}

/** Go's time.ParseDuration, to nanoseconds; throws Go's message. */
export function parseGoDurationNs(s: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new ConfigError(`time: invalid duration "${s}"`);
  let total = 0;
  while (rest !== '') {
    const num = /^([0-9]*(?:\.[0-9]*)?)/.exec(rest)?.[1] ?? '';
    if (num === '' || num === '.') throw new ConfigError(`time: invalid duration "${s}"`);
    rest = rest.slice(num.length);
    const unit = /^([^0-9.]*)/.exec(rest)?.[1] ?? '';
    if (unit === '') throw new ConfigError(`time: missing unit in duration "${s}"`);
    const scale = units[unit];
    if (scale === undefined) throw new ConfigError(`time: unknown unit "${unit}" in duration "${s}"`);
    rest = rest.slice(unit.length);
    total += Number(num) * scale;
  }
  return sign * total;
}

export interface CompactionRetention {
  readonly mode: AutoCompactionMode;
  /** periodic: milliseconds; revision: revisions. 0 = auto compaction off. */
  readonly retention: number;
}

/** etcd's parseCompactionRetention. */
export function parseCompactionRetention(mode: AutoCompactionMode, text: string): CompactionRetention {
  const raw = text === '' ? '0' : text;
  if (/^\+?[0-9]+$/.test(raw)) {
    const n = Number(raw);
    return { mode, retention: mode === 'periodic' ? n * 3_600_000 : n };
  }
  try {
    const ns = parseGoDurationNs(raw);
    return { mode, retention: mode === 'periodic' ? ns / 1e6 : ns };
  } catch (e) {
    throw new ConfigError(`error parsing CompactionRetention: ${(e as Error).message}`);
  }
}

/** The peer URLs of the other members in --initial-cluster. */
export function otherPeerUrls(cfg: ServerConfig): string[] {
  const urls: string[] = [];
  for (const [name, u] of cfg.initialCluster) if (name !== cfg.name) urls.push(...u);
  return urls;
}

/** Go's %q of a []string: ["a" "b"]. */
function quotedList(urls: readonly string[]): string {
  return `[${urls.map((u) => JSON.stringify(u)).join(' ')}]`;
}

/** An --initial-cluster as etcd prints it: one name=url per URL, sorted. */
export function urlsMapString(m: ReadonlyMap<string, readonly string[]>): string {
  return [...m].flatMap(([name, urls]) => urls.map((u) => `${name}=${u}`)).sort().join(',');
}

/**
 * etcd's bootstrap checks of a member of a new cluster, in its order and
 * words: its name is in --initial-cluster; its entry there is exactly its
 * --initial-advertise-peer-urls; no URL is listed twice. A member restarted
 * on its data dir is not checked (its URLs are the cluster's record, changed
 * with `member update`).
 */
export function verifyBootstrap(cfg: ServerConfig): void {
  const listedRaw = cfg.initialCluster.get(cfg.name);
  if (listedRaw === undefined) throw new ConfigError(`couldn't find local name "${cfg.name}" in the initial cluster configuration`);
  const advertised = [...cfg.initialAdvertisePeerUrls].sort();
  const listed = [...listedRaw].sort();
  // What etcd's URL comparison says: the lengths, or the first pair that differs.
  let why: string | undefined;
  if (advertised.length !== listed.length) why = `len(${quotedList(advertised)}) != len(${quotedList(listed)})`;
  else {
    const i = advertised.findIndex((u, k) => u !== listed[k]);
    if (i >= 0) why = `resolved urls: ${JSON.stringify(advertised[i])} != ${JSON.stringify(listed[i])}`;
  }
  if (why !== undefined) {
    const unadvertised = [...new Set(listed)].filter((u) => !advertised.includes(u));
    if (unadvertised.length > 0) {
      throw new ConfigError(
        `--initial-cluster has ${unadvertised.map((u) => `${cfg.name}=${u}`).join(',')} but missing from --initial-advertise-peer-urls=${advertised.join(',')} (${why})`,
      );
    }
    const unlisted = [...new Set(advertised)].filter((u) => !listed.includes(u));
    const own = urlsMapString(new Map([[cfg.name, cfg.initialAdvertisePeerUrls]]));
    if (unlisted.length > 0) throw new ConfigError(`--initial-advertise-peer-urls has ${unlisted.join(',')} but missing from --initial-cluster=${own}`);
    throw new ConfigError(`failed to resolve ${advertised.join(',')} to match --initial-cluster=${own} (${why})`);
  }
  const all = [...cfg.initialCluster.values()].flat();
  if (new Set(all).size !== all.length) throw new ConfigError(`initial cluster ${urlsMapString(cfg.initialCluster)} has duplicate url`);
}
