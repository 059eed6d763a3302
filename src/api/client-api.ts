/**
 * The client port: etcd's gRPC services and its HTTP endpoints on every
 * --listen-client-urls address (http://, https:// with the client TLS files,
 * unix://), gRPC and HTTP on the same port as etcd's cmux serves them.
 * gRPC limits are etcd's: receive up to --max-request-bytes + 512 KiB, the
 * keepalive policy from the --grpc-keepalive-* flags.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { grpcOverheadBytes } from '../base/index.js';
import { ClientPortServer, GrpcServer, reloadCrlAtConnections, type ClientPortTlsOptions, type ListenTarget } from '../grpc/index.js';
import { etcdserverpb, v3electionpb, v3lockpb } from '../pb/index.js';
import { ConfigError, clientCertRefusal, tlsCiphers, type EtcdServer } from '../server/index.js';
import { authService } from './auth.js';
import { callMetrics } from './call-metrics.js';
import { clusterService } from './cluster.js';
import { electionService } from './election.js';
import { addHealthService } from './health-service.js';
import { Gateway, type GatewayUpstream } from './gateway.js';
import { httpHandler, plainError, type HttpRoute } from './http.js';
import { kvService } from './kv.js';
import { leaseService } from './lease.js';
import { lockService } from './lock.js';
import { maintenanceService } from './maintenance.js';
import { watchService } from './watch.js';

/** The HTTP/2 stream window the client port announces (its connections get twice this). */
const requestWindowBytes = 1024 * 1024;

export interface ClientApiOptions {
  /** Extra HTTP routes tried before the built-in ones (the /v3 gateway). */
  readonly routes?: HttpRoute[];
}

function listenTarget(url: string): ListenTarget {
  const u = new URL(url);
  if (u.protocol === 'unix:' || u.protocol === 'unixs:') return { path: u.host + u.pathname };
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return { host: host === 'localhost' ? '127.0.0.1' : host, port: Number(u.port) };
}

function ciphersOption(s: EtcdServer): { ciphers?: string } {
  const ciphers = tlsCiphers(s.cfg.cipherSuites);
  return ciphers === undefined ? {} : { ciphers };
}

function clientTls(s: EtcdServer): ClientPortTlsOptions | undefined {
  const t = s.cfg.clientTls;
  if (t.certFile === '' && t.keyFile === '') return undefined;
  const ciphers = ciphersOption(s);
  // As etcd's TLSInfo.ServerConfig: a trusted CA file alone requires client certificates too
  // (whose CN is the user only with --client-cert-auth, call-context.ts).
  const requireCert = t.clientCertAuth || t.trustedCaFile !== '';
  try {
    return {
      cert: readFileSync(t.certFile),
      key: readFileSync(t.keyFile),
      ca: t.trustedCaFile !== '' ? readFileSync(t.trustedCaFile) : undefined,
      clientCertAuth: requireCert,
      minVersion: 'TLSv1.2',
      ...ciphers,
      ...(t.crlFile !== '' ? { crl: readFileSync(t.crlFile), crlFile: t.crlFile } : {}),
      // As Go, a certificate is checked only where one is asked for.
      ...(t.allowedHostname === '' || !requireCert ? {} : { refuseClient: (socket: TLSSocket) => clientCertRefusal({ hostname: t.allowedHostname }, socket) }),
    };
  } catch (e) {
    throw new ConfigError(`cannot read client TLS files: ${(e as Error).message}`);
  }
}

/**
 * A --listen-metrics-urls listener: /metrics and /health only (etcd's
 * HandleMetricsHealth), plain HTTP or, for an https URL, TLS with the client
 * certificate settings.
 */
async function listenMetrics(s: EtcdServer, handle: (req: IncomingMessage, res: ServerResponse) => void, url: string): Promise<{ server: Server; url: string }> {
  const serveOnly = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/metrics' || path === '/health') return handle(req, res);
    plainError(res, 404, '404 page not found');
  };
  const secure = url.startsWith('https:');
  const tls = secure ? clientTls(s) : undefined;
  if (secure && tls === undefined) throw new ConfigError(`TLS key/cert (--cert-file, --key-file) must be provided for metrics url ${url}`);
  let server: Server;
  if (tls === undefined) server = createHttpServer(serveOnly);
  else {
    const context = (crl: Buffer | undefined): SecureContextOptions => ({
      cert: tls.cert, key: tls.key, ca: tls.ca, minVersion: 'TLSv1.2',
      ...(tls.ciphers !== undefined ? { ciphers: tls.ciphers } : {}), ...(crl !== undefined ? { crl } : {}),
    });
    const https = createHttpsServer({ ...context(tls.crl), requestCert: tls.clientCertAuth, rejectUnauthorized: tls.clientCertAuth }, serveOnly);
    // The client port's TLS rules: a CRL changed on disk counts from the next handshake on, a --client-cert-allowed-hostname mismatch is refused.
    if (tls.crlFile !== undefined) reloadCrlAtConnections(https, tls.crlFile, context, s.logger.with({ component: 'metrics' }));
    const refuse = tls.refuseClient;
    if (refuse !== undefined) {
      https.prependListener('secureConnection', (socket: TLSSocket) => {
        const refusal = refuse(socket);
        if (refusal === undefined) return;
        s.logger.warn('rejected client connection', { remote: socket.remoteAddress, reason: refusal });
        socket.destroy();
      });
    }
    server = https;
  }
  const target = listenTarget(url);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in target) server.listen(target.path, done);
    else server.listen(target.port, target.host, done);
  });
  const port = (server.address() as AddressInfo | null)?.port;
  return { server, url: port === undefined ? url : `${new URL(url).protocol}//${hostOf(url)}:${port}` };
}

export class ClientApi {
  private constructor(
    readonly grpc: GrpcServer,
    private readonly ports: ClientPortServer[],
    /** The addresses actually bound, as URLs (port 0 resolved). */
    readonly urls: string[],
    private readonly gateway: Gateway | undefined,
    private readonly metricsServers: Server[],
  ) {}

  static async start(s: EtcdServer, opts: ClientApiOptions = {}): Promise<ClientApi> {
    const grpc = new GrpcServer({
      maxReceiveMessageBytes: s.cfg.maxRequestBytes + grpcOverheadBytes,
      maxConcurrentStreams: s.cfg.maxConcurrentStreams,
      keepaliveMinTimeMs: s.cfg.grpcKeepaliveMinTimeMs,
      keepaliveIntervalMs: s.cfg.grpcKeepaliveIntervalMs,
      keepaliveTimeoutMs: s.cfg.grpcKeepaliveTimeoutMs,
      // etcd registers no decompressor: a gzip request is UNIMPLEMENTED there.
      requestEncodings: ['identity'],
      // A request up to about a mebibyte arrives without waiting for window
      // updates (grpc-go, etcd's server, grows its windows by the same
      // measure, bandwidth-delay estimation). With HTTP/2's 64 KiB a 256 KiB
      // put took eight round trips of window updates: the server's socket
      // writes then carried the client's transmission on loopback, 344 µs
      // of its main thread per put against 150 with these windows.
      streamWindowBytes: requestWindowBytes,
      connectionWindowBytes: 2 * requestWindowBytes,
      logger: s.logger.with({ component: 'grpc' }),
      onCall: callMetrics(s.registry),
    });
    grpc.addService(etcdserverpb.KVService.methods, kvService(s));
    grpc.addService(etcdserverpb.WatchService.methods, watchService(s));
    grpc.addService(etcdserverpb.LeaseService.methods, leaseService(s));
    grpc.addService(etcdserverpb.ClusterService.methods, clusterService(s));
    grpc.addService(etcdserverpb.MaintenanceService.methods, maintenanceService(s));
    grpc.addService(etcdserverpb.AuthService.methods, authService(s));
    grpc.addService(v3lockpb.LockService.methods, lockService(s));
    grpc.addService(v3electionpb.ElectionService.methods, electionService(s));
    addHealthService(grpc);
    const gateway = s.cfg.enableGrpcGateway ? new Gateway(s) : undefined;
    const http = httpHandler(s, [...(opts.routes ?? []), ...(gateway !== undefined ? [gateway.route] : [])]);
    const ports: ClientPortServer[] = [];
    const urls: string[] = [];
    try {
      for (const url of s.cfg.listenClientUrls) {
        const secure = url.startsWith('https:') || url.startsWith('unixs:');
        const tls = secure ? clientTls(s) : undefined;
        if (secure && tls === undefined) throw new ConfigError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${url}`);
        const port = new ClientPortServer({ grpc, http, ...(tls ? { tls } : {}), logger: s.logger.with({ component: 'client-port' }) });
        ports.push(port);
        const bound = await port.listen(listenTarget(url));
        urls.push(typeof bound === 'string' ? url : `${new URL(url).protocol}//${hostOf(url)}:${(bound).port}`);
        s.logger.info('serving client traffic', { address: urls[urls.length - 1] });
      }
    } catch (e) {
      await Promise.all(ports.map((p) => p.close(0)));
      throw e;
    }
    const metricsServers: Server[] = [];
    try {
      for (const url of s.cfg.listenMetricsUrls) {
        const m = await listenMetrics(s, http, url);
        metricsServers.push(m.server);
        s.logger.info('serving metrics', { address: m.url });
      }
    } catch (e) {
      await Promise.all([...ports.map((p) => p.close(0)), ...metricsServers.map(closeServer)]);
      throw e;
    }
    const first = urls[0];
    if (gateway !== undefined && first !== undefined) gateway.setUpstream(gatewayUpstream(s, first));
    return new ClientApi(grpc, ports, urls, gateway, metricsServers);
  }

  async close(graceMs = 1000): Promise<void> {
    this.gateway?.close();
    await Promise.all([...this.ports.map((p) => p.close(graceMs)), ...this.metricsServers.map(closeServer)]);
  }
}

/**
 * The gateway's loopback connection to this member's first client URL. Over
 * TLS it presents the server's own certificate (a listener with
 * --client-cert-auth asks for one) and checks the server's against the
 * trusted CA when there is one.
 */
function gatewayUpstream(s: EtcdServer, url: string): GatewayUpstream {
  const u = new URL(url);
  const secure = u.protocol === 'https:' || u.protocol === 'unixs:';
  const address = u.protocol.startsWith('unix') ? `unix:${u.host}${u.pathname}` : u.host;
  if (!secure) return { address };
  const t = s.cfg.clientTls;
  const ca = t.trustedCaFile !== '' ? readFileSync(t.trustedCaFile) : undefined;
  return { address, tls: { cert: readFileSync(t.certFile), key: readFileSync(t.keyFile), ca, insecureSkipVerify: ca === undefined } };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function hostOf(url: string): string {
  return new URL(url).host.replace(/:\d+$/, '');
}
