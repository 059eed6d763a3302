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

/** In order: `viewed` (the view is taken: commits may go on), the size (format 'bbolt' only), the pieces, then the outcome. */
export type ExportReply =
  | { readonly viewed: true }
  | { readonly size: number }
  | { readonly piece: Uint8Array }
  | { readonly ok: true }
  | { readonly ok: false; readonly error: string };

/** A database being streamed: its bytes in order. */
export interface DbExport {
  /** The next bytes of the file; undefined after the last. Rejects if the export failed or was stopped. */
  next(): Promise<Uint8Array | undefined>;
  /** Bytes the worker has sent ahead and next() has not taken yet. */
  queuedBytes(): number;
  /** Stops the export (the client has gone); settles when the worker has ended. */
  stop(): Promise<void>;
  /** Settles when the export is over and its view closed (the worker then waits for the next, or is gone); never rejects. */
  readonly ended: Promise<void>;
}

/** A bbolt file being streamed, whose size is known before its first byte (a client's snapshot announces it). */
export interface SizedDbExport extends DbExport {
  readonly size: number;
}

/**
 * Workers kept between exports. Starting one and loading its modules takes
 * 60–200 ms here, and the backend holds its commits until the view is
 * taken: a leader that sends a snapshot to a follower every second (it
 * compacts its log that fast under load) would stall its own commits for
 * that long each time, and reach the first byte late enough that the
 * follower is behind the compacted log again when the install ends.
 */
const keptMax = 2;
/** An idle worker ends after this long without an export. */
const keptMs = 60_000;
const kept: { readonly worker: Worker; readonly timer: NodeJS.Timeout; readonly exited: () => void }[] = [];

let started = 0;

/** Export workers started in this process so far (the rest of the exports reused a kept one). */
export function exportWorkersStarted(): number {
  return started;
}

function takeWorker(): Worker {
  const k = kept.pop();
  if (k === undefined) {
    started++;
    return new Worker(workerUrl);
  }
  clearTimeout(k.timer);
  k.worker.off('exit', k.exited);
  k.worker.ref();
  return k.worker;
}

/** Keeps a worker that finished its export cleanly for the next one; it does not keep the process alive. */
function giveBack(worker: Worker): void {
  if (kept.length >= keptMax) {
    void worker.terminate();
    return;
  }
  const drop = (): void => {
    const i = kept.findIndex((k) => k.worker === worker);
    if (i >= 0) kept.splice(i, 1);
  };
  const timer = setTimeout(() => {
    drop();
    void worker.terminate();
  }, keptMs).unref();
  worker.unref();
  kept.push({ worker, timer, exited: drop });
  worker.once('exit', drop);
}

/**
 * Streams the live backend file at dbPath in the given format. Calls viewed
 * once the worker holds its read view (Backend.whileViewed's `opened`);
 * resolves then for the peer format, and once the bbolt file's size is
 * known for that format (it lays the file out first).
 */
export function exportDb(dbPath: string, format: 'bbolt', viewed: () => void): Promise<SizedDbExport>;
export function exportDb(dbPath: string, format: 'peer', viewed: () => void): Promise<DbExport>;
export function exportDb(dbPath: string, format: ExportFormat, viewed: () => void): Promise<DbExport | SizedDbExport> {
  const control = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const slots = new Int32Array(control);
  const worker = takeWorker();
  const pieces: Uint8Array[] = [];
  let finished = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let started: ((size: number | undefined) => void) | undefined;
  let failedEarly: ((e: Error) => void) | undefined;
  let over: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (over = resolve));
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
  /** The task is over: its view is closed (the worker said so) or the worker is gone. */
  const settle = (reusable: boolean): void => {
    worker.off('message', onMessage);
    worker.off('error', onError);
    worker.off('exit', onExit);
    if (reusable) giveBack(worker);
    else void worker.terminate();
    over();
  };
  const onMessage = (m: ExportReply): void => {
    if ('viewed' in m) {
      viewed();
      if (format === 'peer') started?.(undefined);
    } else if ('size' in m) started?.(m.size);
    else if ('piece' in m) {
      pieces.push(m.piece);
      nudge();
    } else {
      if (m.ok) {
        finished = true;
        nudge();
      } else fail(new Error(`snapshot export: ${m.error}`));
      settle(true);
    }
  };
  const onError = (e: Error): void => {
    fail(e);
    settle(false);
  };
  const onExit = (code: number): void => {
    fail(new Error(`snapshot export worker exited with code ${code} before finishing`));
    settle(false);
  };
  worker.on('message', onMessage);
  worker.on('error', onError);
  worker.on('exit', onExit);
  worker.postMessage({ dbPath, format, control } satisfies ExportTask);

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
  return new Promise<DbExport | SizedDbExport>((resolve, reject) => {
    started = (size) => {
      const x: DbExport = { next, stop, ended, queuedBytes: () => pieces.reduce((n, p) => n + p.length, 0) };
      resolve(size === undefined ? x : { ...x, size });
    };
    failedEarly = reject;
  });
}

/**
 * An export's bytes as an async iterable, for the peer transport. Leaving it
 * early (return(), as a `for await` left by a throw or a break does), even
 * before the first piece, or a failed export, stops the export and lets its
 * view go; `done` runs once the stream has ended either way.
 */
export function exportPieces(x: DbExport, done?: () => void): AsyncIterableIterator<Uint8Array> {
  let over = false;
  const end = async (whole: boolean): Promise<void> => {
    if (over) return;
    over = true;
    if (!whole) await x.stop();
    done?.();
  };
  const finished: IteratorReturnResult<undefined> = { done: true, value: undefined };
  const it: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]: () => it,
    next: async () => {
      if (over) return finished;
      let piece: Uint8Array | undefined;
      try {
        piece = await x.next();
      } catch (e) {
        await end(false);
        throw e;
      }
      if (piece !== undefined) return { done: false, value: piece };
      await end(true);
      return finished;
    },
    return: async () => {
      await end(false);
      return finished;
    },
  };
  return it;
}
