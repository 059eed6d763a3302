/**
 * Free TCP ports on 127.0.0.1. etcd cannot listen on port 0 (its advertised
 * URLs must be known before it starts), so a port is chosen here and handed to
 * the member, which binds it later, sometimes much later (a member added with
 * `member add` starts after the cluster has agreed on its peer URL).
 *
 * Ports are drawn at random from below the kernel's ephemeral range: a port
 * found by binding port 0 comes from that range, where any outgoing connection
 * (the tests open thousands) can take it before the member listens. Ports
 * below it are taken only by something that binds them on purpose, which is
 * what the exact bind here checks. Another test process may still draw the
 * same port in between; members retry their first start with new ports when
 * that happens. Ports handed out by this process are never handed out twice.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';

const handedOut = new Set<number>();
/** Bound on attempts to find a port not already handed out or taken. */
const attemptsMax = 200;
/** The lowest port drawn: above the well-known and most registered services. */
const drawLow = 10_000;

/** First port of Linux's ephemeral range, or undefined where it cannot be read or leaves no room below. */
function ephemeralLow(): number | undefined {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && Number.isInteger(low) && low > drawLow + 1000 ? low : undefined;
  } catch {
    return undefined;
  }
}
const drawHigh = ephemeralLow();

/** Binds `port` (0: any) exclusively and releases it; the port bound, or 0 when it was taken. */
function tryBind(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (port !== 0 && (err.code === 'EADDRINUSE' || err.code === 'EACCES')) resolve(0);
      else reject(err);
    });
    srv.listen({ host, port, exclusive: true }, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(bound));
    });
  });
}

/** One port that was free a moment ago, never returned before by this process. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const wanted = drawHigh === undefined ? 0 : drawLow + Math.floor(Math.random() * (drawHigh - drawLow));
    if (handedOut.has(wanted)) continue;
    const port = await tryBind(host, wanted);
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no new free port after ${attemptsMax} attempts`);
}

/** n distinct free ports. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort(host));
  return ports;
}
