/**
 * Free TCP ports on 127.0.0.1. etcd cannot listen on port 0 (its advertised
 * URLs must be known before it starts), so a port is found by binding port 0
 * and closing the socket. Another process may take the port in between: the
 * members retry their first start with new ports when that happens. Ports
 * handed out by this process are never handed out twice.
 */
import net from 'node:net';

const handedOut = new Set<number>();
/** Bound on attempts to find a port not already handed out by this process. */
const attemptsMax = 50;

function bindZero(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One port that was free a moment ago, never returned before by this process. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const port = await bindZero(host);
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
