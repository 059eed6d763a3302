/**
 * The differential runner of etcdctl-ts: one script of etcdctl commands runs
 * through Debian's etcdctl and through etcdctl-ts, each against a fresh
 * etcd-ts member on the same ports (so member and cluster ids, revisions and
 * terms are the same), and every step's stdout, stderr and exit status must
 * be identical once what differs run to run (timestamps, client uuids, lease
 * ids, durations, table widths around them) is normalised.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { etcdctlBin, etcdctlMissing, useWorkspace, type Cluster } from '../harness/index.js';

const ctlTsScript = resolve(import.meta.dirname, '../../src/cmd/etcdctl-ts.js');

export interface Step {
  /** $CWD is the tool's working directory; $LEASE the last lease an earlier step granted (hex). */
  readonly args: readonly string[];
  readonly stdin?: string;
  /** Long-running: send SIGINT once stdout contains this. */
  readonly until?: string;
}

interface Outcome {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function runTool(tool: 'etcdctl' | 'etcdctl-ts', endpoint: string, cwd: string, lease: string, step: Step): Promise<Outcome> {
  const [file, pre] = tool === 'etcdctl' ? [etcdctlBin, []] : [process.execPath, [ctlTsScript]];
  const args = [...pre, `--endpoints=${endpoint}`, ...step.args.map((a) => a.replace('$CWD', cwd).replace('$LEASE', lease))];
  return new Promise((resolveRun, reject) => {
    const child = spawn(file, args, { cwd, env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (step.until !== undefined && stdout.includes(step.until)) child.kill('SIGINT');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ stdout, stderr, code, signal });
    });
    // A tool may exit before reading its stdin: the broken pipe is not a difference.
    child.stdin.on('error', () => undefined);
    child.stdin.end(step.stdin ?? '');
  });
}

/** Replaces what legitimately differs between two runs. */
function normalise(o: Outcome, leases: Map<string, string>): Outcome {
  const lease = (s: string): string =>
    s.replace(/\b[0-9a-f]{16}\b/g, (h) => {
      const dec = BigInt(`0x${h}`).toString();
      if (!leases.has(h) && !leases.has(dec)) return h;
      return leases.get(h) ?? h;
    }).replace(/\b\d{17,20}\b/g, (d) => leases.get(d) ?? d);
  const clean = (s: string): string =>
    lease(s)
      .replace(/"ts":("[^"]*"|[0-9.e+]+)/g, '"ts":T')
      .replace(/endpoint:\/\/client-[0-9a-f-]+\//g, 'endpoint://client-U/')
      .replace(/"took":("[^"]*"|[0-9.e+-]+)/g, '"took":D')
      .replace(/took = [0-9.]+[µmn]?s/g, 'took = D')
      .replace(/\| +[0-9.]+[µmn]?s +\|/g, '| D |')
      .replace(/"Took" : [0-9.]+[µmn]?s/g, '"Took" : D')
      // grpc-go's own logging under --debug is not emulated (etcdctl-ts has no grpc-go inside).
      .replace(/^(INFO|WARNING): \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(core|transport)\].*\n/gm, '');
  // A table's column widths follow the durations in it.
  const squeeze = (s: string): string => (s.includes('+-') ? s.replace(/-{2,}/g, '-').replace(/ {2,}/g, ' ') : s);
  return { ...o, stdout: squeeze(clean(o.stdout)), stderr: clean(o.stderr) };
}

/** Lease ids granted in a run, each numbered in the order seen, so the two runs' ids map to the same names. */
function collectLeases(outcomes: Outcome[]): Map<string, string> {
  const ids = new Map<string, string>();
  for (const o of outcomes) {
    for (const m of o.stdout.matchAll(/lease ([0-9a-f]{16}) granted/g)) {
      const h = m[1] ?? '';
      if (!ids.has(h)) {
        const name = `LEASE${ids.size / 2}`;
        ids.set(h, name);
        ids.set(BigInt(`0x${h}`).toString(), name);
      }
    }
  }
  return ids;
}

/** Registers the suite: both tools run script, then every step is compared. */
export function describeDifferential(label: string, script: readonly Step[]): void {
  describe(`etcdctl-ts against etcdctl 3.4: ${label}`, { skip: etcdctlMissing() }, () => {
  const ws = useWorkspace(`ctl-${label}`);
  let c: Cluster;
  const outcomes: Record<'etcdctl' | 'etcdctl-ts', Outcome[]> = { etcdctl: [], 'etcdctl-ts': [] };

  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts' });
    for (const tool of ['etcdctl', 'etcdctl-ts'] as const) {
      const m = c.member(0);
      if (tool === 'etcdctl-ts') {
        // A fresh member on the same ports: the same ids, revisions from 1 again.
        await m.stop();
        rmSync(m.dataDir, { recursive: true, force: true });
        await m.start();
      }
      const cwd = join(ws.dir, tool);
      mkdirSync(cwd, { recursive: true });
      let lease = '';
      for (const step of script) {
        const o = await runTool(tool, m.endpoint, cwd, lease, step);
        lease = /lease ([0-9a-f]{16}) granted/.exec(o.stdout)?.[1] ?? lease;
        outcomes[tool].push(o);
      }
    }
  });


  test('every step prints the same and exits the same', () => {
    const ref = outcomes.etcdctl;
    const ours = outcomes['etcdctl-ts'];
    const refLeases = collectLeases(ref);
    const ourLeases = collectLeases(ours);
    const diffs: string[] = [];
    script.forEach((step, i) => {
      const a = normalise(ref[i] ?? { stdout: '', stderr: '', code: null, signal: null }, refLeases);
      const b = normalise(ours[i] ?? { stdout: '', stderr: '', code: null, signal: null }, ourLeases);
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        diffs.push(`step ${i} etcdctl ${step.args.join(' ')}\n  etcdctl:    ${JSON.stringify(a)}\n  etcdctl-ts: ${JSON.stringify(b)}`);
      }
    });
    assert.equal(diffs.length, 0, `${diffs.length} of ${script.length} steps differ:\n${diffs.join('\n')}`);
  });
  });
}
