// FaultNet on its own: a proxy in front of an echo server, this test process
// as the member "a" that connects (the proxy finds it by its socket in /proc)
// and the echo server as "b". Directed verdicts: pass, delay, block one way or
// the other, unblock; and a process that is not a member always passes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { FaultNet, freePorts } from './index.js';

/** Connects, sends text, and resolves with what came back within waitMs ('' if nothing), and whether the socket closed. */
function roundTrip(port: number, text: string, waitMs: number): Promise<{ echoed: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let echoed = '';
    let closed = false;
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(text));
    s.setEncoding('utf8');
    s.on('error', () => undefined);
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ echoed, closed, ms: Date.now() - started });
    };
    s.on('data', (d: string) => {
      echoed += d;
      if (echoed.length >= text.length) finish();
    });
    s.on('close', () => {
      closed = true;
    });
    const timer = setTimeout(finish, waitMs);
  });
}

describe('harness: FaultNet', () => {
  let echo: net.Server;
  let received = 0;
  let fnet: FaultNet;
  let member: 'a' | 'none' = 'a';
  let proxyPort = 0;

  before(async () => {
    const [listenPort = 0, targetPort = 0] = await freePorts(2);
    proxyPort = listenPort;
    echo = net.createServer((s) => {
      s.on('error', () => undefined);
      s.on('data', (d) => {
        received += d.length;
        s.write(d);
      });
    });
    await new Promise<void>((r) => echo.listen(targetPort, '127.0.0.1', () => r()));
    fnet = new FaultNet({
      routes: [{ name: 'b', listenPort, targetPort }],
      members: () => [{ name: member, pid: process.pid }],
    });
    await fnet.start();
  });
  after(async () => {
    await fnet.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  test('passes, delays, blocks each direction, unblocks', async () => {
    assert.equal((await roundTrip(proxyPort, 'hello', 2_000)).echoed, 'hello');

    fnet.delay('a', 'b', 300);
    const delayed = await roundTrip(proxyPort, 'slow', 3_000);
    assert.equal(delayed.echoed, 'slow');
    assert.ok(delayed.ms >= 290, `echo after ${delayed.ms} ms`);
    fnet.unblock('a', 'b');

    fnet.block('a', 'b');
    const before = received;
    const blocked = await roundTrip(proxyPort, 'lost', 500);
    assert.deepEqual([blocked.echoed, received], ['', before], 'nothing reaches b');
    fnet.unblock('a', 'b');
    assert.equal((await roundTrip(proxyPort, 'again', 2_000)).echoed, 'again');

    fnet.block('b', 'a');
    const oneWay = await roundTrip(proxyPort, 'there', 500);
    assert.equal(oneWay.echoed, '', 'the answer does not come back');
    assert.equal(received, before + 'again'.length + 'there'.length, 'but the request arrived');
    fnet.heal();
    assert.equal((await roundTrip(proxyPort, 'healed', 2_000)).echoed, 'healed');
  });

  test('blocking cuts open connections; a non-member passes regardless', async () => {
    const s = net.connect({ host: '127.0.0.1', port: proxyPort });
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    // Identification is asynchronous: let the proxy see who connected.
    await new Promise((r) => setTimeout(r, 200));
    fnet.block('a', 'b');
    await closed;

    member = 'none';
    try {
      assert.equal((await roundTrip(proxyPort, 'stranger', 2_000)).echoed, 'stranger');
    } finally {
      member = 'a';
      fnet.heal();
    }
  });

  test('a flaky link cuts its connections at random; healing stops the cuts', async () => {
    fnet.flaky('a', 'b', 20);
    try {
      const s = net.connect({ host: '127.0.0.1', port: proxyPort });
      s.on('error', () => undefined);
      const started = Date.now();
      const closed = new Promise<number>((r) => s.once('close', () => r(Date.now() - started)));
      // 20 cuts a second: a connection survives 2 s with probability e^-40.
      const ms = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 2_000))]);
      s.destroy();
      assert.ok(ms >= 0, 'the connection was cut');
    } finally {
      fnet.heal();
    }
    const s = net.connect({ host: '127.0.0.1', port: proxyPort });
    s.on('error', () => undefined);
    let cut = false;
    s.once('close', () => (cut = true));
    await new Promise((r) => setTimeout(r, 600));
    s.destroy();
    assert.equal(cut, false, 'a healed link is not cut');
  });

  test('delays that start and end mid-stream keep the byte order', async () => {
    const s = net.connect({ host: '127.0.0.1', port: proxyPort });
    s.on('error', () => undefined);
    let echoed = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (echoed = Buffer.concat([echoed, d])));
    await new Promise<void>((r) => s.once('connect', () => r()));
    await new Promise((r) => setTimeout(r, 200));
    const sent: Buffer[] = [];
    try {
      for (let i = 0; i < 400; i++) {
        // Verdicts change under the stream: delays of different lengths, and none.
        if (i % 50 === 0) fnet.delay('a', 'b', 20 + ((i / 50) % 3) * 30);
        if (i % 50 === 30) fnet.unblock('a', 'b');
        const chunk = Buffer.from(`<${i}>`);
        sent.push(chunk);
        s.write(chunk);
        await new Promise((r) => setTimeout(r, 1));
        // A busy turn: the event loop's cached clock falls behind Date.now(), as on a loaded machine.
        const until = Date.now() + (i % 7);
        while (Date.now() < until);
      }
      const all = Buffer.concat(sent);
      const deadline = Date.now() + 5_000;
      while (echoed.length < all.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(echoed.toString(), all.toString());
    } finally {
      fnet.heal();
      s.destroy();
    }
  });
});
