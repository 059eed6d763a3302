/**
 * Client: one Connection (endpoints, balancing, failover, auth token) and the
 * services over it.
 */
import { Auth } from './auth.js';
import { Cluster } from './cluster.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { KV } from './kv.js';
import { Lease } from './lease.js';
import { Maintenance } from './maintenance.js';
import { Watch } from './watch.js';

export type ClientOptions = ConnectionOptions;

export class Client {
  readonly conn: Connection;
  readonly kv: KV;
  readonly watch: Watch;
  readonly lease: Lease;
  readonly cluster: Cluster;
  readonly maintenance: Maintenance;
  readonly auth: Auth;

  constructor(options: ClientOptions) {
    this.conn = new Connection(options);
    this.kv = new KV(this.conn);
    this.watch = new Watch(this.conn);
    this.lease = new Lease(this.conn);
    this.cluster = new Cluster(this.conn);
    this.maintenance = new Maintenance(this.conn);
    this.auth = new Auth(this.conn);
  }

  /**
   * A connected client, as clientv3.New: authenticates first when it has
   * credentials; without them, waits (up to dialTimeoutMs) for one endpoint.
   */
  static async connect(options: ClientOptions): Promise<Client> {
    const c = new Client(options);
    try {
      await c.conn.authenticate({ timeoutMs: positive(options.dialTimeoutMs) });
      return c;
    } catch (err) {
      c.close();
      throw err;
    }
  }

  get endpoints(): readonly string[] {
    return this.conn.endpoints;
  }

  /** Replaces the endpoints with the client URLs of the current members (clientv3's Sync). */
  async syncEndpoints(): Promise<void> {
    const resp = await this.cluster.memberList();
    const urls = resp.members.flatMap((m) => m.clientURLs);
    if (urls.length > 0) this.conn.setEndpoints(urls);
  }

  close(): void {
    this.watch.close();
    this.lease.close();
    this.conn.close();
  }
}

function positive(n: number | undefined): number | undefined {
  return n !== undefined && n > 0 ? n : undefined;
}
