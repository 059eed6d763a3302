// Go's clientv3 (etcd 3.4.23, Debian's golang-etcd-server-dev) against
// etcd-ts: main.go is the program a Go user would write — KV, txn, watch,
// leases, the concurrency recipes (Mutex, Election, STM), maintenance, auth,
// and errors compared with rpctypes' values — and a failover run where the
// leader of three members is killed under a writer and a watcher.
// CLIENTV3_KIND=etcd runs it against the real etcd, which is how main.go's
// expectations were checked. Skipped when Go or the clientv3 sources are not
// installed (.ci/run installs them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { etcdMissing, useWorkspace, type MemberKind } from '../harness/index.js';
import { goBuild, goMissing } from '../harness/go.js';
import { track } from '../harness/reaper.js';

const sourceDir = resolve(import.meta.dirname, '../../../test/clientv3');
const kind: MemberKind = process.env['CLIENTV3_KIND'] === 'etcd' ? 'etcd' : 'etcd-ts';

function clientv3Missing(): string | false {
  const ciSkip = process.env['CLIENTV3_SKIP'];
  if (ciSkip !== undefined && ciSkip !== '') return ciSkip;
  return goMissing('go.etcd.io/etcd/clientv3', 'golang-etcd-server-dev') || (kind === 'etcd' ? etcdMissing() : false);
}

const skip = clientv3Missing();
/** A cold build compiles grpc-go and clientv3: minutes on two cores. */
const buildTimeoutMs = 300_000;
const runTimeoutMs = 120_000;

interface Run {
  readonly code: number | null;
  readonly lines: readonly string[];
  readonly stderr: string;
}

/**
 * Runs the checker; onLine sees each stdout line as it comes and may answer
 * on stdin. Killed if it outlives runTimeoutMs.
 */
function runCheck(bin: string, args: readonly string[], onLine: (line: string, answer: (text: string) => void) => void | Promise<void> = () => {}): Promise<Run> {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const answer = (text: string): void => void child.stdin.write(text);
  const timer = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs);
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    void Promise.resolve(onLine(line, answer)).catch((e: unknown) => {
      lines.push(`FAIL harness: ${String(e)}`);
      child.kill('SIGKILL');
    });
  });
  return new Promise((done) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, lines, stderr });
    }),
  );
}

/** Every check printed "ok", none "FAIL", and the program exited 0. */
function assertPassed(run: Run, expected: readonly string[]): void {
  const failures = run.lines.filter((l) => l.startsWith('FAIL'));
  assert.deepEqual(failures, [], `clientv3 checks failed:\n${run.lines.join('\n')}\n${run.stderr.slice(-2000)}`);
  assert.deepEqual(
    run.lines.filter((l) => l.startsWith('ok ')).map((l) => l.slice(3)),
    expected,
  );
  assert.equal(run.code, 0, run.stderr.slice(-2000));
}

describe(`Go clientv3 3.4.23 against ${kind}`, { skip }, () => {
  const ws = useWorkspace('clientv3');
  const buildDir = mkdtempSync(join(tmpdir(), 'etcd-clientv3-'));
  const bin = join(buildDir, 'clientv3-check');

  before(() => goBuild(sourceDir, bin, buildTimeoutMs));
  after(() => rmSync(buildDir, { recursive: true, force: true }));

  test('KV, txn, watch, leases, recipes, maintenance and auth', async () => {
    const cluster = await ws.startCluster({ kind });
    const run = await runCheck(bin, ['api', cluster.endpoints.join(',')]);
    assertPassed(run, ['kv', 'txn', 'server errors', 'watch', 'lease', 'mutex', 'election', 'stm', 'maintenance', 'auth']);
  });

  test('a writer and a watcher carry on when the leader of three is killed', async () => {
    const cluster = await ws.startCluster({ kind, size: 3 });
    let killed = '';
    const run = await runCheck(bin, ['failover', cluster.endpoints.join(',')], async (line, answer) => {
      if (line !== 'kill') return;
      const leader = await cluster.leader();
      killed = leader.name;
      await leader.kill();
      answer('killed\n');
    });
    assert.notEqual(killed, '', 'the checker never asked for the kill');
    assertPassed(run, ['failover puts', 'failover watch', 'failover read']);
  });
});
