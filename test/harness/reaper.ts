/**
 * Every child process the harness starts is registered here, and killed with
 * SIGKILL when the test process exits — normally, on an uncaught error, or on
 * SIGINT/SIGTERM/SIGHUP (the test runner's timeout sends SIGTERM) — so no
 * etcd survives a failed test to hold its ports and data dir.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let installed = false;

function killAll(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  const signals = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
  for (const [sig, n] of Object.entries(signals)) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + n);
    });
  }
}

/** Kills child at exit unless it ended before. */
export function track(child: ChildProcess): void {
  install();
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** How many tracked children are still running (tests assert 0 at the end). */
export function liveChildren(): number {
  return live.size;
}
