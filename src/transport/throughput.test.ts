// Throughput between two transports on loopback, in one process (both ends
// share one core's event loop, so these are lower bounds for two processes).
// The test asserts that sustained traffic of every message size arrives
// whole and nothing is reported unreachable; the rates go to the test's
// diagnostics only (performance is measured by benchmarks, never asserted in
// tests). TRANSPORT_BENCH_MS=3000 runs each case longer.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { raftpb } from '../pb/index.js';
import { connectAll, heartbeat, msgApp, startMember, waitFor, waitMesh, type Member } from './testing.js';

const caseMs = Number(process.env['TRANSPORT_BENCH_MS'] ?? '600');

interface Figures {
  messages: number;
  bytes: number;
  seconds: number;
}

/**
 * Sends make(i) as fast as the receiver keeps up, keeping at most `window`
 * messages in flight (below the 4096 queue bound, so nothing is dropped).
 */
async function pump(a: Member, b: Member, make: (i: number) => raftpb.Message, window: number, perTurn: number): Promise<Figures> {
  const base = b.received.length;
  let sent = 0;
  let bytes = 0;
  const started = performance.now();
  while (performance.now() - started < caseMs) {
    const inFlight = sent - (b.received.length - base);
    if (inFlight < window) {
      const batch: raftpb.Message[] = [];
      for (let i = 0; i < Math.min(perTurn, window - inFlight); i++) {
        const m = make(sent + i);
        bytes += m.entries.reduce((n, e) => n + e.data.length, 0);
        batch.push(m);
      }
      sent += batch.length;
      a.t.send(batch);
    }
    await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => b.received.length - base === sent, 'the tail of the run', 10_000);
  const seconds = (performance.now() - started) / 1000;
  b.received.length = 0;
  return { messages: sent, bytes, seconds };
}

function report(t: TestContext, what: string, f: Figures): void {
  const rate = Math.round(f.messages / f.seconds);
  const mbs = (f.bytes / 1e6 / f.seconds).toFixed(1);
  t.diagnostic(`${what}: ${f.messages} messages in ${f.seconds.toFixed(2)} s = ${rate} msg/s, ${mbs} MB/s of entry data`);
}

test('sustained traffic between two transports on loopback arrives whole', async (t) => {
  for (const frameCrc of [true, false]) {
    const ms = await Promise.all([1n, 2n].map((id) => startMember(id, { tuning: { frameCrc } })));
    const [a, b] = ms as [Member, Member];
    try {
      connectAll(ms);
      await waitMesh(ms);
      const crc = frameCrc ? 'crc' : 'no crc';
      const small = await pump(a, b, (i) => heartbeat(1n, 2n, i + 1), 3000, 1000);
      report(t, `heartbeats (${crc})`, small);
      const entry = randomBytes(1024);
      const kib = await pump(a, b, (i) => msgApp(1n, 2n, i, entry), 2000, 500);
      report(t, `MsgApp 1 KiB (${crc})`, kib);
      const block = randomBytes(64 * 1024);
      const k64 = await pump(a, b, (i) => msgApp(1n, 2n, i, block), 64, 16);
      report(t, `MsgApp 64 KiB (${crc})`, k64);
      const mibBlock = randomBytes(1024 * 1024);
      const mib = await pump(a, b, (i) => msgApp(1n, 2n, i, mibBlock), 8, 4);
      report(t, `MsgApp 1 MiB (${crc})`, mib);
      for (const f of [small, kib, k64, mib]) assert.ok(f.messages > 0, 'every case delivered messages');
      assert.deepEqual(a.unreachable, [], 'nothing dropped');
    } finally {
      await Promise.all(ms.map((m) => m.t.stop()));
    }
  }
});
