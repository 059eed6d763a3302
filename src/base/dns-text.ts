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
