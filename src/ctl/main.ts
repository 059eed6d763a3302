/**
 * etcdctl-ts's entry, cobra's way: finds the command (prefix matching, and
 * "Did you mean this?" for a mistyped one), parses global and command flags
 * (ETCDCTL_* for unset global ones), answers --help, `help <command>` and
 * bare command groups with the usage page, runs the command, and turns its
 * outcome into etcdctl's "Error: ..." line and exit code.
 */
import { Ctl, type CommandSpec, type CtlIo } from './command.js';
import { authCommand, roleCommand, userCommand } from './commands/auth.js';
import { checkCommand } from './commands/check.js';
import { completionCommand } from './commands/completion.js';
import { alarmCommand, defragCommand, endpointCommand, memberCommand, moveLeaderCommand, versionCommand } from './commands/cluster.js';
import { electCommand, lockCommand } from './commands/concurrency.js';
import { compactionCommand, delCommand, getCommand, putCommand, txnCommand } from './commands/kv.js';
import { leaseCommand } from './commands/lease.js';
import { makeMirrorCommand } from './commands/mirror.js';
import { migrateCommand, snapshotCommand } from './commands/snapshot.js';
import { watchCommand } from './commands/watch.js';
import { applyEnv, FlagError, parseFlags, type FlagSpec } from './flags.js';
import { commandFlags, suggestions, usagePage, type CommandPath } from './help.js';
import { CtlExit, ExitCode } from './output.js';

export const globalFlags: readonly FlagSpec[] = [
  { name: 'endpoints', kind: 'stringSlice', def: '127.0.0.1:2379', usage: 'gRPC endpoints' },
  { name: 'debug', kind: 'bool', def: 'false', usage: 'enable client-side debug logging' },
  { name: 'write-out', kind: 'string', def: 'simple', short: 'w', usage: 'set the output format (fields, json, protobuf, simple, table)' },
  { name: 'hex', kind: 'bool', def: 'false', usage: 'print byte strings as hex encoded strings' },
  { name: 'dial-timeout', kind: 'duration', def: '2s', usage: 'dial timeout for client connections' },
  { name: 'command-timeout', kind: 'duration', def: '5s', usage: 'timeout for short running command (excluding dial timeout)' },
  { name: 'keepalive-time', kind: 'duration', def: '2s', usage: 'keepalive time for client connections' },
  { name: 'keepalive-timeout', kind: 'duration', def: '6s', usage: 'keepalive timeout for client connections' },
  { name: 'insecure-transport', kind: 'bool', def: 'true', usage: 'disable transport security for client connections' },
  { name: 'insecure-discovery', kind: 'bool', def: 'true', usage: 'accept insecure SRV records describing cluster endpoints' },
  { name: 'insecure-skip-tls-verify', kind: 'bool', def: 'false', usage: 'skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)' },
  { name: 'cert', kind: 'string', def: '', usage: 'identify secure client using this TLS certificate file' },
  { name: 'key', kind: 'string', def: '', usage: 'identify secure client using this TLS key file' },
  { name: 'cacert', kind: 'string', def: '', usage: 'verify certificates of TLS-enabled secure servers using this CA bundle' },
  { name: 'user', kind: 'string', def: '', usage: 'username[:password] for authentication (prompt if password is not supplied)' },
  { name: 'password', kind: 'string', def: '', usage: 'password for authentication (if this option is used, --user option shouldn\'t include password)' },
  { name: 'discovery-srv', kind: 'string', def: '', short: 'd', usage: 'domain name to query for SRV records describing cluster endpoints' },
  { name: 'discovery-srv-name', kind: 'string', def: '', usage: 'service name to query when using DNS discovery' },
];

/** cobra's help command: the usage page of the command its arguments name. */
const helpCommand: CommandSpec = {
  name: 'help',
  params: '[command]',
  short: 'Help about any command',
  long: `Help provides help for any command in the application.
Simply type etcdctl help [path to command] for full details.`,
  run: (ctl, args) => {
    const found = findPath(args, []);
    if ('unknown' in found) {
      ctl.io.output.err(`Unknown help topic [${args.map(goBacktickQuote).join(' ')}]\n`);
      // The root's --help flag exists only once the root itself runs: its page lacks the line.
      ctl.io.output.out(usagePage(at([]), false));
    } else {
      ctl.io.output.out(usagePage(at(found.path)));
    }
    return Promise.resolve();
  },
};

export const rootCommands: readonly CommandSpec[] = [
  getCommand,
  putCommand,
  delCommand,
  txnCommand,
  compactionCommand,
  alarmCommand,
  defragCommand,
  endpointCommand,
  moveLeaderCommand,
  watchCommand,
  versionCommand,
  leaseCommand,
  memberCommand,
  snapshotCommand,
  makeMirrorCommand,
  migrateCommand,
  lockCommand,
  electCommand,
  authCommand,
  userCommand,
  roleCommand,
  checkCommand,
  completionCommand(() => ({ roots: rootCommands, globals: globalFlags })),
  helpCommand,
];

function at(path: readonly CommandSpec[]): CommandPath {
  return { path, globalFlags, rootCommands };
}

/** Go's %#q of a string: backquoted when it can be, else double-quoted. */
function goBacktickQuote(s: string): string {
  return /^[^`\p{C}]*$/u.test(s) ? `\`${s}\`` : JSON.stringify(s);
}

/**
 * The first word of args that is not a flag or a flag's value, as cobra's
 * stripFlags sees them: "--name" or a lone shorthand "-x" without "=" takes
 * the next word unless it is a known bool flag. So does an unknown flag, and
 * --help / -h, which is not defined yet while cobra searches. Empty words are
 * passed over (they stay among the command's arguments).
 */
function firstWord(args: readonly string[], specs: readonly FlagSpec[]): { word: string; index: number } | undefined {
  const noValue = new Set<string>();
  for (const s of specs) {
    if (s.kind !== 'bool') continue;
    noValue.add(`--${s.name}`);
    if (s.short !== undefined) noValue.add(`-${s.short}`);
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') return undefined;
    if (a.startsWith('-')) {
      if (!a.includes('=') && !noValue.has(a) && (a.startsWith('--') || a.length === 2)) i++;
      continue;
    }
    if (a === '') continue;
    return { word: a, index: i };
  }
  return undefined;
}

/** cobra's lookup with EnablePrefixMatching: an exact name, or the only command it prefixes. */
function findCommand(list: readonly CommandSpec[], word: string): CommandSpec | undefined {
  const exact = list.find((c) => c.name === word);
  if (exact !== undefined) return exact;
  const matches = list.filter((c) => c.name.startsWith(word));
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * cobra's Find: walks command words down the tree; returns the command path
 * and the arguments left for it, or the unknown word when the root has none
 * by that name (below the root, an unknown word is an argument).
 */
function findPath(args: readonly string[], flags: readonly FlagSpec[]): { path: CommandSpec[]; rest: string[] } | { unknown: string } {
  const path: CommandSpec[] = [];
  let rest = [...args];
  let specs = [...globalFlags, ...flags];
  let list: readonly CommandSpec[] = rootCommands;
  for (;;) {
    const next = firstWord(rest, specs);
    if (next === undefined) break;
    const c = findCommand(list, next.word);
    if (c === undefined) {
      if (path.length === 0) return { unknown: next.word };
      break;
    }
    path.push(c);
    rest = [...rest.slice(0, next.index), ...rest.slice(next.index + 1)];
    specs = [...specs, ...(c.flags ?? []), ...(c.persistentFlags ?? [])];
    if (c.subcommands === undefined) break;
    list = c.subcommands;
  }
  return { path, rest };
}

/** Runs etcdctl-ts with args (without the program name); resolves with the exit code. */
export async function run(args: readonly string[], io: CtlIo): Promise<number> {
  const found = findPath(args, []);
  if ('unknown' in found) {
    // cobra reports it, then etcdctl's main reports cobra's error again.
    const msg = `unknown command ${JSON.stringify(found.unknown)} for "etcdctl"${suggestions(found.unknown, rootCommands.filter((c) => c !== helpCommand))}`;
    io.output.err(`Error: ${msg}\nRun 'etcdctl --help' for usage.\nError: ${msg}\n`);
    return ExitCode.error;
  }
  const where = at(found.path);
  const cmd = found.path[found.path.length - 1];
  const { local, inherited } = commandFlags(where, true);
  let parsed;
  try {
    parsed = parseFlags(found.rest, [...inherited, ...local]);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    // cobra: the error, the usage page (etcdctl's usage function writes it to stdout), an empty line; then etcdctl's error.
    io.output.out(usagePage(where));
    io.output.err(`Error: ${err.message}\n\nError: ${err.message}\n`);
    return ExitCode.error;
  }
  if (parsed.values.bool('help') || cmd?.run === undefined) {
    io.output.out(usagePage(where));
    return ExitCode.success;
  }
  applyEnv(parsed.values, inherited.map((s) => s.name), io.env);
  const ctl = new Ctl(io, parsed.values, parsed.dashAt, inherited);
  try {
    await cmd.run(ctl, parsed.positional);
    return ExitCode.success;
  } catch (err) {
    if (!(err instanceof CtlExit)) throw err;
    if (!err.silent && err.message !== '') io.output.err(`Error: ${err.message}\n`);
    return err.code;
  } finally {
    ctl.closeClients();
  }
}

/** Whether the command named by args stops cleanly on SIGINT (else the process dies by it, as etcdctl). */
export function handlesInterrupt(args: readonly string[]): boolean {
  const found = findPath(args, []);
  return !('unknown' in found) && found.path[found.path.length - 1]?.handlesInterrupt === true;
}
