/**
 * The lock checker (P14), in revision terms: a Lock that succeeded answered
 * with a revision at which its key existed (its lease had not expired,
 * etcd #11456) and had the lowest create revision of every key under the
 * lock's name/ — so of two holders, the later one's revision comes after
 * the earlier one's key was deleted: mutual exclusion by revision order.
 * (In real time a holder paused past its lease can still believe it holds
 * the lock; no lock service can prevent that, and it is not checked.)
 *
 * The sets written under the locks (locks.ts) are where that shows: each
 * holder reads a set and writes it back with one element more, fenced by
 * its lock key's revision. Every version of a set must be the previous one
 * plus exactly one element never seen before, and a set is never deleted:
 * a write from a holder whose lock was gone would overwrite the set with
 * an older base and drop an element (Jepsen's lock-etcd-set, P14).
 */
import type { Violation } from './check-kv.js';
import { inRange, type LockRecord } from './history.js';
import type { Replay } from './model.js';
import { lockSetPrefix } from './locks.js';
import { prefixEnd } from './traffic.js';

export function checkLocks(locks: readonly LockRecord[], replay: Replay): Violation[] {
  const v: Violation[] = [];
  for (const l of locks) {
    const add = (message: string): void => void v.push({ check: 'lock', message: `lock ${l.name} held by client ${l.client} as ${l.key} at revision ${l.rev}: ${message}` });
    if (l.rev > replay.maxRev) {
      add(`beyond the last revision ${replay.maxRev} of the history`);
      continue;
    }
    const mine = replay.stateAt(l.key, l.rev);
    if (mine === undefined) {
      add('its key did not exist there (its lease was gone)');
      continue;
    }
    const pfx = `${l.name}/`;
    const older = replay
      .keys()
      .filter((k) => inRange(k, pfx, prefixEnd(pfx)))
      .map((k) => replay.stateAt(k, l.rev))
      .filter((kv) => kv !== undefined && kv.createRev < mine.createRev);
    if (older.length > 0) add(`${older.map((kv) => `${kv?.key ?? ''} (created at ${kv?.createRev ?? 0})`).join(', ')} still existed, older than its key (created at ${mine.createRev})`);
  }
  return v;
}

export function checkLockedSets(replay: Replay): Violation[] {
  const v: Violation[] = [];
  for (const key of replay.keys().filter((k) => k.startsWith(lockSetPrefix))) {
    let prev: string[] = [];
    const seen = new Set<string>();
    for (const { rev, kv } of replay.versionsOf(key)) {
      const add = (message: string): void => void v.push({ check: 'lock-set', message: `${key} at revision ${rev}: ${message}` });
      if (kv === undefined) {
        add(`deleted, losing ${prev.length} elements`);
        prev = [];
        continue;
      }
      const elements = kv.value.split(' ');
      const last = elements[elements.length - 1] as string;
      const kept = elements.slice(0, -1);
      const lost = prev.filter((e) => !kept.includes(e));
      if (kept.length !== prev.length || lost.length > 0) {
        add(`"${kv.value}" is not "${prev.join(' ')}" plus one element${lost.length > 0 ? `: lost ${lost.join(', ')}` : ''}`);
      }
      if (seen.has(last)) add(`${last} added twice`);
      elements.forEach((e) => seen.add(e));
      prev = elements;
    }
  }
  return v;
}
