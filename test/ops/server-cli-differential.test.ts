/**
 * The server's command line against the real etcd 3.4.23: the same flags,
 * ETCD_* variables and bootstrap mistakes give the same exit code and the
 * same error line (etcd's capnslog prefix and its name aside). Numbers parse
 * as Go's flag package parses them (base prefixes, octal, underscores, "value
 * out of range"); booleans that do not parse are worded as Go words them; a
 * bad --initial-cluster is refused by etcd's bootstrap checks, in their order.
 * A server that starts warns as etcd's zap logger does, where both say the
 * same thing. Every process is killed within a bounded time.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { etcdBin, etcdMissing, etcdTsScript, freePorts } from '../harness/index.js';
import { nodeFlags } from '../../src/cmd/node-flags.js';

type Kind = 'etcd' | 'etcd-ts';

interface Outcome {
  /** The exit code; null when the server was still running and got killed. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const killAfterMs = 10_000;

/**
 * Runs a server in cwd; kills it once `done` holds for its stderr (a server
 * expected to start) or after killAfterMs (one that should have exited).
 */
function run(kind: Kind, args: readonly string[], cwd: string, env: Record<string, string> = {}, done?: (stderr: string) => boolean): Promise<Outcome> {
  const [file, argv] = kind === 'etcd' ? [etcdBin, args] : [process.execPath, [...nodeFlags, etcdTsScript, ...args]];
  const child = spawn(file, argv, { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (done?.(stderr) === true) child.kill('SIGKILL');
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a refusal says: Go's usage error is the first line, a start-up error the last (without capnslog's "<date> <time> C | pkg: "). */
function errorLine(o: Outcome): string {
  const lines = o.stderr.trim().split('\n');
  const line = (o.code === 2 ? lines[0] : lines[lines.length - 1]) ?? '';
  return line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [A-Z] \| [a-z/]+: /, '').replace("'etcd --help'", "'etcd-ts --help'");
}

/** The zap lines with msg, without their time and caller. */
function zapLines(stderr: string, msg: string): unknown[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['msg'] === msg)
    .map(({ ts: _ts, caller: _caller, ...rest }) => rest);
}

describe('server command line, etcd 3.4.23 vs etcd-ts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'server-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const realEtcd = etcdMissing() === false;
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, '');

  /** Flags that would start a member on free ports, its data dir in its own temp dir. */
  async function member(): Promise<{ args: string[]; peer: string; cwd: string }> {
    const [client, peerPort] = await freePorts(2);
    const peer = `http://127.0.0.1:${peerPort}`;
    const cwd = mkdtempSync(join(dir, 'm-'));
    const url = `http://127.0.0.1:${client}`;
    return { args: ['--data-dir', join(cwd, 'data'), '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peer], peer, cwd };
  }

  const cases: { name: string; args: (peer: string) => string[]; env?: Record<string, string>; code: number; expected: (peer: string) => string; writesNothing?: true }[] = [
    {
      name: '--heartbeat-interval=0',
      args: () => ['--heartbeat-interval=0'],
      code: 1,
      expected: () => "error verifying flags, --heartbeat-interval must be >0 (set to 0ms). See 'etcd-ts --help'.",
    },
    {
      name: 'an octal --heartbeat-interval (010 is 8)',
      args: () => ['--heartbeat-interval=010', '--election-timeout=39'],
      code: 1,
      expected: () => "error verifying flags, --election-timeout[39ms] should be at least as 5 times as --heartbeat-interval[8ms]. See 'etcd-ts --help'.",
    },
    {
      name: 'a hex --heartbeat-interval with an underscore (0x1_0 is 16)',
      args: () => ['--heartbeat-interval', '0x1_0', '--election-timeout', '79'],
      code: 1,
      expected: () => "error verifying flags, --election-timeout[79ms] should be at least as 5 times as --heartbeat-interval[16ms]. See 'etcd-ts --help'.",
    },
    {
      name: 'a uint flag past 2^64',
      args: () => ['--heartbeat-interval=99999999999999999999'],
      code: 2,
      expected: () => 'invalid value "99999999999999999999" for flag -heartbeat-interval: value out of range',
    },
    {
      name: 'an int64 flag past 2^63-1',
      args: () => ['--quota-backend-bytes=9223372036854775808'],
      code: 2,
      expected: () => 'invalid value "9223372036854775808" for flag -quota-backend-bytes: value out of range',
    },
    {
      name: 'a sign on a uint flag',
      args: () => ['--max-wals=+5'],
      code: 2,
      expected: () => 'invalid value "+5" for flag -max-wals: parse error',
    },
    {
      name: 'a boolean that does not parse',
      args: () => ['--client-cert-auth=maybe'],
      code: 2,
      expected: () => 'invalid boolean value "maybe" for -client-cert-auth: parse error',
    },
    {
      name: 'two bad ETCD_ variables: the last, in flag name order, is reported; a number out of range',
      args: () => [],
      env: { ETCD_CLIENT_CERT_AUTH: 'maybe', ETCD_MAX_WALS: '0x10000000000000000' },
      code: 1,
      expected: () => `error verifying flags, invalid value "0x10000000000000000" for ETCD_MAX_WALS: value out of range. See 'etcd-ts --help'.`,
    },
    {
      name: '--name not in --initial-cluster (a bootstrap error, not a flag error)',
      args: (p) => ['--name', 'zz', '--initial-advertise-peer-urls', p, '--initial-cluster', `default=${p}`],
      code: 1,
      expected: () => `couldn't find local name "zz" in the initial cluster configuration`,
    },
    {
      name: 'one peer URL under two names',
      args: (p) => ['--initial-advertise-peer-urls', p, '--initial-cluster', `default=${p},b=${p},c=http://127.0.0.1:9`],
      code: 1,
      expected: (p) => `initial cluster b=${p},c=http://127.0.0.1:9,default=${p} has duplicate url`,
    },
    {
      name: 'one peer URL twice for this member',
      args: (p) => ['--initial-advertise-peer-urls', p, '--initial-cluster', `default=${p},default=${p}`],
      code: 1,
      expected: (p) => `failed to resolve ${p} to match --initial-cluster=default=${p} (len(["${p}"]) != len(["${p}" "${p}"]))`,
    },
    {
      name: 'an advertised peer URL that --initial-cluster lacks',
      args: (p) => ['--initial-advertise-peer-urls', `${p},http://127.0.0.1:7`, '--initial-cluster', `default=${p}`],
      code: 1,
      expected: (p) => `--initial-advertise-peer-urls has http://127.0.0.1:7 but missing from --initial-cluster=default=${p},default=http://127.0.0.1:7`,
    },
    {
      name: 'as many URLs on both sides, one differs',
      args: (p) => ['--initial-advertise-peer-urls', `${p},http://127.0.0.1:7`, '--initial-cluster', `default=${p},default=http://127.0.0.1:8`],
      code: 1,
      expected: (p) => `--initial-cluster has default=http://127.0.0.1:8 but missing from --initial-advertise-peer-urls=${p},http://127.0.0.1:7 (resolved urls: "http://127.0.0.1:7" != "http://127.0.0.1:8")`,
    },
    {
      name: 'more URLs in --initial-cluster than advertised',
      args: (p) => ['--initial-advertise-peer-urls', p, '--initial-cluster', `default=${p},default=http://127.0.0.1:8`],
      code: 1,
      expected: (p) => `--initial-cluster has default=http://127.0.0.1:8 but missing from --initial-advertise-peer-urls=${p} (len(["${p}"]) != len([${[p, 'http://127.0.0.1:8'].sort().map((u) => `"${u}"`).join(' ')}]))`,
    },
    {
      name: 'an unknown --logger (a configuration error, not a usage one)',
      args: () => ['--logger=foo'],
      code: 1,
      expected: () => `error verifying flags, unknown logger option "foo". See 'etcd-ts --help'.`,
    },
    {
      name: 'a --data-dir that is a file',
      args: () => ['--data-dir', aFile],
      code: 1,
      expected: () => `error listing data dir: ${aFile}`,
    },
    {
      name: 'a bad --auto-compaction-retention (a start-up failure, not a flag error)',
      args: () => ['--auto-compaction-retention=abc'],
      code: 1,
      expected: () => 'error parsing CompactionRetention: time: invalid duration "abc"',
      writesNothing: true,
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const m = await member();
      const args = [...m.args, ...c.args(m.peer)];
      const kinds: Kind[] = realEtcd ? ['etcd-ts', 'etcd'] : ['etcd-ts'];
      for (const kind of kinds) {
        const o = await run(kind, args, m.cwd, c.env);
        assert.deepEqual({ code: o.code, error: errorLine(o) }, { code: c.code, error: c.expected(m.peer) }, `${kind}: ${o.stderr}`);
        if (c.writesNothing === true) assert.equal(existsSync(join(m.cwd, 'data')), false, `${kind} wrote its data dir`);
      }
    });
  }

  test('-h: the usage on stderr, the flags on stdout, exit 0', async () => {
    for (const kind of realEtcd ? (['etcd-ts', 'etcd'] as const) : (['etcd-ts'] as const)) {
      const o = await run(kind, ['-h'], dir);
      assert.equal(o.code, 0, kind);
      assert.match(o.stderr, /^Usage:\n\n {2}etcd(-ts)? \[flags\]\n/, kind);
      assert.match(o.stdout, /^\nMember:\n {2}--name 'default'\n/, kind);
      assert.doesNotMatch(o.stdout, /Usage:/, kind);
    }
  });

  test("a --bcrypt-cost bcrypt does not take: a warning and the default, as etcd's zap logger says; no --data-dir: the default, with a warning", async () => {
    const m = await member();
    const args = [...m.args.slice(2), '--bcrypt-cost=3', '--logger=zap'];
    const warned = (s: string): boolean => s.includes('invalid given cost');
    const warnings = async (kind: Kind): Promise<unknown[]> => {
      const cwd = mkdtempSync(join(dir, `bcrypt-${kind}-`));
      const o = await run(kind, args, cwd, {}, warned);
      assert.equal(o.code, null, `${kind} exited: ${o.stderr}`);
      return [...zapLines(o.stderr, "'data-dir' was empty; using default"), ...zapLines(o.stderr, 'use default bcrypt cost instead of the invalid given cost')];
    };
    const expected = [
      { level: 'warn', msg: "'data-dir' was empty; using default", 'data-dir': 'default.etcd' },
      { level: 'warn', msg: 'use default bcrypt cost instead of the invalid given cost', 'min-cost': 4, 'max-cost': 31, 'default-cost': 10, 'given-cost': 3 },
    ];
    assert.deepEqual(await warnings('etcd-ts'), expected);
    if (realEtcd) assert.deepEqual(await warnings('etcd'), expected);
  });
});
