/**
 * Usage pages, generated from the command table as etcdctl renders them:
 * its help template (NAME, USAGE, VERSION, API VERSION, COMMANDS,
 * DESCRIPTION, OPTIONS, GLOBAL OPTIONS) written through Go's text/tabwriter
 * with tab padding (tab width 8, padding 1), flags listed as pflag sorts them
 * (`--name=<default>`, `[=<default>]` for flags that take no value, strings
 * quoted); and cobra's suggestions for a mistyped command.
 */
import type { CommandSpec } from './command.js';
import type { FlagSpec } from './flags.js';
import { goQuote } from './go-format.js';

export const ctlVersion = '3.4.23';
export const apiVersion = '3.4';

/** The root of the tree: what `etcdctl --help` describes. */
export const rootSpec = { name: 'etcdctl', short: 'A simple command line client for etcd3.' } as const;

/** cobra's default --help flag of a command. */
export function helpFlag(commandName: string): FlagSpec {
  return { name: 'help', kind: 'bool', def: 'false', short: 'h', usage: `help for ${commandName}` };
}

/** Where a command sits: the commands from the root's child down to it, and the globals above them. */
export interface CommandPath {
  readonly path: readonly CommandSpec[];
  readonly globalFlags: readonly FlagSpec[];
  readonly rootCommands: readonly CommandSpec[];
}

/** Commands in cobra's order (sorted by name). */
function sorted(list: readonly CommandSpec[]): CommandSpec[] {
  return [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every runnable command below list, depth first, named relative to it. */
function runnableBelow(list: readonly CommandSpec[], prefix: string): [string, string][] {
  const out: [string, string][] = [];
  for (const c of sorted(list)) {
    const name = prefix === '' ? c.name : `${prefix} ${c.name}`;
    if (c.run !== undefined) out.push([name, c.short]);
    if (c.subcommands !== undefined) out.push(...runnableBelow(c.subcommands, name));
  }
  return out;
}

/** etcdctl's flag lines: one per flag, sorted by name, the usage after a tab. */
function flagLines(flags: readonly FlagSpec[]): string {
  return [...flags]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => {
      const head = f.short !== undefined ? `  -${f.short}, --${f.name}` : `      --${f.name}`;
      const value = f.kind === 'string' ? goQuote(f.def) : f.kind === 'stringSlice' ? `[${f.def}]` : f.def;
      return `${head}${f.kind === 'bool' ? `[=${value}]` : `=${value}`}\t${f.usage}\n`;
    })
    .join('');
}

/** The flags a command defines itself (its persistent ones included) and those it inherits. */
export function commandFlags(at: CommandPath, withHelp: boolean): { local: FlagSpec[]; inherited: FlagSpec[] } {
  const cmd = at.path[at.path.length - 1];
  const name = cmd?.name ?? rootSpec.name;
  const own = cmd === undefined ? [...at.globalFlags] : [...(cmd.flags ?? []), ...(cmd.persistentFlags ?? [])];
  const inherited = cmd === undefined ? [] : [...at.globalFlags, ...at.path.slice(0, -1).flatMap((c) => c.persistentFlags ?? [])];
  return { local: withHelp ? [...own, helpFlag(name)] : own, inherited };
}

/** The usage page of the command at the end of at.path (the root's if empty). */
export function usagePage(at: CommandPath, withHelp = true): string {
  const cmd = at.path[at.path.length - 1];
  const commandPath = [rootSpec.name, ...at.path.map((c) => c.name)].join(' ');
  const { local, inherited } = commandFlags(at, withHelp);
  const subcommands = cmd === undefined ? at.rootCommands : (cmd.subcommands ?? []);
  let use = cmd === undefined ? rootSpec.name : `${commandPath}${cmd.params !== undefined ? ` ${cmd.params}` : ''}`;
  if (local.length + inherited.length > 0 && cmd?.noFlagsInUseLine !== true && !use.includes('[flags]')) use += ' [flags]';
  let s = 'NAME:\n';
  s += `\t${cmd === undefined ? rootSpec.name : at.path.map((c) => c.name).join(' ')} - ${cmd?.short ?? rootSpec.short}\n`;
  s += `\nUSAGE:\n\t${use}\n`;
  if (cmd === undefined) s += `\nVERSION:\n\t${ctlVersion}\n`;
  if (subcommands.length > 0) {
    s += `\nAPI VERSION:\n\t${apiVersion}\n`;
    s += '\n\nCOMMANDS:\n';
    for (const [name, short] of runnableBelow(subcommands, '')) s += `\t${name}\t${short}\n`;
  }
  const long = cmd?.long;
  if (long !== undefined && long !== '') {
    s += '\nDESCRIPTION:\n';
    for (const line of long.replace(/^[\n\t ]+|[\n\t ]+$/g, '').split('\n')) s += `\t${line}\n`;
  }
  if (local.length > 0) s += `\nOPTIONS:\n${flagLines(local)}`;
  if (inherited.length > 0) s += `\nGLOBAL OPTIONS:\n${flagLines(inherited)}`;
  return tabwrite(`${s}\n`);
}

/** The count of runes, as tabwriter measures a cell. */
function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Go's text/tabwriter with minwidth 0, tabwidth 8, padding 1 and '\t' as the
 * pad character: a column block is a run of lines that have a cell in that
 * column; its cells are padded with tabs to the block's widest cell plus one,
 * rounded up to a tab stop. A line's last cell is not part of any column.
 */
export function tabwrite(text: string, tabWidth = 8, padding = 1): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const widths = lines.map((cells) => new Array<number>(Math.max(cells.length - 1, 0)).fill(0));
  const cellCount = (i: number): number => (lines[i]?.length ?? 1) - 1;
  const format = (line0: number, line1: number, column: number): void => {
    for (let i = line0; i < line1; ) {
      if (column >= cellCount(i)) {
        i++;
        continue;
      }
      let width = 0;
      let j = i;
      for (; j < line1 && column < cellCount(j); j++) width = Math.max(width, runeCount(lines[j]?.[column] ?? '') + padding);
      for (let k = i; k < j; k++) (widths[k] as number[])[column] = width;
      format(i, j, column + 1);
      i = j;
    }
  };
  format(0, lines.length, 0);
  return lines
    .map((cells, i) =>
      cells
        .map((cell, c) => {
          if (c === cells.length - 1) return cell;
          const cellWidth = Math.ceil((widths[i]?.[c] ?? 0) / tabWidth) * tabWidth;
          return cell + '\t'.repeat(Math.ceil((cellWidth - runeCount(cell)) / tabWidth));
        })
        .join(''),
    )
    .join('\n');
}

/** Levenshtein distance, case-insensitive (cobra's ld with ignoreCase). */
function distance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[t.length] ?? 0;
}

/** cobra's "Did you mean this?" block for an unknown command word ('' when nothing is close). */
export function suggestions(word: string, list: readonly CommandSpec[]): string {
  // cobra looks through the commands in the order they were added, not sorted.
  const close = list
    .map((c) => c.name)
    .filter((n) => distance(word, n) <= 2 || n.toLowerCase().startsWith(word.toLowerCase()));
  return close.length === 0 ? '' : `\n\nDid you mean this?\n${close.map((n) => `\t${n}\n`).join('')}`;
}

/** pflag's type name of a flag's value, as its FlagUsages shows it after the name (none for a bool). */
const pflagTypeNames: Readonly<Record<FlagSpec['kind'], string>> = {
  bool: '',
  string: 'string',
  int: 'int',
  uint: 'uint',
  duration: 'duration',
  stringSlice: 'strings',
};

/** Whether pflag counts the default as its type's zero value (then it shows none). */
function zeroDefault(f: FlagSpec): boolean {
  switch (f.kind) {
    case 'bool':
      return f.def === 'false';
    case 'int':
    case 'uint':
      return f.def === '0';
    case 'duration':
      return f.def === '0s';
    case 'stringSlice':
      return f.def === '' || f.def === '[]';
    case 'string':
      return f.def === '';
  }
}

/**
 * pflag's FlagUsages: a line per flag, sorted by name, the usage aligned one
 * column past the longest "-x, --name type" and followed by the default
 * unless it is the zero value.
 */
export function pflagUsages(flags: readonly FlagSpec[]): string {
  const lines = [...flags]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => {
      let head = f.short !== undefined ? `  -${f.short}, --${f.name}` : `      --${f.name}`;
      const type = pflagTypeNames[f.kind];
      if (type !== '') head += ` ${type}`;
      let usage = f.usage;
      if (!zeroDefault(f)) usage += f.kind === 'string' ? ` (default ${goQuote(f.def)})` : ` (default ${f.def})`;
      return { head, usage };
    });
  const width = Math.max(...lines.map((l) => l.head.length + 1));
  // Go's Fprintln puts a space between its operands: head, padding, usage.
  return lines.map((l) => `${l.head} ${' '.repeat(width - l.head.length)} ${l.usage}\n`).join('');
}

/** What cobra prints before a flag error of a command run by etcdctl itself (a txn's put, get or del line). */
export function cobraUsage(cmd: CommandSpec): string {
  const flags = [...(cmd.flags ?? []), helpFlag(cmd.name)];
  return `Usage:\n   ${cmd.name}${cmd.params !== undefined ? ` ${cmd.params}` : ''} [flags]\n\nFlags:\n${pflagUsages(flags)}\n`;
}
