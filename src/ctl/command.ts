/**
 * The command tree and what a running command gets: its flags and
 * arguments, the printer, the output, stdin, and a client built from the
 * global flags the way etcdctl builds clientv3.Config.
 */
import { readFileSync } from 'node:fs';
import { Client, type ClientLogEntry, type ClientOptions } from '../client/index.js';
import type { FlagSpec, FlagValues } from './flags.js';
import { CtlExit, ExitCode, fail, type Output } from './output.js';
import type { Printer } from './printer.js';

export interface CommandSpec {
  readonly name: string;
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
}

export class Ctl {
  private clients: Client[] = [];
  /** The answer to etcdctl's "Password: " prompt, asked once before the command runs. */
  promptedPassword: string | undefined;

  constructor(
    readonly io: CtlIo,
    readonly flags: FlagValues,
    readonly printer: Printer,
    readonly dashAt: number,
  ) {}

  get out(): Output {
    return this.io.output;
  }

  println(s = ''): void {
    this.io.output.out(`${s}\n`);
  }

  get commandTimeoutMs(): number {
    return this.flags.durationMs('command-timeout');
  }

  get endpoints(): string[] {
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
  async connectedClient(endpoints: readonly string[] = this.endpoints, withAuth = true): Promise<Client> {
    const c = this.client(endpoints, withAuth);
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
    const serverName = f.string('discovery-srv');
    for (const [name, v] of [['cert', cert], ['key', key], ['cacert', cacert]] as const) {
      if (v === '' && f.changed.has(name)) fail(ExitCode.badArgs, `empty string is passed to --${name} option`);
    }
    const anyTls = cert !== '' || key !== '' || cacert !== '' || serverName !== '';
    const secure = anyTls || !f.bool('insecure-transport');
    const read = (p: string): Buffer | undefined => (p === '' ? undefined : readFileOr(p));
    const auth = withAuth ? this.auth() : undefined;
    return {
      endpoints,
      tls: secure ? { ca: read(cacert), cert: read(cert), key: read(key), servername: serverName === '' ? undefined : serverName, insecureSkipVerify: f.bool('insecure-skip-tls-verify') } : undefined,
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

  /** --user without a password: asks for it on stdin, as etcdctl's prompt does. */
  async promptPasswordIfNeeded(): Promise<void> {
    const user = this.flags.string('user');
    if (user === '' || this.flags.string('password') !== '' || user.includes(':')) return;
    this.io.output.out('Password: ');
    const line = await this.io.readLine();
    if (line === null) fail(ExitCode.error, 'EOF');
    this.promptedPassword = line.replace(/\r?\n$/, '');
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

function readFileOr(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(ExitCode.badArgs, code === 'ENOENT' ? `open ${path}: no such file or directory` : `open ${path}: ${String(err)}`);
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
