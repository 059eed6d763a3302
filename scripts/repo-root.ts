/**
 * The repository root, found from a compiled script's location wherever it
 * was built (dist/scripts, .build/<name>/scripts): the nearest ancestor with
 * the project's package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function repoRoot(from: string = import.meta.dirname): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'etcd-ts') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no etcd-ts package.json above ${from}`);
    dir = up;
  }
}
