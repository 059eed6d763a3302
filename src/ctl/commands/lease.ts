/** lease grant/revoke/timetolive/list/keep-alive. */
import type { CommandSpec } from '../command.js';
import { must } from '../command.js';
import { hex16 } from '../go-format.js';
import { ExitCode, fail } from '../output.js';
import { SimplePrinter } from '../printer.js';
import { parseDecInt64, parseHexInt64 } from './kv.js';

function leaseFromArg(arg: string): bigint {
  const id = parseHexInt64(arg);
  if (typeof id === 'string') fail(ExitCode.badArgs, `bad lease ID arg (${id}), expecting ID in Hex`);
  return id;
}


const grant: CommandSpec = {
  name: 'grant',
  params: '<ttl>',
  short: 'Creates leases',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'lease grant command needs TTL argument');
    const ttl = parseDecInt64(args[0] ?? '');
    if (typeof ttl === 'string') fail(ExitCode.badArgs, `bad TTL (${ttl})`);
    const resp = await must((await ctl.connectedClient()).lease.grant(ttl, { timeoutMs: ctl.commandTimeoutMs }), ExitCode.error, (m) => `failed to grant lease (${m})`);
    ctl.printer.grant(resp);
  },
};

const revoke: CommandSpec = {
  name: 'revoke',
  params: '<leaseID>',
  short: 'Revokes leases',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'lease revoke command needs 1 argument');
    const id = leaseFromArg(args[0] ?? '');
    const resp = await must((await ctl.connectedClient()).lease.revoke(id, { timeoutMs: ctl.commandTimeoutMs }), ExitCode.error, (m) => `failed to revoke lease (${m})`);
    ctl.printer.revoke(id, resp);
  },
};

const timeToLive: CommandSpec = {
  name: 'timetolive',
  params: '<leaseID> [options]',
  short: 'Get lease information',
  flags: [{ name: 'keys', kind: 'bool', def: 'false', usage: 'Get keys attached to this lease' }],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'lease timetolive command needs lease ID as argument');
    const keys = ctl.flags.bool('keys');
    const resp = await must((await ctl.connectedClient()).lease.timeToLive(leaseFromArg(args[0] ?? ''), { keys }), ExitCode.badConnection);
    ctl.printer.timeToLive(resp, keys);
  },
};

const list: CommandSpec = {
  name: 'list',
  short: 'List all active leases',
  run: async (ctl) => {
    ctl.printer.leases(await must((await ctl.connectedClient()).lease.leases(), ExitCode.badConnection));
  },
};

const keepAlive: CommandSpec = {
  name: 'keep-alive',
  params: '[options] <leaseID>',
  short: 'Keeps leases alive (renew)',
  flags: [{ name: 'once', kind: 'bool', def: 'false', usage: 'Resets the keep-alive time to its original value and exits immediately' }],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'lease keep-alive command needs lease ID as argument');
    const id = leaseFromArg(args[0] ?? '');
    const client = (await ctl.connectedClient());
    if (ctl.flags.bool('once')) {
      ctl.printer.keepAlive(await must(client.lease.keepAliveOnce(id), ExitCode.badConnection));
      return;
    }
    const ka = client.lease.keepAlive(id);
    ctl.io.interrupt.addEventListener('abort', () => ka.close(), { once: true });
    for await (const resp of ka) ctl.printer.keepAlive(resp);
    if (ctl.io.interrupt.aborted) return;
    if (ctl.printer instanceof SimplePrinter) ctl.println(`lease ${hex16(id)} expired or revoked.`);
  },
};

export const leaseCommand: CommandSpec = {
  name: 'lease',
  params: '<subcommand>',
  short: 'Lease related commands',
  subcommands: [grant, revoke, timeToLive, list, keepAlive],
};

