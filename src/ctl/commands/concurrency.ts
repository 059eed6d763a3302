/** lock and elect: the clientv3 concurrency recipes held until SIGINT/SIGTERM, or around a command. */
import { spawn } from 'node:child_process';
import { Election, Mutex, observeLeader, Session, type Client } from '../../client/index.js';
import { errText, must, type CommandSpec, type Ctl } from '../command.js';
import { goExecError } from '../go-format.js';
import { ExitCode, fail } from '../output.js';


/** Runs the command; Go's error text for how it ended (undefined: status 0). */
function runChild(args: string[], env: Record<string, string>, ctl: Ctl): Promise<string | undefined> {
  const name = args[0] ?? '';
  return new Promise((resolve) => {
    const child = spawn(name, args.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => ctl.io.output.out(d));
    child.stderr.on('data', (d: Buffer) => ctl.io.output.err(d.toString()));
    child.on('error', (error: NodeJS.ErrnoException) => resolve(goExecError(name, { error, status: null, signal: null })));
    child.on('close', (status, signal) => resolve(goExecError(name, { status, signal })));
  });
}

/** Waits for SIGINT/SIGTERM or the session's loss; true if interrupted. */
async function untilInterruptOrLost(ctl: Ctl, session: Session): Promise<boolean> {
  const interrupted = new Promise<true>((resolve) => {
    if (ctl.io.interrupt.aborted) resolve(true);
    ctl.io.interrupt.addEventListener('abort', () => resolve(true), { once: true });
  });
  return Promise.race([interrupted, session.lost.then(() => false)]);
}

export const lockCommand: CommandSpec = {
  name: 'lock',
  params: '<lockname> [exec-command arg1 arg2 ...]',
  short: 'Acquires a named lock',
  handlesInterrupt: true,
  flags: [{ name: 'ttl', kind: 'int', def: '10', usage: 'timeout for session' }],
  run: async (ctl, args) => {
    if (args.length === 0) fail(ExitCode.badArgs, 'lock takes a lock name argument and an optional command to execute');
    const client: Client = (await ctl.connectedClient());
    const session = await must(Session.create(client, { ttlSeconds: ctl.flags.int('ttl') }));
    const m = new Mutex(session, args[0] ?? '');
    await must(m.lock({ signal: ctl.io.interrupt }));
    if (args.length > 1) {
      const failed = await runChild(args.slice(1), { ETCD_LOCK_KEY: m.key, ETCD_LOCK_REV: String(m.header?.revision ?? 0) }, ctl);
      await must(m.unlock());
      if (failed !== undefined) fail(ExitCode.error, failed);
      return;
    }
    const k = await must(client.kv.get(m.key, { signal: ctl.io.interrupt }));
    if (k.kvs.length === 0) fail(ExitCode.error, 'lock lost on init');
    ctl.printer.get(k);
    if (await untilInterruptOrLost(ctl, session)) {
      await must(m.unlock());
      return;
    }
    fail(ExitCode.error, 'session expired');
  },
};

export const electCommand: CommandSpec = {
  name: 'elect',
  params: '<election-name> [proposal]',
  short: 'Observes and participates in leader election',
  handlesInterrupt: true,
  flags: [{ name: 'listen', kind: 'bool', def: 'false', short: 'l', usage: 'observation mode' }],
  run: async (ctl, args) => {
    if (args.length !== 1 && args.length !== 2) fail(ExitCode.badArgs, 'elect takes one election name argument and an optional proposal argument');
    const listen = ctl.flags.bool('listen');
    if (args.length === 1 && !listen) fail(ExitCode.badArgs, 'no proposal argument but -l not set');
    if (args.length === 2 && listen) fail(ExitCode.badArgs, 'proposal given but -l is set');
    const client = (await ctl.connectedClient());
    const session = await must(Session.create(client));
    const name = args[0] ?? '';
    if (listen) {
      try {
        for await (const kv of observeLeader(client, `${name}/`, { signal: ctl.io.interrupt })) {
          ctl.printer.get({ header: undefined, kvs: [kv], more: false, count: 1 });
        }
      } catch (err) {
        if (!ctl.io.interrupt.aborted) fail(ExitCode.error, errText(err));
      }
      if (!ctl.io.interrupt.aborted) fail(ExitCode.error, 'elect: observer lost');
      return;
    }
    const e = new Election(session, name);
    await must(e.campaign(args[1] ?? '', { signal: ctl.io.interrupt }));
    ctl.printer.get(await must(client.kv.get(e.key, { signal: ctl.io.interrupt })));
    if (!(await untilInterruptOrLost(ctl, session))) fail(ExitCode.error, 'elect: session expired');
    await must(e.resign());
  },
};
