/**
 * snapshot save/status/restore and migrate. Saving goes over the client;
 * status, restore and migrate read and write files of the server's formats,
 * which the io's offline operations (supplied by src/cmd) do for ctl.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { errText, type CommandSpec, type Ctl } from '../command.js';
import { goPathError, humanizeBytes } from '../go-format.js';
import { CtlExit, ExitCode, fail } from '../output.js';

/** zap's production logger line (a float epoch "ts"), as etcdctl's snapshot code logs to stderr. */
export function zapInfo(ctl: Ctl, caller: string, msg: string, fields: Record<string, unknown>): void {
  const ts = Date.now() / 1000;
  const rest = Object.entries(fields).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join('');
  ctl.io.output.err(`{"level":"info","ts":${ts},"caller":"${caller}","msg":${JSON.stringify(msg)}${rest}}\n`);
}

/** clientv3's own zap lines (an ISO "ts"), as its maintenance client logs a snapshot download. */
function clientInfo(ctl: Ctl, caller: string, msg: string): void {
  ctl.io.output.err(`{"level":"info","ts":"${new Date().toISOString()}","caller":"${caller}","msg":${JSON.stringify(msg)}}\n`);
}

/** An offline operation's failure as etcdctl reports it: "Error: <message>", exit 1. */
async function offline<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof CtlExit) throw err;
    return fail(ExitCode.error, errText(err));
  }
}

/** The stream window of snapshot save's own client. */
const snapshotWindowBytes = 1024 * 1024;

const snapshotSave: CommandSpec = {
  name: 'save',
  params: '<filename>',
  short: 'Stores an etcd node backend snapshot to a given file',
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'snapshot save expects one argument');
    const path = args[0] ?? '';
    await ctl.clientConfig();
    const eps = ctl.endpoints;
    if (eps.length !== 1) fail(ExitCode.interrupted, `snapshot must be requested to one selected node, not multiple [${eps.join(' ')}]`);
    // One stream, read as fast as it comes: a window of 1 MiB, as grpc-go's grows to (64 KiB took 25-35% longer).
    const c = await ctl.connectedClient(undefined, true, { streamWindowBytes: snapshotWindowBytes });
    const part = `${path}.part`;
    let fd: number;
    try {
      fd = openSync(part, 'w', 0o600);
    } catch (err) {
      return fail(ExitCode.interrupted, `could not open ${part} (${goPathError(part, err)})`);
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
            clientInfo(ctl, 'clientv3/maintenance.go:200', 'opened snapshot stream; downloading');
            zapInfo(ctl, 'snapshot/v3_snapshot.go:127', 'fetching snapshot', { endpoint: eps[0] ?? '' });
            announced = true;
          }
          writeSync(fd, chunk);
          size += chunk.length;
        }
      } catch (err) {
        fail(ExitCode.interrupted, errText(err));
      }
      clientInfo(ctl, 'clientv3/maintenance.go:208', 'completed snapshot read; closing');
      // etcd appends the sha256 of the database: a snapshot without it was cut short.
      if (size % 512 !== 32) fail(ExitCode.interrupted, `sha256 checksum not found [bytes: ${size}]`);
      fsyncSync(fd);
      closeSync(fd);
      fd = -1;
      const tookSec = Number(process.hrtime.bigint() - start) / 1e9;
      zapInfo(ctl, 'snapshot/v3_snapshot.go:142', 'fetched snapshot', { endpoint: eps[0] ?? '', size: humanizeBytes(size), took: tookSec });
      try {
        // Go's os.Rename refuses a directory as the new name itself (EEXIST), before the system call.
        if (statSync(path, { throwIfNoEntry: false })?.isDirectory() === true) throw Object.assign(new Error('file exists'), { code: 'EEXIST', syscall: 'rename', dest: path });
        renameSync(part, path);
      } catch (err) {
        fail(ExitCode.interrupted, `could not rename ${part} to ${path} (${goPathError(part, err)})`);
      }
      zapInfo(ctl, 'snapshot/v3_snapshot.go:152', 'saved', { path });
      ctl.println(`Snapshot saved at ${path}`);
    } finally {
      if (fd >= 0) closeSync(fd);
      rmSync(part, { force: true });
    }
  },
};

const snapshotStatus: CommandSpec = {
  name: 'status',
  params: '<filename>',
  short: 'Gets backend snapshot status of a given file',
  long: `When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.`,
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'snapshot status requires exactly one argument');
    const printer = ctl.printer;
    const ops = await ctl.io.offline();
    printer.dbStatus(await offline(ops.snapshotStatus(args[0] ?? '')));
  },
};

/** Where etcd 3.4's restore logs each of its messages from (zap's "caller"). */
const restoreCallers: Readonly<Record<string, string>> = {
  'restoring snapshot': 'snapshot/v3_snapshot.go:296',
  'added member': 'membership/cluster.go:392',
  'restored snapshot': 'snapshot/v3_snapshot.go:309',
};

const snapshotRestore: CommandSpec = {
  name: 'restore',
  params: '<filename> [options]',
  short: 'Restores an etcd member snapshot to an etcd directory',
  flags: [
    { name: 'data-dir', kind: 'string', def: '', usage: 'Path to the data directory' },
    { name: 'wal-dir', kind: 'string', def: '', usage: 'Path to the WAL directory (use --data-dir if none given)' },
    { name: 'initial-cluster', kind: 'string', def: 'default=http://localhost:2380', usage: 'Initial cluster configuration for restore bootstrap' },
    { name: 'initial-cluster-token', kind: 'string', def: 'etcd-cluster', usage: 'Initial cluster token for the etcd cluster during restore bootstrap' },
    { name: 'initial-advertise-peer-urls', kind: 'string', def: 'http://localhost:2380', usage: "List of this member's peer URLs to advertise to the rest of the cluster" },
    { name: 'name', kind: 'string', def: 'default', usage: 'Human-readable name for this member' },
    { name: 'skip-hash-check', kind: 'bool', def: 'false', usage: 'Ignore snapshot integrity hash value (required if copied from data directory)' },
  ],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'snapshot restore requires exactly one argument');
    const f = ctl.flags;
    const name = f.string('name');
    const dataDir = f.string('data-dir') === '' ? `${name}.etcd` : f.string('data-dir');
    // etcdctl always names the WAL directory, so an existing one is refused even under the data dir.
    const walDir = f.string('wal-dir') === '' ? `${dataDir}/member/wal` : f.string('wal-dir');
    const ops = await ctl.io.offline();
    await offline(
      ops.snapshotRestore({
        snapshotPath: args[0] ?? '',
        name,
        dataDir,
        walDir,
        peerUrls: f.string('initial-advertise-peer-urls'),
        initialCluster: f.string('initial-cluster'),
        initialClusterToken: f.string('initial-cluster-token'),
        skipHashCheck: f.bool('skip-hash-check'),
        log: (msg, fields) => {
          // Only the lines etcd's restore writes; the WAL's own are not etcdctl's.
          const caller = restoreCallers[msg];
          if (caller !== undefined) zapInfo(ctl, caller, msg, fields);
        },
      }),
    );
  },
};

export const snapshotCommand: CommandSpec = {
  name: 'snapshot',
  params: '<subcommand>',
  short: 'Manages etcd node snapshots',
  subcommands: [snapshotSave, snapshotRestore, snapshotStatus],
};

export const migrateCommand: CommandSpec = {
  name: 'migrate',
  short: 'Migrates keys in a v2 store to a mvcc store',
  flags: [
    { name: 'no-ttl', kind: 'bool', def: 'false', usage: 'Do not convert TTL keys' },
    { name: 'data-dir', kind: 'string', def: '', usage: 'Path to the data directory' },
    { name: 'wal-dir', kind: 'string', def: '', usage: 'Path to the WAL directory' },
    { name: 'transformer', kind: 'string', def: '', usage: 'Path to the user-provided transformer program' },
  ],
  run: async (ctl) => {
    const transformer = ctl.flags.string('transformer');
    if (transformer === '') ctl.println('using default transformer');
    const ops = await ctl.io.offline();
    await offline(
      ops.migrate({
        dataDir: ctl.flags.string('data-dir'),
        walDir: ctl.flags.string('wal-dir'),
        transformer,
        // zap's example logger: JSON lines on stdout, no time or caller.
        log: (msg, fields) => ctl.println(`{"level":"info","msg":${JSON.stringify(msg)}${Object.entries(fields).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join('')}}`),
        waiting: (dbPath) => ctl.io.output.err(`waiting for etcd to close and release its lock on ${JSON.stringify(dbPath)}\n`),
      }),
    );
    // etcd-ts keeps no v2 store: there is never a v2 key to hand to the transformer.
    ctl.println('no v2 keys to migrate');
  },
};
