/**
 * The member's TLS material from its flags: the peer transport's options
 * (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
 * --peer-client-cert-auth, --peer-cert-allowed-cn), and the self-signed
 * certificates of --auto-tls / --peer-auto-tls (built here as DER: Node can
 * sign but not issue X.509). A member with https peer URLs and no
 * certificate refuses to start, as etcd does.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_CIPHERS, getCiphers } from 'node:tls';
import type { PeerTlsOptions } from '../transport/index.js';
export { clientCertRefusal } from '../transport/index.js';
import { ConfigError, type ServerConfig, type TlsFiles } from './config.js';

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------- --cipher-suites

/**
 * The names --cipher-suites takes (Go's crypto/tls names, which are IANA's,
 * with Go's older CHACHA20 aliases), each with OpenSSL's name for it. TLS
 * 1.3 suites are accepted and change nothing: Go lets no one restrict
 * them, so TLS 1.3 keeps all of its suites here too.
 */
const cipherSuiteNames: ReadonlyMap<string, string | undefined> = new Map([
  ['TLS_RSA_WITH_RC4_128_SHA', 'RC4-SHA'],
  ['TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'DES-CBC3-SHA'],
  ['TLS_RSA_WITH_AES_128_CBC_SHA', 'AES128-SHA'],
  ['TLS_RSA_WITH_AES_256_CBC_SHA', 'AES256-SHA'],
  ['TLS_RSA_WITH_AES_128_CBC_SHA256', 'AES128-SHA256'],
  ['TLS_RSA_WITH_AES_128_GCM_SHA256', 'AES128-GCM-SHA256'],
  ['TLS_RSA_WITH_AES_256_GCM_SHA384', 'AES256-GCM-SHA384'],
  ['TLS_ECDHE_ECDSA_WITH_RC4_128_SHA', 'ECDHE-ECDSA-RC4-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA', 'ECDHE-ECDSA-AES128-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', 'ECDHE-ECDSA-AES256-SHA'],
  ['TLS_ECDHE_RSA_WITH_RC4_128_SHA', 'ECDHE-RSA-RC4-SHA'],
  ['TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA', 'ECDHE-RSA-DES-CBC3-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', 'ECDHE-RSA-AES128-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA', 'ECDHE-RSA-AES256-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256', 'ECDHE-ECDSA-AES128-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256', 'ECDHE-RSA-AES128-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-RSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
  ['TLS_AES_128_GCM_SHA256', undefined],
  ['TLS_AES_256_GCM_SHA384', undefined],
  ['TLS_CHACHA20_POLY1305_SHA256', undefined],
]);

/** The first name --cipher-suites does not know (etcd: "unexpected TLS cipher suite"), or undefined. */
export function unknownCipherSuite(names: readonly string[]): string | undefined {
  return names.find((n) => !cipherSuiteNames.has(n));
}

/**
 * Node's `ciphers` for --cipher-suites: the TLS 1.2 suites named (those this
 * OpenSSL has; RC4 and 3DES it no longer offers), then every TLS 1.3 suite.
 * undefined when the flag is empty: Node's defaults. A list whose every
 * TLS 1.2 suite is missing here is refused rather than served without one.
 */
export function tlsCiphers(names: readonly string[]): string | undefined {
  if (names.length === 0) return undefined;
  const offered = new Set(getCiphers());
  const tls12: string[] = [];
  const missing: string[] = [];
  for (const n of names) {
    const openssl = cipherSuiteNames.get(n);
    if (openssl === undefined) continue;
    if (offered.has(openssl.toLowerCase())) tls12.push(openssl);
    else missing.push(n);
  }
  if (tls12.length === 0 && missing.length > 0) {
    throw new ConfigError(`none of the TLS cipher suites ${missing.join(',')} is available in OpenSSL ${process.versions.openssl}`);
  }
  const tls13 = DEFAULT_CIPHERS.split(':').filter((c) => c.startsWith('TLS_'));
  return [...new Set(tls12), ...tls13].join(':');
}

function discoveredOverHttps(cfg: ServerConfig): boolean {
  return cfg.discoverySrv !== '' && [...cfg.initialCluster.values()].some((urls) => urls.some((u) => u.startsWith('https:')));
}

/** The peer transport's TLS, or undefined for plain http peer URLs. */
export function peerTransportTls(cfg: ServerConfig): PeerTlsOptions | undefined {
  const t: TlsFiles = cfg.peerTls;
  const secure = [...cfg.listenPeerUrls, ...cfg.initialAdvertisePeerUrls].some((u) => u.startsWith('https:'));
  if (t.certFile === '' && t.keyFile === '') {
    if (secure) throw new ConfigError('TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for https peer URLs');
    return undefined;
  }
  const ciphers = tlsCiphers(cfg.cipherSuites);
  return {
    cert: read(t.certFile, 'peer certificate'),
    key: read(t.keyFile, 'peer key'),
    ...(t.trustedCaFile !== '' ? { ca: read(t.trustedCaFile, 'peer trusted CA') } : {}),
    // As etcd's TLSInfo.ServerConfig: a trusted CA file alone requires client certificates too.
    requestCert: t.clientCertAuth || t.trustedCaFile !== '',
    // Auto-TLS certificates are self-signed: nothing to verify them against (etcd skips verification too).
    ...(t.autoTls && t.trustedCaFile === '' ? { rejectUnauthorized: false } : {}),
    ...(t.allowedCn !== '' ? { allowedCn: t.allowedCn } : {}),
    ...(t.allowedHostname !== '' ? { allowedHostname: t.allowedHostname } : {}),
    // The address check of a peer's certificate comes with --peer-client-cert-auth only, as etcd's listener's.
    ...(t.skipClientSanVerify || !t.clientCertAuth ? { skipClientSanVerify: true } : {}),
    ...(ciphers === undefined ? {} : { ciphers }),
    ...(t.crlFile !== '' ? { crl: read(t.crlFile, 'peer certificate revocation list') } : {}),
    // As etcd: peers found in DNS over https, and no CA of our own to trust, are checked against the domain.
    ...(discoveredOverHttps(cfg) && t.trustedCaFile === '' ? { servername: cfg.discoverySrv } : {}),
  };
}

// ---------------------------------------------------------------- --auto-tls

/** DER: one tag-length-value. */
function der(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...c: Uint8Array[]): Buffer => der(0x30, ...c);

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const v of rest) {
    const groups = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) groups.unshift((x & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
}

function utcTime(d: Date): Buffer {
  const p = (n: number): string => String(n).padStart(2, '0');
  return der(0x17, Buffer.from(`${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [der(0x01, Buffer.from([0xff]))] : []), der(0x04, value));
}

function subjectAltNames(hosts: readonly string[]): Buffer {
  return seq(...hosts.map((h) => (isIP(h) !== 0 ? der(0x87, ipBytes(h)) : der(0x82, Buffer.from(h)))));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const full = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const [head = '', tail = ''] = full.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/**
 * A self-signed ECDSA P-256 certificate for hosts (IPs and names), valid for
 * a year, usable by servers and clients, as etcd's --auto-tls makes: PEM cert
 * and key.
 */
export function selfSignedCert(hosts: readonly string[], now = new Date()): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(der(0x31, seq(oid('2.5.4.10'), der(0x0c, Buffer.from('etcd')))));
  const serial = randomBytes(16);
  // A positive DER INTEGER with no leading zero byte (0x00 before a byte
  // below 0x80 is "illegal padding" to OpenSSL): the first byte is 0x40..0x7f.
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, serial),
    ecdsaSha256,
    name,
    seq(utcTime(new Date(now.getTime() - 60_000)), utcTime(new Date(now.getTime() + 365 * 24 * 3600_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(
      0xa3,
      seq(
        // digitalSignature and keyEncipherment
        extension('2.5.29.15', true, der(0x03, Buffer.from([0x05, 0xa0]))),
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))),
        extension('2.5.29.19', true, seq()),
        extension('2.5.29.17', false, subjectAltNames(hosts)),
      ),
    ),
  );
  const signature = sign('sha256', tbs, privateKey);
  const cert = seq(tbs, ecdsaSha256, der(0x03, Buffer.from([0]), signature));
  const lines = cert.toString('base64').match(/.{1,64}/g) ?? [];
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function hostsOf(urls: readonly string[]): string[] {
  return [...new Set(urls.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, '')))];
}

/** Writes (or reuses) <data-dir>/fixtures/<kind>/{cert,key}.pem and points the TLS files at them. */
function autoCert(t: TlsFiles, dir: string, hosts: readonly string[]): void {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const made = selfSignedCert(hosts);
    writeFileSync(certFile, made.cert, { mode: 0o600 });
    writeFileSync(keyFile, made.key, { mode: 0o600 });
  }
  t.certFile = certFile;
  t.keyFile = keyFile;
}

/**
 * --auto-tls / --peer-auto-tls: when no certificate is given, a self-signed
 * one for the listen URLs' hosts (etcd's fixtures layout). Auto-TLS peers do
 * not verify each other's certificates (nothing could vouch for them), as in
 * etcd; encryption only.
 */
export function prepareAutoTls(cfg: ServerConfig): void {
  if (cfg.clientTls.autoTls && cfg.clientTls.certFile === '' && cfg.clientTls.keyFile === '') {
    autoCert(cfg.clientTls, join(cfg.dataDir, 'fixtures', 'client'), hostsOf(cfg.listenClientUrls));
  }
  if (cfg.peerTls.autoTls && cfg.peerTls.certFile === '' && cfg.peerTls.keyFile === '') {
    autoCert(cfg.peerTls, join(cfg.dataDir, 'fixtures', 'peer'), hostsOf(cfg.listenPeerUrls));
  }
}
