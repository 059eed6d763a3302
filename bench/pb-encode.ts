/**
 * Micro-benchmark of the protobuf runtime on the put path: CPU µs to encode
 * one InternalRaftRequest carrying a put (8-byte key, 256-byte value, about
 * 300 bytes), and to decode it back. Five rounds; the first ones include
 * V8's warm-up.
 *
 *   node dist/bench/pb-encode.js [--n 300000]
 */
import { parseArgs } from 'node:util';
import { etcdserverpb, serverpb } from '../src/pb/index.js';
import { keyOf, valueOf } from './load/requests.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '300000' } } });
const n = Number(values.n);
const value = valueOf(256);

function request(i: number): serverpb.InternalRaftRequest {
  return serverpb.InternalRaftRequest.create({
    header: serverpb.RequestHeader.create({ ID: BigInt(i) }),
    request: { case: 'put', value: etcdserverpb.PutRequest.create({ key: keyOf(i, 8), value }) },
  });
}

function cpuUs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(t0);
  return (c.user + c.system) / n;
}

for (let round = 1; round <= 5; round++) {
  let bytes = 0;
  const encodeUs = cpuUs(() => {
    for (let i = 0; i < n; i++) bytes += serverpb.InternalRaftRequest.encode(request(i)).length;
  });
  const encoded = serverpb.InternalRaftRequest.encode(request(round));
  const decodeUs = cpuUs(() => {
    for (let i = 0; i < n; i++) serverpb.InternalRaftRequest.decode(encoded);
  });
  console.log(`round ${round}: create+encode ${encodeUs.toFixed(2)} µs, decode ${decodeUs.toFixed(2)} µs (${Math.round(bytes / n)} B)`);
}
