// Flags parse as Go's flag package and etcd's flag set do; errors carry Go's text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EnvError, FlagError, flagsFromEnv, parseDurationMs, parseFlags } from './flags.js';
import { nodeFlags } from './node-flags.js';
import { configFromValues, etcdFlags } from './etcd-flags.js';

function parse(argv: string[]): Map<string, string> {
  return parseFlags(etcdFlags, argv).values;
}

test('Go flag syntax: one or two dashes, = or a separate value, bare booleans', () => {
  const v = parse(['-name', 'n1', '--data-dir=/tmp/d', '--pre-vote', '--strict-reconfig-check=false', 'rest']);
  assert.equal(v.get('name'), 'n1');
  assert.equal(v.get('data-dir'), '/tmp/d');
  assert.equal(v.get('pre-vote'), 'true');
  assert.equal(v.get('strict-reconfig-check'), 'false');
  assert.deepEqual(parseFlags(etcdFlags, ['--name', 'x', 'a', '--b']).args, ['a', '--b']);
});

test("errors use Go's messages", () => {
  assert.throws(() => parse(['--bogus']), new FlagError('flag provided but not defined: -bogus'));
  assert.throws(() => parse(['--heartbeat-interval', 'abc']), new FlagError('invalid value "abc" for flag -heartbeat-interval: parse error'));
  assert.throws(() => parse(['--initial-cluster-state', 'foo']), new FlagError('invalid value "foo" for flag -initial-cluster-state: invalid value'));
  assert.throws(
    () => parse(['--listen-client-urls', 'foo']),
    new FlagError('invalid value "foo" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: foo'),
  );
  assert.throws(() => parse(['--name']), new FlagError('flag needs an argument: -name'));
});

test('durations as Go parses them', () => {
  assert.equal(parseDurationMs('5s'), 5000);
  assert.equal(parseDurationMs('1h30m'), 5_400_000);
  assert.equal(parseDurationMs('100ms'), 100);
  assert.equal(parseDurationMs('0'), 0);
  assert.equal(parseDurationMs('5'), undefined);
});

test('environment variables fill unset flags; a conflict is an error', () => {
  const given = parse(['--name', 'a']);
  const r = flagsFromEnv('ETCD_', etcdFlags, given, { ETCD_DATA_DIR: '/x', ETCD_FOO: '1' });
  assert.equal(r.used.get('data-dir'), '/x');
  assert.ok(r.notes.some((n) => n.level === 'warn' && n.msg === 'unrecognized environment variable ETCD_FOO=1'));
  assert.throws(() => flagsFromEnv('ETCD_', etcdFlags, given, { ETCD_NAME: 'b' }), (e: unknown) => e instanceof EnvError && !e.verifying && /conflicting environment variable "ETCD_NAME"/.test(e.message));
  assert.throws(
    () => flagsFromEnv('ETCD_', etcdFlags, given, { ETCD_HEARTBEAT_INTERVAL: 'abc' }),
    (e: unknown) => e instanceof EnvError && e.verifying && e.message === 'invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error',
  );
});

test('defaults and derived values follow etcd', () => {
  const cfg = configFromValues(new Map([['name', 'n1']]));
  assert.equal(cfg.dataDir, 'n1.etcd');
  assert.equal(cfg.snapshotCount, 100_000);
  assert.equal(cfg.maxRequestBytes, 1_572_864);
  assert.deepEqual(cfg.listenClientUrls, ['http://localhost:2379']);
  const c2 = configFromValues(new Map([['initial-cluster', 'a=http://127.0.0.1:1,b=http://127.0.0.1:2'], ['grpc-keepalive-min-time', '10s']]));
  assert.deepEqual([...c2.initialCluster.keys()], ['a', 'b']);
  assert.equal(c2.grpcKeepaliveMinTimeMs, 10_000);
});

test('npm start and the etcd-ts bin run node with the flags of node-flags.ts', () => {
  // dist/src/cmd/ -> the repository root.
  const root = resolve(import.meta.dirname, '../../..');
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
  assert.equal(pkg.scripts['start'], `node ${nodeFlags.join(' ')} ${pkg.bin['etcd-ts'] ?? ''}`);
  const shebang = readFileSync(resolve(root, 'src/cmd/etcd-ts.ts'), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${nodeFlags.join(' ')}`);
});

test("etcd 3.4's flags for the v2 API, bbolt and capnslog are taken; asking for v2 is refused", () => {
  const v = parse(['--enable-v2=false', '--experimental-backend-bbolt-freelist-type', 'map', '--log-package-levels', 'etcdmain=DEBUG', '--experimental-peer-skip-client-san-verification']);
  assert.equal(configFromValues(v).peerTls.skipClientSanVerify, true);
  assert.equal(configFromValues(parse([])).peerTls.skipClientSanVerify, false);
  assert.throws(() => parse(['--enable-v2']), new FlagError('invalid value "true" for flag -enable-v2: etcd-ts serves the v3 API only'));
  assert.throws(() => parse(['--experimental-enable-v2v3', '/v2/']), new FlagError('invalid value "/v2/" for flag -experimental-enable-v2v3: etcd-ts serves the v3 API only'));
});
