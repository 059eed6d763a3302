// etcdctl-ts's commands that work on files and data directories, and its
// load checks, on their success paths (the differential tests cover their
// errors; Debian's etcdctl cannot read etcd-ts's snapshot or data files):
// snapshot save -> status -> restore -> a member started on the restored data
// dir serves the keys; defrag --data-dir waits for a running member's lock
// and defragments once it stops; migrate replays the member's membership and
// finds no v2 keys; check perf and check datascale with small loads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { BufferOutput, Ctl, checkDatascale, checkPerf, globalFlags, parseFlags, rootCommands, run, type CtlIo, type FlagSpec } from '../../src/ctl/index.js';
import { freePorts, Member, useWorkspace, type Cluster } from '../harness/index.js';

const ctlTsScript = resolve(import.meta.dirname, '../../src/cmd/etcdctl-ts.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs etcdctl-ts; onStderr sees stderr as it grows (to act while the command waits). */
function ctlTs(args: readonly string[], cwd: string, onStderr?: (text: string) => void): Promise<Run> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [ctlTsScript, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** The flags a check subcommand parses (globals, its own, --help), with args applied. */
function checkFlags(sub: string, args: readonly string[]): ReturnType<typeof parseFlags>['values'] {
  const check = rootCommands.find((c) => c.name === 'check');
  const cmd = check?.subcommands?.find((c) => c.name === sub);
  assert.ok(cmd !== undefined);
  const help: FlagSpec = { name: 'help', kind: 'bool', def: 'false', usage: '' };
  return parseFlags(args, [...globalFlags, ...(cmd.flags ?? []), help]).values;
}

function bufferIo(out: BufferOutput): CtlIo {
  return {
    output: out,
    env: {},
    readStdin: () => Promise.resolve(''),
    readLine: () => Promise.resolve(null),
    readSecretLine: () => Promise.resolve(null),
    interrupt: new AbortController().signal,
    argv: [],
    offline: () => Promise.reject(new Error('no offline operations in this test')),
    srv: { resolveSrv: () => Promise.reject(Object.assign(new Error('no DNS in this test'), { code: 'ENOTFOUND' })), server: () => '127.0.0.1:53' },
  };
}

describe('etcdctl-ts offline commands and load checks', () => {
  const ws = useWorkspace('ctl-offline');
  let c: Cluster;
  let ep: string;

  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts' });
    ep = `--endpoints=${c.member(0).endpoint}`;
    for (const [k, v] of [['foo', 'bar'], ['a', '1'], ['b', '2']] as const) assert.equal((await ctlTs([ep, 'put', k, v], ws.dir)).code, 0);
  });

  after(async () => {
    await c.close();
  });

  test('snapshot save, status in every format, restore, and a member on the restored data dir', async () => {
    const saved = await ctlTs([ep, 'snapshot', 'save', 'snap.db'], ws.dir);
    assert.equal(saved.code, 0, saved.stderr);
    assert.equal(saved.stdout, 'Snapshot saved at snap.db\n');
    const rev = (JSON.parse((await ctlTs([ep, 'get', 'foo', '-w', 'json'], ws.dir)).stdout) as { header: { revision: number } }).header.revision;

    const json = await ctlTs(['snapshot', 'status', 'snap.db', '-w', 'json'], ws.dir);
    assert.equal(json.code, 0, json.stderr);
    const st = JSON.parse(json.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
    assert.equal(st.revision, rev);
    assert.ok(st.totalKey >= 3 && st.totalSize > 0);
    const simple = await ctlTs(['snapshot', 'status', 'snap.db'], ws.dir);
    assert.match(simple.stdout, new RegExp(`^${st.hash.toString(16)}, ${rev}, ${st.totalKey}, \\d+ [kM]?B\\n$`));
    const fields = await ctlTs(['snapshot', 'status', 'snap.db', '-w', 'fields'], ws.dir);
    assert.equal(fields.stdout, `"Hash" : ${st.hash}\n"Revision" : ${rev}\n"Keys" : ${st.totalKey}\n"Size" : ${st.totalSize}\n`);
    const table = await ctlTs(['snapshot', 'status', 'snap.db', '-w', 'table'], ws.dir);
    assert.match(table.stdout, /\| +HASH +\| REVISION \| TOTAL KEYS \| TOTAL SIZE \|/);
    const proto = await ctlTs(['snapshot', 'status', 'snap.db', '-w', 'protobuf'], ws.dir);
    assert.deepEqual([proto.code, proto.stderr], [4, 'Error: protobuf not supported as output format\n']);

    const [clientPort, peerPort] = await freePorts(2);
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const restoreArgs = ['snapshot', 'restore', 'snap.db', '--data-dir', 'restored', '--name', 'r1', '--initial-cluster', `r1=${peerUrl}`, '--initial-advertise-peer-urls', peerUrl];
    const restored = await ctlTs(restoreArgs, ws.dir);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(restored.stdout, '');
    const msgs = restored.stderr.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string; caller: string }).msg);
    assert.deepEqual(msgs, ['restoring snapshot', 'added member', 'restored snapshot']);
    const again = await ctlTs(restoreArgs, ws.dir);
    assert.deepEqual([again.code, again.stderr], [1, 'Error: data-dir "restored" exists\n']);

    const m = new Member({
      kind: 'etcd-ts',
      name: 'r1',
      dataDir: join(ws.dir, 'restored'),
      clientPort: clientPort ?? 0,
      peerPort: peerPort ?? 0,
      initialCluster: `r1=${peerUrl}`,
      initialClusterState: 'new',
      clusterToken: 'etcd-cluster',
      extraFlags: [],
      logFile: join(ws.dir, 'r1.log'),
    });
    await m.start();
    try {
      const got = await ctlTs([`--endpoints=${m.endpoint}`, 'get', '', '--prefix'], ws.dir);
      assert.equal(got.stdout, 'a\n1\nb\n2\nfoo\nbar\n');
    } finally {
      await m.stop();
    }
  });

  test('--discovery-srv: endpoints from SRV records; http ones only with --insecure-discovery; lookup errors as etcdctl words them', async () => {
    const port = Number(c.member(0).endpoint.split(':')[1]);
    // _etcd-client._tcp.example.test names the member (as localhost); the -ssl record and the other domain do not exist.
    const records: Record<string, { name: string; port: number; priority: number; weight: number }[]> = {
      '_etcd-client._tcp.example.test': [{ name: 'localhost', port, priority: 10, weight: 1 }],
      '_etcd-client-v2._tcp.example.test': [{ name: 'localhost', port, priority: 10, weight: 1 }],
    };
    const asked: string[] = [];
    const ctl = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      const out = new BufferOutput();
      const io: CtlIo = {
        ...bufferIo(out),
        srv: {
          resolveSrv: (name) => {
            asked.push(name);
            const r = records[name];
            return r === undefined ? Promise.reject(Object.assign(new Error(`querySrv ENOTFOUND ${name}`), { code: 'ENOTFOUND' })) : Promise.resolve(r);
          },
          server: () => '10.0.0.53:53',
        },
      };
      const code = await run(args, io);
      return { code, stdout: out.stdout, stderr: out.stderr };
    };
    const put = await ctl(['--discovery-srv', 'example.test', '--endpoints=127.0.0.1:1', 'put', 'srv-key', 'found']);
    assert.deepEqual(put, { code: 0, stdout: 'OK\n', stderr: '' });
    assert.deepEqual(asked.splice(0), ['_etcd-client-ssl._tcp.example.test', '_etcd-client._tcp.example.test']);
    const health = await ctl(['--discovery-srv', 'example.test', '--discovery-srv-name', 'v2', 'endpoint', 'health']);
    assert.equal(health.code, 0, health.stderr);
    // etcdctl 3.4 writes the health lines to stderr.
    assert.match(health.stderr, new RegExp(`^http://localhost\\.:${port} is healthy: successfully committed proposal: took = .+\n$`));
    assert.deepEqual(asked.splice(0), ['_etcd-client-ssl-v2._tcp.example.test', '_etcd-client-v2._tcp.example.test']);
    // Insecure records dropped: --endpoints is used instead (http:// there: the discovery domain turns TLS on otherwise).
    const secureOnly = await ctl(['--discovery-srv', 'example.test', '--insecure-discovery=false', `--endpoints=http://${c.member(0).endpoint}`, 'get', 'srv-key', '--print-value-only']);
    assert.deepEqual(secureOnly, { code: 0, stdout: 'found\n', stderr: `ignoring discovered insecure endpoint "http://localhost.:${port}"\n` });
    const none = await ctl(['--discovery-srv', 'nowhere.test', 'get', 'srv-key']);
    assert.deepEqual(none, {
      code: 1,
      stdout: '',
      stderr:
        'Error: dns lookup errors: lookup _etcd-client-ssl._tcp.nowhere.test on 10.0.0.53:53: no such host and lookup _etcd-client._tcp.nowhere.test on 10.0.0.53:53: no such host\n',
    });
  });

  test('defrag --data-dir waits for the running member, then defragments its backend', async () => {
    const m = c.member(0);
    let stopping: Promise<void> | undefined;
    const run = await ctlTs(['defrag', '--data-dir', m.dataDir], ws.dir, (err) => {
      if (stopping === undefined && err.includes('waiting for etcd to close')) stopping = m.stop().then(() => undefined);
    });
    await stopping;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, `waiting for etcd to close and release its lock on ${JSON.stringify(join(m.dataDir, 'member/snap/db'))}. To defrag a running etcd instance, omit --data-dir.\n`);
    assert.equal(run.stdout, '');

    const mig = await ctlTs(['migrate', '--data-dir', m.dataDir], ws.dir);
    assert.equal(mig.code, 0, mig.stderr);
    const lines = mig.stdout.trim().split('\n');
    assert.equal(lines[0], 'using default transformer');
    assert.equal(lines[lines.length - 1], 'no v2 keys to migrate');
    const logged = lines.slice(1, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(logged[0], { level: 'info', msg: 'added member', 'cluster-id': '0', 'local-member-id': '0', 'added-peer-id': logged[0]?.['added-peer-id'], 'added-peer-peer-urls': [m.peerUrl] });
    assert.ok(logged.some((l) => l['msg'] === 'set initial cluster version' && l['cluster-version'] === '3.4'));

    await m.start();
    const got = await ctlTs([ep, 'get', 'foo', '--print-value-only'], ws.dir);
    assert.equal(got.stdout, 'bar\n');
  });

  test('check perf and check datascale with small loads print etcdctl\'s lines and leave no keys', async () => {
    const out = new BufferOutput();
    const io = bufferIo(out);
    const perf = new Ctl(io, checkFlags('perf', [ep, '--auto-compact', '--auto-defrag']), -1, globalFlags);
    await checkPerf(perf, { rate: 40, clients: 4, seconds: 3 });
    perf.closeClients();
    const lines = out.stdout.split('\n');
    assert.match(lines[0] ?? '', /^\r 0 \/ 3 {4}0\.00%/);
    assert.match(out.stdout, /\r 3 \/ 3 {2}100\.00% \d+s\n/);
    const tail = out.stdout.slice(out.stdout.indexOf('100.00%')).split('\n').slice(1, -1);
    assert.match(tail[0] ?? '', /^Compacting with revision \d+$/);
    assert.match(tail[1] ?? '', /^Compacted with revision \d+$/);
    assert.equal(tail[2], `Defragmenting "${c.member(0).endpoint}"`);
    assert.equal(tail[3], `Defragmented "${c.member(0).endpoint}"`);
    assert.match(tail[4] ?? '', /^(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes\/s$/);
    assert.match(tail[5] ?? '', /^(PASS: Slowest request took|Slowest request took too long:) \d+\.\d{6}s$/);
    assert.match(tail[6] ?? '', /^(PASS: Stddev is|Stddev too high:) \d+\.\d{6}s$/);
    assert.match(tail[7] ?? '', /^(PASS|FAIL)$/);

    const dsOut = new BufferOutput();
    const ds = new Ctl(bufferIo(dsOut), checkFlags('datascale', [ep]), -1, globalFlags);
    await checkDatascale(ds, { total: 200, kvBytes: 1024, clients: 5 });
    ds.closeClients();
    const dsLines = dsOut.stdout.split('\n');
    assert.equal(dsLines[0], 'Start data scale check for work load [200 key-value pairs, 1024 bytes per key-value, 5 concurrent clients].');
    assert.match(dsLines[1] ?? '', /^\r 0 \/ 200 {4}0\.00%[^\n]*\r 200 \/ 200 {2}100\.00% \d+s$/);
    assert.match(dsLines[2] ?? '', /^PASS: Approximate system memory used : -?\d+\.\d\d MB\.$/);
    const keys = await ctlTs([ep, 'get', '/etcdctl-check', '--prefix', '--keys-only'], ws.dir);
    assert.equal(keys.stdout, '');
  });
});
