#!/usr/bin/env -S node --interrupt-budget=16896 --initial-old-space-size=64
/**
 * etcd-ts: one member, started as etcd is: the same flags, ETCD_* variables
 * and --config-file; bad flags print Go's message and the usage and exit 2;
 * an unusable configuration or data dir exits 1 with etcd's message. SIGINT
 * and SIGTERM stop the member cleanly (everything applied is flushed).
 * With ETCD_TS_FAILPOINTS_FILE set (robustness tests only), SIGUSR2 re-arms
 * the failpoints from that file.
 */
import { getServers, promises as dns } from 'node:dns';
import { existsSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { join } from 'node:path';
import { JsonLogger, Registry, armFailpoints, failpointsFileEnv, goDnsServer, type Logger } from '../base/index.js';
import { ClientApi } from '../api/index.js';
import { ConfigError, EtcdServer, initialClusterFromSrv, isServerError, parseCompactionRetention, prepareAutoTls, serverVersion, unknownCipherSuite, validateConfig, type SrvDns } from '../server/index.js';
import { EnvError, FlagError, flagsFromEnv, flagsHelp, parseFlags, type EnvNote } from './flags.js';
import { configFromValues, etcdFlags, valuesFromConfigFile } from './etcd-flags.js';

const usage = `Usage:

  etcd-ts [flags]
    Start an etcd-ts server.

  etcd-ts --version
    Show the version of etcd-ts.

  etcd-ts -h | --help
    Show the help information about etcd-ts.

  etcd-ts --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.
`;

/** SIGUSR2: the failpoints in the file replace the armed ones; what happened goes to stderr, where the tests look. */
function rearmFailpointsOnSignal(): void {
  const file = process.env[failpointsFileEnv];
  if (file === undefined || file === '') return;
  process.on('SIGUSR2', () => {
    try {
      const text = readFileSync(file, 'utf8').trim();
      armFailpoints(text);
      process.stderr.write(`failpoints: armed ${text === '' ? '(none)' : text} (pid ${process.pid})\n`);
    } catch (e) {
      process.stderr.write(`failpoints: not re-armed from ${file}: ${(e as Error).message}\n`);
    }
  });
}

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/** A configuration that cannot be used, reported as etcd reports it (exit 1); anything else is rethrown. */
function configFailure(e: unknown): never {
  if (e instanceof ConfigError || (e instanceof EnvError && e.verifying)) fail(`error verifying flags, ${e.message}. See 'etcd-ts --help'.`, 1);
  if (e instanceof EnvError) fail(e.message, 1);
  throw e;
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--version') || argv.includes('-version')) {
    process.stdout.write(`etcd Version: ${serverVersion}\netcd-ts (TypeScript ${'on Node.js'} ${process.version})\n`);
    return;
  }
  let values: Map<string, string>;
  let notes: EnvNote[] = [];
  try {
    const parsed = parseFlags(etcdFlags, argv);
    if (parsed.args.length > 0) throw new ConfigError(`'${parsed.args[0] ?? ''}' is not a valid flag`);
    const configFile = parsed.values.get('config-file');
    if (configFile !== undefined && configFile !== '') {
      values = valuesFromConfigFile(configFile);
    } else {
      const env = flagsFromEnv('ETCD_', etcdFlags, parsed.values, process.env);
      values = new Map([...env.used, ...parsed.values]);
      notes = env.notes;
      // etcd drops its default advertised client URL once the listen URLs are set, and then needs one.
      if (values.has('listen-client-urls') && !values.has('advertise-client-urls')) {
        fail(
          "error verifying flags, --advertise-client-urls is required when --listen-client-urls is set explicitly. See 'etcd-ts --help'.\n" +
            'When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.',
          1,
        );
      }
    }
  } catch (e) {
    if (e instanceof FlagError) {
      if (e.message === 'help requested') {
        // As etcd's: the usage lines on stderr, the flags on stdout.
        process.stderr.write(usage);
        process.stdout.write(flagsHelp(etcdFlags));
        return;
      }
      fail(`${e.message}\n${usage}`, 2);
    }
    configFailure(e);
  }
  let cfg: ReturnType<typeof configFromValues>;
  try {
    cfg = configFromValues(values);
  } catch (e) {
    configFailure(e);
  }
  // etcd checks the names before anything else, and fails without "error verifying flags".
  const badSuite = unknownCipherSuite(cfg.cipherSuites);
  if (badSuite !== undefined) fail(`unexpected TLS cipher suite ${JSON.stringify(badSuite)}`, 1);
  // Go's HTTP/2 server refuses a TLS listener whose suites lack the one HTTP/2 requires; etcd's https client listener fails to start.
  const h2Required = ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'];
  if (cfg.cipherSuites.length > 0 && !cfg.cipherSuites.some((s) => h2Required.includes(s)) && cfg.listenClientUrls.some((u) => u.startsWith('https:'))) {
    fail(`http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need at least one of ${h2Required.join(' or ')})`, 1);
  }
  const logger: Logger = new JsonLogger(cfg.logLevel, logWriter(cfg.logOutputs));
  for (const n of notes) logger[n.level](n.msg);
  if (cfg.enablePprof) logger.warn("--enable-pprof: Go's /debug/pprof endpoints have no counterpart here and are not served (node's --cpu-prof and --heap-prof profile etcd-ts)");
  if (cfg.discoverySrv !== '' || cfg.discoverySrvName !== '') await clusterFromDns(cfg, logger);
  try {
    validateConfig(cfg);
  } catch (e) {
    configFailure(e);
  }
  // Once the flags are verified, as etcd says it.
  if (!values.has('data-dir')) logger.warn("'data-dir' was empty; using default", { 'data-dir': cfg.dataDir });
  await serve(cfg, logger);
}

/**
 * --log-outputs as etcd's zap logger takes it: "default" and "stderr" are
 * standard error, "stdout" standard output, anything else a file appended
 * to; every line goes to each of them. journald is not reachable from here:
 * "systemd/journal" is refused rather than dropped.
 */
function logWriter(outputs: readonly string[]): (line: string) => void {
  const targets = new Set((outputs.length === 0 ? ['default'] : outputs).map((o) => (o === 'default' ? 'stderr' : o)));
  const writers = [...targets].map((out): ((line: string) => void) => {
    if (out === 'stderr') return (line) => process.stderr.write(line);
    if (out === 'stdout') return (line) => process.stdout.write(line);
    if (out === 'systemd/journal') fail(`error verifying flags, --log-outputs=systemd/journal is not supported by etcd-ts (log to a file or stderr). See 'etcd-ts --help'.`, 1);
    let fd: number;
    try {
      fd = openSync(out, 'a');
    } catch (e) {
      fail(`error verifying flags, open ${out}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}. See 'etcd-ts --help'.`, 1);
    }
    return (line) => writeSync(fd, line);
  });
  const [only] = writers;
  return writers.length === 1 && only !== undefined ? only : (line) => writers.forEach((w) => w(line));
}

/** Go's resolver, as far as --discovery-srv needs it, over the system's DNS. */
const systemDns: SrvDns = {
  resolveSrv: (name) => dns.resolveSrv(name),
  lookup: async (host) => {
    const all = await dns.lookup(host, { all: true });
    return [...all.filter((a) => a.family === 4), ...all.filter((a) => a.family !== 4)].map((a) => a.address);
  },
  server: () => goDnsServer(getServers()),
};

/**
 * --discovery-srv: a member not yet initialized takes its initial cluster
 * from DNS (a failure stops it, as etcd's "discovery failed"); one that is
 * initialized has its cluster in its data and asks nothing.
 */
async function clusterFromDns(cfg: ReturnType<typeof configFromValues>, logger: Logger): Promise<void> {
  const walDir = cfg.walDir !== '' ? cfg.walDir : join(cfg.dataDir, 'member', 'wal');
  const initialized = existsSync(walDir) && readdirSync(walDir).some((f) => f.endsWith('.wal'));
  if (initialized) {
    cfg.initialCluster = new Map([[cfg.name, cfg.initialAdvertisePeerUrls]]);
    return;
  }
  try {
    cfg.initialCluster = await initialClusterFromSrv(systemDns, cfg.name, cfg.discoverySrv, cfg.discoverySrvName, cfg.initialAdvertisePeerUrls);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    logger.warn('failed to resolve during SRV discovery', { error: e.message });
    fail(`error setting up initial cluster: ${e.message}`, 1);
  }
  for (const [n, urls] of cfg.initialCluster) logger.info('got bootstrap from DNS for etcd-server', { node: `${n}=${urls.join(',')}` });
}

/** Go's words for the bind errors a listen can meet. */
const bindErrors: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'cannot assign requested address',
};

/** Binds host:port and lets it go; the error code if that failed. */
function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'EINVAL'));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

/**
 * etcd opens its listeners before it writes anything: a port in use stops it
 * with Go's "listen tcp HOST:PORT: bind: ..." and an untouched data dir.
 * etcd-ts listens once its member has started, so it tries each TCP address
 * first, peers then clients as etcd opens them (a name other than localhost
 * is left to the listen itself).
 */
async function checkListenAddresses(cfg: ReturnType<typeof configFromValues>): Promise<void> {
  for (const raw of [...cfg.listenPeerUrls, ...cfg.listenClientUrls]) {
    const u = URL.canParse(raw) ? new URL(raw) : undefined;
    if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.port === '') continue;
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (host !== 'localhost' && isIP(host) === 0) continue;
    const code = await tryListen(host, Number(u.port));
    const words = code === undefined ? undefined : bindErrors[code];
    // Go resolves localhost before it binds, and names the address it tried.
    if (words !== undefined) fail(`listen tcp ${host === 'localhost' ? `127.0.0.1:${u.port}` : u.host}: bind: ${words}`, 1);
  }
}

/** etcd's start-up failures before it opens a port, without "error verifying flags": logged, then said on their own. */
function startFailure(logger: Logger, message: string): never {
  logger.error(message);
  fail(message, 1);
}

async function serve(cfg: ReturnType<typeof configFromValues>, logger: Logger): Promise<void> {
  // etcd lists the data dir first, to tell a member's from a proxy's: one it cannot list (a file) stops it.
  try {
    readdirSync(cfg.dataDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') startFailure(logger, `error listing data dir: ${cfg.dataDir}`);
  }
  await checkListenAddresses(cfg);
  try {
    parseCompactionRetention(cfg.autoCompactionMode, cfg.autoCompactionRetention);
  } catch (e) {
    if (e instanceof ConfigError) startFailure(logger, e.message);
    throw e;
  }
  logger.info('starting etcd-ts', { version: serverVersion, 'data-dir': cfg.dataDir, name: cfg.name, node: process.version });
  const registry = new Registry();
  let server: EtcdServer;
  try {
    prepareAutoTls(cfg);
    server = await EtcdServer.start({ config: cfg, logger, registry });
  } catch (e) {
    if (e instanceof ConfigError) startFailure(logger, e.message);
    throw e;
  }
  // Set once the member is ready; the handlers below may run before that.
  let api: ClientApi | undefined = undefined;
  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('received signal; shutting down', { signal });
    await api?.close();
    await server.transferLeadership();
    await server.stop();
    // etcd re-raises the signal once it has shut down, so supervisors see "killed by SIGTERM".
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  server.onDone((err) => {
    if (stopping) return;
    logger.error('member stopped', { error: err?.message ?? 'stopped' });
    // A member removed from the cluster has done its job: etcd exits 0 then.
    const code = err === undefined || isServerError(err, 'IDRemoved') ? 0 : 1;
    void (api?.close() ?? Promise.resolve()).then(() => process.exit(code));
  });
  // As etcd, no client is served before the member has caught up with what
  // it served before a restart: an entry of its own, proposed now, applied.
  try {
    await server.whenReady();
  } catch {
    return; // stopped first: onDone exits
  }
  api = await ClientApi.start(server);
  logger.info('ready to serve client requests', { urls: api.urls });
}

rearmFailpointsOnSignal();
main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`etcd-ts: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
