/**
 * Micro-benchmark of the protobuf runtime on the hot paths: CPU µs to
 * encode one InternalRaftRequest carrying a put (8-byte key, 256-byte value,
 * about 300 bytes) and to decode it back (the put path), and to decode a
 * RangeRequest and encode its RangeResponse (one 256-byte KeyValue and a
 * response header with 64-bit ids; what a serializable Range costs in the
 * codec). Five rounds; the first ones include V8's warm-up.
 *
 *   node dist/bench/pb-encode.js [--n 300000]
 */
import { parseArgs } from 'node:util';
import { etcdserverpb, mvccpb, serverpb } from '../src/pb/index.js';
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

/** A Range's answer as the server builds it: ids as a real member has them, revisions in the millions. */
function rangeResponse(i: number): etcdserverpb.RangeResponse {
  return etcdserverpb.RangeResponse.create({
    header: etcdserverpb.ResponseHeader.create({ clusterId: 0xcdf818194e3a8c32n, memberId: 0x8e9e05c52164694dn, revision: 1_000_000 + i, raftTerm: 2 }),
    kvs: [mvccpb.KeyValue.create({ key: keyOf(i, 8), value, createRevision: 999_000 + i, modRevision: 1_000_000 + i, version: 3 })],
    count: 1,
  });
}

function cpuUs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(t0);
  return (c.user + c.system) / n;
}

const rangeRequest = etcdserverpb.RangeRequest.encode(etcdserverpb.RangeRequest.create({ key: Buffer.from('foo'), serializable: true }));

for (let round = 1; round <= 5; round++) {
  let bytes = 0;
  const encodeUs = cpuUs(() => {
    for (let i = 0; i < n; i++) bytes += serverpb.InternalRaftRequest.encode(request(i)).length;
  });
  const encoded = serverpb.InternalRaftRequest.encode(request(round));
  const decodeUs = cpuUs(() => {
    for (let i = 0; i < n; i++) serverpb.InternalRaftRequest.decode(encoded);
  });
  let rangeBytes = 0;
  const rangeUs = cpuUs(() => {
    for (let i = 0; i < n; i++) {
      etcdserverpb.RangeRequest.decode(rangeRequest);
      rangeBytes += etcdserverpb.RangeResponse.encode(rangeResponse(i)).length;
    }
  });
  const response = etcdserverpb.RangeResponse.encode(rangeResponse(round));
  const rangeDecodeUs = cpuUs(() => {
    for (let i = 0; i < n; i++) etcdserverpb.RangeResponse.decode(response);
  });
  console.log(
    `round ${round}: put create+encode ${encodeUs.toFixed(2)} µs, decode ${decodeUs.toFixed(2)} µs (${Math.round(bytes / n)} B); ` +
      `range request decode + response create+encode ${rangeUs.toFixed(2)} µs (${Math.round(rangeBytes / n)} B), response decode ${rangeDecodeUs.toFixed(2)} µs`,
  );
}
