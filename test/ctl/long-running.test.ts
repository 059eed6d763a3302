// etcdctl-ts's long-running commands against etcd-ts: lease keep-alive until
// the lease is revoked, a watch the server cancels, watch -i with progress requests and with a line
// that ends the session (compared with etcdctl's), lock around a
// command and held until SIGINT (with Debian's etcdctl waiting on it),
// elect observed by etcdctl, and make-mirror replaying changes.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { resolve } from 'node:path';
import { etcdctl, etcdctlBackground, etcdctlMissing, useWorkspace, type Cluster } from '../harness/index.js';

const script = resolve(import.meta.dirname, '../../src/cmd/etcdctl-ts.js');

class Ts {
  out = '';
  err = '';
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child: ChildProcessWithoutNullStreams;

  constructor(endpoints: string, args: string[]) {
    this.child = spawn(process.execPath, [script, `--endpoints=${endpoints}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.err += d.toString()));
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
    this.done = new Promise((r) =>
      this.child.on('close', (code, signal) => {
        clearTimeout(killer);
        r({ code, signal });
      }),
    );
  }

  async waitFor(pred: (out: string) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.out)) {
      if (Date.now() > deadline) assert.fail(`timed out; stdout=${JSON.stringify(this.out)} stderr=${JSON.stringify(this.err)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function ts(endpoints: string, args: string[], stdin = ''): Promise<{ code: number | null; out: string; err: string }> {
  const p = new Ts(endpoints, args);
  p.child.stdin.end(stdin);
  const { code } = await p.done;
  return { code, out: p.out, err: p.err };
}

describe('etcdctl-ts long-running commands', { skip: etcdctlMissing() }, () => {
  const ws = useWorkspace('ctl-long');
  let c: Cluster;
  let ep: string;
  before(async () => {
    c = await ws.startCluster({ kind: 'etcd-ts' });
    ep = c.member(0).endpoint;
  });

  test('lease keep-alive renews until the lease is revoked, then says so and exits 0', async () => {
    const grant = await ts(ep, ['lease', 'grant', '30']);
    const id = /lease ([0-9a-f]{16}) granted/.exec(grant.out)?.[1] ?? assert.fail(grant.out);
    const ka = new Ts(ep, ['lease', 'keep-alive', id]);
    await ka.waitFor((o) => o.includes(`lease ${id} keepalived with TTL(30)`));
    const revoke = await etcdctl(['lease', 'revoke', id], { endpoints: ep });
    assert.equal(revoke.code, 0);
    assert.deepEqual(await ka.done, { code: 0, signal: null });
    assert.match(ka.out, new RegExp(`lease ${id} expired or revoked\\.\\n$`));
  });

  test('a watch the server cancels (compacted) is said once, in etcdctl\'s words and exit code', async () => {
    await etcdctl(['put', 'wc', '1'], { endpoints: ep });
    const put = await etcdctl(['put', 'wc', '2', '-w', 'json'], { endpoints: ep });
    const rev = (JSON.parse(put.stdout) as { header: { revision: number } }).header.revision;
    assert.equal((await etcdctl(['compact', String(rev)], { endpoints: ep })).code, 0);
    const theirs = await etcdctl(['watch', '--rev', '1', 'wc'], { endpoints: ep });
    const mine = await ts(ep, ['watch', '--rev', '1', 'wc']);
    assert.match(theirs.stderr, /^watch was canceled \(etcdserver: mvcc: required revision has been compacted\)\n/);
    assert.deepEqual({ code: mine.code, out: mine.out, err: mine.err }, { code: theirs.code, out: theirs.stdout, err: theirs.stderr });
  });

  test('watch -i: watchers from stdin, progress requests answered', async () => {
    const w = new Ts(ep, ['watch', '-i']);
    w.child.stdin.write('watch wi/a\n');
    w.child.stdin.write('nonsense\n');
    // A command but no key: said and skipped, as etcdctl does (the session goes on).
    w.child.stdin.write('watch -- echo hi\n');
    // The watcher exists once a put shows up; keep putting until it does (startup time varies with load).
    for (let i = 0; i < 40 && !w.out.includes('PUT\nwi/a\none\n'); i++) {
      await etcdctl(['put', 'wi/a', 'one'], { endpoints: ep });
      await new Promise((r) => setTimeout(r, 250));
    }
    await w.waitFor((o) => o.includes('PUT\nwi/a\none\n'));
    w.child.stdin.write('progress\n');
    await w.waitFor((o) => /progress notify: \d+\n/.test(o));
    assert.match(w.err, /Invalid command nonsense \(only support watch\)/);
    assert.match(w.err, /Invalid command watch -- echo hi \(bad number of arguments\)/);
    w.child.kill('SIGINT');
    assert.equal((await w.done).signal, 'SIGINT');
  });

  test('watch -i: a line etcdctl refuses ends the session at once, nothing said of the watches running', async () => {
    interface Session {
      write(text: string): void;
      stdout(): string;
      readonly done: Promise<{ code: number | null; stderr: string }>;
    }
    const tools: Record<string, () => Session> = {
      etcdctl: () => {
        const p = etcdctlBackground(['watch', '-i'], { endpoints: ep, keepStdinOpen: true, timeoutMs: 30_000 });
        return { write: (t) => p.write(t), stdout: () => p.stdout(), done: p.done };
      },
      'etcdctl-ts': () => {
        const p = new Ts(ep, ['watch', '-i']);
        return { write: (t) => p.child.stdin.write(t), stdout: () => p.out, done: p.done.then(({ code }) => ({ code, stderr: p.err })) };
      },
    };
    for (const line of ['watch --bogus', 'watch --rev x wr/a', 'watch wr/a --']) {
      const ends: Record<string, unknown> = {};
      for (const [tool, start] of Object.entries(tools)) {
        const w = start();
        w.write('watch wr/a\n');
        // The watch is live once a put shows up (startup time varies with load).
        for (let i = 0; i < 40 && !w.stdout().includes('PUT\nwr/a\n'); i++) {
          await etcdctl(['put', 'wr/a', 'x'], { endpoints: ep });
          await new Promise((r) => setTimeout(r, 250));
        }
        w.write(`${line}\n`);
        const { code, stderr } = await w.done;
        ends[tool] = { code, stderr };
      }
      assert.deepEqual(ends['etcdctl-ts'], ends['etcdctl'], line);
    }
  });

  test('lock runs a command under the lock; a held lock makes etcdctl wait until SIGINT', async () => {
    // As with etcdctl, "--" keeps the command's own flags from being parsed as etcdctl's.
    const run = await ts(ep, ['lock', 'tl', '--', 'sh', '-c', 'echo "key=$ETCD_LOCK_KEY"']);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^key=tl\/[0-9a-f]+\n$/);
    const holder = new Ts(ep, ['lock', 'tl']);
    await holder.waitFor((o) => /^tl\/[0-9a-f]+\n\n$/.test(o));
    const waiter = etcdctlBackground(['lock', 'tl'], { endpoints: ep, timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(waiter.stdout(), '');
    holder.child.kill('SIGINT');
    assert.deepEqual(await holder.done, { code: 0, signal: null });
    await waiter.waitFor((o) => o.startsWith('tl/'), 15_000);
    await waiter.stop();
  });

  test('elect: etcdctl observes etcdctl-ts campaigning; a second candidate waits', async () => {
    const observer = etcdctlBackground(['elect', '-l', 'te'], { endpoints: ep, timeoutMs: 40_000 });
    const first = new Ts(ep, ['elect', 'te', 'p1']);
    await first.waitFor((o) => /^te\/[0-9a-f]+\np1\n$/.test(o));
    await observer.waitFor((o) => o.includes('\np1\n'), 15_000);
    const second = new Ts(ep, ['elect', 'te', 'p2']);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(second.out, '');
    first.child.kill('SIGINT');
    assert.equal((await first.done).code, 0);
    await second.waitFor((o) => o.includes('\np2\n'));
    await observer.waitFor((o) => o.includes('\np2\n'), 15_000);
    second.child.kill('SIGINT');
    await second.done;
    await observer.stop();
  });

  test('make-mirror copies the keys under a prefix and replays later changes', async () => {
    const dest = await ws.startCluster({ kind: 'etcd-ts' });
    try {
      await etcdctl(['put', 'mm/a', '1'], { endpoints: ep });
      const mirror = new Ts(ep, ['make-mirror', '--prefix', 'mm/', '--dest-prefix', 'copy/', dest.member(0).endpoint]);
      await etcdctl(['put', 'mm/b', '2'], { endpoints: ep });
      await etcdctl(['del', 'mm/a'], { endpoints: ep });
      const deadline = Date.now() + 20_000;
      let keys = '';
      while (Date.now() < deadline) {
        keys = (await etcdctl(['get', 'copy/', '--prefix'], { endpoints: dest.member(0).endpoint })).stdout;
        if (keys === 'copy/b\n2\n') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(keys, 'copy/b\n2\n', mirror.err);
      mirror.child.kill('SIGINT');
      await mirror.done;
    } finally {
      await dest.close();
    }
  });
});
