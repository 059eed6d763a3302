/** member, endpoint, alarm, defrag, move-leader, snapshot save and version. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { etcdserverpb } from '../../client/index.js';
import { errText, must, type CommandSpec, type Ctl } from '../command.js';
import type { FlagSpec } from '../flags.js';
import { goQuote } from '../go-format.js';
import { CtlExit, ExitCode, fail } from '../output.js';
import { SimplePrinter, tookString, type EpHashKV, type EpHealth, type EpStatus } from '../printer.js';
import { parseHexUint64 } from './kv.js';

/** etcd-ts's etcdctl reports the etcdctl and API versions it is compatible with. */
const ctlVersion = '3.4.23';
const apiVersion = '3.4';


function memberId(args: string[]): bigint {
  if (args.length !== 1) fail(ExitCode.badArgs, 'member ID is not provided');
  const id = parseHexUint64(args[0] ?? '');
  if (typeof id === 'string') fail(ExitCode.badArgs, `bad member ID arg (${id}), expecting ID in Hex`);
  return id;
}

function peerUrlsFlag(which: 'new' | 'updated'): FlagSpec {
  return { name: 'peer-urls', kind: 'string', def: '', usage: `comma separated peer URLs for the ${which} member.` };
}

const memberAdd: CommandSpec = {
  name: 'add',
  params: '<memberName> [options]',
  short: 'Adds a member into the cluster',
  flags: [peerUrlsFlag('new'), { name: 'learner', kind: 'bool', def: 'false', usage: 'indicates if the new member is raft learner' }],
  run: async (ctl, args) => {
    if (args.length < 1) fail(ExitCode.badArgs, 'member name not provided');
    if (args.length > 1) {
      let ev = 'too many arguments';
      for (const s of args) if (s.toLowerCase().startsWith('http')) ev += `, did you mean --peer-urls=${s}`;
      fail(ExitCode.badArgs, ev);
    }
    const name = args[0] ?? '';
    const peerUrls = ctl.flags.string('peer-urls');
    if (peerUrls.length === 0) fail(ExitCode.badArgs, 'member peer urls not provided');
    const urls = peerUrls.split(',');
    const resp = await must((await ctl.connectedClient()).cluster.memberAdd(urls, { isLearner: ctl.flags.bool('learner'), timeoutMs: ctl.commandTimeoutMs }));
    ctl.printer.memberAdd(resp);
    if (!(ctl.printer instanceof SimplePrinter)) return;
    const newId = resp.member?.ID;
    const conf = resp.members.flatMap((m) => m.peerURLs.map((u) => `${m.ID === newId ? name : m.name}=${u}`));
    ctl.println();
    ctl.println(`ETCD_NAME=${goQuote(name)}`);
    ctl.println(`ETCD_INITIAL_CLUSTER=${goQuote(conf.join(','))}`);
    ctl.println(`ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(peerUrls)}`);
    ctl.println('ETCD_INITIAL_CLUSTER_STATE="existing"');
  },
};

const memberRemove: CommandSpec = {
  name: 'remove',
  params: '<memberID>',
  short: 'Removes a member from the cluster',
  run: async (ctl, args) => {
    const id = memberId(args);
    ctl.printer.memberRemove(id, await must((await ctl.connectedClient()).cluster.memberRemove(id, { timeoutMs: ctl.commandTimeoutMs })));
  },
};

const memberUpdate: CommandSpec = {
  name: 'update',
  params: '<memberID> [options]',
  short: 'Updates a member in the cluster',
  flags: [peerUrlsFlag('updated')],
  run: async (ctl, args) => {
    const id = memberId(args);
    const peerUrls = ctl.flags.string('peer-urls');
    if (peerUrls.length === 0) fail(ExitCode.badArgs, 'member peer urls not provided');
    ctl.printer.memberUpdate(id, await must((await ctl.connectedClient()).cluster.memberUpdate(id, peerUrls.split(','), { timeoutMs: ctl.commandTimeoutMs })));
  },
};

const memberList: CommandSpec = {
  name: 'list',
  short: 'Lists all members in the cluster',
  long: `When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.`,
  run: async (ctl) => {
    ctl.printer.memberList(await must((await ctl.connectedClient()).cluster.memberList({ timeoutMs: ctl.commandTimeoutMs })));
  },
};

const memberPromote: CommandSpec = {
  name: 'promote',
  params: '<memberID>',
  short: 'Promotes a non-voting member in the cluster',
  long: `Promotes a non-voting learner member to a voting one in the cluster.`,
  run: async (ctl, args) => {
    const id = memberId(args);
    ctl.printer.memberPromote(id, await must((await ctl.connectedClient()).cluster.memberPromote(id, { timeoutMs: ctl.commandTimeoutMs })));
  },
};

export const memberCommand: CommandSpec = {
  name: 'member',
  params: '<subcommand>',
  short: 'Membership related commands',
  subcommands: [memberAdd, memberRemove, memberUpdate, memberList, memberPromote],
};

/** The endpoints to address: the global ones, or every member's client URLs with --cluster. */
async function endpointsFromCluster(ctl: Ctl): Promise<string[]> {
  await ctl.clientConfig();
  if (!ctl.flags.bool('cluster')) return ctl.endpoints;
  const c = ctl.client(ctl.endpoints, false);
  try {
    const resp = await c.cluster.memberList({ timeoutMs: ctl.commandTimeoutMs });
    return resp.members.flatMap((m) => m.clientURLs);
  } catch (err) {
    return fail(ExitCode.error, `failed to fetch endpoints from etcd cluster member list: ${errText(err)}`);
  } finally {
    c.close();
  }
}

const clusterFlag = { name: 'cluster', kind: 'bool', def: 'false', usage: 'use all endpoints from the cluster member list' } as const;

const epHealth: CommandSpec = {
  name: 'health',
  short: 'Checks the healthiness of endpoints specified in `--endpoints` flag',
  run: async (ctl) => {
    const eps = await endpointsFromCluster(ctl);
    const results = await Promise.all(
      eps.map(async (ep): Promise<EpHealth> => {
        // A member that cannot even authenticate is reported unhealthy, not fatal.
        const c = ctl.client([ep]);
        const start = process.hrtime.bigint();
        try {
          await c.kv.get('health', { timeoutMs: ctl.commandTimeoutMs });
          return { ep, health: true, took: tookString(process.hrtime.bigint() - start), error: '' };
        } catch (err) {
          const took = tookString(process.hrtime.bigint() - start);
          // A member that refuses the read for lack of permission is alive.
          if (errText(err) === 'etcdserver: permission denied') return { ep, health: true, took, error: '' };
          return { ep, health: false, took, error: errText(err) };
        } finally {
          c.close();
        }
      }),
    );
    ctl.printer.endpointHealth(results);
    if (results.some((h) => h.error !== '')) fail(ExitCode.error, 'unhealthy cluster');
  },
};

const epStatus: CommandSpec = {
  name: 'status',
  short: 'Prints out the status of endpoints specified in `--endpoints` flag',
  long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.`,
  run: async (ctl) => {
    const eps = await endpointsFromCluster(ctl);
    const c = (await ctl.connectedClient());
    const list: EpStatus[] = [];
    let failed = false;
    for (const ep of eps) {
      try {
        list.push({ ep, resp: await c.maintenance.status(ep, { timeoutMs: ctl.commandTimeoutMs }) });
      } catch (err) {
        failed = true;
        ctl.io.output.err(`Failed to get the status of endpoint ${ep} (${errText(err)})\n`);
      }
    }
    ctl.printer.endpointStatus(list);
    if (failed) throw new CtlExit(ExitCode.error, '', true);
  },
};

const epHashKV: CommandSpec = {
  name: 'hashkv',
  short: 'Prints the KV history hash for each endpoint in --endpoints',
  persistentFlags: [{ name: 'rev', kind: 'int', def: '0', usage: 'maximum revision to hash (default: all revisions)' }],
  run: async (ctl) => {
    const eps = await endpointsFromCluster(ctl);
    const c = (await ctl.connectedClient());
    const list: EpHashKV[] = [];
    let lastErr: string | undefined;
    for (const ep of eps) {
      try {
        list.push({ ep, resp: await c.maintenance.hashKV(ep, ctl.flags.int('rev'), { timeoutMs: ctl.commandTimeoutMs }) });
      } catch (err) {
        lastErr = errText(err);
        ctl.io.output.err(`Failed to get the hash of endpoint ${ep} (${lastErr})\n`);
      }
    }
    ctl.printer.endpointHashKV(list);
    if (lastErr !== undefined) fail(ExitCode.error, lastErr);
  },
};

export const endpointCommand: CommandSpec = {
  name: 'endpoint',
  params: '<subcommand>',
  short: 'Endpoint related commands',
  persistentFlags: [clusterFlag],
  subcommands: [epHealth, epStatus, epHashKV],
};

const alarmDisarm: CommandSpec = {
  name: 'disarm',
  short: 'Disarms all alarms',
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'alarm disarm command accepts no arguments');
    const c = (await ctl.connectedClient());
    // clientv3's AlarmDisarm of the zero member: disarm every raised alarm, one request each.
    const list = await must(c.maintenance.alarmList({ timeoutMs: ctl.commandTimeoutMs }));
    let resp = etcdserverpb.AlarmResponse.create({ header: list.header });
    const disarmed: etcdserverpb.AlarmMember[] = [];
    for (const a of list.alarms) {
      resp = await must(c.maintenance.alarmDisarm(a, { timeoutMs: ctl.commandTimeoutMs }));
      disarmed.push(...resp.alarms);
    }
    ctl.printer.alarm(list.alarms.length === 0 ? list : { ...resp, alarms: disarmed });
  },
};

const alarmList: CommandSpec = {
  name: 'list',
  short: 'Lists all alarms',
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'alarm list command accepts no arguments');
    ctl.printer.alarm(await must((await ctl.connectedClient()).maintenance.alarmList({ timeoutMs: ctl.commandTimeoutMs })));
  },
};

export const alarmCommand: CommandSpec = {
  name: 'alarm',
  params: '<subcommand>',
  short: 'Alarm related commands',
  subcommands: [alarmDisarm, alarmList],
};

/** capnslog's time stamp: local "2006-01-02 15:04:05.000000". */
function capnslogTime(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`;
}

/** defrag --data-dir: the backend of a stopped member, offline. */
async function defragDataDir(ctl: Ctl, dataDir: string): Promise<void> {
  const db = join(dataDir, 'member', 'snap', 'db');
  if (!existsSync(db)) {
    // etcd's backend cannot open a missing file and panics (exit status 2).
    const why = `cannot open database at ${db} (open ${db}: no such file or directory)`;
    ctl.io.output.err(`${capnslogTime(new Date())} C | mvcc/backend: ${why}\npanic: ${why}\n`);
    throw new CtlExit(2, '', true);
  }
  const ops = await ctl.io.offline();
  try {
    await ops.defragDataDir(dataDir, () =>
      ctl.io.output.err(`waiting for etcd to close and release its lock on ${JSON.stringify(db)}. To defrag a running etcd instance, omit --data-dir.\n`),
    );
  } catch (err) {
    ctl.io.output.err(`Failed to defragment etcd data[${dataDir}] (${errText(err)})\n`);
    throw new CtlExit(ExitCode.error, '', true);
  }
}

export const defragCommand: CommandSpec = {
  name: 'defrag',
  short: 'Defragments the storage of the etcd members with given endpoints',
  persistentFlags: [clusterFlag],
  flags: [{ name: 'data-dir', kind: 'string', def: '', usage: 'Optional. If present, defragments a data directory not in use by etcd.' }],
  run: async (ctl) => {
    const dataDir = ctl.flags.string('data-dir');
    if (dataDir !== '') {
      await defragDataDir(ctl, dataDir);
      return;
    }
    const eps = await endpointsFromCluster(ctl);
    const c = (await ctl.connectedClient());
    let failures = 0;
    for (const ep of eps) {
      try {
        await c.maintenance.defragment(ep, { timeoutMs: ctl.commandTimeoutMs });
        ctl.println(`Finished defragmenting etcd member[${ep}]`);
      } catch (err) {
        failures++;
        ctl.io.output.err(`Failed to defragment etcd member[${ep}] (${errText(err)})\n`);
      }
    }
    if (failures !== 0) throw new CtlExit(ExitCode.error, '', true);
  },
};

export const moveLeaderCommand: CommandSpec = {
  name: 'move-leader',
  params: '<transferee-member-id>',
  short: 'Transfers leadership to another etcd cluster member.',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'move-leader command needs 1 argument');
    const target = parseHexUint64(args[0] ?? '');
    if (typeof target === 'string') fail(ExitCode.badArgs, target);
    await ctl.clientConfig();
    const eps = ctl.endpoints;
    const deadline = Date.now() + ctl.commandTimeoutMs;
    for (const ep of eps) {
      const c = await ctl.connectedClient([ep]);
      const st = await must(c.maintenance.status(ep, { deadlineMs: deadline }));
      if (st.header?.memberId !== st.leader) continue;
      const resp = await must(c.maintenance.moveLeader(ep, target, { deadlineMs: deadline }));
      ctl.printer.moveLeader(st.leader, target, resp);
      return;
    }
    fail(ExitCode.badArgs, `no leader endpoint given at [${eps.join(' ')}]`);
  },
};

export const versionCommand: CommandSpec = {
  name: 'version',
  short: 'Prints the version of etcdctl',
  run: (ctl) => {
    ctl.println(`etcdctl version: ${ctlVersion}`);
    ctl.println(`API version: ${apiVersion}`);
    return Promise.resolve();
  },
};
