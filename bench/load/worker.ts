/**
 * One load-generator process (forked by driver.ts). It speaks gRPC directly
 * on node:http2 sessions: each client is a closed loop issuing one request
 * at a time as a new HTTP/2 stream on its connection, the request body a
 * frame encoded before the run. Latency goes to a histogram; only requests
 * that complete inside the measured window count. CPU is this process's
 * own over the window.
 *
 * IPC: parent sends {op:'run', job}; the worker connects and answers
 * {op:'ready'}; parent sends {op:'go'}; the worker answers {op:'result'}.
 */
import http2, { type ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { etcdserverpb } from '../../src/pb/index.js';
import { Histogram, type SerializedHistogram } from './histogram.js';
import { FrameSplitter, framePool, keyOf, pathOf, paths, valueOf, watchCreateFrame, type UnaryWorkload } from './requests.js';
import { frameMessage } from '../../src/grpc/index.js';

export interface UnaryJob {
  readonly type: 'unary';
  readonly endpoints: readonly string[];
  readonly conns: number;
  readonly clients: number;
  readonly workload: UnaryWorkload;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly seed: number;
  readonly poolSize: number;
}

export interface WatchJob {
  readonly type: 'watch';
  /** Watchers connect round-robin to these; the put goes to putEndpoint. */
  readonly endpoints: readonly string[];
  readonly putEndpoint: string;
  readonly conns: number;
  readonly watchers: number;
  readonly puts: number;
  readonly putRate: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
  readonly seed: number;
}

/** Puts keys [from, to) once each, in order, as fast as `clients` closed loops go (loading a data set). */
export interface FillJob {
  readonly type: 'fill';
  readonly endpoints: readonly string[];
  readonly conns: number;
  readonly clients: number;
  readonly from: number;
  readonly to: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
}

export type Job = UnaryJob | WatchJob | FillJob;

export interface WorkerResult {
  readonly count: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly wallMs: number;
  readonly cpuUs: number;
  readonly hist: SerializedHistogram;
}

export type ToWorker = { readonly op: 'run'; readonly job: Job } | { readonly op: 'go' };
export type FromWorker = { readonly op: 'ready' } | { readonly op: 'result'; readonly result: WorkerResult } | { readonly op: 'failed'; readonly message: string };

const connectTimeoutMs = 10_000;
const drainTimeoutMs = 10_000;

function send(msg: FromWorker): void {
  process.send?.(msg);
}

function splitHostPort(endpoint: string): [string, number] {
  const i = endpoint.lastIndexOf(':');
  return [endpoint.slice(0, i), Number(endpoint.slice(i + 1))];
}

function connect(endpoint: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const [host, port] = splitHostPort(endpoint);
    // Nagle off: a request's HEADERS and DATA frames go out without waiting for an ACK.
    const session = http2.connect(`http://${endpoint}`, { createConnection: () => net.connect({ host, port, noDelay: true }) });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`connect ${endpoint}: timed out`));
    }, connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timer);
      resolve(session);
    });
    session.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function connectAll(endpoints: readonly string[], conns: number): Promise<ClientHttp2Session[]> {
  const sessions = await Promise.all(Array.from({ length: conns }, (_, i) => connect(endpoints[i % endpoints.length] ?? '')));
  // A session dying mid-run shows as failed requests, not as an uncaught error.
  for (const s of sessions) s.on('error', () => undefined);
  return sessions;
}

function headersFor(path: string): http2.OutgoingHttpHeaders {
  return { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
}

/** Tracks errors: their count and the first one's text. */
class Errors {
  count = 0;
  first: string | undefined;
  note(what: string): void {
    this.count++;
    this.first ??= what;
  }
}

/** The gRPC status of a finished call: from the trailers, or the headers of a trailers-only answer. */
function statusOf(headers: http2.IncomingHttpHeaders | undefined): string | undefined {
  const s = headers?.['grpc-status'];
  return typeof s === 'string' ? s : undefined;
}

function whenGo(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (m: ToWorker): void => {
      if (m.op !== 'go') return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}

async function runUnary(job: UnaryJob): Promise<WorkerResult> {
  const sessions = await connectAll(job.endpoints, job.conns);
  const pool = framePool(job.workload, job.poolSize, job.seed);
  const headers = headersFor(pathOf(job.workload.kind));
  const hist = new Histogram();
  const errors = new Errors();
  send({ op: 'ready' });
  await whenGo();

  const t0 = performance.now();
  const windowStart = t0 + job.warmupMs;
  const windowEnd = windowStart + job.measureMs;
  let cpuAtStart = process.cpuUsage();
  let cpuStarted = false;
  let next = 0;
  let inflight = 0;
  let resolveDrained: () => void = () => undefined;
  const drained = new Promise<void>((r) => (resolveDrained = r));

  const issue = (session: ClientHttp2Session): void => {
    const frame = pool[next++ % pool.length] as Buffer;
    const start = performance.now();
    if (!cpuStarted && start >= windowStart) {
      cpuStarted = true;
      cpuAtStart = process.cpuUsage();
    }
    let status: string | undefined;
    let stream: http2.ClientHttp2Stream;
    inflight++;
    try {
      stream = session.request(headers);
    } catch (e) {
      inflight--;
      errors.note(e instanceof Error ? e.message : String(e));
      if (inflight === 0) resolveDrained();
      return;
    }
    stream.on('response', (h) => (status = statusOf(h) ?? status));
    stream.on('trailers', (h) => (status = statusOf(h) ?? status));
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      inflight--;
      const end = performance.now();
      if (end >= windowStart && end < windowEnd) {
        if (status === '0') hist.recordMs(end - start);
        else errors.note(`grpc-status ${status ?? 'missing'} (rst ${stream.rstCode})`);
      } else if (status !== '0' && end < windowEnd) {
        errors.note(`warmup: grpc-status ${status ?? 'missing'} (rst ${stream.rstCode})`);
      }
      if (end < windowEnd && !session.destroyed) issue(session);
      else if (inflight === 0) resolveDrained();
    });
    stream.end(frame);
  };
  for (let c = 0; c < job.clients; c++) issue(sessions[c % sessions.length] as ClientHttp2Session);

  // The window closes on time even if the server stalls.
  await new Promise((r) => setTimeout(r, Math.max(0, windowEnd - performance.now())));
  const cpu = process.cpuUsage(cpuAtStart);
  const wallMs = performance.now() - Math.max(windowStart, t0);
  await Promise.race([drained, new Promise((r) => setTimeout(r, drainTimeoutMs))]);
  for (const s of sessions) s.destroy();
  return { count: hist.count, errors: errors.count, firstError: errors.first, wallMs, cpuUs: cpu.user + cpu.system, hist: hist.toJSON() };
}

/** One watcher: a Watch stream on key; calls onEvent per event received, after its create answer. */
function openWatcher(session: ClientHttp2Session, key: Uint8Array, onEvent: (n: number) => void, errors: Errors): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headersFor(paths.watch));
    const splitter = new FrameSplitter();
    let created = false;
    stream.on('data', (chunk: Buffer) => {
      splitter.push(chunk, (payload) => {
        const res = etcdserverpb.WatchResponse.decode(payload);
        if (res.created && !created) {
          created = true;
          resolve(stream);
        }
        if (res.events.length > 0) onEvent(res.events.length);
      });
    });
    stream.on('error', (e) => errors.note(`watch stream: ${e.message}`));
    stream.on('close', () => {
      if (!created) reject(new Error(`watch stream closed before created (rst ${stream.rstCode})`));
    });
    stream.write(watchCreateFrame(key));
  });
}

/** One unary Put; resolves with true on grpc-status 0. */
function putOnce(session: ClientHttp2Session, frame: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    let status: string | undefined;
    const stream = session.request(headersFor(paths.put));
    stream.on('response', (h) => (status = statusOf(h) ?? status));
    stream.on('trailers', (h) => (status = statusOf(h) ?? status));
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => resolve(status === '0'));
    stream.end(frame);
  });
}

/**
 * Watch latency as etcd's benchmark defines it: all watchers watch one key;
 * puts go out at putRate, one at a time; each watcher's latency is from the
 * Put's return to its event's arrival (0 if the event came first), and the
 * next put waits until every watcher got the event.
 */
async function runWatch(job: WatchJob): Promise<WorkerResult> {
  const sessions = await connectAll(job.endpoints, job.conns);
  const [putSession] = await connectAll([job.putEndpoint], 1);
  const key = keyOf(Math.floor(job.seed % 1e8), job.keyBytes);
  const putFrame = frameMessage(etcdserverpb.PutRequest.encode(etcdserverpb.PutRequest.create({ key, value: valueOf(job.valueBytes) })));
  const hist = new Histogram();
  const errors = new Errors();
  let putReturnedAt = -1;
  let earlyEvents = 0;
  let pendingEvents = 0;
  let allArrived: () => void = () => undefined;
  const onEvent = (n: number): void => {
    for (let i = 0; i < n; i++) {
      if (putReturnedAt >= 0) hist.recordMs(performance.now() - putReturnedAt);
      else earlyEvents++;
    }
    pendingEvents -= n;
    if (pendingEvents <= 0) allArrived();
  };
  const streams = await Promise.all(Array.from({ length: job.watchers }, (_, i) => openWatcher(sessions[i % sessions.length] as ClientHttp2Session, key, onEvent, errors)));
  send({ op: 'ready' });
  await whenGo();

  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < job.puts; i++) {
    const due = t0 + (i * 1000) / job.putRate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    putReturnedAt = -1;
    earlyEvents = 0;
    pendingEvents = job.watchers;
    const arrived = new Promise<void>((r) => (allArrived = r));
    const ok = await putOnce(putSession as ClientHttp2Session, putFrame);
    if (!ok) {
      errors.note('put failed');
      continue;
    }
    putReturnedAt = performance.now();
    for (let e = 0; e < earlyEvents; e++) hist.recordMs(0);
    if (pendingEvents > 0) {
      const timedOut = await Promise.race([arrived.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), drainTimeoutMs))]);
      if (timedOut) errors.note(`${pendingEvents} watchers missed put ${i}`);
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  for (const s of streams) s.close();
  for (const s of [...sessions, putSession]) s?.destroy();
  return { count: hist.count, errors: errors.count, firstError: errors.first, wallMs, cpuUs: cpu.user + cpu.system, hist: hist.toJSON() };
}

async function runFill(job: FillJob): Promise<WorkerResult> {
  const sessions = await connectAll(job.endpoints, job.conns);
  const hist = new Histogram();
  const errors = new Errors();
  const value = valueOf(job.valueBytes);
  send({ op: 'ready' });
  await whenGo();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let next = job.from;
  const loop = async (session: ClientHttp2Session): Promise<void> => {
    while (next < job.to && errors.count < 100) {
      const frame = frameMessage(etcdserverpb.PutRequest.encode(etcdserverpb.PutRequest.create({ key: keyOf(next++, job.keyBytes), value })));
      const start = performance.now();
      if (await putOnce(session, frame)) hist.recordMs(performance.now() - start);
      else errors.note('put failed');
    }
  };
  await Promise.all(Array.from({ length: job.clients }, (_, c) => loop(sessions[c % sessions.length] as ClientHttp2Session)));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  for (const s of sessions) s.destroy();
  return { count: hist.count, errors: errors.count, firstError: errors.first, wallMs, cpuUs: cpu.user + cpu.system, hist: hist.toJSON() };
}

function runJob(job: Job): Promise<WorkerResult> {
  switch (job.type) {
    case 'unary':
      return runUnary(job);
    case 'watch':
      return runWatch(job);
    case 'fill':
      return runFill(job);
  }
}

function main(): void {
  process.once('message', (m: ToWorker) => {
    if (m.op !== 'run') return;
    runJob(m.job).then(
      (result) => {
        send({ op: 'result', result });
        process.disconnect();
      },
      (e: unknown) => {
        send({ op: 'failed', message: e instanceof Error ? e.message : String(e) });
        process.disconnect();
      },
    );
  });
}

main();
