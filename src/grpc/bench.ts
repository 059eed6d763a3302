/**
 * Micro-benchmark (not run by tests): unary echo calls per second with 1 and
 * 64 concurrent callers, and the server's CPU per call, for
 *   (a) our client -> our server,
 *   (b) @grpc/grpc-js client -> @grpc/grpc-js server,
 *   (c) @grpc/grpc-js client -> our server.
 * The server runs in a child process so its CPU time is its own.
 *
 *   node .build/<you>/src/grpc/bench.js [callsPerCase=20000]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpcJs from '@grpc/grpc-js';
import { GrpcChannel } from './channel.js';
import { frameMessage } from './framing.js';
import { echoMethods, startEchoServer } from './test-kit.js';

type ServerKind = 'ours' | 'grpcjs';
type ClientKind = 'ours' | 'grpcjs';

const payload = Buffer.alloc(64, 0x61).toString();

function jsServiceDef(): grpcJs.ServiceDefinition {
  const m = echoMethods.Unary;
  return {
    Unary: {
      path: m.path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (s: string) => Buffer.from(s),
      requestDeserialize: (b: Buffer) => b.toString(),
      responseSerialize: (s: string) => Buffer.from(s),
      responseDeserialize: (b: Buffer) => b.toString(),
    },
  };
}

async function serve(kind: ServerKind): Promise<void> {
  let port: number;
  if (kind === 'ours') {
    port = (await startEchoServer()).port;
  } else {
    const server = new grpcJs.Server();
    server.addService(jsServiceDef(), {
      Unary: (call: grpcJs.ServerUnaryCall<string, string>, cb: grpcJs.sendUnaryData<string>) => cb(null, call.request),
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpcJs.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  }
  process.on('message', (msg) => {
    if (msg === 'cpu') {
      const u = process.cpuUsage();
      process.send?.({ cpuUs: u.user + u.system });
    }
  });
  process.send?.({ port });
}

function ask<T>(child: ChildProcess, msg: string | undefined): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    if (msg !== undefined) child.send(msg);
  });
}

async function runCase(server: ServerKind, client: ClientKind, concurrency: number, calls: number): Promise<string> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', server], { stdio: 'inherit' });
  const { port } = await ask<{ port: number }>(child, undefined);
  const address = `127.0.0.1:${port}`;
  let call: () => Promise<unknown>;
  let close: () => void;
  if (client === 'ours') {
    const ch = new GrpcChannel({ address });
    const framed = frameMessage(Buffer.from(payload));
    call = () => ch.unaryRaw(echoMethods.Unary.path, framed);
    close = () => ch.close();
  } else {
    const Ctor = grpcJs.makeGenericClientConstructor(jsServiceDef(), 'Echo');
    const c = new Ctor(address, grpcJs.credentials.createInsecure());
    const fn = c['Unary'] as (req: string, cb: (err: Error | null, res?: string) => void) => void;
    call = () => new Promise((resolve, reject) => fn.call(c, payload, (err, res) => (err ? reject(err) : resolve(res))));
    close = () => c.close();
  }
  // Warm up the connection and the JIT.
  for (let i = 0; i < 2000; i++) await call();
  const cpuBefore = (await ask<{ cpuUs: number }>(child, 'cpu')).cpuUs;
  const clientCpuBefore = process.cpuUsage();
  const start = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < calls) await call();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - start;
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const cpuAfter = (await ask<{ cpuUs: number }>(child, 'cpu')).cpuUs;
  close();
  child.kill();
  const rate = (calls / elapsedMs) * 1000;
  const serverUsPerCall = (cpuAfter - cpuBefore) / calls;
  const clientUsPerCall = (clientCpu.user + clientCpu.system) / calls;
  return `${client.padEnd(6)} -> ${server.padEnd(6)} c=${String(concurrency).padStart(2)}: ${rate.toFixed(0).padStart(6)} calls/s, server ${serverUsPerCall.toFixed(1)} us CPU/call, client ${clientUsPerCall.toFixed(1)} us CPU/call`;
}

async function main(): Promise<void> {
  const serveAt = process.argv.indexOf('--serve');
  if (serveAt >= 0) {
    await serve(process.argv[serveAt + 1] === 'grpcjs' ? 'grpcjs' : 'ours');
    return;
  }
  const calls = Number(process.argv[2] ?? 20000);
  const cases: [ServerKind, ClientKind][] = [
    ['ours', 'ours'],
    ['grpcjs', 'grpcjs'],
    ['ours', 'grpcjs'],
    ['grpcjs', 'ours'],
  ];
  for (const concurrency of [1, 64]) {
    for (const [server, client] of cases) console.log(await runCase(server, client, concurrency, calls));
  }
}

await main();
