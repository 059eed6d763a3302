#!/usr/bin/env node
/**
 * etcdutl-ts: offline operations on etcd-ts files, with the command line of
 * etcdctl 3.4's `snapshot restore` / `snapshot status` (and etcdutl's
 * --bump-revision / --mark-compacted): flags anywhere after the command as
 * cobra parses them, "Error: ..." on stderr, etcdctl's exit codes (1 error,
 * 4 unsupported output format, 128 bad arguments) and output formats
 * (simple, table, json, fields).
 *
 * Snapshot files are bbolt files in etcd 3.4's layout, as etcd-ts and etcd
 * both serve them; the LMDB copies older etcd-ts releases served are read too.
 */
import { JsonLogger } from '../base/index.js';
import { ConfigError, restoreSnapshot, snapshotStatus, type SnapshotStatus } from '../server/index.js';

const exitError = 1;
const exitBadFeature = 4;
const exitBadArgs = 128;

class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

type Kind = 'string' | 'bool' | 'uint';

interface Flag {
  readonly name: string;
  readonly shorthand?: string;
  readonly kind: Kind;
  readonly dflt: string;
  readonly usage: string;
}

const globalFlags: readonly Flag[] = [{ name: 'write-out', shorthand: 'w', kind: 'string', dflt: 'simple', usage: 'set the output format (fields, json, simple, table)' }];

const restoreFlags: readonly Flag[] = [
  { name: 'data-dir', kind: 'string', dflt: '', usage: 'Path to the data directory' },
  { name: 'wal-dir', kind: 'string', dflt: '', usage: 'Path to the WAL directory (use --data-dir if none given)' },
  { name: 'initial-cluster', kind: 'string', dflt: 'default=http://localhost:2380', usage: 'Initial cluster configuration for restore bootstrap' },
  { name: 'initial-cluster-token', kind: 'string', dflt: 'etcd-cluster', usage: 'Initial cluster token for the etcd cluster during restore bootstrap' },
  { name: 'initial-advertise-peer-urls', kind: 'string', dflt: 'http://localhost:2380', usage: "List of this member's peer URLs to advertise to the rest of the cluster" },
  { name: 'name', kind: 'string', dflt: 'default', usage: 'Human-readable name for this member' },
  { name: 'skip-hash-check', kind: 'bool', dflt: 'false', usage: 'Ignore snapshot integrity hash value (required if copied from data directory)' },
  { name: 'bump-revision', kind: 'uint', dflt: '0', usage: 'How much to increase the latest revision after restore' },
  { name: 'mark-compacted', kind: 'bool', dflt: 'false', usage: 'Mark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise)' },
];

const usage = `NAME:
	etcdutl-ts - offline operations on etcd-ts data (snapshot files of etcd-ts or of etcd)

USAGE:
	etcdutl-ts snapshot restore <filename> [--data-dir dir] [--wal-dir dir] [--name name]
		[--initial-cluster name=url,...] [--initial-cluster-token token] [--initial-advertise-peer-urls urls]
		[--skip-hash-check] [--bump-revision N --mark-compacted]
	etcdutl-ts snapshot status <filename> [-w simple|table|json|fields]
	etcdutl-ts version
`;

function flagUsage(flags: readonly Flag[]): string {
  return flags.map((f) => `      ${f.shorthand !== undefined ? `-${f.shorthand}, ` : ''}--${f.name}=${f.kind === 'string' ? `"${f.dflt}"` : f.dflt}\t${f.usage}`).join('\n');
}

function checkKind(f: Flag, v: string): string {
  if (f.kind === 'bool' && !/^(1|0|t|f|T|F|true|false|TRUE|FALSE|True|False)$/.test(v)) {
    throw new CommandError(`invalid argument "${v}" for "--${f.name}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`, exitError);
  }
  if (f.kind === 'uint' && !(/^\d+$/.test(v) && Number.isSafeInteger(Number(v)))) {
    throw new CommandError(`invalid argument "${v}" for "--${f.name}" flag: strconv.ParseUint: parsing "${v}": invalid syntax`, exitError);
  }
  return f.kind === 'bool' ? String(/^(1|t|T|true|TRUE|True)$/.test(v)) : v;
}

/** pflag's parsing: flags and arguments in any order, --f=v, --f v, -w v, -wv; a bare bool flag is true. */
function parseArgs(argv: readonly string[], flags: readonly Flag[]): { values: Map<string, string>; args: string[] } {
  const values = new Map<string, string>();
  for (const f of flags) values.set(f.name, f.dflt);
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    let f: Flag | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
      if (name === 'help') throw new CommandError('help requested', 0);
      f = flags.find((x) => x.name === name);
      if (f === undefined) throw new CommandError(`unknown flag: --${name}`, exitError);
    } else if (a.startsWith('-') && a.length > 1) {
      const short = a[1] as string;
      if (short === 'h') throw new CommandError('help requested', 0);
      f = flags.find((x) => x.shorthand === short);
      if (f === undefined) throw new CommandError(`unknown shorthand flag: '${short}' in ${a}`, exitError);
      const rest = a.slice(2);
      inline = rest === '' ? undefined : rest.startsWith('=') ? rest.slice(1) : rest;
    } else {
      args.push(a);
      continue;
    }
    if (inline === undefined && f.kind === 'bool') inline = 'true';
    if (inline === undefined) {
      if (i + 1 >= argv.length) throw new CommandError(`flag needs an argument: --${f.name}`, exitError);
      inline = argv[++i] ?? '';
    }
    values.set(f.name, checkKind(f, inline));
  }
  return { values, args };
}

/** go-humanize's Bytes: SI units, one decimal below 10, Go's round-half-even. */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), units.length - 1);
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  const digits = val < 10 ? 1 : 0;
  return `${roundHalfEven(val, digits)} ${units[e] ?? 'B'}`;
}

function roundHalfEven(v: number, digits: number): string {
  const scale = 10 ** digits;
  const x = v * scale;
  const floor = Math.floor(x);
  const diff = x - floor;
  let r: number;
  if (Math.abs(diff - 0.5) < 1e-9) r = floor % 2 === 0 ? floor : floor + 1;
  else r = Math.round(x);
  return (r / scale).toFixed(digits);
}

/** etcdctl's tables: ASCII borders, centred headers, right-aligned cells. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const centre = (s: string, w: number): string => {
    const gap = w - s.length;
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  };
  const out = [line, '| ' + header.map((h, i) => centre(h, widths[i] ?? 0)).join(' | ') + ' |', line];
  for (const r of rows) out.push('| ' + r.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ') + ' |');
  out.push(line);
  return out.join('\n') + '\n';
}

function printStatus(st: SnapshotStatus, format: string): string {
  switch (format) {
    case 'simple':
      return `${st.hash.toString(16)}, ${st.revision}, ${st.totalKey}, ${humanizeBytes(st.totalSize)}\n`;
    case 'table':
      return formatTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [[st.hash.toString(16), String(st.revision), String(st.totalKey), humanizeBytes(st.totalSize)]]);
    case 'json':
      return JSON.stringify({ hash: st.hash, revision: st.revision, totalKey: st.totalKey, totalSize: st.totalSize }) + '\n';
    case 'fields':
      return `"Hash" : ${st.hash}\n"Revision" : ${st.revision}\n"Keys" : ${st.totalKey}\n"Size" : ${st.totalSize}\n`;
    case 'protobuf':
      throw new CommandError('protobuf not supported as output format', exitBadFeature);
    default:
      throw new CommandError('unsupported output format', exitBadFeature);
  }
}

async function snapshotCommand(sub: string | undefined, rest: readonly string[]): Promise<void> {
  if (sub === 'status') {
    const { values, args } = parseArgs(rest, globalFlags);
    if (args.length !== 1) throw new CommandError('snapshot status requires exactly one argument', exitBadArgs);
    const format = values.get('write-out') ?? 'simple';
    if (!['simple', 'table', 'json', 'fields', 'protobuf'].includes(format)) throw new CommandError('unsupported output format', exitBadFeature);
    const file = args[0] as string;
    const st = await snapshotStatus(file).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT')) throw new CommandError(`stat ${file}: no such file or directory`, exitError);
      throw e;
    });
    process.stdout.write(printStatus(st, format));
    return;
  }
  if (sub === 'restore') {
    const { values, args } = parseArgs(rest, [...restoreFlags, ...globalFlags]);
    if (args.length !== 1) throw new CommandError('snapshot restore requires exactly one argument', exitBadArgs);
    const get = (n: string): string => values.get(n) ?? '';
    const bump = Number(get('bump-revision'));
    const markCompacted = get('mark-compacted') === 'true';
    if ((bump === 0 && markCompacted) || (bump > 0 && !markCompacted)) throw new CommandError('--mark-compacted required if --revision-bump > 0', exitBadArgs);
    await restoreSnapshot({
      snapshotPath: args[0] as string,
      name: get('name'),
      dataDir: get('data-dir'),
      walDir: get('wal-dir'),
      peerUrls: get('initial-advertise-peer-urls'),
      initialCluster: get('initial-cluster'),
      initialClusterToken: get('initial-cluster-token'),
      skipHashCheck: get('skip-hash-check') === 'true',
      bumpRevision: bump,
      markCompacted,
      logger: new JsonLogger('info'),
    });
    return;
  }
  throw new CommandError('help requested', 0);
}

function isErrno(e: unknown, code: string): boolean {
  return e instanceof Error && (e as NodeJS.ErrnoException).code === code;
}

async function main(argv: readonly string[]): Promise<void> {
  const [cmd, sub, ...rest] = argv;
  try {
    if (cmd === 'version' || cmd === '--version') {
      process.stdout.write('etcdutl-ts version: 3.4.23\nAPI version: 3.4\n');
      return;
    }
    if (cmd !== 'snapshot') throw new CommandError('help requested', 0);
    await snapshotCommand(sub, rest);
  } catch (e) {
    if (e instanceof CommandError) {
      if (e.message === 'help requested') {
        process.stdout.write(`${usage}\nOPTIONS (restore):\n${flagUsage(restoreFlags)}\n\nGLOBAL OPTIONS:\n${flagUsage(globalFlags)}\n`);
        process.exit(cmd === undefined || argv.includes('-h') || argv.includes('--help') ? 0 : exitBadArgs);
      }
      process.stderr.write(`Error: ${e.message}\n`);
      process.exit(e.code);
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`Error: ${e.message}\n`);
      process.exit(exitError);
    }
    throw e;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(exitError);
});
