/**
 * The lock checker (P14), in revision terms: a Lock that succeeded answered
 * with a revision at which its key existed (its lease had not expired,
 * etcd #11456) and had the lowest create revision of every key under the
 * lock's name/ — so of two holders, the later one's revision comes after
 * the earlier one's key was deleted: mutual exclusion by revision order.
 * (In real time a holder paused past its lease can still believe it holds
 * the lock; no lock service can prevent that, and it is not checked.)
 */
import type { Violation } from './check-kv.js';
import { inRange, type LockRecord } from './history.js';
import type { Replay } from './model.js';
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
