/**
 * The member's TLS material from its flags: the peer transport's options
 * (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
 * --peer-client-cert-auth, --peer-cert-allowed-cn). A member with https peer
 * URLs and no certificate refuses to start, as etcd does.
 */
import { readFileSync } from 'node:fs';
import type { PeerTlsOptions } from '../transport/index.js';
import { ConfigError, type ServerConfig, type TlsFiles } from './config.js';

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** The peer transport's TLS, or undefined for plain http peer URLs. */
export function peerTransportTls(cfg: ServerConfig): PeerTlsOptions | undefined {
  const t: TlsFiles = cfg.peerTls;
  const secure = [...cfg.listenPeerUrls, ...cfg.initialAdvertisePeerUrls].some((u) => u.startsWith('https:'));
  if (t.certFile === '' && t.keyFile === '') {
    if (secure) throw new ConfigError('TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for https peer URLs');
    return undefined;
  }
  return {
    cert: read(t.certFile, 'peer certificate'),
    key: read(t.keyFile, 'peer key'),
    ...(t.trustedCaFile !== '' ? { ca: read(t.trustedCaFile, 'peer trusted CA') } : {}),
    requestCert: t.clientCertAuth,
    ...(t.allowedCn !== '' ? { allowedCn: t.allowedCn } : {}),
  };
}
