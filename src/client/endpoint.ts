/**
 * Endpoint strings as etcd's client accepts them: "host:port", "http://host:port",
 * "https://host:port", "unix://path", "unixs://path". The scheme decides TLS:
 * http/unix never, https/unixs always, none means "as the client is configured".
 */
import { clientFailure } from './errors.js';

export type EndpointScheme = '' | 'http' | 'https' | 'unix' | 'unixs';

export interface ParsedEndpoint {
  /** The string the caller gave. */
  readonly raw: string;
  readonly scheme: EndpointScheme;
  /** host:port (or the socket path for unix schemes), as clientv3's ParseEndpoint yields it. */
  readonly host: string;
  /** What src/grpc dials: "host:port" or "unix:/path". */
  readonly address: string;
}

export function parseEndpoint(raw: string): ParsedEndpoint {
  const sep = raw.indexOf('://');
  if (sep < 0) return { raw, scheme: '', host: raw, address: raw };
  const scheme = raw.slice(0, sep).toLowerCase();
  const rest = raw.slice(sep + 3);
  switch (scheme) {
    case 'http':
    case 'https': {
      // Drop any path: gRPC dials the authority only.
      const slash = rest.indexOf('/');
      const host = slash < 0 ? rest : rest.slice(0, slash);
      // A name from DNS may end in the root's dot ("etcd1.example.com.:2379", as SRV
      // targets do): the same name, dialled and checked against a certificate without it.
      return { raw, scheme, host, address: withDefaultPort(host.replace(/\.(?=:\d+$|$)/, ''), scheme === 'https' ? 443 : 80) };
    }
    case 'unix':
    case 'unixs':
      return { raw, scheme, host: rest, address: `unix:${rest}` };
    default:
      throw clientFailure(`etcdclient: unsupported endpoint scheme ${JSON.stringify(scheme)} in ${JSON.stringify(raw)}`);
  }
}

function withDefaultPort(host: string, port: number): string {
  if (/:\d+$/.test(host) && !/^\[[^\]]*$/.test(host)) return host;
  return `${host}:${port}`;
}

/** Whether a connection to this endpoint uses TLS, given whether the client has TLS configured. */
export function endpointUsesTls(ep: ParsedEndpoint, clientTls: boolean): boolean {
  switch (ep.scheme) {
    case 'http':
    case 'unix':
      return false;
    case 'https':
    case 'unixs':
      return true;
    case '':
      return clientTls;
  }
}
