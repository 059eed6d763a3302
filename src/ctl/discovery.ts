/**
 * etcdctl's --discovery-srv: the client endpoints from the DNS SRV records
 * _etcd-client-ssl._tcp.<domain> (https) and _etcd-client._tcp.<domain>
 * (http), with "-<name>" after the service for --discovery-srv-name. Either
 * lookup may fail; both failing is an error worded as Go's resolver words
 * it. Targets keep the root's dot, as Go's resolver returns them.
 */
import { goLookupError, lookupSrv, srvService, type SrvResolver } from '../base/index.js';

/** The endpoints of etcd's srv.GetClient(service, domain, serviceName): https ones first, by priority. */
export async function discoverEndpoints(resolver: SrvResolver, service: string, domain: string, serviceName: string): Promise<string[]> {
  const endpoints: string[] = [];
  const errors: string[] = [];
  for (const scheme of ['https', 'http'] as const) {
    const srv = srvService(service, serviceName, scheme);
    try {
      for (const r of await lookupSrv(resolver, srv, domain)) endpoints.push(`${scheme}://${r.name.endsWith('.') ? r.name : `${r.name}.`}:${r.port}`);
    } catch (e) {
      errors.push(goLookupError(`_${srv}._tcp.${domain}`, resolver.server(), e));
    }
  }
  if (errors.length === 2) throw new Error(`dns lookup errors: ${errors[0] ?? ''} and ${errors[1] ?? ''}`);
  return endpoints;
}
