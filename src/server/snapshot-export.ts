/**
 * Runs snapshot-export-worker.ts: the backend's file, read through a view
 * of its own, becomes the bbolt file a client's snapshot streams, on a
 * worker thread of its own.
 */
import { Worker } from 'node:worker_threads';
import type { ExportReply, ExportTask } from './snapshot-export-worker.js';

const workerUrl = new URL('./snapshot-export-worker.js', import.meta.url);

/**
 * Writes the bbolt form of the live backend file at dbPath to destPath;
 * calls viewed once the worker holds its read view (Backend.whileViewed's
 * `opened`); resolves to the file's size.
 */
export function exportBbolt(dbPath: string, destPath: string, viewed: () => void): Promise<number> {
  const task: ExportTask = { dbPath, destPath };
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: task });
    let reply: ExportReply | undefined;
    worker.on('message', (m: ExportReply) => {
      if ('viewed' in m) viewed();
      else reply = m;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (reply === undefined || 'viewed' in reply) reject(new Error(`snapshot export worker exited with code ${code} before answering`));
      else if (reply.ok) resolve(reply.size);
      else reject(new Error(`snapshot export: ${reply.error}`));
    });
  });
}
