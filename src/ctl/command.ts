/**
 * The command tree and what a running command gets: its flags and
 * arguments, the printer, the output, stdin, and a client built from the
 * global flags the way etcdctl builds clientv3.Config.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { Client, type ClientLogEntry, type ClientOptions } from '../client/index.js';
import type { SrvResolver } from '../base/index.js';
import { discoverEndpoints } from './discovery.js';
import { envName, type FlagSpec, type FlagValues } from './flags.js';
import { goPathError, goQuote } from './go-format.js';
import { CtlExit, ExitCode, fail, type Output } from './output.js';
import { newPrinter, type Printer } from './printer.js';

export interface CommandSpec {
  readonly name: string;
  /** What follows the command path in its usage line (cobra's Use without the name). */
  readonly params?: string;
  /** The one-line description of command lists and the NAME section. */
  readonly short: string;
  /** The DESCRIPTION section. */
  readonly long?: string;
  /** The usage line ends without " [flags]" (cobra's DisableFlagsInUseLine). */
  readonly noFlagsInUseLine?: boolean;
  readonly flags?: readonly FlagSpec[];
  /** Flags that subcommands inherit (cobra's persistent flags). */
  readonly persistentFlags?: readonly FlagSpec[];
  readonly subcommands?: readonly CommandSpec[];
  readonly run?: (ctl: Ctl, args: string[]) => Promise<void>;
  /** The command stops cleanly on SIGINT/SIGTERM (lock, elect); others die by the signal as etcdctl does. */
  readonly handlesInterrupt?: boolean;
}

export interface CtlIo {
  readonly output: Output;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads all of stdin. */
  readStdin(): Promise<string>;
  /** Reads stdin line by line (with the newline); null at end of input. */
  readLine(): Promise<string | null>;
  /** Aborted on SIGINT/SIGTERM. */
  readonly interrupt: AbortSignal;
  /** The raw argv after the program name (watch's exec parsing needs it). */
  readonly argv: readonly string[];
  /** Reads a secret line from the terminal with its echo off (speakeasy's way: `stty -echo` around the read). */
  readSecretLine(): Promise<string | null>;
  /** Operations on files and stopped members' data (they need server code, which src/cmd supplies). */
  offline(): Promise<OfflineOps>;
  /** DNS SRV lookups, for --discovery-srv. */
  readonly srv: SrvResolver;
}

/** snapshot status/restore, defrag --data-dir and migrate: what ctl cannot do over the client. */
export interface OfflineOps {
  snapshotStatus(path: string): Promise<SnapshotFileStatus>;
  snapshotRestore(o: SnapshotRestoreOptions): Promise<void>;
  /** Defragments <dataDir>/member/snap/db of a stopped member; calls waiting() if it is still locked after a second. */
  defragDataDir(dataDir: string, waiting: () => void): Promise<void>;
  /**
   * etcdctl 3.4's migrate up to the v2 keys, of which an etcd-ts data dir has
   * none: starts the transformer (if any), replays the snapshot and WAL's
   * membership and cluster version as etcd's v2 applier logs them, opens the
   * backend (waiting for the member's lock).
   */
  migrate(o: MigrateOptions): Promise<void>;
}

export interface SnapshotFileStatus {
  readonly hash: number;
  readonly revision: number;
  readonly totalKey: number;
  readonly totalSize: number;
}

export interface SnapshotRestoreOptions {
  readonly snapshotPath: string;
  readonly name: string;
  readonly dataDir: string;
  readonly walDir: string;
  readonly peerUrls: string;
  readonly initialCluster: string;
  readonly initialClusterToken: string;
  readonly skipHashCheck: boolean;
  /** zap's JSON lines of the restore, as etcdctl's logger writes them to stderr. */
  readonly log: (msg: string, fields: Record<string, unknown>) => void;
}

export interface MigrateOptions {
  readonly dataDir: string;
  readonly walDir: string;
  readonly transformer: string;
  /** Lines as zap's example logger prints them (stdout), without caller or time. */
  readonly log: (msg: string, fields: Record<string, unknown>) => void;
  /** Called when the member's lock is still held after a second. */
  readonly waiting: (dbPath: string) => void;
}

export class Ctl {
  private clients: Client[] = [];
  /** The answer to etcdctl's "Password: " prompt, asked once before the command runs. */
  promptedPassword: string | undefined;

  private printerMade: Printer | undefined;
  private clientConfigDone = false;
  /** The endpoints --discovery-srv found (set by clientConfig); the --endpoints flag when none. */
  private discovered: string[] = [];

  constructor(
    readonly io: CtlIo,
    readonly flags: FlagValues,
    readonly dashAt: number,
    /** The flags the command inherits (the globals and its parents' persistent ones). */
    private readonly inherited: readonly FlagSpec[] = [],
  ) {}

  /** The --write-out printer: made by clientConfig, or when a command that makes no client first prints. */
  get printer(): Printer {
    this.printerMade ??= newPrinter(this.flags.string('write-out'), this.flags.bool('hex'), this.io.output) ?? fail(ExitCode.badFeature, 'unsupported output format');
    return this.printerMade;
  }

  get out(): Output {
    return this.io.output;
  }

  println(s = ''): void {
    this.io.output.out(`${s}\n`);
  }

  get commandTimeoutMs(): number {
    return this.flags.durationMs('command-timeout');
  }

  /** The endpoints to dial: those DNS discovery found, else --endpoints (etcdctl's endpointsFromCmd). */
  get endpoints(): string[] {
    if (this.discovered.length > 0) return [...this.discovered];
    return this.flags.stringSlice('endpoints').map((e) => e.trim());
  }

  /** mustClientFromCmd: a client of the given (or the global) endpoints. */
  client(endpoints: readonly string[] = this.endpoints, withAuth = true): Client {
    const c = new Client(this.clientOptions(endpoints, withAuth));
    this.clients.push(c);
    return c;
  }

  /** A client of explicit options (make-mirror's destination); closed with the others. */
  clientFrom(options: ClientOptions): Client {
    const c = new Client(options);
    this.clients.push(c);
    return c;
  }

  /** A client that has authenticated when credentials were given (clientv3.New does this while dialling). */
  async connectedClient(endpoints?: readonly string[], withAuth = true, extra?: Partial<ClientOptions>): Promise<Client> {
    await this.clientConfig();
    // The default only now: clientConfig may have discovered the endpoints.
    const c = this.clientFrom({ ...this.clientOptions(endpoints ?? this.endpoints, withAuth), ...extra });
    try {
      await c.conn.authenticate({ timeoutMs: this.flags.durationMs('dial-timeout') });
    } catch (err) {
      fail(ExitCode.badConnection, err instanceof Error ? err.message : String(err));
    }
    return c;
  }

  clientOptions(endpoints: readonly string[], withAuth: boolean): ClientOptions {
    const f = this.flags;
    const cert = f.string('cert');
    const key = f.string('key');
    const cacert = f.string('cacert');
    // The discovery domain names the server's certificate only when insecure discovery is off.
    const serverName = f.bool('insecure-discovery') ? '' : f.string('discovery-srv');
    this.checkTlsFlags();
    const anyTls = cert !== '' || key !== '' || cacert !== '' || serverName !== '';
    const secure = anyTls || !f.bool('insecure-transport');
    const read = (p: string): Buffer | undefined => (p === '' ? undefined : readFileOr(p));
    const auth = withAuth ? this.auth() : undefined;
    const files = secure ? checkedTlsFiles(cert, key, read(cacert), read(cert), read(key)) : undefined;
    return {
      endpoints,
      tls: files !== undefined ? { ...files, servername: serverName === '' ? undefined : serverName, insecureSkipVerify: f.bool('insecure-skip-tls-verify') } : undefined,
      dialTimeoutMs: f.durationMs('dial-timeout'),
      keepaliveTimeMs: f.durationMs('keepalive-time'),
      keepaliveTimeoutMs: f.durationMs('keepalive-timeout'),
      username: auth?.username,
      password: auth?.password,
      logger: (e) => this.log(e),
    };
  }

  private auth(): { username: string; password: string } | undefined {
    const user = this.flags.string('user');
    const password = this.flags.string('password');
    if (user === '') return undefined;
    if (password !== '') return { username: user, password };
    const colon = user.indexOf(':');
    if (colon < 0) return { username: user, password: this.promptedPassword ?? '' };
    return { username: user.slice(0, colon), password: user.slice(colon + 1) };
  }

  /**
   * What etcdctl's clientConfigFromCmd does before the first client, in its
   * order: with --debug, the inherited flags as ETCDCTL_* lines on stderr;
   * the endpoints (DNS discovery); the TLS file flags checked; for --user
   * without a password, the "Password: " prompt; the --write-out printer
   * made, so that an unknown format fails before any request. Done once.
   */
  async clientConfig(): Promise<void> {
    if (this.clientConfigDone) return;
    this.clientConfigDone = true;
    if (this.flags.bool('debug')) {
      const lines = [...this.inherited].sort((a, b) => (a.name < b.name ? -1 : 1)).map((s) => `${envName(s.name)}=${this.flags.display(s.name)}\n`);
      this.io.output.err(lines.join(''));
    }
    await this.discoverEndpoints();
    this.checkTlsFlags();
    const user = this.flags.string('user');
    if (user !== '' && this.flags.string('password') === '' && !user.includes(':')) this.promptedPassword = await this.askSecret('Password: ');
    void this.printer;
  }

  /** etcdctl's keyAndCertFromCmd: a TLS file flag given as an empty string is refused. */
  private checkTlsFlags(): void {
    for (const name of ['cert', 'key', 'cacert']) {
      if (this.flags.string(name) === '' && this.flags.changed.has(name)) fail(ExitCode.badArgs, `empty string is passed to --${name} option`);
    }
  }

  /** --discovery-srv: the endpoints from DNS; http ones dropped (and said so) unless --insecure-discovery. */
  private async discoverEndpoints(): Promise<void> {
    const domain = this.flags.string('discovery-srv');
    if (domain === '') return;
    let eps: string[];
    try {
      eps = await discoverEndpoints(this.io.srv, 'etcd-client', domain, this.flags.string('discovery-srv-name'));
    } catch (e) {
      return fail(ExitCode.error, (e as Error).message);
    }
    if (!this.flags.bool('insecure-discovery')) {
      eps = eps.filter((ep) => {
        if (!ep.startsWith('http://')) return true;
        this.io.output.err(`ignoring discovered insecure endpoint ${goQuote(ep)}\n`);
        return false;
      });
    }
    this.discovered = eps;
  }

  /** speakeasy.Ask: the prompt, a line read with the echo off, then a newline. */
  async askSecret(prompt: string): Promise<string> {
    this.io.output.out(prompt);
    const line = await this.io.readSecretLine();
    this.io.output.out('\n');
    return (line ?? '').replace(/\r?\n$/, '');
  }

  /** clientv3's zap warnings go to stderr as JSON lines, as etcdctl shows them. */
  private log(e: ClientLogEntry): void {
    if (e.level === 'debug' || (e.level === 'info' && !this.flags.bool('debug'))) return;
    const fields = Object.entries(e.fields)
      .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
      .join('');
    const caller = e.msg.startsWith('retrying of unary invoker') ? 'clientv3/retry_interceptor.go:62' : 'clientv3/client.go:0';
    this.io.output.err(`{"level":"${e.level}","ts":"${new Date().toISOString()}","caller":"${caller}","msg":${JSON.stringify(e.msg)}${fields}}\n`);
  }

  closeClients(): void {
    for (const c of this.clients) c.close();
    this.clients = [];
  }
}

/**
 * The CA, certificate and key as etcdctl's clientv3 would load them, or the
 * error it stops with (exit 128), in Go's words: a certificate without its
 * key or the other way round, a key that is not the certificate's, a file
 * with no PEM data, a CA file holding something other than certificates.
 */
function checkedTlsFiles(certPath: string, keyPath: string, ca: Buffer | undefined, cert: Buffer | undefined, key: Buffer | undefined): { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined } {
  if ((cert === undefined) !== (key === undefined)) fail(ExitCode.badArgs, `KeyFile and CertFile must both be present[key: ${keyPath}, cert: ${certPath}]`);
  if (cert !== undefined && key !== undefined) {
    if (!cert.includes('-----BEGIN')) fail(ExitCode.badArgs, 'tls: failed to find any PEM data in certificate input');
    if (!key.includes('-----BEGIN')) fail(ExitCode.badArgs, 'tls: failed to find any PEM data in key input');
    try {
      createSecureContext({ cert, key });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      fail(ExitCode.badArgs, code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' ? 'tls: private key does not match public key' : `tls: ${(e as Error).message}`);
    }
  }
  if (ca !== undefined) {
    // Go's NewCertPool parses every PEM block as a certificate.
    for (const m of ca.toString('latin1').matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g)) {
      let ok = m[1] === 'CERTIFICATE';
      if (ok) {
        try {
          new X509Certificate(Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64'));
        } catch {
          ok = false;
        }
      }
      if (!ok) fail(ExitCode.badArgs, 'x509: malformed tbs certificate');
    }
  }
  return { ca, cert, key };
}

function readFileOr(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    return fail(ExitCode.badArgs, goPathError(path, err));
  }
}

/** A client error as etcdctl prints it (its message is clientv3's text already). */
export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Awaits a client call; a failure ends the command with code and the error's text (wrapped as etcdctl words it). */
export async function must<T>(p: Promise<T>, code: number = ExitCode.error, wrap: (m: string) => string = (m) => m): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof CtlExit) throw err;
    return fail(code, wrap(errText(err)));
  }
}
