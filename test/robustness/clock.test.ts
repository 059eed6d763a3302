/**
 * The clock fault's tool: a process started with MemberClocks' environment
 * reads its wall clock offset by what its file says, changed while it runs,
 * and its monotonic clock untouched.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MemberClocks, findLibfaketime } from './clock.js';

const lib = findLibfaketime();

/** Prints, each time a line comes on stdin, Date.now() minus the real time sent and performance.now(). */
const readerScript = `
process.stdin.setEncoding('utf8');
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  for (let i; (i = buf.indexOf('\\n')) >= 0; buf = buf.slice(i + 1)) {
    const real = Number(buf.slice(0, i));
    process.stdout.write(JSON.stringify({ skewMs: Date.now() - real, mono: performance.now() }) + '\\n');
  }
});
`;

test('a member under MemberClocks reads its wall clock as offset, changed at run time; its monotonic clock runs on', { skip: lib === undefined ? 'libfaketime is not installed (apt-get install libfaketime)' : false, timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clock-test-'));
  const child = spawn(process.execPath, ['-e', readerScript], { env: { ...process.env, ...new MemberClocks(dir, lib as string).env('m1') }, stdio: ['pipe', 'pipe', 'inherit'] });
  const clocks = new MemberClocks(dir, lib as string);
  try {
    const lines: { skewMs: number; mono: number }[] = [];
    let waiting: (() => void) | undefined;
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      pending += d;
      for (let i; (i = pending.indexOf('\n')) >= 0; pending = pending.slice(i + 1)) lines.push(JSON.parse(pending.slice(0, i)) as { skewMs: number; mono: number });
      waiting?.();
    });
    const ask = async (): Promise<{ skewMs: number; mono: number }> => {
      const n = lines.length;
      child.stdin.write(`${Date.now()}\n`);
      while (lines.length === n) await new Promise<void>((r) => (waiting = r));
      return lines[n] as { skewMs: number; mono: number };
    };
    const right = await ask();
    assert.ok(Math.abs(right.skewMs) < 1000, `starts right: ${right.skewMs} ms`);
    clocks.set('m1', -86_400_000);
    const behind = await ask();
    assert.ok(Math.abs(behind.skewMs + 86_400_000) < 1000, `a day behind: ${behind.skewMs} ms`);
    clocks.set('m1', 123_456);
    const ahead = await ask();
    assert.ok(Math.abs(ahead.skewMs - 123_456) < 1000, `123.456 s ahead: ${ahead.skewMs} ms`);
    assert.ok(right.mono <= behind.mono && behind.mono <= ahead.mono, 'the monotonic clock did not jump back');
    assert.ok(ahead.mono - right.mono < 10_000, `nor ahead: ${ahead.mono - right.mono} ms`);
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
