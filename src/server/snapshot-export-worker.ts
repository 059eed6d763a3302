/**
 * The body of the worker thread that turns a copy of the backend (an LMDB
 * file made by Backend.snapshotTo) into the bbolt file a client's snapshot
 * streams (snapshot-bbolt.ts). Reading a million keys and writing their
 * pages takes seconds: off the event loop that serves raft and clients.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { rmSync } from 'node:fs';
import { Schema } from '../schema/index.js';
import { writeBboltSnapshot } from './snapshot-bbolt.js';

export interface ExportTask {
  readonly lmdbPath: string;
  readonly destPath: string;
}

export type ExportReply = { readonly ok: true; readonly size: number } | { readonly ok: false; readonly error: string };

async function run(task: ExportTask): Promise<ExportReply> {
  try {
    const schema = Schema.open({ path: task.lmdbPath });
    try {
      return { ok: true, size: writeBboltSnapshot(schema, task.destPath) };
    } finally {
      await schema.backend.close();
      rmSync(`${task.lmdbPath}-lock`, { force: true });
    }
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

const port = parentPort;
if (port === null) throw new Error('snapshot-export-worker must run in a worker thread');
port.postMessage(await run(workerData as ExportTask));
