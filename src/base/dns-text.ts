/**
 * DNS SRV answers and Go's wording of DNS failures, for the two places that
 * look etcd up in DNS as etcd does (etcdctl's and the server's
 * --discovery-srv): their errors read as Go's resolver writes them.
 */
export interface SrvRecord {
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/** SRV lookups: what both --discovery-srv need of a resolver. */
export interface SrvResolver {
  resolveSrv(name: string): Promise<readonly SrvRecord[]>;
  /** The DNS server asked, as host:port, for the error text. */
  server(): string;
}

/** etcd's GetSRVService: the service with "-ssl" for https and "-<serviceName>" when given. */
export function srvService(service: string, serviceName: string, scheme: 'https' | 'http'): string {
  const s = scheme === 'https' ? `${service}-ssl` : service;
  return serviceName === '' ? s : `${s}-${serviceName}`;
}

/** The records of _<service>._tcp.<domain>, lowest priority value first (Go's order, less its shuffle by weight). */
export async function lookupSrv(resolver: SrvResolver, service: string, domain: string): Promise<SrvRecord[]> {
  return [...(await resolver.resolveSrv(`_${service}._tcp.${domain}`))].sort((a, b) => a.priority - b.priority);
}

/** Go's net.DNSError text for a failed lookup of name (err: a node:dns error). */
export function goLookupError(name: string, server: string, err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const why =
    code === 'ENOTFOUND' || code === 'ENODATA'
      ? 'no such host'
      : code === 'ETIMEOUT'
        ? 'i/o timeout'
        : code === 'ESERVFAIL' || code === 'EREFUSED'
          ? 'server misbehaving'
          : (err as Error).message;
  return `lookup ${name} on ${server}: ${why}`;
}

/** The first DNS server as Go names it, host:port ("10.0.0.2:53"), from node:dns's getServers(). */
export function goDnsServer(servers: readonly string[]): string {
  const first = servers[0] ?? '127.0.0.1';
  if (/^\[.*\]:\d+$/.test(first) || /^[^:]+:\d+$/.test(first)) return first;
  return first.includes(':') ? `[${first}]:53` : `${first}:53`;
}
