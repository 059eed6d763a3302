/**
 * Runs snapshot-export-worker.ts: the backend's file, read through a view
 * of its own on a worker thread, streamed as the bbolt file a client's
 * snapshot sends (format 'bbolt'), or as a member sends its database to
 * another (format 'peer': snapshot-peer.ts).
 */
import { Worker } from 'node:worker_threads';

const workerUrl = new URL('./snapshot-export-worker.js', import.meta.url);

/** What the export streams: the bbolt file etcd's tools read, or the stream a member sends another. */
export type ExportFormat = 'bbolt' | 'peer';

export interface ExportTask {
  /** The live backend file. */
  readonly dbPath: string;
  readonly format: ExportFormat;
  /** Int32 slots: exportSlotInFlight, exportSlotStop. */
  readonly control: SharedArrayBuffer;
}

/** The control slot counting pieces posted and not yet taken. */
export const exportSlotInFlight = 0;
/** The control slot set to 1 when the taker wants no more. */
export const exportSlotStop = 1;
/** Pieces (about 1 MiB each) posted ahead of the taker at most. */
export const exportInFlightMax = 4;

/** In order: `viewed` (the view is taken: commits may go on), the size, the pieces, then the outcome. */
export type ExportReply =
  | { readonly viewed: true }
  | { readonly size: number }
  | { readonly piece: Uint8Array }
  | { readonly ok: true }
  | { readonly ok: false; readonly error: string };

/** A database being streamed: its size, then its bytes in order. */
export interface DbExport {
  readonly size: number;
  /** The next bytes of the file; undefined after the last. Rejects if the export failed or was stopped. */
  next(): Promise<Uint8Array | undefined>;
  /** Bytes the worker has sent ahead and next() has not taken yet. */
  queuedBytes(): number;
  /** Stops the export (the client has gone); settles when the worker has ended. */
  stop(): Promise<void>;
  /** Settles when the worker has ended, its view closed; never rejects. */
  readonly ended: Promise<void>;
}

/**
 * Streams the live backend file at dbPath in the given format. Calls viewed
 * once the worker holds its read view (Backend.whileViewed's `opened`);
 * resolves once the stream's size is known.
 */
export function exportDb(dbPath: string, format: ExportFormat, viewed: () => void): Promise<DbExport> {
  const control = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const slots = new Int32Array(control);
  const worker = new Worker(workerUrl, { workerData: { dbPath, format, control } satisfies ExportTask });
  const pieces: Uint8Array[] = [];
  let finished = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let sized: ((size: number) => void) | undefined;
  let failedEarly: ((e: Error) => void) | undefined;
  const nudge = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (e: Error): void => {
    if (finished) return;
    failure ??= e;
    finished = true;
    failedEarly?.(e);
    nudge();
  };
  const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('message', (m: ExportReply) => {
    if ('viewed' in m) viewed();
    else if ('size' in m) sized?.(m.size);
    else if ('piece' in m) {
      pieces.push(m.piece);
      nudge();
    } else if (m.ok) {
      finished = true;
      nudge();
    } else fail(new Error(`snapshot export: ${m.error}`));
  });
  worker.once('error', fail);
  worker.once('exit', (code) => fail(new Error(`snapshot export worker exited with code ${code} before finishing`)));

  const stop = async (): Promise<void> => {
    fail(new Error('snapshot export: stopped'));
    pieces.length = 0;
    Atomics.store(slots, exportSlotStop, 1);
    Atomics.notify(slots, exportSlotInFlight);
    await ended;
  };
  const next = async (): Promise<Uint8Array | undefined> => {
    for (;;) {
      const piece = pieces.shift();
      if (piece !== undefined) {
        Atomics.sub(slots, exportSlotInFlight, 1);
        Atomics.notify(slots, exportSlotInFlight);
        return piece;
      }
      if (failure !== undefined) throw failure;
      if (finished) return undefined;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return new Promise<DbExport>((resolve, reject) => {
    sized = (size) => resolve({ size, next, stop, ended, queuedBytes: () => pieces.reduce((n, p) => n + p.length, 0) });
    failedEarly = reject;
  });
}

/**
 * An export's bytes as an async iterable, for the peer transport: stopping
 * early (the peer gone, a failed send) stops the export and lets its view
 * go; `done` runs once the stream has ended either way.
 */
export async function* exportPieces(x: DbExport, done?: () => void): AsyncGenerator<Uint8Array> {
  let whole = false;
  try {
    for (let piece = await x.next(); piece !== undefined; piece = await x.next()) yield piece;
    whole = true;
  } finally {
    if (!whole) await x.stop();
    done?.();
  }
}
