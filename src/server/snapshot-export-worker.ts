/**
 * The body of the worker thread that streams the backend as the bbolt file
 * a client's snapshot sends (snapshot-bbolt.ts), or as the stream a member
 * sends another (snapshot-peer.ts), with no file on disk. It
 * reads the member's own database file through a read view (one LMDB read
 * transaction, taken while the backend holds its commits:
 * Backend.whileViewed), says so, and sends its bytes (the bbolt file's size
 * first: its layout is worked out before its pages), while the member goes on committing. Reading a
 * million keys and laying out their pages takes seconds: off the event loop
 * that serves raft and clients. The worker then waits for the next export
 * (snapshot-export.ts keeps a few between exports), each with its own view.
 *
 * Flow control: the worker blocks (Atomics.wait) while `exportInFlightMax`
 * pieces are posted and not yet taken, so a slow client holds a few MiB
 * here, not the file; the taker counts a piece taken by decrementing the
 * shared counter, and sets the stop flag when the client has gone.
 */
import { parentPort } from 'node:worker_threads';
import { LmdbEngine } from '../backend/index.js';
import { nopLogger } from '../base/index.js';
import { Schema } from '../schema/index.js';
import { streamBboltSnapshot } from './snapshot-bbolt.js';
import { streamPeerSnapshot } from './snapshot-peer.js';
import { exportInFlightMax, exportSlotInFlight, exportSlotStop, type ExportReply, type ExportTask } from './snapshot-export.js';

class Stopped extends Error {}

function run(task: ExportTask, port: NonNullable<typeof parentPort>): Promise<ExportReply> | ExportReply {
  const control = new Int32Array(task.control);
  const post = (reply: ExportReply): void => port.postMessage(reply);
  /** Throws once the taker wants no more. */
  const stopped = (): void => {
    if (Atomics.load(control, exportSlotStop) !== 0) throw new Stopped();
  };
  /** Waits (blocking this thread) until the taker has room; throws once it wants no more. */
  const room = (): void => {
    for (;;) {
      stopped();
      const inFlight = Atomics.load(control, exportSlotInFlight);
      if (inFlight < exportInFlightMax) return;
      Atomics.wait(control, exportSlotInFlight, inFlight, 1000);
    }
  };
  let schema: Schema;
  try {
    schema = Schema.open({ path: task.dbPath, engine: (path, names) => LmdbEngine.openReadView(path, names, nopLogger, { transient: true }) });
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  post({ viewed: true });
  let outcome: ExportReply;
  try {
    const emit = (piece: Uint8Array): void => {
      room();
      Atomics.add(control, exportSlotInFlight, 1);
      // Moved, not copied, when the piece is its whole buffer (the writer's pieces are).
      const whole = piece.byteOffset === 0 && piece.byteLength === piece.buffer.byteLength;
      const own = whole ? piece : new Uint8Array(piece);
      port.postMessage({ piece: own } satisfies ExportReply, [own.buffer as ArrayBuffer]);
    };
    if (task.format === 'peer') streamPeerSnapshot(schema, emit, stopped);
    else streamBboltSnapshot(schema, (size) => post({ size }), emit, stopped);
    outcome = { ok: true };
  } catch (e) {
    outcome = { ok: false, error: e instanceof Stopped ? 'stopped' : e instanceof Error ? e.message : String(e) };
  }
  return schema.backend.close().then(() => outcome);
}

const port = parentPort;
if (port === null) throw new Error('snapshot-export-worker must run in a worker thread');
// One export at a time: the next task comes only after this one's outcome was posted.
port.on('message', (task: ExportTask) => {
  void Promise.resolve(run(task, port)).then((outcome) => port.postMessage(outcome));
});
