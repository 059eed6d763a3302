/**
 * The writer of mvcc's crash test (crash.test.ts), run as a child process:
 *
 *   node crash-child.js <db path> <first batch>
 *
 * Applies batch after batch as the server applies raft entries: each batch
 * is one mvcc write transaction (a few puts under keys unique to the batch)
 * plus the applied index = the batch number, in one backend scope. Every few
 * batches it forces a commit and prints "ack <n>": batches up to n are
 * durable. It prints "ready" once the store is open, and runs until killed.
 */
import { Schema } from '../schema/index.js';
import { KvStore } from './kv-store.js';

const [path, firstArg] = process.argv.slice(2);
if (path === undefined || firstArg === undefined) throw new Error('usage: crash-child <db path> <first batch>');
const putsPerBatch = 5;
const batchesPerAck = 25;

// Small batches: most commits are the backend's own, between the acks.
const schema = Schema.open({ path, batchOpsMax: 50 });
const kv = KvStore.open({ schema });
const value = new Uint8Array(200).fill(0x61);

async function run(): Promise<void> {
  process.stdout.write('ready\n');
  for (let n = Number(firstArg); ; n++) {
    schema.backend.write(() => {
      kv.write((txn) => {
        for (let j = 0; j < putsPerBatch; j++) txn.put(Buffer.from(`b${n}/${j}`), value, 0n);
      });
      schema.setConsistentIndex({ index: n, term: 1 });
    });
    if (n % batchesPerAck === 0) {
      await schema.backend.forceCommit();
      process.stdout.write(`ack ${n}\n`);
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

void run();
