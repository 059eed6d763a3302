/**
 * For tests and the benchmark only: a small echo service with ad-hoc codecs
 * (text and raw bytes, no protobuf), and helpers to serve it on a free port.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import * as grpcJs from '@grpc/grpc-js';
import { ClientPortServer, type ClientPortOptions } from './client-port.js';
import type { MessageCodec, MethodDef } from './framing.js';
import { bidiStreaming, clientStreaming, GrpcServer, serverStreaming, unary, type GrpcServerOptions } from './server.js';
import { GrpcError, type GrpcStatusCode } from './status.js';

export const textCodec: MessageCodec<string> = {
  encode: (s) => Buffer.from(s, 'utf8'),
  decode: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'),
};

export const bytesCodec: MessageCodec<Uint8Array> = {
  encode: (b) => b,
  decode: (b) => b,
};

function def<Req, Res>(
  name: string,
  requestType: MessageCodec<Req>,
  responseType: MessageCodec<Res>,
  requestStream: boolean,
  responseStream: boolean,
): MethodDef<Req, Res> {
  return { name, path: `/test.Echo/${name}`, requestType, responseType, requestStream, responseStream };
}

/** The echo service's methods, shaped like a generated `XService.methods`. */
export const echoMethods = {
  /**
   * Echoes the text; "fail:<code>:<message>" throws that status; "throw:<msg>"
   * throws a plain Error; "wait" answers "opened" once the test opens the gate.
   */
  Unary: def('Unary', textCodec, textCodec, false, false),
  /** Echoes bytes (large-message tests). */
  Bytes: def('Bytes', bytesCodec, bytesCodec, false, false),
  /** Request "<count>:<size>": count messages of size bytes each, written with backpressure. */
  Stream: def('Stream', textCodec, bytesCodec, false, true),
  /** Joins the texts it receives with ",". */
  Collect: def('Collect', textCodec, textCodec, true, false),
  /** Reads nothing until the gate opens (see Unary "wait"), then counts the messages. */
  Sink: def('Sink', bytesCodec, textCodec, true, false),
  /** Echoes each text back, upper-cased. */
  Chat: def('Chat', textCodec, textCodec, true, true),
  /** Never answers; resolves when the call's signal fires, recording the reason. */
  Hang: def('Hang', textCodec, textCodec, false, false),
  /**
   * Answers with the request metadata as JSON (-bin values in base64; a key sent
   * more than once has its first value, and every value under "<key>[]"), and
   * echoes "x-echo" in headers and trailers.
   */
  Meta: def('Meta', textCodec, textCodec, false, false),
  /** Not implemented by the server: UNIMPLEMENTED "unknown method". */
  Missing: def('Missing', textCodec, textCodec, false, false),
} as const;

export interface EchoState {
  /** Reasons the Hang handler saw its signal fire with, and how many Hang calls started. */
  readonly aborts: string[];
  /** The same aborts as seen through call.onAbort (a hook unregistered at once must never add one). */
  readonly hookAborts: string[];
  hanging: number;
  /** Messages the Stream handler has written so far, and whether it has finished. */
  streamWritten: number;
  streamDone: boolean;
  streamMaxBuffered: number;
  /** The Stream handler is waiting for drained(). */
  streamBlocked: boolean;
  /** Unary calls with the request "wait" are held until openGate() is called; this counts them. */
  waiting: number;
  openGate(): void;
}

export function addEchoService(server: GrpcServer): EchoState {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const state: EchoState = {
    aborts: [],
    hookAborts: [],
    hanging: 0,
    streamWritten: 0,
    streamDone: false,
    streamMaxBuffered: 0,
    streamBlocked: false,
    waiting: 0,
    openGate: () => open(),
  };
  server.addService(echoMethods, {
    Unary: unary((req) => {
      if (req.startsWith('fail:')) {
        const [, code, ...rest] = req.split(':');
        return Promise.reject(new GrpcError(Number(code) as GrpcStatusCode, rest.join(':')));
      }
      if (req.startsWith('throw:')) return Promise.reject(new Error(req.slice(6)));
      if (req === 'wait') {
        state.waiting++;
        return gate.then(() => 'opened');
      }
      return Promise.resolve(req);
    }),
    Bytes: unary((req) => Promise.resolve(req)),
    Stream: serverStreaming(async (req, call) => {
      const [count, size] = req.split(':').map(Number);
      const payload = Buffer.alloc(size ?? 0, 0x61);
      state.streamWritten = 0;
      state.streamDone = false;
      for (let i = 0; i < (count ?? 0) && !call.closed; i++) {
        state.streamWritten++;
        state.streamMaxBuffered = Math.max(state.streamMaxBuffered, call.bufferedBytes);
        if (!call.write(payload)) {
          state.streamBlocked = true;
          await call.drained();
          state.streamBlocked = false;
        }
      }
      state.streamDone = true;
    }),
    Collect: clientStreaming(async (call) => {
      const parts: string[] = [];
      for await (const m of call) parts.push(m);
      return parts.join(',');
    }),
    Sink: clientStreaming(async (call) => {
      await gate;
      let n = 0;
      for await (const _m of call) n++;
      return String(n);
    }),
    Chat: bidiStreaming(async (call) => {
      for await (const m of call) {
        if (m === 'end') return;
        if (!call.write(m.toUpperCase())) await call.drained();
      }
    }),
    Hang: unary(
      (_req, call) =>
        new Promise<string>((_resolve, reject) => {
          state.hanging++;
          call.onAbort((r) => state.hookAborts.push(`${r.code}:${r.details}`));
          call.onAbort(() => state.hookAborts.push('unregistered hook ran'))();
          call.signal.addEventListener('abort', () => {
            const reason: unknown = call.signal.reason;
            state.aborts.push(reason instanceof GrpcError ? `${reason.code}:${reason.details}` : String(reason));
            reject(reason instanceof Error ? reason : new Error(String(reason)));
          });
        }),
    ),
    Meta: unary((_req, call) => {
      const md = call.metadata.toObject();
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(md)) {
        out[k] = typeof v === 'string' ? v : `bin:${v.toString('base64')}`;
        const all = call.metadata.getAll(k);
        if (all.length > 1) out[`${k}[]`] = JSON.stringify(all);
      }
      const echo = call.metadata.get('x-echo');
      if (echo !== undefined) {
        call.sendMetadata({ 'x-echo': echo });
        call.setTrailers({ 'x-echo-trailer': echo });
      }
      return Promise.resolve(JSON.stringify(out));
    }),
  });
  return state;
}

export interface EchoServer {
  readonly port: number;
  readonly grpc: GrpcServer;
  readonly clientPort: ClientPortServer;
  readonly state: EchoState;
  close(): Promise<void>;
}

/** Serves the echo service on 127.0.0.1, on a free port unless told which. */
export async function startEchoServer(
  grpcOptions: GrpcServerOptions = {},
  portOptions: Omit<ClientPortOptions, 'grpc'> = {},
  port = 0,
): Promise<EchoServer> {
  const grpc = new GrpcServer(grpcOptions);
  const state = addEchoService(grpc);
  const clientPort = new ClientPortServer({ ...portOptions, grpc });
  const addr = await clientPort.listen({ host: '127.0.0.1', port });
  if (typeof addr === 'string') throw new Error('expected a TCP address');
  return { port: addr.port, grpc, clientPort, state, close: () => clientPort.close(500) };
}

export interface TestCerts {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly ca: Buffer;
  readonly serverCert: Buffer;
  readonly serverKey: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
}

/** True when the openssl binary is there to make certificates with. */
export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A throwaway CA, a server certificate for 127.0.0.1/localhost and a client
 * certificate with CN=clientCommonName, all P-256, made with openssl in dir.
 */
export function makeTestCerts(dir: string, clientCommonName = 'root'): TestCerts {
  const p = (name: string): string => join(dir, name);
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore', cwd: dir });
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=etcd-ts test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  writeFileSync(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [['server', 'localhost'], ['client', clientCommonName]] as const) {
    run(['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  }
  return {
    dir,
    caFile: p('ca.crt'),
    serverCertFile: p('server.crt'),
    serverKeyFile: p('server.key'),
    clientCertFile: p('client.crt'),
    clientKeyFile: p('client.key'),
    ca: readFileSync(p('ca.crt')),
    serverCert: readFileSync(p('server.crt')),
    serverKey: readFileSync(p('server.key')),
    clientCert: readFileSync(p('client.crt')),
    clientKey: readFileSync(p('client.key')),
  };
}

// ---- @grpc/grpc-js counterparts, for interop tests ----

function jsSerialize<T>(codec: MessageCodec<T>): (value: T) => Buffer {
  return (value) => {
    const b = codec.encode(value);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  };
}

function jsMethod<Req, Res>(m: MethodDef<Req, Res>): grpcJs.MethodDefinition<Req, Res> {
  return {
    path: m.path,
    requestStream: m.requestStream,
    responseStream: m.responseStream,
    requestSerialize: jsSerialize(m.requestType),
    requestDeserialize: (b: Buffer) => m.requestType.decode(b),
    responseSerialize: jsSerialize(m.responseType),
    responseDeserialize: (b: Buffer) => m.responseType.decode(b),
  };
}

export interface JsUnaryResult<Res> {
  readonly response: Res | undefined;
  readonly error: grpcJs.ServiceError | undefined;
  readonly headers: grpcJs.Metadata | undefined;
  readonly status: grpcJs.StatusObject | undefined;
}

/** One unary call from a grpc-js client; never rejects, everything observed comes back. */
export function jsUnary<Req, Res>(
  client: grpcJs.Client,
  m: MethodDef<Req, Res>,
  request: Req,
  opts: { metadata?: grpcJs.Metadata; deadlineMs?: number } = {},
): Promise<JsUnaryResult<Res>> {
  const d = jsMethod(m);
  return new Promise((resolve) => {
    let headers: grpcJs.Metadata | undefined;
    let status: grpcJs.StatusObject | undefined;
    let result: { response: Res | undefined; error: grpcJs.ServiceError | undefined } | undefined;
    const finish = (): void => {
      if (result !== undefined && status !== undefined) resolve({ ...result, headers, status });
    };
    const call = client.makeUnaryRequest(
      d.path,
      d.requestSerialize,
      d.responseDeserialize,
      request,
      opts.metadata ?? new grpcJs.Metadata(),
      opts.deadlineMs === undefined ? {} : { deadline: opts.deadlineMs },
      (error, response) => {
        result = { error: error ?? undefined, response };
        finish();
      },
    );
    call.on('metadata', (md: grpcJs.Metadata) => {
      headers = md;
    });
    call.on('status', (s: grpcJs.StatusObject) => {
      status = s;
      finish();
    });
  });
}

export function jsServerStream<Req, Res>(
  client: grpcJs.Client,
  m: MethodDef<Req, Res>,
  request: Req,
): grpcJs.ClientReadableStream<Res> {
  const d = jsMethod(m);
  return client.makeServerStreamRequest(d.path, d.requestSerialize, d.responseDeserialize, request);
}

export function jsBidi<Req, Res>(client: grpcJs.Client, m: MethodDef<Req, Res>): grpcJs.ClientDuplexStream<Req, Res> {
  const d = jsMethod(m);
  return client.makeBidiStreamRequest(d.path, d.requestSerialize, d.responseDeserialize);
}

export function jsClientStream<Req, Res>(
  client: grpcJs.Client,
  m: MethodDef<Req, Res>,
): { call: grpcJs.ClientWritableStream<Req>; response: Promise<Res> } {
  const d = jsMethod(m);
  let call: grpcJs.ClientWritableStream<Req> | undefined;
  const response = new Promise<Res>((resolve, reject) => {
    call = client.makeClientStreamRequest(d.path, d.requestSerialize, d.responseDeserialize, (err, res) =>
      err !== null ? reject(err) : resolve(res as Res),
    );
  });
  if (call === undefined) throw new Error('grpc-js did not start the call');
  return { call, response };
}

function jsError(code: number, details: string): Partial<grpcJs.StatusObject> {
  return { code, details };
}

/** The echo service served by @grpc/grpc-js, with the same behaviour as addEchoService's. */
export async function startJsEchoServer(
  options: grpcJs.ServerOptions = {},
): Promise<{ port: number; server: grpcJs.Server; close(): Promise<void> }> {
  const server = new grpcJs.Server(options);
  const defs: Record<string, grpcJs.MethodDefinition<unknown, unknown>> = {};
  for (const [k, m] of Object.entries(echoMethods)) if (k !== 'Missing' && k !== 'Sink') defs[k] = jsMethod(m as MethodDef<unknown, unknown>);
  const impl: grpcJs.UntypedServiceImplementation = {
    Unary: (call: grpcJs.ServerUnaryCall<string, string>, cb: grpcJs.sendUnaryData<string>) => {
      const req = call.request;
      if (req.startsWith('fail:')) {
        const [, code, ...rest] = req.split(':');
        cb(jsError(Number(code), rest.join(':')));
      } else cb(null, req);
    },
    Bytes: (call: grpcJs.ServerUnaryCall<Uint8Array, Uint8Array>, cb: grpcJs.sendUnaryData<Uint8Array>) =>
      cb(null, call.request),
    Stream: (call: grpcJs.ServerWritableStream<string, Uint8Array>) => {
      const [count, size] = call.request.split(':').map(Number);
      for (let i = 0; i < (count ?? 0); i++) call.write(Buffer.alloc(size ?? 0, 0x61));
      call.end();
    },
    Collect: (call: grpcJs.ServerReadableStream<string, string>, cb: grpcJs.sendUnaryData<string>) => {
      const parts: string[] = [];
      call.on('data', (m: string) => parts.push(m));
      call.on('end', () => cb(null, parts.join(',')));
    },
    Chat: (call: grpcJs.ServerDuplexStream<string, string>) => {
      call.on('data', (m: string) => (m === 'end' ? call.end() : call.write(m.toUpperCase())));
      call.on('end', () => call.end());
    },
    Hang: () => undefined,
    Meta: (call: grpcJs.ServerUnaryCall<string, string>, cb: grpcJs.sendUnaryData<string>) => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) {
        out[k] = typeof v === 'string' ? v : `bin:${v.toString('base64')}`;
      }
      const echo = call.metadata.get('x-echo')[0];
      const trailer = new grpcJs.Metadata();
      if (typeof echo === 'string') {
        const h = new grpcJs.Metadata();
        h.set('x-echo', echo);
        call.sendMetadata(h);
        trailer.set('x-echo-trailer', echo);
      }
      cb(null, JSON.stringify(out), trailer);
    },
  };
  server.addService(defs, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpcJs.ServerCredentials.createInsecure(), (err, p) =>
      err !== null ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 500).unref();
      }),
  };
}

/** HTTP/2 frames seen by a FrameCountingProxy, per direction, keyed `type` or `type:code` for RST_STREAM. */
export interface FrameCounts {
  readonly toServer: Map<string, number>;
  readonly toClient: Map<string, number>;
}

export interface FrameCountingProxy {
  readonly port: number;
  readonly counts: FrameCounts;
  close(): Promise<void>;
}

/** Counts the frames of one direction of an HTTP/2 connection (h2c, after the client preface). */
function frameCounter(counts: Map<string, number>, skipBytes: number): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  let skip = skipBytes;
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    const n = Math.min(skip, buf.length);
    buf = buf.subarray(n);
    skip -= n;
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3] ?? 0;
      const key = type === 0x3 ? `${type}:${buf.readUInt32BE(9)}` : String(type);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      buf = buf.subarray(9 + len);
    }
  };
}

/** A TCP proxy on 127.0.0.1 to an h2c server that counts the frames going each way. */
export async function startFrameCountingProxy(targetPort: number): Promise<FrameCountingProxy> {
  const counts: FrameCounts = { toServer: new Map(), toClient: new Map() };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const up = frameCounter(counts.toServer, 24);
    const down = frameCounter(counts.toClient, 0);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (d: Buffer) => {
      up(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      down(d);
      client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('expected a TCP address');
  return {
    port: addr.port,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
