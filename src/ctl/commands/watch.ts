/** watch: one watcher from the arguments, or many from stdin (-i), with progress requests and exec. */
import { spawnSync } from 'node:child_process';
import { watchResponseError, type Client, type WatchResponse } from '../../client/index.js';
import type { CommandSpec, Ctl } from '../command.js';
import { parseFlags, type FlagSpec } from '../flags.js';
import { argify, goExecError, goQuote, goQuoteList } from '../go-format.js';
import { CtlExit, ExitCode, fail } from '../output.js';

const watchFlags: FlagSpec[] = [
  { name: 'interactive', kind: 'bool', def: 'false', short: 'i', usage: 'Interactive mode' },
  { name: 'prefix', kind: 'bool', def: 'false', usage: 'Watch on a prefix if prefix is set' },
  { name: 'rev', kind: 'int', def: '0', usage: 'Revision to start watching' },
  { name: 'prev-kv', kind: 'bool', def: 'false', usage: 'get the previous key-value pair before the event happens' },
];

interface WatchArgs {
  readonly key: string;
  readonly rangeEnd: string | undefined;
  readonly prefix: boolean;
  readonly rev: number;
  readonly prevKv: boolean;
  readonly exec: string[];
}

function resolveWatch(positional: string[], dashAt: number, envKey: string, envRange: string, o: { prefix: boolean; rev: number; prevKv: boolean }): WatchArgs | string {
  const watchArgs = dashAt < 0 ? positional : positional.slice(0, dashAt);
  const exec = dashAt < 0 ? [] : positional.slice(dashAt);
  if (dashAt >= 0 && exec.length === 0) return 'bad number of arguments (found separator --, but no commands)';
  if (envKey !== '' && watchArgs.length > 0) return 'bad number of arguments (found conflicting environment key)';
  const all = envKey !== '' ? [envKey, ...(envRange !== '' ? [envRange] : []), ...watchArgs] : watchArgs;
  if (all.length < 1) return 'bad number of arguments';
  if (all.length === 2 && o.prefix) return '`range_end` and `--prefix` are mutually exclusive';
  return { key: all[0] ?? '', rangeEnd: all.length >= 2 ? all[1] : undefined, ...o, exec };
}

/** `ending()`: the command is exiting already (etcdctl -i at the end of its input, or at a line it refuses): a watch ended by that says nothing. */
async function printWatch(ctl: Ctl, client: Client, w: WatchArgs, ending: () => boolean = () => false): Promise<void> {
  const key = w.prefix && w.key === '' ? '\x00' : w.key;
  const watcher = client.watch.watch(key, {
    rangeEnd: w.rangeEnd,
    prefix: w.prefix && w.key !== '',
    fromKey: w.prefix && w.key === '',
    startRevision: w.rev,
    prevKv: w.prevKv,
    requireLeader: true,
    signal: ctl.io.interrupt,
  });
  let canceled = false;
  try {
    for await (const resp of watcher) {
      if (resp.canceled) {
        canceled = true;
        ctl.io.output.err(`watch was canceled (${watchResponseError(resp)?.message ?? ''})\n`);
      }
      if (resp.progressNotify) ctl.println(`progress notify: ${resp.header?.revision ?? 0}`);
      ctl.printer.watch(resp);
      if (w.exec.length > 0) runExec(ctl, w.exec, resp);
    }
  } catch (err) {
    if (err instanceof CtlExit) throw err;
    // The server's cancel was said above (the watch then ends with it as its error): once, as etcdctl does.
    if (!ctl.io.interrupt.aborted && !canceled && !ending()) ctl.io.output.err(`watch was canceled (${err instanceof Error ? err.message : String(err)})\n`);
  }
}

function runExec(ctl: Ctl, exec: string[], resp: WatchResponse): void {
  for (const ev of resp.events) {
    const env = {
      ...process.env,
      ETCD_WATCH_REVISION: String(resp.header?.revision ?? 0),
      ETCD_WATCH_EVENT_TYPE: goQuote(ev.type === 1 ? 'DELETE' : 'PUT'),
      ETCD_WATCH_KEY: goQuote(ev.kv?.key ?? new Uint8Array()),
      ETCD_WATCH_VALUE: goQuote(ev.kv?.value ?? new Uint8Array()),
    };
    const r = spawnSync(exec[0] ?? '', exec.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    ctl.io.output.out(r.stdout ?? Buffer.alloc(0));
    if ((r.stderr?.length ?? 0) > 0) ctl.io.output.err(r.stderr.toString());
    const why = goExecError(exec[0] ?? '', r);
    if (why !== undefined) {
      // etcdctl says so and exits 1 at once (os.Exit): nothing more about the watch.
      ctl.io.output.err(`command ${goQuoteList(exec)} error (${why})\n`);
      throw new CtlExit(ExitCode.error, '', true);
    }
  }
}

async function interactive(ctl: Ctl, envKey: string, envRange: string): Promise<void> {
  const client = (await ctl.connectedClient());
  const running: Promise<void>[] = [];
  let ending = false;
  for (;;) {
    const raw = await ctl.io.readLine();
    if (raw === null || !raw.endsWith('\n')) {
      ending = true;
      fail(ExitCode.invalidInput, 'Error reading watch request line: EOF');
    }
    const l = raw.slice(0, -1);
    const words = argify(l);
    if (words instanceof Error || words.length < 1) {
      ctl.io.output.err(`Invalid command: ${l} (watch and progress supported)\n`);
      continue;
    }
    if (words[0] === 'progress') {
      client.watch.requestProgress();
      continue;
    }
    if (words[0] !== 'watch') {
      ctl.io.output.err(`Invalid command ${l} (only support watch)\n`);
      continue;
    }
    if (words.length < 2 && envKey === '') {
      ctl.io.output.err(`Invalid command ${l} (command type or key is not provided)\n`);
      continue;
    }
    let parsed;
    try {
      parsed = parseFlags(words.slice(1), watchFlags);
    } catch (err) {
      // etcdctl exits at once (os.Exit): the watches running say nothing of their end.
      ending = true;
      return fail(ExitCode.badArgs, err instanceof Error ? err.message : String(err));
    }
    const f = parsed.values;
    const w = resolveWatch(parsed.positional, parsed.dashAt, envKey, envRange, { prefix: f.bool('prefix'), rev: f.int('rev'), prevKv: f.bool('prev-kv') });
    if (typeof w === 'string') {
      // etcdctl's argument check ends the session; a line with a command but no key passes it
      // and fails only when the watch is made, which is reported and skipped.
      const noKeyButCommand = w === 'bad number of arguments' && parsed.dashAt >= 0;
      if (w.startsWith('bad number') && !noKeyButCommand) {
        ending = true;
        fail(ExitCode.badArgs, w);
      }
      ctl.io.output.err(`Invalid command ${l} (${w})\n`);
      continue;
    }
    running.push(printWatch(ctl, client, w, () => ending));
  }
}

export const watchCommand: CommandSpec = {
  name: 'watch',
  params: '[options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]',
  short: 'Watches events stream on keys or prefixes',
  flags: watchFlags,
  run: async (ctl, args) => {
    const envKey = ctl.io.env['ETCDCTL_WATCH_KEY'] ?? '';
    const envRange = ctl.io.env['ETCDCTL_WATCH_RANGE_END'] ?? '';
    if (envKey === '' && envRange !== '') fail(ExitCode.badArgs, `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuote(envRange)}`);
    if (ctl.flags.bool('interactive')) {
      await interactive(ctl, envKey, envRange);
      return;
    }
    const f = ctl.flags;
    const w = resolveWatch(args, ctl.dashAt, envKey, envRange, { prefix: f.bool('prefix'), rev: f.int('rev'), prevKv: f.bool('prev-kv') });
    if (typeof w === 'string') fail(ExitCode.badArgs, w);
    await printWatch(ctl, (await ctl.connectedClient()), w);
    if (ctl.io.interrupt.aborted) return;
    fail(ExitCode.interrupted, 'watch is canceled by the server');
  },
};
