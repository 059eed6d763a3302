/**
 * --discovery-srv: the initial cluster from DNS SRV records, as etcd 3.4.23
 * builds it. The records are _etcd-server-ssl._tcp.<domain> (with
 * "-<name>" after the service for --discovery-srv-name), each target:port
 * an https peer URL. The record whose address is one of this member's
 * advertised peer URLs (both resolved to IP:port) takes the member's name;
 * the others are named 0, 1, ... etcd 3.4.23 also asks for _etcd-server
 * (http) records but keeps nothing of that answer, so http peers cannot be
 * found this way there, nor here.
 */
import { isIP } from 'node:net';
import { goLookupError, lookupSrv, srvService, type SrvRecord, type SrvResolver } from '../base/index.js';
import { ConfigError } from './config.js';

export interface SrvDns extends SrvResolver {
  /** The host's addresses, IPv4 first (Go's ResolveTCPAddr takes the first). */
  lookup(host: string): Promise<readonly string[]>;
}

async function tcpAddr(dns: SrvDns, host: string, port: string): Promise<string> {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  const ips = isIP(bare) !== 0 ? [bare] : await dns.lookup(bare);
  const ip = ips[0];
  if (ip === undefined) throw Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' });
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The initial cluster --discovery-srv finds: name -> peer URLs. Throws etcd's messages. */
export async function initialClusterFromSrv(dns: SrvDns, name: string, domain: string, serviceName: string, advertisePeerUrls: readonly string[]): Promise<Map<string, string[]>> {
  const service = srvService('etcd-server', serviceName, 'https');
  const own = new Map<string, URL>();
  for (const raw of advertisePeerUrls) {
    const u = new URL(raw);
    try {
      own.set(await tcpAddr(dns, u.hostname, u.port), u);
    } catch (e) {
      throw new ConfigError(goLookupError(u.hostname, dns.server(), e));
    }
  }
  let records: readonly SrvRecord[];
  try {
    records = await lookupSrv(dns, service, domain);
  } catch (e) {
    throw new ConfigError(`error querying DNS SRV records for _${service} ${goLookupError(`_${service}._tcp.${domain}`, dns.server(), e)}`);
  }
  const cluster = new Map<string, string[]>();
  let unnamed = 0;
  let lastError: string | undefined;
  for (const r of records) {
    const host = r.name.replace(/\.$/, '');
    const url = `https://${host.includes(':') ? `[${host}]` : host}:${r.port}`;
    let addr: string;
    try {
      addr = await tcpAddr(dns, host, String(r.port));
    } catch (e) {
      lastError = goLookupError(host, dns.server(), e);
      continue;
    }
    const mine = own.get(addr);
    if (mine !== undefined && mine.protocol !== 'https:') {
      lastError = `bootstrap at ${url} from DNS for ${service} has scheme mismatch with expected peer ${mine.href.replace(/\/$/, '')}`;
      continue;
    }
    const n = mine !== undefined ? name : String(unnamed++);
    cluster.set(n, [...(cluster.get(n) ?? []), url]);
  }
  if (cluster.size === 0 && lastError !== undefined) throw new ConfigError(`error querying DNS SRV records for _${service} ${lastError}`);
  if (!cluster.has(name)) throw new ConfigError(`cannot find local etcd member ${JSON.stringify(name)} in SRV records`);
  return cluster;
}
