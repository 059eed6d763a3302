/** get, put, del, txn and compaction, with etcdctl 3.4's argument rules and messages. */
import { Compare, Op, type CompareOp, type etcdserverpb, type GetOptions, type SortOrder, type SortTarget } from '../../client/index.js';
import { must, type Ctl, type CommandSpec } from '../command.js';
import { int64Number, parseFlags, type FlagSpec, type FlagValues } from '../flags.js';
import { argify, goQuote, goUnquote } from '../go-format.js';
import { cobraUsage } from '../help.js';
import { ExitCode, fail } from '../output.js';
import { SimplePrinter } from '../printer.js';

const getFlags: FlagSpec[] = [
  { name: 'consistency', kind: 'string', def: 'l', usage: 'Linearizable(l) or Serializable(s)' },
  { name: 'order', kind: 'string', def: '', usage: 'Order of results; ASCEND or DESCEND (ASCEND by default)' },
  { name: 'sort-by', kind: 'string', def: '', usage: 'Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION' },
  { name: 'limit', kind: 'int', def: '0', usage: 'Maximum number of results' },
  { name: 'prefix', kind: 'bool', def: 'false', usage: 'Get keys with matching prefix' },
  { name: 'from-key', kind: 'bool', def: 'false', usage: 'Get keys that are greater than or equal to the given key using byte compare' },
  { name: 'rev', kind: 'int', def: '0', usage: 'Specify the kv revision' },
  { name: 'keys-only', kind: 'bool', def: 'false', usage: 'Get only the keys' },
  { name: 'print-value-only', kind: 'bool', def: 'false', usage: 'Only write values when using the "simple" output format' },
];

const putFlags: FlagSpec[] = [
  { name: 'lease', kind: 'string', def: '0', usage: 'lease ID (in hexadecimal) to attach to the key' },
  { name: 'prev-kv', kind: 'bool', def: 'false', usage: 'return the previous key-value pair before modification' },
  { name: 'ignore-value', kind: 'bool', def: 'false', usage: 'updates the key using its current value' },
  { name: 'ignore-lease', kind: 'bool', def: 'false', usage: 'updates the key using its current lease' },
];

const delFlags: FlagSpec[] = [
  { name: 'prefix', kind: 'bool', def: 'false', usage: 'delete keys with matching prefix' },
  { name: 'prev-kv', kind: 'bool', def: 'false', usage: 'return deleted key-value pairs' },
  { name: 'from-key', kind: 'bool', def: 'false', usage: 'delete keys that are greater than or equal to the given key using byte compare' },
];

/** What a key argument plus --prefix/--from-key select, as etcdctl turns them into clientv3 options. */
function keySelection(key: string, prefix: boolean, fromKey: boolean, rangeEnd: string | undefined): { key: string; o: { prefix?: boolean; fromKey?: boolean; rangeEnd?: string } } {
  if (rangeEnd !== undefined) return { key, o: { rangeEnd } };
  if (prefix) return key.length === 0 ? { key: '\x00', o: { fromKey: true } } : { key, o: { prefix: true } };
  if (fromKey) return { key: key.length === 0 ? '\x00' : key, o: { fromKey: true } };
  return { key, o: {} };
}

export function getOp(f: FlagValues, args: string[]): { key: string; o: GetOptions } {
  if (args.length === 0) fail(ExitCode.badArgs, 'get command needs one argument as key and an optional argument as range_end');
  const prefix = f.bool('prefix');
  const fromKey = f.bool('from-key');
  if (prefix && fromKey) fail(ExitCode.badArgs, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  const consistency = f.string('consistency');
  if (consistency !== 's' && consistency !== 'l') fail(ExitCode.badFeature, `unknown consistency flag ${goQuote(consistency)}`);
  if (args.length > 1 && (prefix || fromKey)) fail(ExitCode.badArgs, 'too many arguments, only accept one argument when `--prefix` or `--from-key` is set');
  const order = f.string('order').toUpperCase();
  let sortOrder: SortOrder = 'NONE';
  if (order === 'ASCEND' || order === 'DESCEND') sortOrder = order;
  else if (order !== '') fail(ExitCode.badFeature, `bad sort order ${f.string('order')}`);
  const targets: Record<string, SortTarget> = { CREATE: 'CREATE', KEY: 'KEY', MODIFY: 'MOD', VALUE: 'VALUE', VERSION: 'VERSION', '': 'KEY' };
  const sortTarget = targets[f.string('sort-by').toUpperCase()];
  if (sortTarget === undefined) fail(ExitCode.badFeature, `bad sort target ${f.string('sort-by')}`);
  const sel = keySelection(args[0] ?? '', prefix, fromKey, args[1]);
  const rev = f.int('rev');
  return {
    key: sel.key,
    o: {
      ...sel.o,
      serializable: consistency === 's',
      limit: f.int('limit'),
      revision: rev > 0 ? rev : 0,
      sortOrder,
      sortTarget,
      keysOnly: f.bool('keys-only'),
    },
  };
}

async function putOp(ctl: Ctl | undefined, f: FlagValues, args: string[]): Promise<{ key: string; value: string; lease: bigint; o: { prevKv: boolean; ignoreValue: boolean; ignoreLease: boolean } }> {
  if (args.length === 0) fail(ExitCode.badArgs, 'put command needs 1 argument and input from stdin or 2 arguments');
  const ignoreValue = f.bool('ignore-value');
  if (ignoreValue && args.length > 1) fail(ExitCode.badArgs, "put command needs only 1 argument when 'ignore-value' is set");
  let value = '';
  if (!ignoreValue) {
    if (args.length > 1) value = args[1] ?? '';
    else {
      const stdin = ctl === undefined ? '' : await ctl.io.readStdin();
      if (stdin === '') fail(ExitCode.badArgs, 'put command needs 1 argument and input from stdin or 2 arguments');
      value = stdin;
    }
  }
  const leaseText = f.string('lease');
  const lease = parseHexInt64(leaseText);
  if (typeof lease === 'string') fail(ExitCode.badArgs, `bad lease ID (${lease}), expecting ID in Hex`);
  return { key: args[0] ?? '', value, lease, o: { prevKv: f.bool('prev-kv'), ignoreValue, ignoreLease: f.bool('ignore-lease') } };
}

function delOp(f: FlagValues, args: string[]): { key: string; o: { prefix?: boolean; fromKey?: boolean; rangeEnd?: string; prevKv: boolean } } {
  if (args.length === 0 || args.length > 2) fail(ExitCode.badArgs, 'del command needs one argument as key and an optional argument as range_end');
  const prefix = f.bool('prefix');
  const fromKey = f.bool('from-key');
  if (prefix && fromKey) fail(ExitCode.badArgs, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  if (args.length > 1 && (prefix || fromKey)) fail(ExitCode.badArgs, 'too many arguments, only accept one argument when `--prefix` or `--from-key` is set');
  const sel = keySelection(args[0] ?? '', prefix, fromKey, args[1]);
  return { key: sel.key, o: { ...sel.o, prevKv: f.bool('prev-kv') } };
}

/** strconv.ParseInt(s, 16, 64): the value, or Go's error text. */
export function parseHexInt64(s: string): bigint | string {
  if (!/^[+-]?[0-9a-fA-F]+$/.test(s)) return `strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`;
  const neg = s.startsWith('-');
  const v = BigInt(`0x${s.replace(/^[+-]/, '')}`) * (neg ? -1n : 1n);
  if (v > 0x7fff_ffff_ffff_ffffn || v < -0x8000_0000_0000_0000n) return `strconv.ParseInt: parsing ${goQuote(s)}: value out of range`;
  return v;
}

/** strconv.ParseUint(s, 16, 64). */
export function parseHexUint64(s: string): bigint | string {
  if (!/^\+?[0-9a-fA-F]+$/.test(s) || s.startsWith('+')) return `strconv.ParseUint: parsing ${goQuote(s)}: invalid syntax`;
  const v = BigInt(`0x${s}`);
  if (v > 0xffff_ffff_ffff_ffffn) return `strconv.ParseUint: parsing ${goQuote(s)}: value out of range`;
  return v;
}

/** strconv.ParseInt(s, 10, 64). */
export function parseDecInt64(s: string): number | string {
  if (!/^[+-]?\d+$/.test(s)) return `strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`;
  const v = BigInt(s);
  if (v > 0x7fff_ffff_ffff_ffffn || v < -0x8000_0000_0000_0000n) return `strconv.ParseInt: parsing ${goQuote(s)}: value out of range`;
  return int64Number(v);
}


export const getCommand: CommandSpec = {
  name: 'get',
  params: '[options] <key> [range_end]',
  short: 'Gets the key or a range of keys',
  flags: getFlags,
  run: async (ctl, args) => {
    const { key, o } = getOp(ctl.flags, args);
    const resp = await must((await ctl.connectedClient()).kv.get(key, { ...o, timeoutMs: ctl.commandTimeoutMs }));
    if (ctl.flags.bool('print-value-only')) {
      if (!(ctl.printer instanceof SimplePrinter)) fail(ExitCode.badArgs, 'print-value-only is only for `--write-out=simple`');
      ctl.printer.valueOnly = true;
    }
    ctl.printer.get(resp);
  },
};

export const putCommand: CommandSpec = {
  name: 'put',
  params: '[options] <key> <value> (<value> can also be given from stdin)',
  short: 'Puts the given key into the store',
  long: `Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.`,
  flags: putFlags,
  run: async (ctl, args) => {
    const p = await putOp(ctl, ctl.flags, args);
    const resp = await must((await ctl.connectedClient()).kv.put(p.key, p.value, { ...p.o, lease: p.lease, timeoutMs: ctl.commandTimeoutMs }));
    ctl.printer.put(resp);
  },
};

export const delCommand: CommandSpec = {
  name: 'del',
  params: '[options] <key> [range_end]',
  short: 'Removes the specified key or range of keys [key, range_end)',
  flags: delFlags,
  run: async (ctl, args) => {
    const { key, o } = delOp(ctl.flags, args);
    const resp = await must((await ctl.connectedClient()).kv.delete(key, { ...o, timeoutMs: ctl.commandTimeoutMs }));
    ctl.printer.del(resp);
  },
};

export const compactionCommand: CommandSpec = {
  name: 'compaction',
  params: '[options] <revision>',
  short: 'Compacts the event history in etcd',
  flags: [{ name: 'physical', kind: 'bool', def: 'false', usage: '\'true\' to wait for compaction to physically remove all old revisions' }],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'compaction command needs 1 argument');
    const rev = parseDecInt64(args[0] ?? '');
    if (typeof rev === 'string') fail(ExitCode.error, rev);
    await must((await ctl.connectedClient()).kv.compact(rev, { physical: ctl.flags.bool('physical'), timeoutMs: ctl.commandTimeoutMs }));
    ctl.println(`compacted revision ${rev}`);
  },
};

// ---------------------------------------------------------------- txn

/** Parses `<target>("<key>") <op> "<value>"` as etcdctl's parseCompare. */
export function parseCompare(line: string): etcdserverpb.Compare | string {
  const paren = line.indexOf('(');
  if (paren < 0) return `malformed comparison: ${line}`;
  const target = line.slice(0, paren);
  const scan = scanCompare(line.slice(paren + 1));
  if (scan.n !== 3) return `malformed comparison: ${line}; got ${target}(${goQuote(scan.key)}) ${scan.op} ${goQuote(scan.val)}`;
  const { key, op, val } = scan;
  if (op !== '=' && op !== '!=' && op !== '>' && op !== '<') return `malformed comparison: ${line} (unknown op ${op})`;
  const cop: CompareOp = op;
  const num = (): number | undefined => (/^[+-]?\d+$/.test(val) ? Number(val) : undefined);
  switch (target) {
    case 'ver':
    case 'version': {
      const v = num();
      return v === undefined ? `invalid txn compare request: ${line}` : Compare.version(key, cop, v);
    }
    case 'c':
    case 'create': {
      const v = num();
      return v === undefined ? `invalid txn compare request: ${line}` : Compare.create(key, cop, v);
    }
    case 'm':
    case 'mod': {
      const v = num();
      return v === undefined ? `invalid txn compare request: ${line}` : Compare.mod(key, cop, v);
    }
    case 'val':
    case 'value':
      return Compare.value(key, cop, val);
    case 'lease': {
      const v = num();
      return v === undefined ? `invalid txn compare request: ${line}` : Compare.lease(key, cop, BigInt(v));
    }
    default:
      return `malformed comparison: ${line} (unknown target ${target})`;
  }
}

/** fmt.Sscanf(s, "%q) %s %q"): how many items it got, and them. */
function scanCompare(s: string): { n: number; key: string; op: string; val: string } {
  const r = { n: 0, key: '', op: '', val: '' };
  let i = 0;
  const skipSpace = (): void => {
    while (i < s.length && /\s/.test(s[i] ?? '')) i++;
  };
  const quoted = (): string | undefined => {
    skipSpace();
    const q = s[i];
    if (q !== '"' && q !== '`') return undefined;
    let j = i + 1;
    while (j < s.length && s[j] !== q) j += q === '"' && s[j] === '\\' ? 2 : 1;
    const u = goUnquote(s.slice(i, j + 1));
    if (u !== undefined) i = j + 1;
    return u;
  };
  const key = quoted();
  if (key === undefined) return r;
  r.key = key;
  r.n = 1;
  if (s[i] !== ')') return r;
  i++;
  skipSpace();
  const start = i;
  while (i < s.length && !/\s/.test(s[i] ?? '')) i++;
  if (i === start) return r;
  r.op = s.slice(start, i);
  r.n = 2;
  const val = quoted();
  if (val === undefined) return r;
  r.val = val;
  r.n = 3;
  return r;
}

const subcommandNames = ['put', 'get', 'del'] as const;

/**
 * One success/failure line: a put, get or del command line, as etcdctl
 * parses it with its own commands (whose flag error shows the command's
 * usage first, through `usage`).
 */
export async function parseRequestOp(line: string, usage: (text: string) => void = () => undefined): Promise<etcdserverpb.RequestOp | string> {
  const words = argify(line);
  if (words instanceof Error) fail(ExitCode.invalidInput, words.message);
  if (words.length < 2) return `invalid txn compare request: ${line}`;
  const name = subcommandNames.find((n) => n.startsWith(words[0] ?? '\x00'));
  if (name === undefined) return `invalid txn request: ${line}`;
  const command = name === 'put' ? putCommand : name === 'get' ? getCommand : delCommand;
  let parsed;
  try {
    parsed = parseFlags(words.slice(1), command.flags ?? []);
  } catch {
    usage(cobraUsage(command));
    return `invalid txn request: ${line}`;
  }
  const { values, positional } = parsed;
  switch (name) {
    case 'put': {
      const p = await putOp(undefined, values, positional);
      return Op.put(p.key, p.value, { ...p.o, lease: p.lease });
    }
    case 'get': {
      const g = getOp(values, positional);
      return Op.get(g.key, g.o);
    }
    case 'del': {
      const d = delOp(values, positional);
      return Op.delete(d.key, d.o);
    }
  }
}

async function readBlock<T>(ctl: Ctl, parse: (line: string) => Promise<T | string> | T | string): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const raw = await ctl.io.readLine();
    if (raw === null || !raw.endsWith('\n')) fail(ExitCode.invalidInput, 'EOF');
    const line = raw.trim();
    if (line.length === 0) return out;
    const r = await parse(line);
    if (typeof r === 'string') fail(ExitCode.invalidInput, r);
    out.push(r);
  }
}

export const txnCommand: CommandSpec = {
  name: 'txn',
  params: '[options]',
  short: 'Txn processes all the requests in one transaction',
  flags: [{ name: 'interactive', kind: 'bool', def: 'false', short: 'i', usage: 'Input transaction in interactive mode' }],
  run: async (ctl, args) => {
    if (args.length !== 0) fail(ExitCode.badArgs, 'txn command does not accept argument');
    const client = (await ctl.connectedClient());
    const prompt = (s: string): void => {
      if (ctl.flags.bool('interactive')) ctl.println(s);
    };
    prompt('compares:');
    const compares = await readBlock(ctl, parseCompare);
    prompt('success requests (get, put, del):');
    const parseOp = (line: string): Promise<etcdserverpb.RequestOp | string> => parseRequestOp(line, (text) => ctl.io.output.err(text));
    const success = await readBlock(ctl, parseOp);
    prompt('failure requests (get, put, del):');
    const failure = await readBlock(ctl, parseOp);
    const req = { compare: compares, success, failure };
    // etcdctl commits with a background context: no command timeout.
    const resp = await must(client.kv.txnRequest(req));
    ctl.printer.txn(resp);
  },
};
