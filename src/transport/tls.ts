/**
 * Peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
 * --peer-client-cert-auth, --peer-cert-allowed-cn/-hostname) mapped onto Node's TLS
 * options. TLS 1.2 is the floor; ALPN picks the protocol: "h2" for the HTTP/2
 * session, "etcd-ts-raft" for a raw raft stream (raw-stream.ts).
 */
import type { SecureClientSessionOptions, SecureServerOptions } from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';

export type Pem = string | Uint8Array;

export interface PeerTlsOptions {
  /** This member's certificate (PEM), presented both as server and as client. */
  readonly cert: Pem;
  readonly key: Pem;
  /** Trusted CA bundle (PEM) that peers' certificates must chain to. */
  readonly ca?: Pem;
  /** Server side: ask peers for a client certificate (--peer-client-cert-auth). */
  readonly requestCert?: boolean;
  /** Verify the other side's certificate against `ca` (default true). */
  readonly rejectUnauthorized?: boolean;
  /** Server side: only accept client certificates with this Common Name (--peer-cert-allowed-cn). */
  readonly allowedCn?: string;
  /** Server side: only accept client certificates valid for this hostname (--peer-cert-allowed-hostname). */
  readonly allowedHostname?: string;
  /**
   * Server side: accept a peer's client certificate from any address
   * (--experimental-peer-skip-client-san-verification); by default its
   * SANs must cover the address it connects from.
   */
  readonly skipClientSanVerify?: boolean;
  /** Client side: the name peers' server certificates must carry (--discovery-srv's domain, without a trusted CA). */
  readonly servername?: string;
  /** OpenSSL's cipher list, both sides (--cipher-suites); Node's default when absent. */
  readonly ciphers?: string;
  /** Server side: revoked client certificates (PEM CRL, --peer-crl-file), refused at the handshake. */
  readonly crl?: Pem;
}

function buf(p: Pem): Buffer {
  return typeof p === 'string' ? Buffer.from(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

const minVersion = 'TLSv1.2';

/** handshakeTimeoutMs: a handshake that takes longer is a stalled or hostile client (GHSA-6vch-q96h-7gc3). */
export function serverTlsOptions(t: PeerTlsOptions, handshakeTimeoutMs: number): SecureServerOptions {
  const requestCert = t.requestCert ?? false;
  return {
    cert: buf(t.cert),
    key: buf(t.key),
    ...(t.ca === undefined ? {} : { ca: buf(t.ca) }),
    requestCert,
    rejectUnauthorized: requestCert && (t.rejectUnauthorized ?? true),
    minVersion,
    ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers }),
    ...(t.crl === undefined ? {} : { crl: buf(t.crl) }),
    handshakeTimeout: handshakeTimeoutMs,
    ALPNProtocols: ['h2'],
  };
}

export function clientTlsOptions(t: PeerTlsOptions): SecureClientSessionOptions {
  return {
    cert: buf(t.cert),
    key: buf(t.key),
    ...(t.ca === undefined ? {} : { ca: buf(t.ca) }),
    rejectUnauthorized: t.rejectUnauthorized ?? true,
    minVersion,
    ...(t.servername === undefined ? {} : { servername: t.servername }),
    ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers }),
    ALPNProtocols: ['h2'],
  };
}

/** What a client certificate must name, when anything (--peer-cert-allowed-cn, --*-cert-allowed-hostname). */
export interface AllowedClientNames {
  readonly cn?: string;
  /** A DNS name or IP address the certificate's subject alternative names must cover. */
  readonly hostname?: string;
}

/**
 * The allowed-CN / allowed-hostname check of etcd 3.4 on an accepted
 * connection: the certificate passes when it carries the allowed CN or is
 * valid for the allowed hostname (either, when both are set; as Go, the
 * hostname is matched against the SANs only). undefined when it may
 * proceed, otherwise why it may not.
 */
export function clientCertRefusal(allowed: AllowedClientNames, socket: TLSSocket): string | undefined {
  if (allowed.cn === undefined && allowed.hostname === undefined) return undefined;
  const presented = socket.getPeerCertificate();
  const cn = (presented as { subject?: { CN?: unknown } }).subject?.CN;
  if (allowed.cn !== undefined && cn === allowed.cn) return undefined;
  const raw = (presented as { raw?: Buffer }).raw;
  if (allowed.hostname !== undefined && raw !== undefined) {
    const cert = new X509Certificate(raw);
    const h = allowed.hostname;
    if ((isIP(h) !== 0 ? cert.checkIP(h) : cert.checkHost(h, { subject: 'never' })) !== undefined) return undefined;
  }
  const wanted = [allowed.cn === undefined ? '' : `the allowed CN ${JSON.stringify(allowed.cn)}`, allowed.hostname === undefined ? '' : `valid for ${JSON.stringify(allowed.hostname)}`];
  return `client certificate (CN ${JSON.stringify(cn ?? null)}) is not ${wanted.filter((w) => w !== '').join(' or ')}`;
}

/** The peer listener's allowed names; none unless it asks for client certificates (as Go, which checks only those). */
export function peerAllowedNames(t: PeerTlsOptions): AllowedClientNames {
  if (t.requestCert !== true) return {};
  return { ...(t.allowedCn === undefined ? {} : { cn: t.allowedCn }), ...(t.allowedHostname === undefined ? {} : { hostname: t.allowedHostname }) };
}

/** The names in a certificate's subjectAltName, by kind. */
function subjectAltNames(cert: X509Certificate): { ips: string[]; dns: string[] } {
  const ips: string[] = [];
  const dns: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('IP Address:')) ips.push(entry.slice('IP Address:'.length));
    else if (entry.startsWith('DNS:')) dns.push(entry.slice('DNS:'.length));
  }
  return { ips, dns };
}

/** Go's %q of a []string. */
function goQuoteList(xs: readonly string[]): string {
  return `[${xs.map((x) => JSON.stringify(x)).join(' ')}]`;
}

/**
 * etcd's check of a peer's client certificate against the address the
 * connection comes from: with IP SANs the address must be one of them;
 * with DNS SANs one of the names must resolve to it; a certificate with
 * neither passes. undefined when the connection may proceed, otherwise
 * etcd's reason. A stolen peer certificate is of no use from elsewhere.
 */
export async function clientSanRefusal(socket: TLSSocket, resolve: (name: string) => Promise<readonly string[]> = resolveAll): Promise<string | undefined> {
  const raw = (socket.getPeerCertificate() as { raw?: Buffer }).raw;
  if (raw === undefined) return undefined;
  const cert = new X509Certificate(raw);
  const { ips, dns } = subjectAltNames(cert);
  if (ips.length === 0 && dns.length === 0) return undefined;
  const host = (socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (ips.length > 0) {
    if (cert.checkIP(host) !== undefined) return undefined;
    if (dns.length === 0) return `x509: certificate is valid for ${ips.join(', ')}, not ${host}`;
  }
  const failures: string[] = [];
  for (const name of dns) {
    try {
      if ((await resolve(name)).includes(host)) return undefined;
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  return `tls: ${JSON.stringify(host)} does not match any of DNSNames ${goQuoteList(dns)}${failures.length > 0 ? ` (${failures.join('; ')})` : ''}`;
}

async function resolveAll(name: string): Promise<readonly string[]> {
  return (await lookup(name, { all: true })).map((a) => a.address);
}
