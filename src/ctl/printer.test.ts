// The printers and Go formatting helpers, against output Debian's etcdctl 3.4
// printed for the same responses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb, mvccpb } from '../client/index.js';
import { argify, compactText, goDuration, goPathError, goQuote, goUnquote, humanizeBytes, jsonString, parseGoDuration } from './go-format.js';
import { parseFlags } from './flags.js';
import { BufferOutput, CtlExit } from './output.js';
import { newPrinter, renderTable, type Printer } from './printer.js';

const header = etcdserverpb.ResponseHeader.create({ clusterId: 6312340517811498560n, memberId: 10814406744895053567n, revision: 6, raftTerm: 2 });
const kv = mvccpb.KeyValue.create({
  key: Buffer.from('ключ'),
  createRevision: 6,
  modRevision: 6,
  version: 1,
  value: Buffer.from([0x76, 0x01, 0xff]),
});
const range = etcdserverpb.RangeResponse.create({ header, kvs: [kv], count: 1 });

function print(format: string, f: (p: Printer) => void, hex = false): BufferOutput {
  const o = new BufferOutput();
  const p = newPrinter(format, hex, o);
  assert.ok(p !== undefined);
  f(p);
  return o;
}

test('json: Go encoding/json of the protobuf struct (base64 bytes, omitted zero fields, uint64 ids)', () => {
  assert.equal(
    print('json', (p) => p.get(range)).stdout,
    '{"header":{"cluster_id":6312340517811498560,"member_id":10814406744895053567,"revision":6,"raft_term":2},' +
      '"kvs":[{"key":"0LrQu9GO0Yc=","create_revision":6,"mod_revision":6,"version":1,"value":"dgH/"}],"count":1}\n',
  );
  const txn = etcdserverpb.TxnResponse.create({
    header,
    succeeded: true,
    responses: [{ response: { case: 'responsePut', value: etcdserverpb.PutResponse.create({ header: etcdserverpb.ResponseHeader.create({ revision: 10 }) }) } }],
  });
  assert.equal(
    print('json', (p) => p.txn(txn)).stdout,
    '{"header":{"cluster_id":6312340517811498560,"member_id":10814406744895053567,"revision":6,"raft_term":2},"succeeded":true,' +
      '"responses":[{"Response":{"ResponsePut":{"header":{"revision":10}}}}]}\n',
  );
  assert.equal(print('json', (p) => p.alarm(etcdserverpb.AlarmResponse.create())).stdout, '{}\n');
});

test('json: clientv3 lease responses embed the header and keep zero fields', () => {
  const grant = etcdserverpb.LeaseGrantResponse.create({ header, ID: 6845368361850666249n, TTL: 60 });
  assert.equal(
    print('json', (p) => p.grant(grant)).stdout,
    '{"cluster_id":6312340517811498560,"member_id":10814406744895053567,"revision":6,"raft_term":2,"ID":6845368361850666249,"TTL":60,"Error":""}\n',
  );
  const ttl = etcdserverpb.LeaseTimeToLiveResponse.create({ header, ID: 7n, TTL: 97, grantedTTL: 100 });
  assert.match(print('json', (p) => p.timeToLive(ttl, false)).stdout, /"id":7,"ttl":97,"granted-ttl":100,"keys":null}\n$/);
  assert.match(print('json', (p) => p.leases(etcdserverpb.LeaseLeasesResponse.create({ header }))).stdout, /"leases":\[\]}\n$/);
});

test('fields: %q of keys and values, %v of ids', () => {
  const out = print('fields', (p) => p.get(range)).stdout;
  assert.equal(
    out,
    [
      '"ClusterID" : 6312340517811498560',
      '"MemberID" : 10814406744895053567',
      '"Revision" : 6',
      '"RaftTerm" : 2',
      '"Key" : "ключ"',
      '"CreateRevision" : 6',
      '"ModRevision" : 6',
      '"Version" : 1',
      '"Value" : "v\\x01\\xff"',
      '"Lease" : 0',
      '"More" : false',
      '"Count" : 1',
      '',
    ].join('\n'),
  );
});

test('simple: raw bytes, --hex, txn layout, lease and member lines', () => {
  assert.deepEqual(print('simple', (p) => p.get(range)).stdoutBytes, Buffer.concat([Buffer.from('ключ\n'), Buffer.from([0x76, 0x01, 0xff, 0x0a])]));
  assert.equal(print('simple', (p) => p.get(range), true).stdout, '\\xd0\\xba\\xd0\\xbb\\xd1\\x8e\\xd1\\x87\n\\x76\\x01\\xff\n');
  const txn = etcdserverpb.TxnResponse.create({
    header,
    succeeded: false,
    responses: [{ response: { case: 'responseRange', value: range } }, { response: { case: 'responseDeleteRange', value: etcdserverpb.DeleteRangeResponse.create({ deleted: 0 }) } }],
  });
  assert.equal(print('simple', (p) => p.txn(txn)).stdout.split('\n').slice(0, 2).join('|'), 'FAILURE|');
  assert.match(print('simple', (p) => p.txn(txn)).stdout, /\n\n0\n$/);
  assert.equal(print('simple', (p) => p.grant(etcdserverpb.LeaseGrantResponse.create({ ID: 0x5effa241bcce7d19n, TTL: 60 }))).stdout, 'lease 5effa241bcce7d19 granted with TTL(60s)\n');
  const ttl = etcdserverpb.LeaseTimeToLiveResponse.create({ ID: 1n, TTL: -1, grantedTTL: 0 });
  assert.equal(print('simple', (p) => p.timeToLive(ttl, true)).stdout, 'lease 0000000000000001 already expired\n');
  const keys = etcdserverpb.LeaseTimeToLiveResponse.create({ ID: 1n, TTL: 5, grantedTTL: 10, keys: [Buffer.from('a'), Buffer.from('b')] });
  assert.equal(print('simple', (p) => p.timeToLive(keys, true)).stdout, 'lease 0000000000000001 granted with TTL(10s), remaining(5s), attached keys([a b])\n');
  const members = etcdserverpb.MemberListResponse.create({
    header,
    members: [
      { ID: 0x96147da3260edeffn, name: 'default', peerURLs: ['http://127.0.0.1:34955'], clientURLs: ['http://127.0.0.1:44341'], isLearner: false },
      { ID: 0x1234n, name: '', peerURLs: ['http://a:1', 'http://b:2'], clientURLs: [], isLearner: true },
    ],
  });
  assert.equal(
    print('simple', (p) => p.memberList(members)).stdout,
    '96147da3260edeff, started, default, http://127.0.0.1:34955, http://127.0.0.1:44341, false\n1234, unstarted, , http://a:1,http://b:2, , true\n',
  );
  assert.equal(print('simple', (p) => p.memberRemove(0x1234n, etcdserverpb.MemberRemoveResponse.create({ header }))).stdout, 'Member             1234 removed from cluster 5799f041b975ae40\n');
});

test('table: tablewriter layout with centred headers and right-aligned cells', () => {
  assert.equal(
    renderTable(['endpoint', 'hash'], [['127.0.0.1:44341', '3305255506']]),
    '+-----------------+------------+\n|    ENDPOINT     |    HASH    |\n+-----------------+------------+\n| 127.0.0.1:44341 | 3305255506 |\n+-----------------+------------+\n',
  );
});

test('a printer without a rendering ends the command as etcdctl does', () => {
  assert.throws(() => print('table', (p) => p.get(range)), (e: unknown) => e instanceof CtlExit && e.code === 4 && e.message === 'table not supported as output format');
  assert.throws(() => print('fields', (p) => p.userList(etcdserverpb.AuthUserListResponse.create())), /fields not supported as output format/);
  assert.equal(newPrinter('yaml', false, new BufferOutput()), undefined);
});

test('Go formatting: %q, json strings, durations, humanize', () => {
  assert.equal(goQuote('a"b\\c\n\t\u0001é\u00a0'), '"a\\"b\\\\c\\n\\t\\x01é\\u00a0"');
  assert.equal(goQuote(Buffer.from([0xff, 0x41])), '"\\xffA"');
  assert.equal(jsonString('<a&b>\u2028'), '"\\u003ca\\u0026b\\u003e\\u2028"');
  assert.equal(goDuration(45_191_936n), '45.191936ms');
  assert.equal(goDuration(1_500_000_000n), '1.5s');
  assert.equal(goDuration(3_723_000_000_000n), '1h2m3s');
  assert.equal(goDuration(999n), '999ns');
  assert.equal(goDuration(1_500n), '1.5µs');
  assert.equal(parseGoDuration('1m30s'), 90_000);
  assert.equal(parseGoDuration('200ms'), 200);
  assert.equal(parseGoDuration('5'), undefined);
  assert.equal(humanizeBytes(20480), '20 kB');
  assert.equal(humanizeBytes(20500), '20 kB');
  assert.equal(humanizeBytes(1500), '1.5 kB');
  assert.equal(humanizeBytes(7), '7 B');
  assert.equal(humanizeBytes(2_500_000), '2.5 MB');
});

test("Node fs errors in Go's words (*os.PathError, *os.LinkError)", () => {
  const errno = (code: string, syscall: string, dest?: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: ...`), { code, syscall, dest });
  assert.equal(goPathError('/x/y.part', errno('ENOENT', 'open')), 'open /x/y.part: no such file or directory');
  assert.equal(goPathError('/root/y', errno('EACCES', 'open')), 'open /root/y: permission denied');
  assert.equal(goPathError('/tmp', errno('EISDIR', 'read')), 'read /tmp: is a directory');
  assert.equal(goPathError('/etc/passwd/y', errno('ENOTDIR', 'open')), 'open /etc/passwd/y: not a directory');
  assert.equal(goPathError('a.part', errno('EXDEV', 'rename', 'b')), 'rename a.part b: invalid cross-device link');
  assert.equal(goPathError('a', errno('EWHATEVER', 'open')), 'open a: EWHATEVER: ...');
});

test('compactText: a header as its String() shows it inside %v', () => {
  assert.equal(compactText(etcdserverpb.ResponseHeader, header), 'cluster_id:6312340517811498560 member_id:10814406744895053567 revision:6 raft_term:2 ');
  assert.equal(compactText(etcdserverpb.ResponseHeader, undefined), '<nil>');
  const revoked = new BufferOutput();
  assert.throws(() => newPrinter('protobuf', false, revoked)?.revoke(1n, etcdserverpb.LeaseRevokeResponse.create({ header })), {
    message: 'marshal unsupported for type clientv3.LeaseRevokeResponse ({cluster_id:6312340517811498560 member_id:10814406744895053567 revision:6 raft_term:2 })',
  });
});

test('argify and Go unquoting, as txn lines are split', () => {
  assert.deepEqual(argify('put foo "from txn"'), ['put', 'foo', 'from txn']);
  assert.deepEqual(argify('put "a\\tb" x'), ['put', 'a\tb', 'x']);
  assert.equal(goUnquote('"\\x41\\u00e9\\101"'), 'AéA');
  assert.equal(goUnquote('"unterminated'), undefined);
});

test('flags: pflag forms, shorthands, errors', () => {
  const specs = [
    { name: 'write-out', kind: 'string', def: 'simple', short: 'w', usage: '' },
    { name: 'prefix', kind: 'bool', def: 'false', usage: '' },
    { name: 'limit', kind: 'int', def: '0', usage: '' },
  ] as const;
  const r = parseFlags(['get', '-wjson', 'a', '--prefix', '--limit', '3', '--', '-x'], specs);
  assert.deepEqual(r.positional, ['get', 'a', '-x']);
  assert.equal(r.dashAt, 2);
  assert.equal(r.values.string('write-out'), 'json');
  assert.equal(r.values.bool('prefix'), true);
  assert.equal(r.values.int('limit'), 3);
  assert.throws(() => parseFlags(['--limit=x'], specs), { message: 'invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x": invalid syntax' });
  assert.throws(() => parseFlags(['--nope'], specs), { message: 'unknown flag: --nope' });
  assert.throws(() => parseFlags(['-z'], specs), { message: "unknown shorthand flag: 'z' in -z" });
  assert.throws(() => parseFlags(['--limit'], specs), { message: 'flag needs an argument: --limit' });
});
