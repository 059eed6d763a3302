/**
 * etcdctl-ts's entry: finds the command (cobra's prefix matching included),
 * parses global and command flags (ETCDCTL_* for unset global ones), picks
 * the printer, runs the command, and turns its outcome into etcdctl's
 * "Error: ..." line and exit code.
 */
import { Ctl, type CommandSpec, type CtlIo } from './command.js';
import { authCommand, roleCommand, userCommand } from './commands/auth.js';
import { alarmCommand, defragCommand, endpointCommand, memberCommand, moveLeaderCommand, snapshotCommand, versionCommand } from './commands/cluster.js';
import { electCommand, lockCommand } from './commands/concurrency.js';
import { compactionCommand, delCommand, getCommand, putCommand, txnCommand } from './commands/kv.js';
import { leaseCommand } from './commands/lease.js';
import { makeMirrorCommand } from './commands/mirror.js';
import { watchCommand } from './commands/watch.js';
import { applyEnv, FlagError, parseFlags, type FlagSpec } from './flags.js';
import { CtlExit, ExitCode } from './output.js';
import { newPrinter } from './printer.js';

export const globalFlags: readonly FlagSpec[] = [
  { name: 'endpoints', kind: 'stringSlice', def: '127.0.0.1:2379' },
  { name: 'debug', kind: 'bool', def: 'false' },
  { name: 'write-out', kind: 'string', def: 'simple', short: 'w' },
  { name: 'hex', kind: 'bool', def: 'false' },
  { name: 'dial-timeout', kind: 'duration', def: '2s' },
  { name: 'command-timeout', kind: 'duration', def: '5s' },
  { name: 'keepalive-time', kind: 'duration', def: '2s' },
  { name: 'keepalive-timeout', kind: 'duration', def: '6s' },
  { name: 'insecure-transport', kind: 'bool', def: 'true' },
  { name: 'insecure-discovery', kind: 'bool', def: 'true' },
  { name: 'insecure-skip-tls-verify', kind: 'bool', def: 'false' },
  { name: 'cert', kind: 'string', def: '' },
  { name: 'key', kind: 'string', def: '' },
  { name: 'cacert', kind: 'string', def: '' },
  { name: 'user', kind: 'string', def: '' },
  { name: 'password', kind: 'string', def: '' },
  { name: 'discovery-srv', kind: 'string', def: '', short: 'd' },
  { name: 'discovery-srv-name', kind: 'string', def: '' },
];

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
  lockCommand,
  electCommand,
  authCommand,
  userCommand,
  roleCommand,
];

/** The positional words of args, skipping flags and the values of value flags (cobra's stripFlags). */
function commandWords(args: readonly string[], specs: readonly FlagSpec[]): string[] {
  const valued = new Set(specs.filter((s) => s.kind !== 'bool').flatMap((s) => [`--${s.name}`, ...(s.short !== undefined ? [`-${s.short}`] : [])]));
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (!a.includes('=') && valued.has(a)) i++;
      continue;
    }
    words.push(a);
  }
  return words;
}

/** cobra's lookup with EnablePrefixMatching: an exact name, or the only command it prefixes. */
function findCommand(list: readonly CommandSpec[], word: string): CommandSpec | undefined {
  const exact = list.find((c) => c.name === word);
  if (exact !== undefined) return exact;
  const matches = list.filter((c) => c.name.startsWith(word));
  return matches.length === 1 ? matches[0] : undefined;
}

/** Runs etcdctl-ts with args (without the program name); resolves with the exit code. */
export async function run(args: readonly string[], io: CtlIo): Promise<number> {
  // Resolve the command path: root -> command -> subcommand.
  const path: CommandSpec[] = [];
  let inherited: FlagSpec[] = [...globalFlags];
  let list: readonly CommandSpec[] = rootCommands;
  const words = commandWords(args, inherited);
  let consumed = 0;
  for (const w of words) {
    const c = findCommand(list, w);
    if (c === undefined) {
      if (path.length === 0) {
        // cobra reports it, then etcdctl's main reports cobra's error again.
        const msg = `unknown command ${JSON.stringify(w)} for "etcdctl"`;
        io.output.err(`Error: ${msg}\nRun 'etcdctl --help' for usage.\nError: ${msg}\n`);
        return ExitCode.error;
      }
      break;
    }
    path.push(c);
    consumed++;
    inherited = [...inherited, ...(c.persistentFlags ?? [])];
    if (c.subcommands === undefined) break;
    list = c.subcommands;
  }
  const cmd = path[path.length - 1];
  if (cmd?.run === undefined) {
    // etcdctl prints the help of a bare command group (or of itself) and exits 0.
    io.output.out(`${path.length === 0 ? 'etcdctl' : path.map((p) => p.name).join(' ')}: a command is needed: ${(cmd?.subcommands ?? rootCommands).map((c) => c.name).join(', ')}\n`);
    return ExitCode.success;
  }
  const specs = [...inherited, ...(cmd.flags ?? [])];
  let parsed;
  try {
    parsed = parseFlags(args, specs);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.output.err(`Error: ${err.message}\n`);
    return ExitCode.error;
  }
  // The command words lead the positionals (they were found the same way); they are not arguments.
  const positional = parsed.positional.slice(consumed);
  const dashAt = parsed.dashAt < 0 ? -1 : parsed.dashAt - consumed;
  applyEnv(parsed.values, inherited.map((s) => s.name), io.env);
  const printer = newPrinter(parsed.values.string('write-out'), parsed.values.bool('hex'), io.output);
  if (printer === undefined) {
    io.output.err('Error: unsupported output format\n');
    return ExitCode.badFeature;
  }
  const ctl = new Ctl(io, parsed.values, printer, dashAt);
  try {
    await ctl.promptPasswordIfNeeded();
    await cmd.run(ctl, positional);
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
  const words = commandWords(args, globalFlags);
  const c = words[0] === undefined ? undefined : findCommand(rootCommands, words[0]);
  return c?.handlesInterrupt === true;
}
