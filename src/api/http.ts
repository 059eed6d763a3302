/**
 * The HTTP side of the client port (etcd 3.4.23's etcdhttp): GET /health,
 * /version, /metrics, /debug/vars (debug-vars.ts), PUT /config/local/log.
 * /health is {"health":"true"} (200) when there is a leader, no alarm
 * (other than those named by `?exclude=<ALARM>`, repeatable, exact names),
 * and a quorum round trip succeeds within a second; otherwise
 * {"health":"false"} with 503. That round trip is etcd 3.4's v2 quorum GET,
 * which is a raft entry: each /health takes one (endpoint status shows the
 * raft index move), as etcd's does. /livez and /readyz came with etcd 3.5:
 * like every other unknown path they are 404 here, as in 3.4.23.
 * Every request passes etcd's access controller first (--host-whitelist,
 * --cors: AccessController below). The /v3 JSON gateway is gateway.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { LogLevel, Logger, Registry } from '../base/index.js';
import { debugVars, openFilesLimit } from './debug-vars.js';
import { scanGoJson } from './go-json-scan.js';
import { readRequestBody } from './http-body.js';
import { etcdserverpb } from '../pb/index.js';
import { clusterVersionDefault, serverVersion, type EtcdServer } from '../server/index.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

const healthReadTimeoutMs = 1000;

function methodNotAllowed(res: Res, allow = 'GET'): void {
  res.setHeader('Allow', allow);
  plainError(res, 405, 'Method Not Allowed');
}

/** capnslog's level names (and their initials), which etcd 3.4's /config/local/log takes, as our levels. */
const capnslogLevels: Readonly<Record<string, LogLevel>> = {
  CRITICAL: 'error', C: 'error', ERROR: 'error', E: 'error',
  WARNING: 'warn', W: 'warn',
  NOTICE: 'info', N: 'info', INFO: 'info', I: 'info',
  DEBUG: 'debug', D: 'debug', TRACE: 'debug', T: 'debug',
};

/** An etcd httptypes.HTTPError: JSON {"message": ...} with its status. */
function jsonError(res: Res, status: number, message: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ message }));
}

/** PUT /config/local/log {"Level": "DEBUG"}: etcd 3.4's run-time log level (capnslog's names). */
function setLogLevel(s: EtcdServer, req: Req, res: Res): void {
  if (req.method !== 'PUT') return methodNotAllowed(res, 'PUT');
  void readRequestBody(req, logBodyBytesMax, 'truncate').then((raw) => {
    // As Go's json.Decoder into struct{ Level string }: the first value only,
    // null leaves the struct as it is, field names match case-insensitively.
    const text = raw.toString('utf8');
    const scan = scanGoJson(text);
    let level: unknown = '';
    try {
      if (scan.kind !== 'value') throw new Error('not one JSON value');
      const body = JSON.parse(text.slice(0, scan.end)) as unknown;
      if (body !== null) {
        if (typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
        const field = Object.keys(body).find((k) => k.toLowerCase() === 'level');
        if (field !== undefined) level = (body as Record<string, unknown>)[field];
        if (typeof level !== 'string' && level !== null) throw new Error('not a string');
      }
    } catch {
      return jsonError(res, 400, 'Invalid json body');
    }
    const name = typeof level === 'string' ? level : '';
    const ours = capnslogLevels[name.toUpperCase()];
    if (ours === undefined) return jsonError(res, 400, `Invalid log level ${name}`);
    s.logger.setLevel?.(ours);
    s.logger.info('globalLogLevel set', { level: name.toUpperCase() });
    res.statusCode = 204;
    res.end();
  }, () => res.destroy());
}

const logBodyBytesMax = 64 * 1024;

export function plainError(res: Res, status: number, body: string): void {
  // As Go's http.Error: text/plain, nosniff, a trailing newline.
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(`${body}\n`);
}

/** etcd 3.4's health check; alarms whose names are in `excluded` do not count. */
export async function checkHealth(s: EtcdServer, excluded: ReadonlySet<string> = new Set()): Promise<boolean> {
  if (s.alarms.get().some((a) => !excluded.has(etcdserverpb.AlarmType_info.names[a.alarm] ?? ''))) return false;
  if (s.leaderId === 0n) return false;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      s.propose(undefined, { signal: abort.signal }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), healthReadTimeoutMs);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    abort.abort();
  }
}

function registerProcessMetrics(r: Registry): void {
  // In hundredths of a second, as Go's process collector reads it from /proc.
  const started = Math.round((Date.now() / 1000 - process.uptime()) * 100) / 100;
  r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.').collectWith(() => process.memoryUsage.rss());
  r.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.').collectWith(() => started);
  r.counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.').collectWith(() => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  const fdsOpen = (): number => procOr(() => readdirSync('/proc/self/fd').length);
  const fdsMax = openFilesLimit;
  r.gauge('process_virtual_memory_max_bytes', 'Maximum amount of virtual memory available in bytes.').collectWith(() =>
    // "unlimited" is reported as the largest uint64, as the Go collector reports it.
    procOr(() => {
      const v = /^Max address space\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '0';
      return v === 'unlimited' ? 2 ** 64 : Number(v);
    }),
  );
  r.gauge('process_open_fds', 'Number of open file descriptors.').collectWith(fdsOpen);
  r.gauge('process_max_fds', 'Maximum number of open file descriptors.').collectWith(fdsMax);
  r.gauge('os_fd_used', 'The number of used file descriptors.').collectWith(fdsOpen);
  r.gauge('os_fd_limit', 'The file descriptor limit.').collectWith(fdsMax);
  r.gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.').collectWith(() =>
    // /proc/self/stat: vsize is field 23, counted after the ")" that ends the command name.
    procOr(() => Number(readFileSync('/proc/self/stat', 'utf8').split(')')[1]?.trim().split(' ')[20] ?? 0)),
  );
}

/** Serves /metrics, counting scrapes as the Go client's promhttp handler does (which etcd's /metrics is). */
function scrapeHandler(r: Registry): (res: Res) => void {
  const inFlight = r.gauge('promhttp_metric_handler_requests_in_flight', 'Current number of scrapes being served.').labels({});
  const total = r.counter('promhttp_metric_handler_requests_total', 'Total number of scrapes by HTTP status code.', ['code']);
  const ok = total.labels({ code: '200' });
  // Shown from the start, as promhttp shows them.
  total.labels({ code: '500' });
  total.labels({ code: '503' });
  return (res) => {
    inFlight.inc();
    try {
      res.statusCode = 200;
      res.setHeader('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
      res.end(r.render());
    } finally {
      inFlight.dec();
    }
    ok.inc();
  };
}

/**
 * Go's ServeMux path cleaning: "." and ".." resolved, repeated slashes
 * merged, a trailing slash kept. A request whose path changes is redirected.
 */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  const clean = `/${out.join('/')}`;
  return p.endsWith('/') && clean !== '/' ? `${clean}/` : clean;
}

/** Go's http.Redirect with 301: a small HTML body for GET and HEAD only. */
function redirect(req: Req, res: Res, location: string): void {
  res.statusCode = 301;
  res.setHeader('Location', location);
  if (req.method === 'GET' || req.method === 'HEAD') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    const escaped = location.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;');
    res.end(`<a href="${escaped}">Moved Permanently</a>.\n\n`);
    return;
  }
  res.end();
}

/** A /proc reading, or 0 where there is no /proc. */
function procOr(read: () => number): number {
  try {
    return read();
  } catch {
    return 0;
  }
}

/**
 * etcd's access controller, in front of every HTTP request on the client
 * port (not gRPC):
 * - Over plain HTTP, a Host (its name, without the port) not in
 *   --host-whitelist gets 421 with etcd's text about DNS rebinding
 *   (CVE-2018-5702); "*" or an empty list allows every host; TLS
 *   connections are not checked.
 * - CORS: with "*" (the default) or an empty --cors, every answer allows
 *   origin "*"; otherwise an answer allows the request's Origin when it is
 *   one of the --cors URLs, and carries no CORS header when it is not.
 */
class AccessController {
  private readonly hosts: ReadonlySet<string>;
  private readonly origins: ReadonlySet<string>;

  constructor(hostWhitelist: readonly string[], corsOrigins: readonly string[]) {
    this.hosts = new Set(hostWhitelist);
    this.origins = new Set(corsOrigins);
  }

  hostAllowed(host: string): boolean {
    return this.hosts.size === 0 || this.hosts.has('*') || this.hosts.has(host);
  }

  /** The Access-Control-Allow-Origin an answer to this Origin carries, if any. */
  allowedOrigin(origin: string | undefined): string | undefined {
    if (this.origins.size === 0 || this.origins.has('*')) return '*';
    return origin !== undefined && this.origins.has(origin) ? origin : undefined;
  }
}

/** The host name of a request (Go's httputil.GetHostname: the Host without its port). */
function requestHostname(req: Req): string {
  const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '';
  const m = /^(?:\[([^\]]*)\]|([^:]*)):[^:]*$/.exec(host);
  if (m === null) return host;
  return m[1] ?? m[2] ?? host;
}

function misdirected(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}

/** Refuses the request (421) when its host is not whitelisted; else writes its CORS headers. False: answered. */
function admit(ac: AccessController, req: Req, res: Res, logger: Logger): boolean {
  if ((req.socket as Partial<TLSSocket>).encrypted !== true) {
    const host = requestHostname(req);
    if (!ac.hostAllowed(host)) {
      logger.warn('rejecting HTTP request to prevent DNS rebinding attacks', { host });
      plainError(res, 421, misdirected(host));
      return false;
    }
  }
  const origin = ac.allowedOrigin(req.headers.origin);
  if (origin !== undefined) {
    res.setHeader('Access-Control-Allow-Headers', 'accept, content-type, authorization');
    res.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE');
    res.setHeader('Access-Control-Allow-Origin', origin);
  }
  return true;
}

export type HttpRoute = (req: Req, res: Res, path: string) => boolean;

/** The handler for non-gRPC requests on the client port; extra routes (the gateway) are tried first. */
export function httpHandler(s: EtcdServer, extra: HttpRoute[] = []): (req: Req, res: Res) => void {
  registerProcessMetrics(s.registry);
  const healthOk = s.registry.counter('etcd_server_health_success', 'The total number of successful health checks');
  const healthFailed = s.registry.counter('etcd_server_health_failures', 'The total number of failed health checks');
  const scrape = scrapeHandler(s.registry);
  const access = new AccessController(s.cfg.hostWhitelist, s.cfg.corsOrigins);
  return (req, res) => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?', 2);
    if (!admit(access, req, res, s.logger)) return;
    if (req.method === 'OPTIONS') {
      res.statusCode = 200;
      res.end();
      return;
    }
    const canonical = path === '/v3' ? '/v3/' : path.startsWith('/') ? cleanPath(path) : path;
    if (canonical !== path) return redirect(req, res, query === '' ? canonical : `${canonical}?${query}`);
    for (const route of extra) if (route(req, res, path)) return;
    switch (path) {
      case '/health':
        if (req.method !== 'GET') return methodNotAllowed(res);
        void checkHealth(s, new Set(new URLSearchParams(query).getAll('exclude'))).then((ok) => {
          (ok ? healthOk : healthFailed).inc();
          const body = JSON.stringify({ health: ok ? 'true' : 'false' });
          if (!ok) return plainError(res, 503, body);
          res.statusCode = 200;
          // What Go's http server sniffs for the JSON body etcd writes without a type, after the headers
          // it adds itself, in its order: Date, Content-Length, then the sniffed Content-Type.
          res.setHeader('Date', new Date().toUTCString());
          res.setHeader('Content-Length', Buffer.byteLength(body));
          res.setHeader('Content-Type', 'text/plain; charset=utf-8');
          res.end(body);
        });
        return;
      case '/version':
        if (req.method !== 'GET') return methodNotAllowed(res);
        res.statusCode = 200;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ etcdserver: serverVersion, etcdcluster: s.cluster.version === '' ? 'not_decided' : clusterVersionFor(s) }));
        return;
      case '/metrics':
        scrape(res);
        return;
      case '/debug/vars':
        if (req.method !== 'GET') return methodNotAllowed(res);
        res.statusCode = 200;
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(debugVars(s));
        return;
      case '/config/local/log':
        setLogLevel(s, req, res);
        return;
      default:
        plainError(res, 404, '404 page not found');
    }
  };
}

function clusterVersionFor(s: EtcdServer): string {
  return s.cluster.version !== '' ? s.cluster.version : clusterVersionDefault;
}
