/**
 * A fault-injecting TCP proxy for peer traffic: one listener in front of each
 * member's peer port (the member advertises the proxy's address as its peer
 * URL and listens elsewhere), and per DIRECTED link (from → to) a verdict:
 * pass, block, or delay by N ms.
 *
 * A proxy sees only that some process connected to member `to`. Which member
 * that process is, it finds the way `ss -p` does: the client end of the
 * connection is a socket inode in /proc/net/tcp, and the member whose
 * /proc/<pid>/fd holds that inode is the sender (Linux only; the members are
 * our own children). So one proxy per member is enough for any pair, for etcd
 * and etcd-ts alike, whatever their peer protocol.
 *
 * A connection from A to B's proxy carries A→B in the client-to-server
 * direction and B→A in the other (responses; etcd's stream GETs carry all
 * of B→A that way). Blocking a link:
 * - destroys the connections that carry it (bytes already in flight are
 *   lost, as in a partition that outlives TCP's retransmissions), and
 * - makes new connections blackholes in the blocked direction: accepted,
 *   bytes read and discarded, nothing delivered, nothing refused — peers find
 *   out through their own timeouts, as they would behind a partition.
 * Unblocking destroys the blackholed connections so that peers reconnect
 * cleanly. Delays keep the byte order of each direction.
 *
 * A flaky link ({ cutsPerSecond }) passes bytes but cuts each connection
 * that carries it at random, at that mean rate (checked every 100 ms): what
 * was in flight on it is lost and the peers reconnect — the effect packet
 * loss has on a TCP stream once retransmissions give up, in a burst. The
 * proxy cannot drop single raft messages: etcd-ts's peer traffic is HTTP/2
 * (HPACK-compressed headers, flow-control windows), so removing bytes from a
 * DATA frame would need HPACK decoding to find the raft streams and forged
 * WINDOW_UPDATEs to keep the windows right; and etcd's own stream encoding
 * would need the same for HTTP/1.1 chunking. A cut is the finest drop it has.
 *
 * Connections from processes that are not members (etcdctl, tests) always pass.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';
import net from 'node:net';

export type LinkVerdict = 'pass' | 'block' | { readonly delayMs: number } | { readonly cutsPerSecond: number };

/** Who the members are right now (pids change across restarts). */
export interface ProxyMember {
  readonly name: string;
  readonly pid: number | undefined;
}

export interface FaultNetOptions {
  /** Member name → the port its proxy listens on (the advertised peer port) and the member's own peer port. */
  readonly routes: readonly { readonly name: string; readonly listenPort: number; readonly targetPort: number }[];
  readonly members: () => readonly ProxyMember[];
  readonly host?: string;
  /** Randomness of flaky cuts, in [0, 1); Math.random by default. */
  readonly random?: () => number;
}

const flakyCheckMs = 100;

function cutRate(v: LinkVerdict): number {
  return typeof v === 'object' && 'cutsPerSecond' in v ? v.cutsPerSecond : 0;
}

/** The client end of a connection to listenPort from remotePort: its socket inode, from /proc/net/tcp. */
async function clientSocketInode(remotePort: number, listenPort: number): Promise<string | undefined> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
  for (const line of table.split('\n').slice(1)) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const rem = f[2];
    if (local === undefined || rem === undefined) continue;
    if (local.endsWith(`:${hex(remotePort)}`) && rem.endsWith(`:${hex(listenPort)}`)) return f[9];
  }
  return undefined;
}

async function ownerOf(inode: string, members: readonly ProxyMember[]): Promise<string | undefined> {
  const want = `socket:[${inode}]`;
  for (const m of members) {
    if (m.pid === undefined) continue;
    const dir = `/proc/${m.pid}/fd`;
    let fds: string[];
    try {
      fds = await readdir(dir);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if ((await readlink(`${dir}/${fd}`)) === want) return m.name;
      } catch {
        // The fd closed meanwhile.
      }
    }
  }
  return undefined;
}

/**
 * One direction of one proxied connection: forwards, drops, or delays chunks,
 * always in the order they came. Delayed chunks wait in one queue that a single
 * timer drains: a timer per chunk could fire out of order (each is set from the
 * loop's cached clock, not from Date.now()), and a chunk written ahead of an
 * earlier one corrupts the byte stream (a TLS record, a raft frame) in a way the
 * receiver may only notice many bytes later.
 */
class Pipe {
  private readonly waiting: { readonly chunk: Buffer; readonly dueMs: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    from: net.Socket,
    private readonly to: net.Socket,
    private readonly verdict: () => LinkVerdict,
  ) {
    from.on('data', (chunk: Buffer) => this.forward(chunk));
    to.once('close', () => clearTimeout(this.timer));
  }

  private forward(chunk: Buffer): void {
    const v = this.verdict();
    if (v === 'block') return;
    const delayMs = typeof v === 'object' && 'delayMs' in v ? v.delayMs : 0;
    if (delayMs === 0 && this.waiting.length === 0) {
      this.to.write(chunk);
      return;
    }
    const last = this.waiting[this.waiting.length - 1]?.dueMs ?? 0;
    this.waiting.push({ chunk, dueMs: Math.max(Date.now() + delayMs, last) });
    this.schedule();
  }

  private schedule(): void {
    const head = this.waiting[0];
    if (head === undefined || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      while (this.waiting.length > 0 && (this.waiting[0]?.dueMs ?? 0) <= now) {
        const next = this.waiting.shift();
        if (next !== undefined && !this.to.destroyed) this.to.write(next.chunk);
      }
      this.schedule();
    }, Math.max(0, head.dueMs - Date.now()));
  }
}

interface ProxiedConn {
  readonly from: string | undefined;
  readonly to: string;
  readonly client: net.Socket;
  readonly upstream: net.Socket;
}

/**
 * The proxies of one cluster and the verdicts of its links. Member names are
 * the link endpoints: block('m1', 'm2') stops what m1 sends to m2.
 */
export class FaultNet {
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<ProxiedConn>();
  private readonly verdicts = new Map<string, LinkVerdict>();
  private readonly host: string;
  private flakyTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: FaultNetOptions) {
    this.host = opts.host ?? '127.0.0.1';
  }

  async start(): Promise<void> {
    for (const r of this.opts.routes) {
      const server = net.createServer((client) => void this.accept(client, r.name, r.listenPort, r.targetPort));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.host, port: r.listenPort, exclusive: true }, () => resolve());
      });
      this.servers.push(server);
    }
  }

  verdict(from: string | undefined, to: string): LinkVerdict {
    if (from === undefined) return 'pass';
    return this.verdicts.get(`${from}>${to}`) ?? 'pass';
  }

  /** Sets the verdict of the directed link from → to. */
  set(from: string, to: string, v: LinkVerdict): void {
    const before = this.verdict(from, to);
    if (v === 'pass') this.verdicts.delete(`${from}>${to}`);
    else this.verdicts.set(`${from}>${to}`, v);
    const wasBlocked = before === 'block';
    const isBlocked = v === 'block';
    if (wasBlocked !== isBlocked) {
      // Both ways the link's bytes travel: from's connections to `to`, and to's connections to `from`.
      for (const c of this.conns) {
        if ((c.from === from && c.to === to) || (c.from === to && c.to === from)) this.drop(c);
      }
    }
    this.updateFlakyTimer();
  }

  private updateFlakyTimer(): void {
    const any = [...this.verdicts.values()].some((v) => cutRate(v) > 0);
    if (any && this.flakyTimer === undefined) {
      this.flakyTimer = setInterval(() => this.cutFlaky(), flakyCheckMs);
      this.flakyTimer.unref();
    } else if (!any && this.flakyTimer !== undefined) {
      clearInterval(this.flakyTimer);
      this.flakyTimer = undefined;
    }
  }

  /** Cuts each connection on a flaky link with the probability its rate gives one check interval. */
  private cutFlaky(): void {
    const random = this.opts.random ?? Math.random;
    for (const c of [...this.conns]) {
      if (c.from === undefined) continue;
      const rate = Math.max(cutRate(this.verdict(c.from, c.to)), cutRate(this.verdict(c.to, c.from)));
      if (rate > 0 && random() < (rate * flakyCheckMs) / 1000) this.drop(c);
    }
  }

  block(from: string, to: string): void {
    this.set(from, to, 'block');
  }
  unblock(from: string, to: string): void {
    this.set(from, to, 'pass');
  }
  delay(from: string, to: string, delayMs: number): void {
    this.set(from, to, { delayMs });
  }
  /** The link's connections are cut at random, cutsPerSecond on average each. */
  flaky(from: string, to: string, cutsPerSecond: number): void {
    this.set(from, to, { cutsPerSecond });
  }

  /** Blocks every link between name and the other members, both ways. */
  isolate(name: string): void {
    for (const r of this.opts.routes) {
      if (r.name === name) continue;
      this.block(name, r.name);
      this.block(r.name, name);
    }
  }

  /** Every link passes again. */
  heal(): void {
    for (const key of [...this.verdicts.keys()]) {
      const [from = '', to = ''] = key.split('>');
      this.set(from, to, 'pass');
    }
  }

  async close(): Promise<void> {
    this.verdicts.clear();
    this.updateFlakyTimer();
    for (const c of this.conns) this.drop(c);
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }

  private drop(c: ProxiedConn): void {
    this.conns.delete(c);
    c.client.destroy();
    c.upstream.destroy();
  }

  private async accept(client: net.Socket, to: string, listenPort: number, targetPort: number): Promise<void> {
    client.pause();
    client.on('error', () => undefined);
    let from: string | undefined;
    try {
      const inode = await clientSocketInode(client.remotePort ?? 0, listenPort);
      if (inode !== undefined) from = await ownerOf(inode, this.opts.members());
    } catch {
      // Not identifiable: treated as a non-member.
    }
    if (client.destroyed) return;
    const upstream = net.connect({ host: this.host, port: targetPort });
    upstream.on('error', () => undefined);
    const c: ProxiedConn = { from, to, client, upstream };
    this.conns.add(c);
    const end = (): void => {
      if (this.conns.has(c)) this.drop(c);
    };
    client.once('close', end);
    upstream.once('close', end);
    new Pipe(client, upstream, () => this.verdict(from, to));
    new Pipe(upstream, client, () => (from === undefined ? 'pass' : this.verdict(to, from)));
    client.resume();
  }
}
