/**
 * etcdctl's --discovery-srv: the client endpoints from the DNS SRV records
 * _etcd-client-ssl._tcp.<domain> (https) and _etcd-client._tcp.<domain>
 * (http), with "-<name>" after the service for --discovery-srv-name. Either
 * lookup may fail; both failing is an error worded as Go's resolver words
 * it. Targets keep the root's dot, as Go's resolver returns them.
 */
import { goLookupError, type SrvRecord } from '../base/index.js';

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

/** The endpoints of etcd's srv.GetClient(service, domain, serviceName): https ones first, by priority. */
export async function discoverEndpoints(resolver: SrvResolver, service: string, domain: string, serviceName: string): Promise<string[]> {
  const endpoints: string[] = [];
  const errors: string[] = [];
  for (const scheme of ['https', 'http'] as const) {
    const name = `_${srvService(service, serviceName, scheme)}._tcp.${domain}`;
    try {
      const records = [...(await resolver.resolveSrv(name))].sort((a, b) => a.priority - b.priority);
      for (const r of records) endpoints.push(`${scheme}://${r.name.endsWith('.') ? r.name : `${r.name}.`}:${r.port}`);
    } catch (e) {
      errors.push(goLookupError(name, resolver.server(), e));
    }
  }
  if (errors.length === 2) throw new Error(`dns lookup errors: ${errors[0] ?? ''} and ${errors[1] ?? ''}`);
  return endpoints;
}
