// TLS on the client and peer URLs, with certificates made at test time by
// openssl: etcdctl with --cacert/--cert/--key against client-certificate
// auth, where the certificate's CN is the user (compared with the real etcd,
// the JSON gateway included, which never takes the CN as the user); TLS
// below 1.2 refused; a 3-member cluster whose peers talk TLS with client
// certificates required, and a fourth member joining it at run time;
// --auto-tls certificates made without openssl.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import { after } from 'node:test';
import { GrpcChannel } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { memberChange } from '../ops/kit.js';
import { Member, etcdctl, etcdctlBin, etcdctlMissing, etcdMissing, freePorts, methods, useWorkspace, type Cluster, type MemberTls } from '../harness/index.js';

const openssl = '/usr/bin/openssl';
const ctlTsScript = resolve(import.meta.dirname, '../../src/cmd/etcdctl-ts.js');
const opensslMissing = existsSync(openssl) ? false : `${openssl} is not installed`;

interface Certs {
  readonly dir: string;
  readonly ca: string;
  /** Server (and peer) certificate for 127.0.0.1, usable as a client certificate too. */
  readonly server: { cert: string; key: string };
  readonly user: (cn: string) => { cert: string; key: string };
  /** A client certificate with these subjectAltName entries (e.g. "IP:10.9.9.9"). */
  readonly withSans: (name: string, sans: string) => { cert: string; key: string };
  /** A CRL (PEM) of the CA revoking these certificates; its path. */
  readonly revoking: (name: string, certs: readonly string[]) => string;
}

/** A CA, a server certificate for 127.0.0.1/localhost, and client certificates by CN, in a temp dir. */
function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-tls-'));
  const run = (...args: string[]): void => void execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  const keyPair = (name: string): void => run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  keyPair('ca');
  run('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=etcd-ts test CA', '-days', '2', '-out', 'ca.pem');
  const sign = (name: string, cn: string, ext: string): { cert: string; key: string } => {
    keyPair(name);
    writeFileSync(join(dir, `${name}.ext`), ext);
    // An empty cn: a subject without a CN at all.
    run('req', '-new', '-key', `${name}.key`, '-subj', cn === '' ? '/O=etcd-ts test' : `/CN=${cn}`, '-out', `${name}.csr`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  };
  const server = sign('server', 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    server,
    user: (cn) => sign(`user-${cn}`, cn, 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n'),
    withSans: (name, sans) => sign(name, name, `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n`),
    revoking: (name, revoked) => {
      // openssl ca keeps its revocations in an index: one of its own per CRL.
      const db = `${name}.index`;
      writeFileSync(join(dir, db), '');
      writeFileSync(join(dir, `${name}.crlnumber`), '1000\n');
      writeFileSync(join(dir, `${name}.cnf`), `[ca]\ndefault_ca=d\n[d]\ndatabase=${db}\ncrlnumber=${name}.crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n`);
      for (const c of revoked) run('ca', '-config', `${name}.cnf`, '-keyfile', 'ca.key', '-cert', 'ca.pem', '-revoke', c);
      run('ca', '-config', `${name}.cnf`, '-keyfile', 'ca.key', '-cert', 'ca.pem', '-gencrl', '-out', `${name}.pem`);
      return join(dir, `${name}.pem`);
    },
  };
}

const skip = opensslMissing || etcdMissing() || etcdctlMissing();

describe('TLS', { skip }, () => {
  const ws = useWorkspace('tls');
  let certs: Certs;
  before(() => {
    certs = makeCerts();
  });
  after(() => rmSync(certs.dir, { recursive: true, force: true }));

  const clientTlsFlags = (): string[] => ['--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca, '--client-cert-auth'];
  const harnessTls = (): MemberTls => ({ client: true, ca: readFileSync(certs.ca), cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) });

  test('client-certificate auth: the CN is the user for etcdctl, never for the gateway; the same answers as etcd', async () => {
    const root = certs.user('root');
    const alice = certs.user('alice');
    const stranger = certs.user('stranger');
    const noCn = certs.user('');
    const session = async (c: Cluster): Promise<string[]> => {
      const as = (u: { cert: string; key: string }): string[] => ['--cacert', certs.ca, '--cert', u.cert, '--key', u.key];
      const out: string[] = [];
      const step = async (args: string[]): Promise<void> => {
        const r = await etcdctl(args, { endpoints: c.endpoints.map((e) => `https://${e}`) });
        out.push(`$ ${args.filter((a) => !a.startsWith(certs.dir)).join(' ')}\n${r.stdout}${r.stderr.replace(/"ts":"[^"]+"/g, '').replace(/"target":"[^"]+"/g, '')}[exit ${String(r.code)}]`);
      };
      await step([...as(root), 'user', 'add', 'root', '--no-password']);
      await step([...as(root), 'user', 'add', 'alice', '--no-password']);
      await step([...as(root), 'role', 'add', 'r']);
      await step([...as(root), 'role', 'grant-permission', 'r', 'readwrite', '--prefix=true', 'a/']);
      await step([...as(root), 'user', 'grant-role', 'alice', 'r']);
      await step([...as(root), 'auth', 'enable']);
      await step([...as(alice), 'put', 'a/1', 'one']);
      await step([...as(alice), 'get', 'a/1']);
      await step([...as(alice), 'put', 'b', 'no']);
      await step([...as(stranger), 'get', 'a/1']);
      // No CN: the user "", who has no grant (permission denied), and no name for admin calls.
      await step([...as(noCn), 'put', 'a/1', 'x']);
      await step([...as(noCn), 'user', 'list']);
      await step([...as(root), 'user', 'list']);
      // Through the gateway the certificate is the gateway's concern only: no token, no user.
      out.push(`gateway: ${await gatewayRange(c, alice)}`);
      await step([...as(root), 'auth', 'disable']);
      out.push(`gateway after auth disable: ${await gatewayRange(c, alice)}`);
      return out;
    };
    const [theirs, ours] = await Promise.all([
      ws.startCluster({ kind: 'etcd', extraFlags: clientTlsFlags(), tls: harnessTls() }),
      ws.startCluster({ kind: 'etcd-ts', extraFlags: clientTlsFlags(), tls: harnessTls() }),
    ]);
    const expected = await session(theirs);
    const actual = await session(ours);
    for (let i = 0; i < expected.length; i++) assert.equal(maskIds(actual[i]), maskIds(expected[i]));

    // No certificate: the handshake fails, nothing is served.
    const bare = await etcdctl(['--cacert', certs.ca, 'get', 'a/1', '--command-timeout=3s', '--dial-timeout=2s'], { endpoints: ours.endpoints.map((e) => `https://${e}`) });
    assert.notEqual(bare.code, 0);
    assert.equal(bare.stdout, '');
    // TLS 1.1 is refused at the handshake.
    const [host, port] = (ours.member(0).endpoint.split(':') as [string, string]);
    const oldTls = await new Promise<string>((resolve) => {
      const sock = tls.connect({ host, port: Number(port), ca: readFileSync(certs.ca), maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => resolve('connected'));
      sock.on('error', (e) => resolve(e.message));
    });
    assert.notEqual(oldTls, 'connected');
  });

  test('three members with peer TLS and peer client-certificate auth form a cluster and replicate', async () => {
    const peerFlags = ['--peer-cert-file', certs.server.cert, '--peer-key-file', certs.server.key, '--peer-trusted-ca-file', certs.ca, '--peer-client-cert-auth'];
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, extraFlags: peerFlags, tls: { peer: true } });
    const put = await etcdctl(['put', 'k', 'over tls'], { endpoints: [c.member(0).endpoint] });
    assert.equal(put.stdout, 'OK\n');
    for (let i = 1; i < 3; i++) {
      const get = await etcdctl(['get', 'k', '--print-value-only'], { endpoints: [c.member(i).endpoint] });
      assert.equal(get.stdout, 'over tls\n');
    }
    const list = await etcdctl(['member', 'list'], { endpoints: [c.member(0).endpoint] });
    assert.equal(list.stdout.split('\n').filter((l) => l.includes('https://127.0.0.1:')).length, 3, list.stdout);

    // A fourth member joins at run time: it learns the cluster from its https peers, with its client certificate.
    const [clientPort, peerPort] = await freePorts(2);
    const peerUrl = `https://127.0.0.1:${peerPort ?? 0}`;
    // A member added within 5 s of the cluster's start is refused as unhealthy (etcd's strict reconfiguration): retried.
    const add = await memberChange(['member', 'add', 'm4', `--peer-urls=${peerUrl}`], [c.member(0).endpoint]);
    assert.equal(add.code, 0, add.stderr);
    const m4 = new Member({
      kind: 'etcd-ts',
      name: 'm4',
      dataDir: join(c.dir, 'm4.etcd'),
      clientPort: clientPort ?? 0,
      peerPort: peerPort ?? 0,
      initialCluster: [...c.members.map((m) => `${m.name}=${m.peerUrl}`), `m4=${peerUrl}`].join(','),
      initialClusterState: 'existing',
      clusterToken: c.member(0).spec.clusterToken,
      extraFlags: peerFlags,
      logFile: join(c.dir, 'm4.log'),
      tls: { peer: true },
    });
    try {
      await m4.start({ timeoutMs: 30_000 });
      const got = await etcdctl(['get', 'k', '--print-value-only'], { endpoints: [m4.endpoint] });
      assert.equal(got.stdout, 'over tls\n');
      const list4 = await etcdctl(['member', 'list'], { endpoints: [m4.endpoint] });
      assert.match(list4.stdout, new RegExp(`, started, m4, ${peerUrl}, `), list4.stdout);
    } finally {
      await m4.kill();
    }
  });

  test('--auto-tls and --peer-auto-tls: self-signed certificates under fixtures/, three members over them', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', size: 3, extraFlags: ['--auto-tls', '--peer-auto-tls'], tls: { client: true, peer: true } });
    for (const kind of ['client', 'peer']) {
      const pem = readFileSync(join(c.member(0).dataDir, 'fixtures', kind, 'cert.pem'));
      const x = new X509Certificate(pem);
      assert.equal(x.verify(x.publicKey), true, `${kind} certificate is not self-signed`);
      assert.equal(x.subjectAltName, 'IP Address:127.0.0.1');
      assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
    }
    const ch = new GrpcChannel({ address: c.member(1).endpoint, tls: { insecureSkipVerify: true }, connectTimeoutMs: 5_000 });
    try {
      await ch.unary(methods.kv.Put, etcdserverpb.PutRequest.create({ key: Buffer.from('auto'), value: Buffer.from('tls') }), { timeoutMs: 10_000 });
      const got = await ch.unary(methods.kv.Range, etcdserverpb.RangeRequest.create({ key: Buffer.from('auto') }), { timeoutMs: 10_000 });
      assert.equal(Buffer.from(got.kvs[0]?.value ?? []).toString(), 'tls');
    } finally {
      ch.close();
    }
  });

  test('--cipher-suites: TLS 1.2 offers only the suites named, on client and peer URLs; TLS 1.3 is untouched; as etcd', async () => {
    const suites = ['--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305'];
    const peerFlags = ['--peer-cert-file', certs.server.cert, '--peer-key-file', certs.server.key, '--peer-trusted-ca-file', certs.ca];
    const ca = readFileSync(certs.ca);
    // What a handshake offering one suite (or TLS 1.3) gets: the suite the server picked, or "refused".
    const handshake = (url: string, offer: { ciphers?: string; minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion }): Promise<string> => {
      const u = new URL(url);
      return new Promise((resolve) => {
        const sock = tls.connect(
          { host: u.hostname, port: Number(u.port), ca, cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key), ALPNProtocols: ['h2'], ...offer },
          () => {
            resolve(`${sock.getProtocol() ?? '?'} ${sock.getCipher().standardName}`);
            sock.destroy();
          },
        );
        sock.setTimeout(10_000, () => sock.destroy(new Error('timeout')));
        sock.on('error', () => resolve('refused'));
      });
    };
    const probe = async (c: Cluster): Promise<string[]> => {
      const out: string[] = [];
      for (const url of [c.member(0).clientUrl, c.member(0).peerUrl]) {
        out.push(await handshake(url, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }));
        out.push(await handshake(url, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }));
        out.push(await handshake(url, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }));
        // Which TLS 1.3 suite each side prefers differs (Go's choice, OpenSSL's): the version is what counts.
        out.push((await handshake(url, { minVersion: 'TLSv1.3' })).split(' ')[0] ?? '');
      }
      return out;
    };
    const flags = [...clientTlsFlags(), ...peerFlags, ...suites];
    const [theirs, ours] = await Promise.all([
      ws.startCluster({ kind: 'etcd', extraFlags: flags, tls: { ...harnessTls(), peer: true } }),
      ws.startCluster({ kind: 'etcd-ts', extraFlags: flags, tls: { ...harnessTls(), peer: true } }),
    ]);
    const expected = await probe(theirs);
    assert.deepEqual(expected.slice(0, 3), ['refused', 'TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLSv1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256']);
    assert.deepEqual(await probe(ours), expected);
    // A name etcd does not know stops the start, with etcd's message.
    await assert.rejects(ws.startCluster({ kind: 'etcd-ts', extraFlags: ['--cipher-suites', 'TLS_NOT_A_SUITE'], readyTimeoutMs: 10_000 }), /unexpected TLS cipher suite "TLS_NOT_A_SUITE"/);
    // A blank entry, or the empty one after a trailing comma, is no suite either (etcd splits the list as it is).
    await assert.rejects(ws.startCluster({ kind: 'etcd-ts', extraFlags: ['--cipher-suites', ' '], readyTimeoutMs: 10_000 }), /unexpected TLS cipher suite " "/);
    await assert.rejects(ws.startCluster({ kind: 'etcd-ts', extraFlags: ['--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,'], readyTimeoutMs: 10_000 }), /unexpected TLS cipher suite ""/);
    // An https client URL whose suites lack HTTP/2's required one does not start (Go's http2.ConfigureServer refuses it in etcd).
    await assert.rejects(
      ws.startCluster({ kind: 'etcd-ts', extraFlags: [...clientTlsFlags(), '--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], tls: harnessTls(), readyTimeoutMs: 10_000 }),
      /http2: TLSConfig.CipherSuites is missing an HTTP\/2-required AES_128_GCM_SHA256 cipher/,
    );
  });

  /** A put through each client (its etcdctl TLS flags besides --cacert), one line each: what it printed and its exit code. */
  const putsAs = async (c: Cluster, clients: readonly (readonly [string, readonly string[]])[]): Promise<string[]> => {
    const out: string[] = [];
    for (const [who, tlsFlags] of clients) {
      const r = await etcdctl(['--cacert', certs.ca, ...tlsFlags, '--dial-timeout=2s', '--command-timeout=3s', 'put', 'k', who], { endpoints: c.endpoints.map((e) => `https://${e}`) });
      out.push(`${who}: ${r.stdout.trim()} [exit ${String(r.code)}]`);
    }
    return out;
  };
  const certFlags = (u: { cert: string; key: string }): string[] => ['--cert', u.cert, '--key', u.key];
  /** etcd and etcd-ts started with the same flags. */
  const bothWith = (flags: string[]): Promise<Cluster[]> =>
    Promise.all([ws.startCluster({ kind: 'etcd', extraFlags: flags, tls: harnessTls() }), ws.startCluster({ kind: 'etcd-ts', extraFlags: flags, tls: harnessTls() })]);

  test('etcdctl-ts over TLS: commands that wait for the connection work; bad certificate flags stop as etcdctl does', async () => {
    const c = await ws.startCluster({ kind: 'etcd-ts', extraFlags: clientTlsFlags(), tls: harnessTls() });
    const root = certs.user('root');
    const alice = certs.user('alice');
    const run = (tool: 'etcdctl' | 'etcdctl-ts', args: readonly string[]): { code: number; out: string } => {
      const [file, pre] = tool === 'etcdctl' ? [etcdctlBin, []] : [process.execPath, [ctlTsScript]];
      const r = spawnSync(file, [...pre, `--endpoints=https://${c.member(0).endpoint}`, '--dial-timeout=2s', '--command-timeout=3s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 });
      return { code: r.status ?? -1, out: `${r.stdout.toString()}${r.stderr.toString()}` };
    };
    const good = ['--cacert', certs.ca, ...certFlags(root)];
    for (const args of [['user', 'list'], ['role', 'list'], ['lease', 'list'], ['lock', 'l', 'echo', 'held']]) {
      assert.deepEqual(run('etcdctl-ts', [...good, ...args]), run('etcdctl', [...good, ...args]), args.join(' '));
    }
    for (const flags of [['--cert', root.cert, '--key', alice.key], ['--cert', root.cert], ['--key', root.key], ['--cacert', root.key]]) {
      const theirs = run('etcdctl', [...flags, 'get', 'k']);
      assert.equal(theirs.code, 128, theirs.out);
      assert.deepEqual(run('etcdctl-ts', [...flags, 'get', 'k']), theirs, flags.join(' '));
    }
  });

  test('--client-cert-allowed-hostname: only certificates valid for the name are served; as etcd', async () => {
    const clients = [['named', certFlags(certs.server)], ['unnamed', certFlags(certs.user('root'))]] as const; // SANs: localhost, 127.0.0.1; none at all
    // An https metrics listener too, which takes the client port's TLS rules.
    const metricsUrls = (await freePorts(2)).map((p) => `https://127.0.0.1:${p}`);
    const [theirs, ours] = (await Promise.all(
      (['etcd', 'etcd-ts'] as const).map((kind, i) =>
        ws.startCluster({ kind, extraFlags: [...clientTlsFlags(), '--client-cert-allowed-hostname', 'localhost', '--listen-metrics-urls', metricsUrls[i] ?? ''], tls: harnessTls() }),
      ),
    )) as [Cluster, Cluster];
    const expected = await putsAs(theirs, clients);
    assert.deepEqual(expected, ['named: OK [exit 0]', 'unnamed:  [exit 1]']);
    assert.deepEqual(await putsAs(ours, clients), expected);
    const metricsAs = (i: number): Promise<string[]> => Promise.all([certs.server, certs.user('root')].map((u) => metricsHealth(metricsUrls[i] ?? '', u)));
    assert.deepEqual({ etcd: await metricsAs(0), ours: await metricsAs(1) }, { etcd: ['200', 'refused'], ours: ['200', 'refused'] });
  });

  test('--trusted-ca-file without --client-cert-auth requires a client certificate too; as etcd', async () => {
    const clients = [['no certificate', []], ['a certificate', certFlags(certs.user('alice'))]] as const;
    const [theirs, ours] = (await bothWith(['--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca])) as [Cluster, Cluster];
    const expected = await putsAs(theirs, clients);
    assert.deepEqual(expected, ['no certificate:  [exit 1]', 'a certificate: OK [exit 0]']);
    assert.deepEqual(await putsAs(ours, clients), expected);
  });

  test('--client-crl-file: a revoked client certificate is refused at the handshake, others served; a CRL changed on disk counts at once; as etcd', async () => {
    const revokedUser = certs.user('revoked');
    const goodUser = certs.user('good');
    const clients = [['good', certFlags(goodUser)], ['revoked', certFlags(revokedUser)]] as const;
    const crl = join(certs.dir, 'client-crl.pem');
    copyFileSync(certs.revoking('crl-one', [revokedUser.cert]), crl);
    // An https metrics listener too, which takes the client port's TLS rules.
    const metricsUrls = (await freePorts(2)).map((p) => `https://127.0.0.1:${p}`);
    const [theirs, ours] = (await Promise.all(
      (['etcd', 'etcd-ts'] as const).map((kind, i) =>
        ws.startCluster({ kind, extraFlags: [...clientTlsFlags(), '--client-crl-file', crl, '--listen-metrics-urls', metricsUrls[i] ?? ''], tls: harnessTls() }),
      ),
    )) as [Cluster, Cluster];
    const metricsAs = async (i: number): Promise<string[]> =>
      Promise.all([goodUser, revokedUser].map((u) => metricsHealth(metricsUrls[i] ?? '', u)));
    const expected = await putsAs(theirs, clients);
    assert.deepEqual(expected, ['good: OK [exit 0]', 'revoked:  [exit 1]']);
    assert.deepEqual(await putsAs(ours, clients), expected);
    assert.deepEqual({ etcd: await metricsAs(0), ours: await metricsAs(1) }, { etcd: ['200', 'refused'], ours: ['200', 'refused'] });
    // Revoking the other one too, in place: etcd reads the file at each connection.
    copyFileSync(certs.revoking('crl-two', [revokedUser.cert, goodUser.cert]), crl);
    const after = ['good:  [exit 1]', 'revoked:  [exit 1]'];
    assert.deepEqual({ etcd: await putsAs(theirs, clients), ours: await putsAs(ours, clients) }, { etcd: after, ours: after });
    assert.deepEqual({ etcd: await metricsAs(0), ours: await metricsAs(1) }, { etcd: ['refused', 'refused'], ours: ['refused', 'refused'] });
  });

  test("a peer's client certificate must cover the address it connects from, unless --experimental-peer-skip-client-san-verification; as etcd", async () => {
    const peerFlags = ['--peer-cert-file', certs.server.cert, '--peer-key-file', certs.server.key, '--peer-trusted-ca-file', certs.ca, '--peer-client-cert-auth'];
    const presented = {
      'IP 127.0.0.1': certs.server,
      'IP 10.9.9.9': certs.withSans('elsewhere', 'IP:10.9.9.9'),
      'DNS localhost': certs.withSans('by-name', 'DNS:localhost'),
      'DNS nowhere.invalid': certs.withSans('by-bad-name', 'DNS:nowhere.invalid'),
      'no SAN': certs.user('plain'),
    };
    // Served: the server answers the first bytes of its peer protocol (etcd's peers speak HTTP/1.1,
    // and close a connection that negotiated h2; etcd-ts's speak h2); refused: the connection is closed.
    const preface = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
    const http1 = Buffer.from('GET /version HTTP/1.1\r\nHost: peer\r\n\r\n');
    const admitted = (peerUrl: string, client: { cert: string; key: string }, alpn: string): Promise<string> => {
      const u = new URL(peerUrl);
      return new Promise((resolve) => {
        const opts = { host: u.hostname, port: Number(u.port), ca: readFileSync(certs.ca), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: [alpn] };
        const sock = tls.connect(opts, () => sock.write(sock.alpnProtocol === 'h2' ? preface : http1));
        const done = (what: string): void => {
          resolve(what);
          sock.destroy();
        };
        sock.once('data', () => done('served'));
        sock.once('close', () => done('refused'));
        sock.on('error', () => undefined);
        sock.setTimeout(5_000, () => done('timeout'));
      });
    };
    const probe = async (c: Cluster, alpn: string): Promise<string[]> => {
      const out: string[] = [];
      for (const [what, cert] of Object.entries(presented)) out.push(`${what}: ${await admitted(c.member(0).peerUrl, cert, alpn)}`);
      return out;
    };
    for (const skipSan of [false, true]) {
      const flags = [...peerFlags, ...(skipSan ? ['--experimental-peer-skip-client-san-verification'] : [])];
      const [theirs, ours] = await Promise.all([
        ws.startCluster({ kind: 'etcd', extraFlags: flags, tls: { peer: true } }),
        ws.startCluster({ kind: 'etcd-ts', extraFlags: flags, tls: { peer: true } }),
      ]);
      const expected = await probe(theirs, 'http/1.1');
      assert.equal(expected.filter((e) => e.endsWith('refused')).length, skipSan ? 0 : 2, expected.join('\n'));
      assert.deepEqual(await probe(ours, 'h2'), expected);
      await Promise.all([theirs.stop(), ours.stop()]);
    }
  });

  test('https peer URLs without a peer certificate refuse to start', async () => {
    await assert.rejects(ws.startCluster({ kind: 'etcd-ts', tls: { peer: true }, readyTimeoutMs: 10_000 }), /exited \(code 1\)/);
  });
});

function maskIds(s: string | undefined): string {
  return (s ?? '').replace(/"(cluster_id|member_id)":"\d+"/g, '"$1":"X"');
}

/** GET /health on an https metrics listener with the user's certificate: the status code, or "refused" when the handshake fails. */
function metricsHealth(url: string, user: { cert: string; key: string }): Promise<string> {
  const u = new URL(url);
  const ca = readFileSync(join(user.cert, '..', 'ca.pem'));
  return new Promise((resolve) => {
    const req = https.request({ host: u.hostname, port: Number(u.port), path: '/health', ca, cert: readFileSync(user.cert), key: readFileSync(user.key), agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('error', () => resolve('refused'));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** A Range through the JSON gateway over https, presenting the user's certificate. */
function gatewayRange(c: Cluster, user: { cert: string; key: string }): Promise<string> {
  const [host, port] = c.member(0).endpoint.split(':') as [string, string];
  const ca = readFileSync(join(user.cert, '..', 'ca.pem'));
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host, port: Number(port), path: '/v3/kv/range', method: 'POST', ca, cert: readFileSync(user.cert), key: readFileSync(user.key), agent: false, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(`${String(res.statusCode)} ${body.replace(/"(cluster_id|member_id)":"\d+"/g, '"$1":"X"')}`));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ key: Buffer.from('a/1').toString('base64') }));
  });
}
