// The /v3 JSON gateway, differentially: the same HTTP requests go to the
// real etcd 3.4 and to etcd-ts, both fresh, and the answers (status,
// content type, body) must be equal once what differs by nature is masked:
// cluster and member ids, URLs, db sizes, raft indexes, hashes and tokens.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { etcdMissing, memberStatus, useWorkspace, type Cluster } from '../harness/index.js';

interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  /** Where a redirect points (Go's ServeMux cleans paths). */
  readonly location?: string | undefined;
  readonly body: string;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** One HTTP request; for streams, the first `lines` lines of the body, then the connection is dropped. */
function request(url: string, path: string, opts: { method?: string; body?: string; token?: string; lines?: number } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (opts.token !== undefined) headers['authorization'] = opts.token;
    const req = http.request(`${url}${path}`, { method: opts.method ?? 'POST', headers, agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      const answer = (): Answer => ({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], location: res.headers.location, body });
      res.on('data', (c: string) => {
        body += c;
        if (opts.lines !== undefined && body.split('\n').length > opts.lines) {
          body = body.split('\n').slice(0, opts.lines).join('\n');
          resolve(answer());
          req.destroy();
        }
      });
      res.on('end', () => resolve(answer()));
      res.on('error', () => resolve(answer()));
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer in time`)));
    req.on('error', reject);
    req.end(opts.body ?? '');
  });
}

/** Masks what legitimately differs between two members of different clusters. */
function masker(c: Cluster, memberId: bigint): (a: Answer) => Answer {
  const m = c.member(0);
  return (a) => ({
    ...a,
    body: a.body
      .replaceAll(memberId.toString(), 'MEMBER')
      .replaceAll(m.clientUrl, 'CLIENT_URL')
      .replaceAll(m.peerUrl, 'PEER_URL')
      .replace(/"cluster_id":"\d+"/g, '"cluster_id":"C"')
      .replace(/"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":"\d+"/g, '"$1":"N"')
      .replace(/"hash":\d+/g, '"hash":"H"')
      .replace(/"token":"[^"]+"/g, '"token":"T"'),
  });
}

type Call = (label: string, path: string, opts?: Parameters<typeof request>[2]) => Promise<Answer>;

/** Bodies and paths grpc-gateway v1 (jsonpb over encoding/json) and Go's ServeMux refuse, each with its own words. */
async function badInput(call: Call): Promise<void> {
  const range = (label: string, body: string): Promise<Answer> => call(label, '/v3/kv/range', { body });
  // The body is one JSON value read by a json.Decoder: what follows it is never read; null is the empty message.
  await range('null body', 'null');
  await range('two values', '{} {}');
  await range('garbage after the value', '{}garbage');
  await range('number then more', '5 5');
  await range('string body', '"str"');
  // base64, decoded as Go decodes it: the offset of the first bad byte.
  for (const key of ['YQ=', 'YQ==YQ==', 'YQ==\\nx', 'Y===', '=', 'YWJjZ', 'é', 'Y Q==', 'YQ-_']) await range(`base64 ${key}`, `{"key":"${key}"}`);
  // Wrong JSON types, in encoding/json's words.
  await range('bool for bytes', '{"key":true}');
  await range('object for bytes', '{"key":{}}');
  await range('bytes as a number array', '{"key":[97,98]}');
  await range('bytes array out of range', '{"key":[256]}');
  await range('bytes array of strings', '{"key":["a"]}');
  await range('bytes array of fractions', '{"key":[1.5]}');
  for (const limit of ['1.5', '"1.5"', '1e3', '"1e3"', '1.0', '99999999999999999999', '"99999999999999999999"', '"-9223372036854775809"', 'true', '"true"', '"null"', '""', '" 5"', '"5x"', '"[1]"', '[]', '{}', '-0']) {
    await range(`limit ${limit}`, `{"key":"YQ==","limit":${limit}}`);
  }
  await range('string for bool', '{"key":"YQ==","serializable":"true"}');
  await range('number for bool', '{"key":"YQ==","serializable":1}');
  for (const order of ['true', '1.5', '[]', '"1"', '4294967296', '"ascend"']) await range(`sort_order ${order}`, `{"key":"YQ==","sort_order":${order}}`);
  await call('object for a repeated field', '/v3/kv/txn', { body: '{"compare":{}}' });
  await call('string for a repeated field', '/v3/kv/txn', { body: '{"compare":"x"}' });
  await call('number in a repeated message field', '/v3/kv/txn', { body: '{"compare":[5]}' });
  await call('number for a message', '/v3/kv/txn', { body: '{"success":[{"request_put":5}]}' });
  await call('array for a message', '/v3/kv/txn', { body: '{"success":[{"request_put":[]}]}' });
  await call('string for repeated strings', '/v3/cluster/member/add', { body: '{"peerURLs":"http://x"}' });
  await call('number in repeated strings', '/v3/cluster/member/add', { body: '{"peerURLs":[5]}' });
  await call('negative uint64', '/v3/cluster/member/remove', { body: '{"ID":-1}' });
  await call('uint64 overflow', '/v3/cluster/member/remove', { body: '{"ID":"18446744073709551616"}' });
  await call('letters for int64', '/v3/lease/grant', { body: '{"TTL":"abc"}' });
  // Streams: a first request that does not decode is the answer (code Unknown, 500); a later one ends the sending.
  for (const body of ['{bad', '5', '[]', '{"create_request":5}', '{"create_request":{"key":"YQ="}}', '{"create_request":{"key":"YQ==","start_revision":"x"}}']) {
    await call(`watch, first request ${body}`, '/v3/watch', { body });
  }
  await call('keepalive, first request bad', '/v3/lease/keepalive', { body: '{"ID":"x"}' });
  await call('keepalive, second request bad', '/v3/lease/keepalive', { body: '{"ID":"1"} {bad' });
  await call('observe, bad request', '/v3/election/observe', { body: '{"name":5}' });
  // Methods and paths.
  for (const method of ['PUT', 'DELETE', 'PATCH']) await call(method, '/v3/kv/range', { method, body: '{}' });
  await call('GET unknown path', '/v3/kv/nothing', { method: 'GET' });
  await call('upper-case path', '/v3/KV/RANGE', { body: '{}' });
  await call('trailing slash', '/v3/kv/range/', { body: '{}' });
  await call('v3alpha', '/v3alpha/kv/range', { body: '{}' });
  await call('unknown service', '/v3/nothing', { body: '{}' });
  await call('/v3 itself (redirect)', '/v3', { body: '{}' });
  await call('GET /v3 (redirect, with a body)', '/v3?a=1', { method: 'GET' });
  await call('double slash (redirect)', '/v3//kv/range', { body: '{}' });
  await call('dot segments (redirect)', '/v3/kv/../kv/range', { method: 'GET' });
}

/** The requests, in order; each answer is kept for comparison. */
async function script(url: string, mask: (a: Answer) => Answer): Promise<[string, Answer][]> {
  const out: [string, Answer][] = [];
  const call = async (label: string, path: string, opts: Parameters<typeof request>[2] = {}): Promise<Answer> => {
    const a = mask(await request(url, path, opts));
    out.push([label, a]);
    return a;
  };
  // KV
  await call('put', '/v3/kv/put', { body: JSON.stringify({ key: b64('k1'), value: b64('v1') }) });
  await call('put prev_kv', '/v3/kv/put', { body: JSON.stringify({ key: b64('k1'), value: b64('v2 <&>'), prev_kv: true }) });
  await call('put camelCase', '/v3/kv/put', { body: JSON.stringify({ key: b64('k2'), value: b64('x'), prevKv: true }) });
  await call('range', '/v3/kv/range', { body: JSON.stringify({ key: b64('k1') }) });
  await call('range prefix sorted limited', '/v3/kv/range', { body: JSON.stringify({ key: b64('k'), range_end: b64('l'), limit: 1, sort_order: 'DESCEND', sort_target: 'MOD' }) });
  await call('range count only', '/v3/kv/range', { body: JSON.stringify({ key: b64('k'), range_end: b64('l'), count_only: true }) });
  await call('range keys only, numbers as strings', '/v3/kv/range', { body: `{"key":"${b64('k')}","range_end":"${b64('l')}","keys_only":true,"revision":"3"}` });
  await call('range missing', '/v3/kv/range', { body: JSON.stringify({ key: b64('nope') }) });
  await call('range empty body', '/v3/kv/range', { body: '' });
  await call('range future revision', '/v3/kv/range', { body: JSON.stringify({ key: b64('k1'), revision: '1000' }) });
  await call('txn', '/v3/kv/txn', {
    body: JSON.stringify({
      compare: [{ key: b64('k1'), target: 'VALUE', result: 'EQUAL', value: b64('v2 <&>') }],
      success: [{ request_put: { key: b64('k3'), value: b64('t') } }, { request_range: { key: b64('k1') } }, { request_txn: { success: [{ request_delete_range: { key: b64('k2'), prev_kv: true } }] } }],
      failure: [{ request_range: { key: b64('k2') } }],
    }),
  });
  await call('txn failure branch', '/v3/kv/txn', {
    body: JSON.stringify({ compare: [{ key: b64('k1'), target: 'VERSION', result: 'GREATER', version: '10' }], failure: [{ request_range: { key: b64('k1') } }] }),
  });
  await call('txn duplicate key', '/v3/kv/txn', { body: JSON.stringify({ success: [{ request_put: { key: b64('d') } }, { request_put: { key: b64('d') } }] }) });
  await call('deleterange prev_kv', '/v3/kv/deleterange', { body: JSON.stringify({ key: b64('k3'), prev_kv: true }) });
  await call('compaction', '/v3/kv/compaction', { body: JSON.stringify({ revision: '3', physical: true }) });
  await call('range compacted', '/v3/kv/range', { body: JSON.stringify({ key: b64('k1'), revision: '2' }) });
  await call('watch from history', '/v3/watch', { body: JSON.stringify({ create_request: { key: b64('k1'), start_revision: '3', prev_kv: true } }), lines: 2 });
  await call('watch bad range', '/v3/watch', { body: JSON.stringify({ create_request: { key: b64('b'), range_end: b64('a') } }), lines: 1 });
  // Leases
  await call('lease grant', '/v3/lease/grant', { body: JSON.stringify({ TTL: '60', ID: '4096' }) });
  await call('lease grant exists', '/v3/lease/grant', { body: JSON.stringify({ TTL: '60', ID: '4096' }) });
  await call('put with lease', '/v3/kv/put', { body: JSON.stringify({ key: b64('lk'), value: b64('x'), lease: '4096' }) });
  await call('lease timetolive keys', '/v3/lease/timetolive', { body: JSON.stringify({ ID: '4096', keys: true }) });
  await call('lease timetolive unknown', '/v3/kv/lease/timetolive', { body: JSON.stringify({ ID: '77' }) });
  await call('lease leases', '/v3/lease/leases', { body: '{}' });
  await call('lease leases alias', '/v3/kv/lease/leases', { body: '{}' });
  await call('lease keepalive stream', '/v3/lease/keepalive', { body: JSON.stringify({ ID: '4096' }) });
  await call('lease revoke unknown', '/v3/kv/lease/revoke', { body: JSON.stringify({ ID: '77' }) });
  // Lock and election through the gateway
  await call('lock', '/v3/lock/lock', { body: JSON.stringify({ name: b64('L'), lease: '4096' }) });
  await call('unlock', '/v3/lock/unlock', { body: JSON.stringify({ key: b64(`L/${(4096).toString(16)}`) }) });
  const won = await call('campaign', '/v3/election/campaign', { body: JSON.stringify({ name: b64('E'), lease: '4096', value: b64('me') }) });
  await call('leader', '/v3/election/leader', { body: JSON.stringify({ name: b64('E') }) });
  await call('observe', '/v3/election/observe', { body: JSON.stringify({ name: b64('E') }), lines: 1 });
  const leader = (JSON.parse(won.body) as { leader?: unknown }).leader;
  await call('proclaim', '/v3/election/proclaim', { body: JSON.stringify({ leader, value: b64('me again') }) });
  await call('resign', '/v3/election/resign', { body: JSON.stringify({ leader }) });
  await call('proclaim without leader', '/v3/election/proclaim', { body: JSON.stringify({ value: b64('x') }) });
  await call('lease revoke', '/v3/lease/revoke', { body: JSON.stringify({ ID: '4096' }) });
  // Cluster and maintenance
  const members = await call('member list', '/v3/cluster/member/list', { body: '{}' });
  const self = (JSON.parse(members.body) as { members?: { ID?: string }[] }).members?.[0]?.ID ?? '0';
  // Refused for want of started members: etcd 3.4.23 answers it Unknown, 500.
  await call('member remove of the only member', '/v3/cluster/member/remove', { body: JSON.stringify({ ID: self }) });
  await call('member add bad url', '/v3/cluster/member/add', { body: JSON.stringify({ peerURLs: ['bad'] }) });
  await call('member remove unknown', '/v3/cluster/member/remove', { body: JSON.stringify({ ID: '1' }) });
  await call('member update unknown', '/v3/cluster/member/update', { body: JSON.stringify({ ID: '1', peerURLs: ['http://127.0.0.1:1'] }) });
  await call('status', '/v3/maintenance/status', { body: '{}' });
  await call('alarm list', '/v3/maintenance/alarm', { body: '{}' });
  await call('defragment', '/v3/maintenance/defragment', { body: '{}' });
  await call('hash', '/v3/maintenance/hash', { body: '{}' });
  await call('transfer leadership to nobody', '/v3/maintenance/transfer-leadership', { body: JSON.stringify({ targetID: '1' }) });
  // Auth
  await call('auth enable without root', '/v3/auth/enable', { body: '{}' });
  await call('user add root', '/v3/auth/user/add', { body: JSON.stringify({ name: 'root', password: 'rootpw' }) });
  await call('user add alice', '/v3/auth/user/add', { body: JSON.stringify({ name: 'alice', password: 'pw' }) });
  await call('user add empty', '/v3/auth/user/add', { body: JSON.stringify({ name: '' }) });
  await call('role add', '/v3/auth/role/add', { body: JSON.stringify({ name: 'reader' }) });
  await call('role grant', '/v3/auth/role/grant', { body: JSON.stringify({ name: 'reader', perm: { permType: 'READ', key: b64('k'), range_end: b64('l') } }) });
  await call('user grant', '/v3/auth/user/grant', { body: JSON.stringify({ user: 'alice', role: 'reader' }) });
  await call('user grant root', '/v3/auth/user/grant', { body: JSON.stringify({ user: 'root', role: 'root' }) });
  await call('user get', '/v3/auth/user/get', { body: JSON.stringify({ name: 'alice' }) });
  await call('user list', '/v3/auth/user/list', { body: '{}' });
  await call('role get', '/v3/auth/role/get', { body: JSON.stringify({ role: 'reader' }) });
  await call('role list', '/v3/auth/role/list', { body: '{}' });
  await call('auth enable', '/v3/auth/enable', { body: '{}' });
  await call('range without token', '/v3/kv/range', { body: JSON.stringify({ key: b64('k1') }) });
  await call('authenticate bad password', '/v3/auth/authenticate', { body: JSON.stringify({ name: 'alice', password: 'nope' }) });
  const alice = await call('authenticate', '/v3/auth/authenticate', { body: JSON.stringify({ name: 'alice', password: 'pw' }) });
  const aliceToken = (JSON.parse((await request(url, '/v3/auth/authenticate', { body: JSON.stringify({ name: 'alice', password: 'pw' }) })).body) as { token: string }).token;
  assert.equal(alice.status, 200);
  await call('range with token', '/v3/kv/range', { body: JSON.stringify({ key: b64('k1') }), token: aliceToken });
  await call('put denied', '/v3/kv/put', { body: JSON.stringify({ key: b64('k1'), value: b64('x') }), token: aliceToken });
  await call('range bad token', '/v3/kv/range', { body: JSON.stringify({ key: b64('k1') }), token: 'bogus.1' });
  const rootToken = (JSON.parse((await request(url, '/v3/auth/authenticate', { body: JSON.stringify({ name: 'root', password: 'rootpw' }) })).body) as { token: string }).token;
  await call('role revoke', '/v3/auth/role/revoke', { body: JSON.stringify({ role: 'reader', key: b64('k'), range_end: b64('l') }), token: rootToken });
  await call('user revoke', '/v3/auth/user/revoke', { body: JSON.stringify({ name: 'alice', role: 'reader' }), token: rootToken });
  await call('user changepw', '/v3/auth/user/changepw', { body: JSON.stringify({ name: 'alice', password: 'pw2' }), token: rootToken });
  await call('role delete', '/v3/auth/role/delete', { body: JSON.stringify({ role: 'reader' }), token: rootToken });
  await call('user delete', '/v3/auth/user/delete', { body: JSON.stringify({ name: 'alice' }), token: rootToken });
  await call('auth disable', '/v3/auth/disable', { body: '{}', token: rootToken });
  // What the gateway itself refuses
  await call('v3beta prefix', '/v3beta/kv/range', { body: JSON.stringify({ key: b64('k1') }) });
  await call('unknown path', '/v3/kv/nothing', { body: '{}' });
  await call('not 3.4: hashkv', '/v3/maintenance/hashkv', { body: '{}' });
  await call('GET', '/v3/kv/range', { method: 'GET' });
  await call('bad json', '/v3/kv/range', { body: '{bad' });
  await call('truncated json', '/v3/kv/range', { body: '{"key"' });
  await call('array body', '/v3/kv/range', { body: '[]' });
  await call('bad base64', '/v3/kv/range', { body: '{"key":"a2V5!"}' });
  await call('short base64', '/v3/kv/range', { body: '{"key":"YQ"}' });
  await call('number for bytes', '/v3/kv/range', { body: '{"key":5}' });
  await call('bad enum', '/v3/kv/range', { body: '{"key":"YQ==","sort_order":"BAD"}' });
  await call('bad int64', '/v3/kv/range', { body: '{"key":"YQ==","revision":"abc"}' });
  await call('unknown field', '/v3/kv/range', { body: '{"key":"YQ==","nonsense":1}' });
  await badInput(call);
  return out;
}

/**
 * Raw HTTP/1.1 bytes: the request written, the write side closed when halfClose, and everything read
 * until the server closes or 3 s pass; the Date header masked.
 */
function rawExchange(url: string, request: string, halfClose: boolean): Promise<{ bytes: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let bytes = '';
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ bytes: bytes.replace(/^Date: .*$/m, 'Date: D'), closed });
    };
    const timer = setTimeout(() => done(false), 3000);
    const socket = net.connect(Number(port), hostname, () => (halfClose ? socket.end(request) : socket.write(request)));
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (bytes += c));
    socket.on('close', () => done(true));
    socket.on('error', reject);
  });
}

describe('JSON gateway against the real etcd', { skip: etcdMissing() }, () => {
  const ws = useWorkspace('gateway');
  let theirs: Cluster;
  let ours: Cluster;
  before(async () => {
    [theirs, ours] = await Promise.all([ws.startCluster({ kind: 'etcd' }), ws.startCluster({ kind: 'etcd-ts' })]);
  });

  test('every path answers as etcd 3.4.23 does', async () => {
    const maskOf = async (c: Cluster): Promise<(a: Answer) => Answer> => masker(c, (await memberStatus(c.member(0).endpoint)).header?.memberId ?? 0n);
    const expected = await script(theirs.member(0).clientUrl, await maskOf(theirs));
    const actual = await script(ours.member(0).clientUrl, await maskOf(ours));
    const diffs = expected.flatMap(([label, want], i) => {
      const got = actual[i]?.[1];
      return JSON.stringify(got) === JSON.stringify(want) ? [] : [`${label}:\n  etcd:    ${JSON.stringify(want)}\n  etcd-ts: ${JSON.stringify(got)}`];
    });
    assert.equal(diffs.length, 0, `${diffs.length} of ${expected.length} answers differ:\n${diffs.join('\n')}`);
  });

  test('HTTP/1.1 exchanges, byte for byte: a client that half-closes after its request, a kept-alive /health', async () => {
    const put = (key: string): string => {
      const body = `{"key":"${b64(key)}","value":"${b64('v')}"}`;
      return `POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    };
    // Go's server ends the request's context at the client's EOF, racing its handler: etcd answers 408
    // "context canceled" (the put made or not, as a cancelled proposal may still apply), or 200 when the
    // put went through first; then it closes. So does etcd-ts (it was silent, and made the put): when both
    // answer 408, byte for byte the same.
    const canceled = /^HTTP\/1\.1 408 Request Timeout\r\n(.*\r\n)*\r\n\{"error":"context canceled","message":"context canceled","code":1\}$/;
    const answered = /^HTTP\/1\.1 200 OK\r\n/;
    const exchanges = [await rawExchange(theirs.member(0).clientUrl, put('half-closed'), true), await rawExchange(ours.member(0).clientUrl, put('half-closed'), true)];
    for (const x of exchanges) {
      assert.ok(canceled.test(x.bytes) || answered.test(x.bytes), x.bytes);
      assert.equal(x.closed, true, 'closed after the answer');
    }
    const [theirsHalf, oursHalf] = exchanges as [{ bytes: string; closed: boolean }, { bytes: string; closed: boolean }];
    if (canceled.test(theirsHalf.bytes) && canceled.test(oursHalf.bytes)) assert.deepEqual(oursHalf, theirsHalf);
    for (const [label, req, half] of [
      ['health then half-close', 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', true],
      // Kept alive: no Connection or Keep-Alive header, the headers in Go's order.
      ['health kept alive', 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', false],
      ['health, Connection: close', 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', false],
    ] as const) {
      const want = await rawExchange(theirs.member(0).clientUrl, req, half);
      const got = await rawExchange(ours.member(0).clientUrl, req, half);
      assert.deepEqual(got, want, label);
    }
    const made = async (c: Cluster): Promise<boolean> =>
      /"kvs"/.test((await request(c.member(0).clientUrl, '/v3/kv/range', { body: `{"key":"${b64('half-closed')}"}` })).body);
    for (const [c, x] of [[theirs, theirsHalf], [ours, oursHalf]] as const) {
      if (answered.test(x.bytes)) assert.equal(await made(c), true, `${c.member(0).name}: a put answered 200 was made`);
    }
  });
});
