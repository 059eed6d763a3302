import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from './config.js';
import { peerTransportTls, selfSignedCert } from './tls.js';

test('--auto-tls certificates always load: the random serial is a valid DER INTEGER (1 in 256 had an illegal leading zero)', () => {
  for (let i = 0; i < 1000; i++) {
    const { cert, key } = selfSignedCert(['127.0.0.1']);
    assert.doesNotThrow(() => createSecureContext({ cert, key }), `certificate ${i}`);
    const x = new X509Certificate(cert);
    assert.match(x.serialNumber, /^[4-7][0-9A-F]{31}$/);
  }
});

test('peers found over https in DNS, with no trusted CA, are checked against the discovery domain (as etcd); otherwise against their URL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-peer-servername-'));
  try {
    const { cert, key } = selfSignedCert(['127.0.0.1']);
    writeFileSync(join(dir, 'cert.pem'), cert);
    writeFileSync(join(dir, 'key.pem'), key);
    const cfg = defaultConfig();
    cfg.peerTls = { ...cfg.peerTls, certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
    cfg.discoverySrv = 'example.com';
    cfg.initialCluster = new Map([['m1', ['https://m1.example.com:2380']]]);
    assert.equal(peerTransportTls(cfg)?.servername, 'example.com');
    cfg.peerTls = { ...cfg.peerTls, trustedCaFile: join(dir, 'cert.pem') };
    assert.equal(peerTransportTls(cfg)?.servername, undefined);
    cfg.peerTls = { ...cfg.peerTls, trustedCaFile: '' };
    cfg.discoverySrv = '';
    assert.equal(peerTransportTls(cfg)?.servername, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
