/**
 * Runs snapshot-export-worker.ts: an LMDB copy of the backend becomes the
 * bbolt file a client's snapshot streams, on a worker thread of its own.
 */
import { Worker } from 'node:worker_threads';
import type { ExportReply, ExportTask } from './snapshot-export-worker.js';

const workerUrl = new URL('./snapshot-export-worker.js', import.meta.url);

/** Writes the bbolt form of the LMDB file at lmdbPath to destPath; resolves to its size. */
export function exportBbolt(lmdbPath: string, destPath: string): Promise<number> {
  const task: ExportTask = { lmdbPath, destPath };
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: task });
    let reply: ExportReply | undefined;
    worker.once('message', (m: ExportReply) => (reply = m));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (reply === undefined) reject(new Error(`snapshot export worker exited with code ${code} before answering`));
      else if (reply.ok) resolve(reply.size);
      else reject(new Error(`snapshot export: ${reply.error}`));
    });
  });
}
