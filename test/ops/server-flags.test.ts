/**
 * A server that cannot use its configuration says why as etcd does and
 * exits 1, before it opens any port: a --config-file that is missing, not
 * YAML, or has a bad value; an ETCD_* variable with a bad value, or one that
 * a flag shadows. Each case runs against the real etcd too, when installed,
 * and the two error lines must match (etcd's log prefix and its name aside).
 * A good config file is taken: the member starts with its name and data dir.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { etcdBin, etcdMissing, etcdTsScript, freePorts, getHealth } from '../harness/index.js';
import { nodeFlags } from '../../src/cmd/node-flags.js';
import { serverpb } from '../../src/pb/index.js';
import { RaftCluster } from '../../src/server/membership.js';
import { Wal } from '../../src/wal/index.js';

const exitTimeoutMs = 10_000;

interface Run {
  readonly code: number | null;
  /** The last line of stderr, without etcd's "<date> <time> E | <package>: " prefix. */
  readonly error: string;
}

function lastErrorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return (lines[lines.length - 1] ?? '').replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [A-Z] \| [a-z/]+: /, '');
}

/** Runs a server that must exit on its own; killed (and failed) if it does not. */
function runToExit(kind: 'etcd' | 'etcd-ts', args: readonly string[], env: Record<string, string>, cwd: string): Promise<Run> {
  const [file, argv] = kind === 'etcd' ? [etcdBin, args] : [process.execPath, [...nodeFlags, etcdTsScript, ...args]];
  const child = spawn(file, argv, { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${kind} ${args.join(' ')} still running after ${exitTimeoutMs} ms; stderr: ${stderr}`));
    }, exitTimeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, error: lastErrorLine(stderr) });
    });
  });
}

/** Starts etcd-ts and polls /health on clientPort for up to 10 s; stop() ends it (SIGTERM, then SIGKILL). */
async function startUntilHealthy(args: readonly string[], clientPort: number, cwd: string): Promise<{ healthy: boolean; stderr: () => string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [...nodeFlags, etcdTsScript, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  let healthy = false;
  for (let i = 0; i < 100 && !healthy && child.exitCode === null; i++) {
    healthy = (await getHealth(`http://127.0.0.1:${clientPort}`)) === 'true';
    if (!healthy) await new Promise((r) => setTimeout(r, 100));
  }
  return {
    healthy,
    stderr: () => stderr,
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, exitTimeoutMs))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

describe('server configuration errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'server-flags-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  // Every case would start a member if it were accepted: its ports are free ones and its data dir is in `dir`.
  const cases: { name: string; args: (ports: number[]) => string[]; env?: Record<string, string>; expected: string; sameAsEtcd: (e: string) => string }[] = [
    {
      name: 'a missing config file',
      args: () => ['--config-file', join(dir, 'missing.yml')],
      expected: `error verifying flags, open ${join(dir, 'missing.yml')}: no such file or directory. See 'etcd-ts --help'.`,
      sameAsEtcd: (e) => e,
    },
    {
      name: 'a config file that is not YAML',
      args: () => ['--config-file', file('bad.yml', 'name: [oops\n')],
      // The YAML parsers word their complaint differently: the line up to it must match.
      expected: "error verifying flags, error converting YAML to JSON: yaml: ",
      sameAsEtcd: (e) => e.slice(0, e.indexOf('yaml: ') + 'yaml: '.length),
    },
    {
      name: '--discovery-srv together with --initial-cluster',
      args: (p) => ['--discovery-srv', 'example.com', '--initial-cluster', `default=http://127.0.0.1:${p[1]}`, `--data-dir=${join(dir, 'conflict.etcd')}`, `--listen-client-urls=http://127.0.0.1:${p[0]}`, `--advertise-client-urls=http://127.0.0.1:${p[0]}`, `--listen-peer-urls=http://127.0.0.1:${p[1]}`],
      expected: `error verifying flags, multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv". See 'etcd-ts --help'.`,
      sameAsEtcd: (e) => e,
    },
    {
      name: 'an ETCD_ variable with a bad value',
      args: (p) => [`--data-dir=${join(dir, 'env.etcd')}`, `--listen-client-urls=http://127.0.0.1:${p[0]}`, `--advertise-client-urls=http://127.0.0.1:${p[0]}`, `--listen-peer-urls=http://127.0.0.1:${p[1]}`],
      env: { ETCD_HEARTBEAT_INTERVAL: 'abc' },
      expected: `error verifying flags, invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error. See 'etcd-ts --help'.`,
      sameAsEtcd: (e) => e,
    },
    {
      name: 'an ETCD_ variable that a flag shadows',
      args: (p) => ['--name', 'y', `--data-dir=${join(dir, 'shadow.etcd')}`, `--listen-client-urls=http://127.0.0.1:${p[0]}`, `--advertise-client-urls=http://127.0.0.1:${p[0]}`, `--listen-peer-urls=http://127.0.0.1:${p[1]}`],
      env: { ETCD_NAME: 'x' },
      expected: 'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)',
      sameAsEtcd: (e) => e,
    },
    {
      name: 'an argument that is not a flag',
      args: (p) => [`--data-dir=${join(dir, 'stray.etcd')}`, `--listen-client-urls=http://127.0.0.1:${p[0]}`, `--advertise-client-urls=http://127.0.0.1:${p[0]}`, `--listen-peer-urls=http://127.0.0.1:${p[1]}`, 'stray-arg'],
      expected: "error verifying flags, 'stray-arg' is not a valid flag. See 'etcd-ts --help'.",
      sameAsEtcd: (e) => e,
    },
    {
      name: 'an unknown --auto-compaction-mode',
      args: (p) => [`--data-dir=${join(dir, 'mode.etcd')}`, `--listen-client-urls=http://127.0.0.1:${p[0]}`, `--advertise-client-urls=http://127.0.0.1:${p[0]}`, `--listen-peer-urls=http://127.0.0.1:${p[1]}`, '--auto-compaction-mode=bogus'],
      expected: `error verifying flags, unknown auto-compaction-mode "bogus". See 'etcd-ts --help'.`,
      sameAsEtcd: (e) => e,
    },
    {
      // etcd says it on two lines: "error verifying flags, --advertise-client-urls is required ...", then this one.
      name: '--listen-client-urls without --advertise-client-urls',
      args: (p) => [`--data-dir=${join(dir, 'no-advertise.etcd')}`, `--listen-client-urls=http://127.0.0.1:${p[0]}`, `--listen-peer-urls=http://127.0.0.1:${p[1]}`],
      expected: 'When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.',
      sameAsEtcd: (e) => e,
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const ports = await freePorts(2);
      const ours = await runToExit('etcd-ts', c.args(ports), c.env ?? {}, dir);
      assert.equal(ours.code, 1);
      assert.equal(c.sameAsEtcd(ours.error), c.expected);
      const skip = etcdMissing();
      if (skip !== false) return;
      const real = await runToExit('etcd', c.args(ports), c.env ?? {}, dir);
      assert.equal(real.code, 1);
      assert.equal(c.sameAsEtcd(real.error).replace("'etcd --help'", "'etcd-ts --help'"), c.expected);
    });
  }

  test('a negative --quota-backend-bytes turns the quota off; --max-request-bytes 0 refuses every write as too large (as etcd 3.4.23)', async () => {
    for (const [flag, check] of [
      ['--quota-backend-bytes=-1', async (url: string): Promise<void> => {
        const metrics = await (await fetch(`${url}/metrics`)).text();
        assert.match(metrics, /^etcd_server_quota_backend_bytes -1$/m);
        assert.equal((await fetch(`${url}/v3/kv/put`, { method: 'POST', body: '{"key":"YQ==","value":"Yg=="}' })).status, 200);
      }],
      ['--max-request-bytes=0', async (url: string): Promise<void> => {
        const put = await fetch(`${url}/v3/kv/put`, { method: 'POST', body: '{"key":"YQ==","value":"Yg=="}' });
        assert.match(await put.text(), /etcdserver: request is too large/);
      }],
    ] as const) {
      const [client, peer] = await freePorts(2);
      const url = `http://127.0.0.1:${client}`;
      const m = await startUntilHealthy(['--data-dir', join(dir, `${flag.slice(2, 7)}.etcd`), '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', `http://127.0.0.1:${peer}`, flag], client as number, dir);
      try {
        assert.equal(m.healthy, true, `${flag}: ${m.stderr()}`);
        await check(url);
      } finally {
        await m.stop();
      }
    }
  });

  test('--log-outputs: the log goes to a file, not to stderr', async () => {
    const [client, peer] = await freePorts(2);
    const url = `http://127.0.0.1:${client}`;
    const logFile = join(dir, 'member.log');
    const m = await startUntilHealthy(['--data-dir', join(dir, 'log-outputs.etcd'), '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', `http://127.0.0.1:${peer}`, `--log-outputs=${logFile}`], client as number, dir);
    try {
      assert.equal(m.healthy, true, m.stderr());
      assert.match(readFileSync(logFile, 'utf8'), /"msg":"ready to serve client requests"/);
      assert.doesNotMatch(m.stderr(), /"level":/);
    } finally {
      await m.stop();
    }
    const refused = await runToExit('etcd-ts', ['--data-dir', join(dir, 'log-outputs2.etcd'), `--log-outputs=${join(dir, 'no-such-dir', 'x.log')}`], {}, dir);
    assert.deepEqual(refused, { code: 1, error: `error verifying flags, open ${join(dir, 'no-such-dir', 'x.log')}: no such file or directory. See 'etcd-ts --help'.` });
  });

  test("a data dir that etcd wrote (a bbolt database) is refused by name, not read as a corrupt WAL", async () => {
    const dataDir = join(dir, 'written-by-etcd.etcd');
    const db = join(dataDir, 'member', 'snap', 'db');
    mkdirSync(join(dataDir, 'member', 'snap'), { recursive: true });
    mkdirSync(join(dataDir, 'member', 'wal'), { recursive: true });
    // A bbolt meta page: a 16-byte page header, then the magic.
    const head = Buffer.alloc(4096);
    head.writeUInt32LE(0xed0cdaed, 16);
    writeFileSync(db, head);
    const r = await runToExit('etcd-ts', ['--data-dir', dataDir], {}, dir);
    assert.deepEqual(r, { code: 1, error: `${db} is a bbolt database: this data dir was written by etcd, whose files etcd-ts does not read; restore its db file (with --skip-hash-check) or a snapshot of it with etcdutl-ts snapshot restore, or copy the keys with etcdctl make-mirror` });
  });

  test('a bad value in a config file is a configuration error, not a usage one', async () => {
    const ours = await runToExit('etcd-ts', ['--config-file', file('state.yml', 'initial-cluster-state: foo\n')], {}, dir);
    assert.equal(ours.code, 1);
    assert.match(ours.error, /^error verifying flags, .*"foo".*\. See 'etcd-ts --help'\.$/);
  });

  test('a good config file is taken: its name, data dir, URLs and nested TLS section', async () => {
    const [client, peer] = await freePorts(2);
    const dataDir = join(dir, 'from-file.etcd');
    const yml = file(
      'good.yml',
      [
        'name: from-file',
        `data-dir: ${dataDir}`,
        `listen-client-urls: http://127.0.0.1:${client}`,
        `advertise-client-urls: http://127.0.0.1:${client}`,
        `listen-peer-urls: http://127.0.0.1:${peer}`,
        `initial-advertise-peer-urls: http://127.0.0.1:${peer}`,
        `initial-cluster: from-file=http://127.0.0.1:${peer}`,
        'heartbeat-interval: 50',
        'election-timeout: 500',
        'proxy: off', // a key etcd 3.4 knows but this server does not: ignored
        'client-transport-security:',
        '  client-cert-auth: false',
        '',
      ].join('\n'),
    );
    const m = await startUntilHealthy(['--config-file', yml, '--name', 'ignored'], client as number, dir);
    try {
      assert.ok(m.healthy, `the member from the config file never became healthy; stderr: ${m.stderr()}`);
      assert.match(m.stderr(), /"name":"from-file"/, 'the name comes from the file; the command line is ignored');
      assert.ok(existsSync(join(dataDir, 'member', 'wal')), 'the data dir comes from the file');
    } finally {
      await m.stop();
    }
  });
  test('a peer port in use stops the member as it stops etcd, before anything is written', async () => {
    const [client, peer] = await freePorts(2);
    const args = (dataDir: string): string[] => [
      '--name', 'p1', '--data-dir', dataDir,
      '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `p1=http://127.0.0.1:${peer}`,
    ];
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(peer as number, '127.0.0.1', r));
    try {
      const ours = await runToExit('etcd-ts', args(join(dir, 'port-in-use.etcd')), {}, dir);
      assert.deepEqual(ours, { code: 1, error: `listen tcp 127.0.0.1:${peer}: bind: address already in use` });
      assert.ok(!existsSync(join(dir, 'port-in-use.etcd', 'member', 'wal')), 'no WAL written');
      if (etcdMissing() === false) assert.deepEqual(await runToExit('etcd', args(join(dir, 'port-in-use-etcd.etcd')), {}, dir), ours);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  test('a data dir whose first start stopped before raft saved anything (only the WAL metadata) serves on the next start', async () => {
    const [client, peer] = await freePorts(2);
    const dataDir = join(dir, 'half-started.etcd');
    const peerUrl = `http://127.0.0.1:${peer}`;
    // What a first start leaves when it stops between creating its WAL and raft's first save.
    const cluster = RaftCluster.fromInitialCluster('etcd-cluster', new Map([['h1', [peerUrl]]]));
    const metadata = serverpb.WalMetadata.encode(serverpb.WalMetadata.create({ memberId: cluster.memberByName('h1')?.id ?? 0n, clusterId: cluster.clusterId }));
    await (await Wal.create(join(dataDir, 'member', 'wal'), metadata)).close();
    const m = await startUntilHealthy(
      ['--name', 'h1', '--data-dir', dataDir, '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
        '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `h1=${peerUrl}`],
      client as number,
      dir,
    );
    try {
      assert.ok(m.healthy, `the member never became healthy; stderr: ${m.stderr()}`);
      assert.match(m.stderr(), /bootstrapping the member again/);
    } finally {
      await m.stop();
    }
  });
});
