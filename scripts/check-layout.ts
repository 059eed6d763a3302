/**
 * Enforces the folder layout of DESIGN.md §2: which folder may import which,
 * that other folders enter a folder only through its index.ts, that `lmdb`
 * is imported only by src/backend and no node: module by src/raft, and that
 * runtime imports form no cycle. Exits non-zero listing every violation.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { repoRoot } from './repo-root.js';

const root = repoRoot();

/** folder -> folders it may import (base is open to all src folders). */
const allowed: Readonly<Record<string, readonly string[]>> = {
  'src/pb': [],
  'src/base': [],
  'src/raft': ['src/base', 'src/pb'],
  'src/wal': ['src/base', 'src/pb'],
  'src/backend': ['src/base'],
  'src/schema': ['src/backend', 'src/base', 'src/pb'],
  'src/mvcc': ['src/backend', 'src/schema', 'src/base', 'src/pb'],
  'src/lease': ['src/base', 'src/pb'],
  'src/auth': ['src/base', 'src/pb'],
  'src/grpc': ['src/base'],
  'src/transport': ['src/base', 'src/pb'],
  'src/server': [
    'src/raft', 'src/wal', 'src/backend', 'src/schema', 'src/mvcc', 'src/lease', 'src/auth',
    'src/transport', 'src/base', 'src/pb',
  ],
  'src/api': ['src/server', 'src/grpc', 'src/base', 'src/pb'],
  'src/client': ['src/grpc', 'src/base', 'src/pb'],
  'src/ctl': ['src/client'],
};
/** Folders that may import anything. */
const open = new Set(['src/cmd', 'test', 'bench', 'scripts']);
/** Bare module specifiers reserved to one folder. */
const reservedPackages: Readonly<Record<string, string>> = { lmdb: 'src/backend' };
/** Folders that may not touch Node's built-in modules at all. */
const noNodeBuiltins = new Set(['src/raft', 'src/pb', 'src/base']);
const nodeBuiltinExceptions: Readonly<Record<string, readonly string[]>> = {
  'src/base': [],
};

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
}

/** The layout folder a repo-relative path belongs to: src/<x>, or a top folder. */
function folderOf(rel: string): string {
  const parts = rel.split(sep);
  if (parts[0] === 'src' && parts.length > 2) return `src/${parts[1]}`;
  return parts[0] ?? rel;
}

interface ImportRef {
  spec: string;
  typeOnly: boolean;
}

const importRe =
  /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(source: string): ImportRef[] {
  const refs: ImportRef[] = [];
  for (const m of source.matchAll(importRe)) {
    const spec = m[3] ?? m[4];
    if (spec !== undefined) refs.push({ spec, typeOnly: m[2] !== undefined });
  }
  return refs;
}

const files: string[] = [];
for (const top of ['src', 'test', 'bench', 'scripts']) {
  try {
    walk(join(root, top), files);
  } catch {
    // A top folder that does not exist yet has nothing to check.
  }
}

const problems: string[] = [];
const graph = new Map<string, string[]>();

for (const file of files) {
  const rel = relative(root, file);
  const from = folderOf(rel);
  const isTest = rel.endsWith('.test.ts');
  const edges: string[] = [];
  graph.set(rel, edges);
  for (const { spec, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
    if (spec.startsWith('node:')) {
      if (noNodeBuiltins.has(from) && !isTest && !(nodeBuiltinExceptions[from] ?? []).includes(spec)) {
        problems.push(`${rel}: ${from} may not import ${spec}`);
      }
      continue;
    }
    if (!spec.startsWith('.')) {
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec);
      const owner = reservedPackages[pkg];
      if (owner !== undefined && owner !== from && !open.has(from) && !isTest) {
        problems.push(`${rel}: only ${owner} may import '${pkg}'`);
      }
      continue;
    }
    const target = relative(root, resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
    const to = folderOf(target);
    if (!typeOnly) edges.push(target);
    if (to === from) continue;
    if (to.startsWith('src/') && !target.endsWith(`${sep}index.ts`) && !open.has(from)) {
      problems.push(`${rel}: enters ${to} through ${target}, not its index.ts`);
    }
    if (open.has(from)) continue;
    const may = allowed[from];
    if (may === undefined) {
      problems.push(`${rel}: folder ${from} is not in the layout table (scripts/check-layout.ts)`);
      continue;
    }
    if (to !== 'src/base' && !may.includes(to)) {
      problems.push(`${rel}: ${from} may not import ${to}`);
    }
  }
}

// Runtime import cycles between files (type-only imports erase at compile time).
const state = new Map<string, 'open' | 'done'>();
const stack: string[] = [];
function visit(node: string): void {
  state.set(node, 'open');
  stack.push(node);
  for (const next of graph.get(node) ?? []) {
    const s = state.get(next);
    if (s === 'open') {
      const cycle = stack.slice(stack.indexOf(next)).concat(next);
      problems.push(`import cycle: ${cycle.join(' -> ')}`);
    } else if (s === undefined && graph.has(next)) {
      visit(next);
    }
  }
  stack.pop();
  state.set(node, 'done');
}
for (const node of graph.keys()) if (!state.has(node)) visit(node);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`check-layout: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`check-layout: ${files.length} files, layout and import directions ok`);
