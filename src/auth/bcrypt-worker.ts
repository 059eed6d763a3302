/**
 * The body of a bcrypt worker thread (see bcrypt-pool.ts): hashes and
 * compares passwords so the main event loop never runs bcrypt. It logs
 * nothing; a password lives only in the message that carried it.
 */
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import type { BcryptReply, BcryptTask } from './bcrypt-pool.js';

function run(task: BcryptTask): BcryptReply {
  try {
    switch (task.op) {
      case 'hash':
        return { id: task.id, ok: true, value: bcrypt.hashSync(task.password, task.cost) };
      case 'compare':
        // compareSync throws on a malformed hash; that is a mismatch, not a crash.
        return { id: task.id, ok: true, value: bcrypt.compareSync(task.password, task.hash) };
    }
  } catch (err) {
    return { id: task.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const port = parentPort;
if (port === null) throw new Error('bcrypt-worker must run in a worker thread');
port.on('message', (task: BcryptTask) => {
  port.postMessage(run(task));
});
