/**
 * The body of the worker thread that turns the backend into the bbolt file
 * a client's snapshot streams (snapshot-bbolt.ts). It reads the member's
 * own database file through a read view (one LMDB read transaction, taken
 * while the backend holds its commits: Backend.whileViewed), says so, and
 * converts what that view holds while the member goes on committing.
 * Reading a million keys and writing their pages takes seconds: off the
 * event loop that serves raft and clients, and with no copy of the
 * database first.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LmdbEngine } from '../backend/index.js';
import { nopLogger } from '../base/index.js';
import { Schema } from '../schema/index.js';
import { writeBboltSnapshot } from './snapshot-bbolt.js';

export interface ExportTask {
  /** The live backend file. */
  readonly dbPath: string;
  readonly destPath: string;
}

/** First `viewed` (the view is taken: commits may go on), then the outcome. */
export type ExportReply = { readonly viewed: true } | { readonly ok: true; readonly size: number } | { readonly ok: false; readonly error: string };

async function run(task: ExportTask, port: NonNullable<typeof parentPort>): Promise<ExportReply> {
  try {
    const schema = Schema.open({ path: task.dbPath, engine: (path, names) => LmdbEngine.openReadView(path, names, nopLogger) });
    port.postMessage({ viewed: true } satisfies ExportReply);
    try {
      return { ok: true, size: writeBboltSnapshot(schema, task.destPath) };
    } finally {
      await schema.backend.close();
    }
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

const port = parentPort;
if (port === null) throw new Error('snapshot-export-worker must run in a worker thread');
port.postMessage(await run(workerData as ExportTask, port));
