/**
 * Peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
 * --peer-client-cert-auth, --peer-cert-allowed-cn) mapped onto Node's TLS
 * options. TLS 1.2 is the floor; ALPN picks the protocol: "h2" for the HTTP/2
 * session, "etcd-ts-raft" for a raw raft stream (raw-stream.ts).
 */
import type { SecureClientSessionOptions, SecureServerOptions } from 'node:http2';
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
  /** OpenSSL's cipher list, both sides (--cipher-suites); Node's default when absent. */
  readonly ciphers?: string;
}

function buf(p: Pem): Buffer {
  return typeof p === 'string' ? Buffer.from(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

const minVersion = 'TLSv1.2';
/** A handshake that takes longer is a stalled or hostile client (GHSA-6vch-q96h-7gc3). */
const handshakeTimeoutMs = 10_000;

export function serverTlsOptions(t: PeerTlsOptions): SecureServerOptions {
  const requestCert = t.requestCert ?? false;
  return {
    cert: buf(t.cert),
    key: buf(t.key),
    ...(t.ca === undefined ? {} : { ca: buf(t.ca) }),
    requestCert,
    rejectUnauthorized: requestCert && (t.rejectUnauthorized ?? true),
    minVersion,
    ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers }),
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
    ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers }),
    ALPNProtocols: ['h2'],
  };
}

/**
 * The --peer-cert-allowed-cn check on an accepted connection: undefined when
 * the connection may proceed, otherwise the reason to drop it.
 */
export function allowedCnRefusal(t: PeerTlsOptions, socket: TLSSocket): string | undefined {
  if (t.allowedCn === undefined) return undefined;
  const cert = socket.getPeerCertificate();
  const cn = (cert as { subject?: { CN?: unknown } }).subject?.CN;
  if (cn === t.allowedCn) return undefined;
  return `client certificate CN ${JSON.stringify(cn ?? null)} is not the allowed CN ${JSON.stringify(t.allowedCn)}`;
}
