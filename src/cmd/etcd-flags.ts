/**
 * etcd 3.4's server flags: names, defaults and help text as `etcd --help`
 * prints them, and how each lands in a ServerConfig. Sources, highest first:
 * a --config-file (then every other flag and variable is ignored, as in etcd),
 * the command line, ETCD_* variables, the defaults.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  ConfigError,
  checkOwnUrl,
  defaultConfig,
  parseUrls,
  parseUrlsMap,
  type ServerConfig,
  type TlsFiles,
} from '../server/index.js';
import { FlagError, checkValue, goIntValue, parseBool, parseDurationMs, type FlagDef } from './flags.js';

function urlsCheck(v: string): string | undefined {
  try {
    for (const u of v.split(',').filter((x) => x !== '')) checkOwnUrl(u);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function oneOf(...allowed: string[]): (v: string) => string | undefined {
  return (v) => (allowed.includes(v) ? undefined : 'invalid value');
}

const member = 'Member';
const clustering = 'Clustering';
const security = 'Security';
const auth = 'Auth';
const monitoring = 'Profiling and Monitoring';
const logging = 'Logging';
const experimental = 'Experimental feature';
const unsafe = 'Unsafe feature';
const deprecated = 'TO BE DEPRECATED';
/** Why a flag asking for the v2 API is refused. */
const v3Only = 'etcd-ts serves the v3 API only';

export const etcdFlags: readonly FlagDef[] = [
  { section: member, name: 'name', kind: 'string', defaultText: 'default', usage: 'Human-readable name for this member.' },
  { section: member, name: 'data-dir', kind: 'string', defaultText: '${name}.etcd', usage: 'Path to the data directory.' },
  { section: member, name: 'wal-dir', kind: 'string', defaultText: '', usage: 'Path to the dedicated wal directory.' },
  { section: member, name: 'snapshot-count', kind: 'uint', defaultText: "'100000'", usage: 'Number of committed transactions to trigger a snapshot to disk.' },
  { section: member, name: 'heartbeat-interval', kind: 'uint', defaultText: "'100'", usage: 'Time (in milliseconds) of a heartbeat interval.' },
  { section: member, name: 'election-timeout', kind: 'uint', defaultText: "'1000'", usage: 'Time (in milliseconds) for an election to timeout. See tuning documentation for details.' },
  { section: member, name: 'initial-election-tick-advance', kind: 'bool', defaultText: 'true', usage: 'Whether to fast-forward initial election ticks on boot for faster election.' },
  { section: member, name: 'listen-peer-urls', kind: 'string', defaultText: 'http://localhost:2380', usage: 'List of URLs to listen on for peer traffic.', check: urlsCheck },
  { section: member, name: 'listen-client-urls', kind: 'string', defaultText: 'http://localhost:2379', usage: 'List of URLs to listen on for client traffic.', check: urlsCheck },
  { section: member, name: 'max-snapshots', kind: 'uint', defaultText: "'5'", usage: 'Maximum number of snapshot files to retain (0 is unlimited).' },
  { section: member, name: 'max-wals', kind: 'uint', defaultText: "'5'", usage: 'Maximum number of wal files to retain (0 is unlimited).' },
  { section: member, name: 'quota-backend-bytes', kind: 'int', defaultText: "'0'", usage: 'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).' },
  { section: member, name: 'backend-batch-interval', kind: 'duration', defaultText: '', usage: 'BackendBatchInterval is the maximum time before commit the backend transaction.' },
  { section: member, name: 'backend-batch-limit', kind: 'uint', defaultText: "'0'", usage: 'BackendBatchLimit is the maximum operations before commit the backend transaction.' },
  { section: member, name: 'max-txn-ops', kind: 'uint', defaultText: "'128'", usage: 'Maximum number of operations permitted in a transaction.' },
  { section: member, name: 'max-request-bytes', kind: 'uint', defaultText: "'1572864'", usage: 'Maximum client request size in bytes the server will accept.' },
  { section: member, name: 'max-concurrent-streams', kind: 'uint', defaultText: "'math.MaxUint32'", usage: 'Maximum concurrent streams that each client can open at a time.' },
  { section: member, name: 'grpc-keepalive-min-time', kind: 'duration', defaultText: '5s', usage: 'Minimum duration interval that a client should wait before pinging server.' },
  { section: member, name: 'grpc-keepalive-interval', kind: 'duration', defaultText: '2h', usage: 'Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).' },
  { section: member, name: 'grpc-keepalive-timeout', kind: 'duration', defaultText: '20s', usage: 'Additional duration of wait before closing a non-responsive connection (0 to disable).' },
  { section: clustering, name: 'initial-advertise-peer-urls', kind: 'string', defaultText: 'http://localhost:2380', usage: "List of this member's peer URLs to advertise to the rest of the cluster.", check: urlsCheck },
  { section: clustering, name: 'initial-cluster', kind: 'string', defaultText: 'default=http://localhost:2380', usage: 'Initial cluster configuration for bootstrapping.' },
  { section: clustering, name: 'initial-cluster-state', kind: 'string', defaultText: 'new', usage: "Initial cluster state ('new' or 'existing').", check: oneOf('new', 'existing') },
  { section: clustering, name: 'initial-cluster-token', kind: 'string', defaultText: 'etcd-cluster', usage: 'Initial cluster token for the etcd cluster during bootstrap.' },
  { section: clustering, name: 'advertise-client-urls', kind: 'string', defaultText: 'http://localhost:2379', usage: "List of this member's client URLs to advertise to the public.", check: urlsCheck },
  { section: clustering, name: 'discovery-srv', kind: 'string', defaultText: '', usage: 'DNS srv domain used to bootstrap the cluster.' },
  { section: clustering, name: 'discovery-srv-name', kind: 'string', defaultText: '', usage: 'Suffix to the dns srv name queried when bootstrapping.' },
  { section: clustering, name: 'strict-reconfig-check', kind: 'bool', defaultText: 'true', usage: 'Reject reconfiguration requests that would cause quorum loss.' },
  { section: clustering, name: 'pre-vote', kind: 'bool', defaultText: 'false', usage: 'Enable to run an additional Raft election phase.' },
  { section: clustering, name: 'auto-compaction-retention', kind: 'string', defaultText: '0', usage: 'Auto compaction retention length. 0 means disable auto compaction.' },
  { section: clustering, name: 'auto-compaction-mode', kind: 'string', defaultText: 'periodic', usage: "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention." },
  { section: clustering, name: 'enable-v2', kind: 'bool', defaultText: 'false', usage: 'Accept etcd V2 client requests. etcd-ts serves the v3 API only: true is refused.', check: (v) => (parseBool(v) ? v3Only : undefined) },
  { section: security, name: 'cert-file', kind: 'string', defaultText: '', usage: 'Path to the client server TLS cert file.' },
  { section: security, name: 'key-file', kind: 'string', defaultText: '', usage: 'Path to the client server TLS key file.' },
  { section: security, name: 'client-cert-auth', kind: 'bool', defaultText: 'false', usage: 'Enable client cert authentication.' },
  { section: security, name: 'client-crl-file', kind: 'string', defaultText: '', usage: 'Path to the client certificate revocation list file.' },
  { section: security, name: 'client-cert-allowed-hostname', kind: 'string', defaultText: '', usage: 'Allowed TLS hostname for client cert authentication.' },
  { section: security, name: 'trusted-ca-file', kind: 'string', defaultText: '', usage: 'Path to the client server TLS trusted CA cert file.' },
  { section: security, name: 'auto-tls', kind: 'bool', defaultText: 'false', usage: 'Client TLS using generated certificates.' },
  { section: security, name: 'peer-cert-file', kind: 'string', defaultText: '', usage: 'Path to the peer server TLS cert file.' },
  { section: security, name: 'peer-key-file', kind: 'string', defaultText: '', usage: 'Path to the peer server TLS key file.' },
  { section: security, name: 'peer-client-cert-auth', kind: 'bool', defaultText: 'false', usage: 'Enable peer client cert authentication.' },
  { section: security, name: 'peer-trusted-ca-file', kind: 'string', defaultText: '', usage: 'Path to the peer server TLS trusted CA file.' },
  { section: security, name: 'peer-cert-allowed-cn', kind: 'string', defaultText: '', usage: 'Required CN for client certs connecting to the peer endpoint.' },
  { section: security, name: 'peer-cert-allowed-hostname', kind: 'string', defaultText: '', usage: 'Allowed TLS hostname for inter peer authentication.' },
  { section: security, name: 'peer-auto-tls', kind: 'bool', defaultText: 'false', usage: 'Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.' },
  { section: security, name: 'peer-crl-file', kind: 'string', defaultText: '', usage: 'Path to the peer certificate revocation list file.' },
  {
    section: security,
    name: 'cipher-suites',
    kind: 'string',
    defaultText: '',
    usage: 'Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).',
  },
  { section: security, name: 'cors', kind: 'string', defaultText: '*', check: (v) => (v === '*' || v === '' ? undefined : urlsCheck(v)), usage: 'Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).' },
  { section: security, name: 'host-whitelist', kind: 'string', defaultText: '*', usage: 'Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).' },
  { section: auth, name: 'auth-token', kind: 'string', defaultText: 'simple', usage: "Specify a v3 authentication token type and its options ('simple' or 'jwt')." },
  { section: auth, name: 'bcrypt-cost', kind: 'uint', defaultText: '10', usage: 'Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.' },
  { section: auth, name: 'auth-token-ttl', kind: 'uint', defaultText: '300', usage: 'Time (in seconds) of the auth-token-ttl.' },
  { section: monitoring, name: 'enable-pprof', kind: 'bool', defaultText: 'false', usage: 'Enable runtime profiling data via HTTP server. Address is at client URL + "/debug/pprof/"' },
  { section: monitoring, name: 'metrics', kind: 'string', defaultText: 'basic', usage: "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.", check: oneOf('basic', 'extensive') },
  { section: monitoring, name: 'listen-metrics-urls', kind: 'string', defaultText: '', usage: 'List of URLs to listen on for the metrics and health endpoints.', check: urlsCheck },
  { section: logging, name: 'logger', kind: 'string', defaultText: 'zap', usage: "Specify 'zap' for structured logging or 'capnslog'. Both write structured JSON lines here." },
  { section: logging, name: 'log-outputs', kind: 'string', defaultText: 'default', usage: "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets." },
  { section: logging, name: 'log-level', kind: 'string', defaultText: 'info', usage: 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.', check: oneOf('debug', 'info', 'warn', 'error', 'panic', 'fatal') },
  { section: experimental, name: 'experimental-initial-corrupt-check', kind: 'bool', defaultText: 'false', usage: 'Enable to check data corruption before serving any client/peer traffic.' },
  { section: experimental, name: 'experimental-corrupt-check-time', kind: 'duration', defaultText: '0s', usage: 'Duration of time between cluster corruption check passes.' },
  { section: experimental, name: 'experimental-revision-hash-check-time', kind: 'duration', defaultText: '2s', usage: "Duration between the leader's comparisons of the hashes of the revisions members applied recently (etcd-ts only; 0s disables)." },
  { section: experimental, name: 'experimental-enable-lease-checkpoint', kind: 'bool', defaultText: 'true', usage: 'ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases. On by default here.' },
  { section: experimental, name: 'experimental-enable-v2v3', kind: 'string', defaultText: '', usage: 'Serve v2 requests through the v3 backend under a given prefix. etcd-ts serves the v3 API only: a prefix is refused.', check: (v) => (v === '' ? undefined : v3Only) },
  { section: experimental, name: 'experimental-backend-bbolt-freelist-type', kind: 'string', defaultText: 'array', usage: "ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types). No effect here: the backend is LMDB, which keeps its own free pages." },
  { section: experimental, name: 'experimental-compaction-batch-limit', kind: 'int', defaultText: '1000', usage: 'ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.' },
  { section: experimental, name: 'experimental-snapshot-catchup-entries', kind: 'uint', defaultText: '5000', usage: 'Number of entries for a slow follower to catch up after compacting the raft storage entries.' },
  { section: experimental, name: 'experimental-peer-skip-client-san-verification', kind: 'bool', defaultText: 'false', usage: 'Skip verification of SAN field in client certificate for peer connections.' },
  { section: experimental, name: 'experimental-watch-progress-notify-interval', kind: 'duration', defaultText: '10m', usage: 'Duration of periodical watch progress notification.' },
  { section: experimental, name: 'experimental-warning-apply-duration', kind: 'duration', defaultText: '100ms', usage: 'Warning is generated if requests take more than this duration.' },
  { section: unsafe, name: 'force-new-cluster', kind: 'bool', defaultText: 'false', usage: 'Force to create a new one-member cluster.' },
  { section: unsafe, name: 'unsafe-no-fsync', kind: 'bool', defaultText: 'false', usage: 'Disables fsync, unsafe, will cause data loss.' },
  { name: 'enable-grpc-gateway', kind: 'bool', defaultText: 'true', usage: 'Enable GRPC gateway.', hidden: true },
  { section: deprecated, name: 'debug', kind: 'bool', defaultText: 'false', usage: "Enable debug-level logging for etcd. [WARN] Will be deprecated in v3.5. Use '--log-level=debug' instead." },
  { section: deprecated, name: 'log-package-levels', kind: 'string', defaultText: '', usage: "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG'). As with etcd's zap logger, it is not used." },
  { name: 'config-file', kind: 'string', defaultText: '', usage: 'Path to the server configuration file.', hidden: true },
];

const defsByName = new Map(etcdFlags.map((d) => [d.name, d]));

function ms(v: string): number {
  const n = parseDurationMs(v);
  if (n === undefined) throw new FlagError(`invalid duration ${v}`);
  return n;
}

function tlsFrom(get: (name: string) => string | undefined, prefix: '' | 'peer-'): TlsFiles {
  return {
    certFile: get(`${prefix}cert-file`) ?? '',
    keyFile: get(`${prefix}key-file`) ?? '',
    trustedCaFile: get(`${prefix}trusted-ca-file`) ?? '',
    clientCertAuth: parseBool(get(`${prefix}client-cert-auth`) ?? 'false'),
    autoTls: parseBool(get(`${prefix}auto-tls`) ?? 'false'),
    crlFile: get(prefix === '' ? 'client-crl-file' : 'peer-crl-file') ?? '',
    allowedCn: prefix === 'peer-' ? (get('peer-cert-allowed-cn') ?? '') : '',
    allowedHostname: get(`${prefix === '' ? 'client' : 'peer'}-cert-allowed-hostname`) ?? '',
    skipClientSanVerify: prefix === 'peer-' && parseBool(get('experimental-peer-skip-client-san-verification') ?? 'false'),
  };
}

function list(v: string): string[] {
  return v.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

/** Builds the config from flag values (already checked for their kind). Unset flags keep etcd's defaults. */
export function configFromValues(values: ReadonlyMap<string, string>): ServerConfig {
  const cfg = defaultConfig();
  const get = (n: string): string | undefined => values.get(n);
  const num = (n: string, dflt: number): number => {
    const v = get(n);
    const kind = defsByName.get(n)?.kind;
    return v === undefined ? dflt : kind === 'int' || kind === 'uint' ? goIntValue(kind, v) : Number(v);
  };
  cfg.name = get('name') ?? cfg.name;
  cfg.dataDir = get('data-dir') ?? `${cfg.name}.etcd`;
  cfg.walDir = get('wal-dir') ?? '';
  // 0 is etcd's default, 100000 ("set snapshot count to default").
  cfg.snapshotCount = num('snapshot-count', cfg.snapshotCount) || cfg.snapshotCount;
  cfg.heartbeatMs = num('heartbeat-interval', cfg.heartbeatMs);
  cfg.electionMs = num('election-timeout', cfg.electionMs);
  cfg.initialElectionTickAdvance = parseBool(get('initial-election-tick-advance') ?? 'true');
  const urls = (n: string, dflt: string[]): string[] => {
    const v = get(n);
    return v === undefined ? dflt : parseUrls(v);
  };
  cfg.listenPeerUrls = urls('listen-peer-urls', cfg.listenPeerUrls);
  cfg.listenClientUrls = urls('listen-client-urls', cfg.listenClientUrls);
  cfg.advertiseClientUrls = urls('advertise-client-urls', cfg.advertiseClientUrls);
  cfg.initialAdvertisePeerUrls = urls('initial-advertise-peer-urls', cfg.initialAdvertisePeerUrls);
  const ic = get('initial-cluster');
  cfg.discoverySrv = get('discovery-srv') ?? '';
  cfg.discoverySrvName = get('discovery-srv-name') ?? '';
  const discovery = cfg.discoverySrv !== '' || cfg.discoverySrvName !== '';
  if (ic !== undefined) {
    if (discovery) throw new ConfigError('multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"');
    cfg.initialCluster = parseUrlsMap(ic);
  } else if (discovery) {
    cfg.initialCluster = new Map(); // what DNS says (src/cmd/etcd-ts.ts), before validation
  } else if (get('name') !== undefined) {
    cfg.initialCluster = new Map([[cfg.name, cfg.initialAdvertisePeerUrls]]);
  }
  cfg.initialClusterState = get('initial-cluster-state') === 'existing' ? 'existing' : 'new';
  cfg.initialClusterToken = get('initial-cluster-token') ?? cfg.initialClusterToken;
  cfg.maxSnapshots = num('max-snapshots', cfg.maxSnapshots);
  cfg.maxWals = num('max-wals', cfg.maxWals);
  cfg.quotaBackendBytes = num('quota-backend-bytes', cfg.quotaBackendBytes);
  const bi = get('backend-batch-interval');
  if (bi !== undefined && bi !== '') cfg.backendBatchIntervalMs = ms(bi);
  const bl = num('backend-batch-limit', 0);
  if (bl > 0) cfg.backendBatchLimit = bl;
  cfg.maxTxnOps = num('max-txn-ops', cfg.maxTxnOps);
  cfg.maxRequestBytes = num('max-request-bytes', cfg.maxRequestBytes);
  cfg.maxConcurrentStreams = num('max-concurrent-streams', cfg.maxConcurrentStreams);
  cfg.grpcKeepaliveMinTimeMs = ms(get('grpc-keepalive-min-time') ?? '5s');
  cfg.grpcKeepaliveIntervalMs = ms(get('grpc-keepalive-interval') ?? '2h');
  cfg.grpcKeepaliveTimeoutMs = ms(get('grpc-keepalive-timeout') ?? '20s');
  cfg.strictReconfigCheck = parseBool(get('strict-reconfig-check') ?? 'true');
  cfg.preVote = parseBool(get('pre-vote') ?? 'false');
  const mode = get('auto-compaction-mode') ?? '';
  if (mode !== '' && mode !== 'periodic' && mode !== 'revision') throw new ConfigError(`unknown auto-compaction-mode ${JSON.stringify(mode)}`);
  cfg.autoCompactionMode = mode === 'revision' ? 'revision' : 'periodic';
  cfg.autoCompactionRetention = get('auto-compaction-retention') ?? '0';
  cfg.clientTls = tlsFrom(get, '');
  cfg.peerTls = tlsFrom(get, 'peer-');
  cfg.corsOrigins = list(get('cors') ?? '*');
  // Split as etcd's StringsValue splits it: a blank or empty entry is an entry (and no suite's name).
  const suites = get('cipher-suites') ?? '';
  cfg.cipherSuites = suites === '' ? [] : suites.split(',');
  cfg.hostWhitelist = list(get('host-whitelist') ?? '*');
  cfg.authToken = get('auth-token') ?? cfg.authToken;
  cfg.bcryptCost = num('bcrypt-cost', cfg.bcryptCost);
  cfg.authTokenTtlSeconds = num('auth-token-ttl', cfg.authTokenTtlSeconds);
  cfg.enablePprof = parseBool(get('enable-pprof') ?? 'false');
  cfg.metrics = get('metrics') === 'extensive' ? 'extensive' : 'basic';
  const lm = get('listen-metrics-urls');
  cfg.listenMetricsUrls = lm === undefined || lm === '' ? [] : parseUrls(lm);
  // Not a flag error in etcd: its configuration check refuses the value.
  const logger = get('logger') ?? 'zap';
  if (logger !== 'zap' && logger !== 'capnslog') throw new ConfigError(`unknown logger option "${logger}"`);
  const level = get('log-level') ?? (parseBool(get('debug') ?? 'false') ? 'debug' : 'info');
  cfg.logLevel = level === 'panic' || level === 'fatal' ? 'error' : (level as ServerConfig['logLevel']);
  cfg.logOutputs = list(get('log-outputs') ?? 'default');
  cfg.experimentalInitialCorruptCheck = parseBool(get('experimental-initial-corrupt-check') ?? 'false');
  cfg.experimentalCorruptCheckTimeMs = ms(get('experimental-corrupt-check-time') ?? '0s');
  cfg.experimentalRevisionHashCheckTimeMs = ms(get('experimental-revision-hash-check-time') ?? '2s');
  cfg.experimentalEnableLeaseCheckpoint = parseBool(get('experimental-enable-lease-checkpoint') ?? 'true');
  cfg.snapshotCatchUpEntries = num('experimental-snapshot-catchup-entries', cfg.snapshotCatchUpEntries);
  cfg.experimentalCompactionBatchLimit = num('experimental-compaction-batch-limit', cfg.experimentalCompactionBatchLimit);
  cfg.experimentalWatchProgressNotifyIntervalMs = ms(get('experimental-watch-progress-notify-interval') ?? '10m');
  cfg.experimentalWarningApplyDurationMs = ms(get('experimental-warning-apply-duration') ?? '100ms');
  cfg.forceNewCluster = parseBool(get('force-new-cluster') ?? 'false');
  cfg.unsafeNoFsync = parseBool(get('unsafe-no-fsync') ?? 'false');
  cfg.enableGrpcGateway = parseBool(get('enable-grpc-gateway') ?? 'true');
  return cfg;
}

/** YAML scalars and lists as flag text: lists join with commas, null is unset. */
function yamlValueText(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.map((x) => String(x)).join(',');
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * The YAML parser, loaded on first use: only --config-file needs it, and
 * loading it costs every start about 30 ms.
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

/** Reads etcd's YAML config file: keys are flag names; TLS sits under {client,peer}-transport-security. */
export function valuesFromConfigFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new ConfigError(`open ${path}: ${why}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    // The first line of the parser's message: the rest is a picture of the spot.
    throw new ConfigError(`error converting YAML to JSON: yaml: ${((e as Error).message.split('\n')[0] ?? '').trim()}`);
  }
  const values = new Map<string, string>();
  if (doc === null || typeof doc !== 'object') return values;
  const put = (name: string, raw: unknown): void => {
    const text = yamlValueText(raw);
    if (text === undefined || text === '') return;
    const def = defsByName.get(name);
    if (def === undefined) return; // etcd ignores keys it does not know (v2 proxy, discovery, ...)
    try {
      checkValue(def, text);
    } catch (e) {
      // Not a command-line mistake: etcd reports a bad value in the file as a configuration error.
      if (e instanceof FlagError) throw new ConfigError(e.message);
      throw e;
    }
    values.set(name, text);
  };
  for (const [key, raw] of Object.entries(doc as Record<string, unknown>)) {
    if ((key === 'client-transport-security' || key === 'peer-transport-security') && raw !== null && typeof raw === 'object') {
      const prefix = key === 'peer-transport-security' ? 'peer-' : '';
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        const name = k === 'crl-file' ? (prefix === '' ? 'client-crl-file' : 'peer-crl-file') : k === 'allowed-cn' ? 'peer-cert-allowed-cn' : k === 'allowed-hostname' ? `${prefix === '' ? 'client' : 'peer'}-cert-allowed-hostname` : `${prefix}${k}`;
        put(name, v);
      }
      continue;
    }
    put(key, raw);
  }
  return values;
}
