/** auth enable/disable, user and role commands. */
import { prefixRangeEnd } from '../../client/index.js';
import { errText, must, type CommandSpec, type Ctl } from '../command.js';
import type { FlagSpec } from '../flags.js';
import { ExitCode, fail } from '../output.js';


const authEnable: CommandSpec = {
  name: 'enable',
  short: 'Enables authentication',
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'auth enable command does not accept any arguments');
    const auth = (await ctl.connectedClient()).auth;
    const o = { deadlineMs: Date.now() + ctl.commandTimeoutMs };
    // As etcdctl: without a root role, create it and grant it to root, then try again.
    for (;;) {
      try {
        await auth.enable(o);
        break;
      } catch (err) {
        if (errText(err) !== 'etcdserver: root user does not have root role') fail(ExitCode.error, errText(err));
        await must(auth.roleAdd('root', o));
        await must(auth.userGrantRole('root', 'root', o));
      }
    }
    ctl.println('Authentication Enabled');
  },
};

const authDisable: CommandSpec = {
  name: 'disable',
  short: 'Disables authentication',
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'auth disable command does not accept any arguments');
    await must((await ctl.connectedClient()).auth.disable({ timeoutMs: ctl.commandTimeoutMs }));
    ctl.println('Authentication Disabled');
  },
};

export const authCommand: CommandSpec = {
  name: 'auth',
  params: '<enable or disable>',
  short: 'Enable or disable authentication',
  subcommands: [authEnable, authDisable],
};

/** A password read as fmt.Scanf("%s"): the first word of stdin. */
async function scanWord(ctl: Ctl): Promise<string> {
  const line = (await ctl.io.readLine()) ?? '';
  return line.trim().split(/\s+/)[0] ?? '';
}

/** readPasswordInteractive: asks twice with the terminal echo off, or one word from stdin with --interactive=false. */
async function password(ctl: Ctl, name: string): Promise<string> {
  if (!ctl.flags.bool('interactive')) return scanWord(ctl);
  const ask = (prompt: string): Promise<string> => ctl.askSecret(prompt);
  const first = await ask(`Password of ${name}: `);
  if (first.length === 0) fail(ExitCode.badArgs, 'empty password');
  const second = await ask(`Type password of ${name} again for confirmation: `);
  if (first !== second) fail(ExitCode.badArgs, 'given passwords are different');
  return first;
}

const userAdd: CommandSpec = {
  name: 'add',
  params: '<user name or user:password> [options]',
  short: 'Adds a new user',
  flags: [
    { name: 'interactive', kind: 'bool', def: 'true', usage: 'Read password from stdin instead of interactive terminal' },
    { name: 'new-user-password', kind: 'string', def: '', usage: 'Supply password from the command line flag' },
    { name: 'no-password', kind: 'bool', def: 'false', usage: 'Create a user without password (CN based auth only)' },
  ],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'user add command requires user name as its argument');
    const arg = args[0] ?? '';
    let user = arg;
    let pw = '';
    const noPassword = ctl.flags.bool('no-password');
    if (!noPassword) {
      const fromFlag = ctl.flags.string('new-user-password');
      const colon = arg.indexOf(':');
      if (fromFlag !== '') pw = fromFlag;
      else if (colon < 0) pw = await password(ctl, arg);
      else {
        user = arg.slice(0, colon);
        pw = arg.slice(colon + 1);
        if (user.length === 0) fail(ExitCode.badArgs, 'empty user name is not allowed');
      }
    }
    ctl.printer.userAdd(user, await must((await ctl.connectedClient()).auth.userAdd(user, pw, { noPassword })));
  },
};

const userDelete: CommandSpec = {
  name: 'delete',
  params: '<user name>',
  short: 'Deletes a user',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'user delete command requires user name as its argument');
    ctl.printer.userDelete(args[0] ?? '', await must((await ctl.connectedClient()).auth.userDelete(args[0] ?? '')));
  },
};

const userGet: CommandSpec = {
  name: 'get',
  params: '<user name> [options]',
  short: 'Gets detailed information of a user',
  flags: [{ name: 'detail', kind: 'bool', def: 'false', usage: 'Show permissions of roles granted to the user' }],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'user get command requires user name as its argument');
    const name = args[0] ?? '';
    const auth = (await ctl.connectedClient()).auth;
    const resp = await must(auth.userGet(name));
    if (!ctl.flags.bool('detail')) {
      ctl.printer.userGet(name, resp);
      return;
    }
    ctl.println(`User: ${name}`);
    for (const role of resp.roles) {
      ctl.println();
      ctl.printer.roleGet(role, await must(auth.roleGet(role)));
    }
  },
};

const userList: CommandSpec = {
  name: 'list',
  short: 'Lists all users',
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'user list command requires no arguments');
    ctl.printer.userList(await must((await ctl.connectedClient()).auth.userList()));
  },
};

const userPasswd: CommandSpec = {
  name: 'passwd',
  params: '<user name> [options]',
  short: 'Changes password of user',
  flags: [{ name: 'interactive', kind: 'bool', def: 'true', usage: 'If true, read password from stdin instead of interactive terminal' }],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'user passwd command requires user name as its argument');
    const pw = await password(ctl, args[0] ?? '');
    ctl.printer.userChangePassword(await must((await ctl.connectedClient()).auth.userChangePassword(args[0] ?? '', pw)));
  },
};

const userGrantRole: CommandSpec = {
  name: 'grant-role',
  params: '<user name> <role name>',
  short: 'Grants a role to a user',
  run: async (ctl, args) => {
    if (args.length !== 2) fail(ExitCode.badArgs, 'user grant command requires user name and role name as its argument');
    const [user = '', role = ''] = args;
    ctl.printer.userGrantRole(user, role, await must((await ctl.connectedClient()).auth.userGrantRole(user, role)));
  },
};

const userRevokeRole: CommandSpec = {
  name: 'revoke-role',
  params: '<user name> <role name>',
  short: 'Revokes a role from a user',
  run: async (ctl, args) => {
    if (args.length !== 2) fail(ExitCode.badArgs, 'user revoke-role requires user name and role name as its argument');
    const [user = '', role = ''] = args;
    ctl.printer.userRevokeRole(user, role, await must((await ctl.connectedClient()).auth.userRevokeRole(user, role)));
  },
};

export const userCommand: CommandSpec = {
  name: 'user',
  params: '<subcommand>',
  short: 'User related commands',
  subcommands: [userAdd, userDelete, userGet, userList, userPasswd, userGrantRole, userRevokeRole],
};

const roleAdd: CommandSpec = {
  name: 'add',
  params: '<role name>',
  short: 'Adds a new role',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'role add command requires role name as its argument');
    ctl.printer.roleAdd(args[0] ?? '', await must((await ctl.connectedClient()).auth.roleAdd(args[0] ?? '')));
  },
};

const roleDelete: CommandSpec = {
  name: 'delete',
  params: '<role name>',
  short: 'Deletes a role',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'role delete command requires role name as its argument');
    ctl.printer.roleDelete(args[0] ?? '', await must((await ctl.connectedClient()).auth.roleDelete(args[0] ?? '')));
  },
};

const roleGet: CommandSpec = {
  name: 'get',
  params: '<role name>',
  short: 'Gets detailed information of a role',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'role get command requires role name as its argument');
    ctl.printer.roleGet(args[0] ?? '', await must((await ctl.connectedClient()).auth.roleGet(args[0] ?? '')));
  },
};

const roleList: CommandSpec = {
  name: 'list',
  short: 'Lists all roles',
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'role list command requires no arguments');
    ctl.printer.roleList(await must((await ctl.connectedClient()).auth.roleList()));
  },
};

/** The key and range end of a permission, from the arguments and --prefix/--from-key (etcdctl's permRange). */
function permRange(ctl: Ctl, args: string[]): { key: string; rangeEnd: string } {
  const prefix = ctl.flags.bool('prefix');
  const fromKey = ctl.flags.bool('from-key');
  const key = args[0] ?? '';
  if (key.length === 0) {
    if (prefix && fromKey) fail(ExitCode.badArgs, '--from-key and --prefix flags are mutually exclusive');
    return { key: '\x00', rangeEnd: prefix || fromKey ? '\x00' : '' };
  }
  if (args.length === 1) {
    if (prefix) {
      if (fromKey) fail(ExitCode.badArgs, '--from-key and --prefix flags are mutually exclusive');
      return { key, rangeEnd: Buffer.from(prefixRangeEnd(Buffer.from(key))).toString('utf8') };
    }
    return { key, rangeEnd: fromKey ? '\x00' : '' };
  }
  if (prefix) fail(ExitCode.badArgs, 'unexpected endkey argument with --prefix flag');
  if (fromKey) fail(ExitCode.badArgs, 'unexpected endkey argument with --from-key flag');
  return { key, rangeEnd: args[1] ?? '' };
}

/** --prefix and --from-key of grant-permission and revoke-permission; verb words their help text. */
function permFlags(verb: 'grant' | 'revoke'): FlagSpec[] {
  return [
    { name: 'prefix', kind: 'bool', def: 'false', usage: `${verb} a prefix permission` },
    { name: 'from-key', kind: 'bool', def: 'false', usage: `${verb} a permission of keys that are greater than or equal to the given key using byte compare` },
  ];
}

const roleGrant: CommandSpec = {
  name: 'grant-permission',
  params: '[options] <role name> <permission type> <key> [endkey]',
  short: 'Grants a key to a role',
  flags: permFlags('grant'),
  run: async (ctl, args) => {
    if (args.length < 3) fail(ExitCode.badArgs, 'role grant command requires role name, permission type, and key [endkey] as its argument');
    const type = (args[1] ?? '').toUpperCase();
    if (type !== 'READ' && type !== 'WRITE' && type !== 'READWRITE') fail(ExitCode.badArgs, `invalid permission type: ${args[1] ?? ''}`);
    const { key, rangeEnd } = permRange(ctl, args.slice(2));
    const resp = await must((await ctl.connectedClient()).auth.roleGrantPermission(args[0] ?? '', type, key, { rangeEnd }));
    ctl.printer.roleGrantPermission(args[0] ?? '', resp);
  },
};

const roleRevoke: CommandSpec = {
  name: 'revoke-permission',
  params: '<role name> <key> [endkey]',
  short: 'Revokes a key from a role',
  flags: permFlags('revoke'),
  run: async (ctl, args) => {
    if (args.length < 2) fail(ExitCode.badArgs, 'role revoke-permission command requires role name and key [endkey] as its argument');
    const { key, rangeEnd } = permRange(ctl, args.slice(1));
    const resp = await must((await ctl.connectedClient()).auth.roleRevokePermission(args[0] ?? '', key, { rangeEnd }));
    ctl.printer.roleRevokePermission(args[0] ?? '', args[1] ?? '', rangeEnd, resp);
  },
};

export const roleCommand: CommandSpec = {
  name: 'role',
  params: '<subcommand>',
  short: 'Role related commands',
  subcommands: [roleAdd, roleDelete, roleGet, roleList, roleGrant, roleRevoke],
};
