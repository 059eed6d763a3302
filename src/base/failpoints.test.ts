import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { failpoint, failpointsArmed, parseFailpoints } from './index.js';

test('failpoints: parse names, actions and hit counts', () => {
  const t = parseFailpoints(' raftBeforeSave=crash, backendAfterCommit=sleep(250)@3 ,');
  assert.deepEqual(t.get('raftBeforeSave'), { action: { kind: 'crash' }, hit: 1 });
  assert.deepEqual(t.get('backendAfterCommit'), { action: { kind: 'sleep', ms: 250 }, hit: 3 });
  assert.equal(t.size, 2);
  assert.equal(parseFailpoints('').size, 0);
});

test('failpoints: @* fires on every hit', () => {
  assert.deepEqual(parseFailpoints('beforeSendWatchResponse=sleep(1000)@*').get('beforeSendWatchResponse'), { action: { kind: 'sleep', ms: 1000 }, hit: 0 });
  assert.throws(() => parseFailpoints('beforeSyncWatchers=sleep(10)@'), /cannot parse/);
});

test('failpoints: a hold site returns the time to wait instead of blocking, once or on every hit', () => {
  const base = pathToFileURL(resolve(import.meta.dirname, 'index.js')).href;
  const script = `import { armFailpoints, failpointHoldMs } from ${JSON.stringify(base)};
const out = [];
for (let i = 0; i < 3; i++) out.push(failpointHoldMs('beforeSyncWatchers'));
armFailpoints('beforeSendWatchResponse=sleep(40)@*');
for (let i = 0; i < 3; i++) out.push(failpointHoldMs('beforeSendWatchResponse'));
process.stdout.write(out.join(' ') + '\\n');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ETCD_TS_FAILPOINTS: 'beforeSyncWatchers=sleep(25)@2' }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '0 25 0 40 40 40\n');
  assert.equal(r.stderr.match(/failpoint beforeSyncWatchers: hold 25 ms\n/g)?.length, 1);
  assert.equal(r.stderr.match(/failpoint beforeSendWatchResponse: hold 40 ms \(every hit\)/g)?.length, 1);
});

test('failpoints: a drop site loses its item with the armed probability; drop(P) is for drop sites only', () => {
  assert.deepEqual(parseFailpoints('peerBeforeSendMessage=drop(50)@*').get('peerBeforeSendMessage'), { action: { kind: 'drop', percent: 50 }, hit: 0 });
  assert.throws(() => parseFailpoints('raftBeforeSave=drop(50)'), /not a drop site/);
  assert.throws(() => parseFailpoints('peerBeforeSendMessage=sleep(10)'), /takes only drop/);
  assert.throws(() => parseFailpoints('peerBeforeSendMessage=drop(0)@*'), /P in 1\.\.100/);
  assert.throws(() => parseFailpoints('peerBeforeSendMessage=drop(101)@*'), /P in 1\.\.100/);
  const base = pathToFileURL(resolve(import.meta.dirname, 'index.js')).href;
  const script = `import { armFailpoints, failpointDrops } from ${JSON.stringify(base)};
const count = () => { let n = 0; for (let i = 0; i < 2000; i++) if (failpointDrops('peerBeforeSendMessage')) n++; return n; };
const out = [count()];
armFailpoints('peerBeforeSendMessage=drop(100)@*'); out.push(count());
armFailpoints('peerBeforeSendMessage=drop(50)@*'); out.push(count());
armFailpoints(''); out.push(count());
process.stdout.write(out.join(' ') + '\\n');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const [none, all, half, after] = r.stdout.trim().split(' ').map(Number) as [number, number, number, number];
  assert.deepEqual([none, all, after], [0, 2000, 0]);
  // 2000 draws at 50 %: outside 800..1200 with probability below 1e-18.
  assert.ok(half > 800 && half < 1200, `${half} of 2000 dropped at 50 %`);
  assert.equal(r.stderr.match(/failpoint peerBeforeSendMessage: drop 100 % \(every hit\)/g)?.length, 1);
});

test('failpoints: a corrupt site alters its item when armed; corrupt is for corrupt sites only', () => {
  assert.deepEqual(parseFailpoints('mvccBeforePutValue=corrupt@3').get('mvccBeforePutValue'), { action: { kind: 'corrupt' }, hit: 3 });
  assert.throws(() => parseFailpoints('raftBeforeSave=corrupt'), /not a corrupt site/);
  assert.throws(() => parseFailpoints('mvccBeforePutValue=crash'), /takes only corrupt/);
  assert.throws(() => parseFailpoints('peerBeforeSendMessage=corrupt'), /takes only drop/);
  const base = pathToFileURL(resolve(import.meta.dirname, 'index.js')).href;
  const script = `import { armFailpoints, failpointCorrupts } from ${JSON.stringify(base)};
const out = [];
for (let i = 0; i < 4; i++) out.push(failpointCorrupts('mvccBeforePutValue') ? 1 : 0);
armFailpoints('');
out.push(failpointCorrupts('mvccBeforePutValue') ? 1 : 0);
process.stdout.write(out.join(' ') + '\\n');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ETCD_TS_FAILPOINTS: 'mvccBeforePutValue=corrupt@2' }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '0 1 0 0 0\n');
  assert.match(r.stderr, /failpoint mvccBeforePutValue: corrupt\n/);
});

test('failpoints: an unknown name or a malformed term is refused', () => {
  assert.throws(() => parseFailpoints('raftBeforeSav=crash'), /unknown failpoint "raftBeforeSav"/);
  assert.throws(() => parseFailpoints('raftBeforeSave=panic'), /cannot parse/);
  assert.throws(() => parseFailpoints('raftBeforeSave=crash@0'), /hit count starts at 1/);
});

test('failpoints: unarmed in a normal run, where a site does nothing', () => {
  assert.equal(failpointsArmed(), false);
  failpoint('raftBeforeSave');
});

/** Runs a child that passes raftBeforeSave three times, printing after each pass. */
function runChild(env: string): { stdout: string; stderr: string; signal: NodeJS.Signals | null; status: number | null } {
  const base = pathToFileURL(resolve(import.meta.dirname, 'index.js')).href;
  const script = `import { failpoint } from ${JSON.stringify(base)};
for (let i = 1; i <= 3; i++) { failpoint('raftBeforeSave'); process.stdout.write('pass ' + i + '\\n'); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ETCD_TS_FAILPOINTS: env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, signal: r.signal, status: r.status };
}

test('failpoints: crash@2 kills the process with SIGKILL on the second hit', () => {
  const r = runChild('raftBeforeSave=crash@2');
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.stdout, 'pass 1\n');
  assert.match(r.stderr, /failpoint raftBeforeSave: crash/);
});

test('failpoints: sleep fires once and the process goes on', () => {
  const started = Date.now();
  const r = runChild('raftBeforeSave=sleep(300)');
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'pass 1\npass 2\npass 3\n');
  assert.equal(r.stderr.match(/failpoint raftBeforeSave: sleep 300 ms/g)?.length, 1);
  assert.ok(Date.now() - started >= 300);
});

test('failpoints: a bad variable stops the process at startup', () => {
  const r = runChild('nope=crash');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown failpoint "nope"/);
});

test('failpoints: armFailpoints replaces the table at run time, hit counts starting over', () => {
  const base = pathToFileURL(resolve(import.meta.dirname, 'index.js')).href;
  const script = `import { armFailpoints, failpoint, failpointsArmed } from ${JSON.stringify(base)};
failpoint('raftAfterSave'); failpoint('raftAfterSave');
armFailpoints('raftAfterSave=sleep(50)@2');
process.stdout.write(String(failpointsArmed()) + '\\n');
for (let i = 1; i <= 3; i++) { failpoint('raftAfterSave'); process.stdout.write('pass ' + i + '\\n'); }
try { armFailpoints('nope=crash'); } catch (e) { process.stdout.write('refused\\n'); }
armFailpoints('');
process.stdout.write(String(failpointsArmed()) + '\\n');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ETCD_TS_FAILPOINTS: '' }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'true\npass 1\npass 2\npass 3\nrefused\nfalse\n');
  assert.equal(r.stderr.match(/failpoint raftAfterSave: sleep 50 ms/g)?.length, 1);
});

test('failpoints: etcd-ts re-arms from ETCD_TS_FAILPOINTS_FILE on SIGUSR2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'failpoints-'));
  const file = join(dir, 'fp');
  const script = resolve(import.meta.dirname, '../cmd/etcd-ts.js');
  try {
    writeFileSync(file, 'raftAfterSave=sleep(10)@1000000');
    const child = spawn(process.execPath, [script, '--data-dir', join(dir, 'data'), '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:2379', '--listen-peer-urls', 'http://127.0.0.1:0'], {
      env: { ...process.env, ETCD_TS_FAILPOINTS_FILE: file },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const deadline = Date.now() + 30_000;
      // The handler is installed before main runs: once the member logged anything, it is there.
      while (stderr === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      child.kill('SIGUSR2');
      while (!/failpoints: armed/.test(stderr) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      assert.match(stderr, /failpoints: armed raftAfterSave=sleep\(10\)@1000000/);
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
