/** member, endpoint, alarm, defrag, move-leader, snapshot save and version. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { etcdserverpb } from '../../client/index.js';
import { errText, must, type CommandSpec, type Ctl } from '../command.js';
import { goQuote, humanizeBytes } from '../go-format.js';
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

const peerUrlsFlag = { name: 'peer-urls', kind: 'string', def: '' } as const;

const memberAdd: CommandSpec = {
  name: 'add',
  flags: [peerUrlsFlag, { name: 'learner', kind: 'bool', def: 'false' }],
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
  run: async (ctl, args) => {
    const id = memberId(args);
    ctl.printer.memberRemove(id, await must((await ctl.connectedClient()).cluster.memberRemove(id, { timeoutMs: ctl.commandTimeoutMs })));
  },
};

const memberUpdate: CommandSpec = {
  name: 'update',
  flags: [peerUrlsFlag],
  run: async (ctl, args) => {
    const id = memberId(args);
    const peerUrls = ctl.flags.string('peer-urls');
    if (peerUrls.length === 0) fail(ExitCode.badArgs, 'member peer urls not provided');
    ctl.printer.memberUpdate(id, await must((await ctl.connectedClient()).cluster.memberUpdate(id, peerUrls.split(','), { timeoutMs: ctl.commandTimeoutMs })));
  },
};

const memberList: CommandSpec = {
  name: 'list',
  run: async (ctl) => {
    ctl.printer.memberList(await must((await ctl.connectedClient()).cluster.memberList({ timeoutMs: ctl.commandTimeoutMs })));
  },
};

const memberPromote: CommandSpec = {
  name: 'promote',
  run: async (ctl, args) => {
    const id = memberId(args);
    ctl.printer.memberPromote(id, await must((await ctl.connectedClient()).cluster.memberPromote(id, { timeoutMs: ctl.commandTimeoutMs })));
  },
};

export const memberCommand: CommandSpec = {
  name: 'member',
  subcommands: [memberAdd, memberRemove, memberUpdate, memberList, memberPromote],
};

/** The endpoints to address: the global ones, or every member's client URLs with --cluster. */
async function endpointsFromCluster(ctl: Ctl): Promise<string[]> {
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

const clusterFlag = { name: 'cluster', kind: 'bool', def: 'false' } as const;

const epHealth: CommandSpec = {
  name: 'health',
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
  persistentFlags: [{ name: 'rev', kind: 'int', def: '0' }],
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
  persistentFlags: [clusterFlag],
  subcommands: [epHealth, epStatus, epHashKV],
};

const alarmDisarm: CommandSpec = {
  name: 'disarm',
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
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'alarm list command accepts no arguments');
    ctl.printer.alarm(await must((await ctl.connectedClient()).maintenance.alarmList({ timeoutMs: ctl.commandTimeoutMs })));
  },
};

export const alarmCommand: CommandSpec = { name: 'alarm', subcommands: [alarmDisarm, alarmList] };

export const defragCommand: CommandSpec = {
  name: 'defrag',
  persistentFlags: [clusterFlag],
  run: async (ctl) => {
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
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'move-leader command needs 1 argument');
    const target = parseHexUint64(args[0] ?? '');
    if (typeof target === 'string') fail(ExitCode.badArgs, target);
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

/** zap's production logger line with a float epoch timestamp, as clientv3/snapshot logs. */
function zapInfo(ctl: Ctl, caller: string, msg: string, fields: Record<string, string | number>): void {
  const ts = Date.now() / 1000;
  const rest = Object.entries(fields).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join('');
  ctl.io.output.err(`{"level":"info","ts":${ts},"caller":"${caller}","msg":${JSON.stringify(msg)}${rest}}\n`);
}

const snapshotSave: CommandSpec = {
  name: 'save',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'snapshot save expects one argument');
    const path = args[0] ?? '';
    const eps = ctl.endpoints;
    if (eps.length !== 1) fail(ExitCode.interrupted, `snapshot must be requested to one selected node, not multiple [${eps.join(' ')}]`);
    const c = (await ctl.connectedClient());
    const part = `${path}.part`;
    let fd: number;
    try {
      fd = openSync(part, 'w', 0o600);
    } catch (err) {
      return fail(ExitCode.interrupted, `could not open ${part} (${errText(err)})`);
    }
    try {
      zapInfo(ctl, 'snapshot/v3_snapshot.go:119', 'created temporary db file', { path: part });
      const start = process.hrtime.bigint();
      const timeoutMs = ctl.flags.changed.has('command-timeout') ? ctl.commandTimeoutMs : undefined;
      let size = 0;
      let announced = false;
      try {
        for await (const chunk of c.maintenance.snapshot(eps[0], { timeoutMs })) {
          if (!announced) {
            zapInfo(ctl, 'snapshot/v3_snapshot.go:127', 'fetching snapshot', { endpoint: eps[0] ?? '' });
            announced = true;
          }
          writeSync(fd, chunk);
          size += chunk.length;
        }
      } catch (err) {
        fail(ExitCode.interrupted, errText(err));
      }
      // etcd appends the sha256 of the database: a snapshot without it was cut short.
      if ((size % 512) !== 32) fail(ExitCode.interrupted, `sha256 checksum not found [bytes: ${size}]`);
      fsyncSync(fd);
      closeSync(fd);
      fd = -1;
      const tookSec = Number(process.hrtime.bigint() - start) / 1e9;
      zapInfo(ctl, 'snapshot/v3_snapshot.go:142', 'fetched snapshot', { endpoint: eps[0] ?? '', size: humanizeBytes(size), took: tookSec });
      renameSync(part, path);
      zapInfo(ctl, 'snapshot/v3_snapshot.go:152', 'saved', { path });
      ctl.println(`Snapshot saved at ${path}`);
    } finally {
      if (fd >= 0) closeSync(fd);
      rmSync(part, { force: true });
    }
  },
};

export const snapshotCommand: CommandSpec = { name: 'snapshot', subcommands: [snapshotSave] };

export const versionCommand: CommandSpec = {
  name: 'version',
  run: (ctl) => {
    ctl.println(`etcdctl version: ${ctlVersion}`);
    ctl.println(`API version: ${apiVersion}`);
    return Promise.resolve();
  },
};
