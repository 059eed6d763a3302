import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { selfSignedCert } from './tls.js';

test('--auto-tls certificates always load: the random serial is a valid DER INTEGER (1 in 256 had an illegal leading zero)', () => {
  for (let i = 0; i < 1000; i++) {
    const { cert, key } = selfSignedCert(['127.0.0.1']);
    assert.doesNotThrow(() => createSecureContext({ cert, key }), `certificate ${i}`);
    const x = new X509Certificate(cert);
    assert.match(x.serialNumber, /^[4-7][0-9A-F]{31}$/);
  }
});
