// jsonpb as etcd's gateway speaks it: a round trip through JSON keeps every
// field, zero values stay out, Go's string escaping, and the messages of
// bodies jsonpb refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { etcdserverpb } from '../pb/index.js';
import { JsonPbError, fromJson, goJsonString, splitJsonValues, toJson } from './json-pb.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('a RangeRequest survives JSON and back', () => {
  fc.assert(
    fc.property(
      fc.record({
        key: fc.uint8Array({ maxLength: 8 }),
        rangeEnd: fc.uint8Array({ maxLength: 8 }),
        limit: fc.integer({ min: 0, max: 2 ** 40 }),
        revision: fc.integer({ min: 0, max: 2 ** 40 }),
        sortOrder: fc.constantFrom(0, 1, 2),
        serializable: fc.boolean(),
        keysOnly: fc.boolean(),
      }),
      (r) => {
        const msg = etcdserverpb.RangeRequest.create(r);
        const back = fromJson(etcdserverpb.RangeRequest, enc(toJson(etcdserverpb.RangeRequest, msg)));
        assert.deepEqual(etcdserverpb.RangeRequest.encode(back), etcdserverpb.RangeRequest.encode(msg));
      },
    ),
  );
});

test('zero values are left out, int64 are strings, enums are names, oneofs are written even when zero', () => {
  const cmp = etcdserverpb.Compare.create({ key: enc('k'), target: etcdserverpb.Compare_CompareTarget.CREATE, targetUnion: { case: 'createRevision', value: 0 } });
  assert.equal(toJson(etcdserverpb.Compare, cmp), '{"target":"CREATE","key":"aw==","create_revision":"0"}');
  assert.equal(toJson(etcdserverpb.RangeResponse, etcdserverpb.RangeResponse.create({ count: 3 })), '{"count":"3"}');
});

test("strings are escaped as Go's encoding/json escapes them", () => {
  assert.equal(goJsonString('a<b>&"\\\n\u2028é'), '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\u2028é"');
});

test('refused bodies carry encoding/json and jsonpb messages', () => {
  const msg = (body: string): string => {
    try {
      fromJson(etcdserverpb.RangeRequest, enc(body));
    } catch (e) {
      assert.ok(e instanceof JsonPbError);
      return e.message;
    }
    return 'accepted';
  };
  assert.equal(msg('{"key":"a2V5!"}'), 'illegal base64 data at input byte 4');
  assert.equal(msg('{"key":"YQ"}'), 'illegal base64 data at input byte 0');
  assert.equal(msg('{"key":5}'), 'json: cannot unmarshal number into Go value of type []uint8');
  assert.equal(msg('{"sort_order":"BAD"}'), 'unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder');
  assert.equal(msg('[]'), 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage');
  assert.equal(msg('{bad'), "invalid character 'b' looking for beginning of object key string");
  assert.equal(msg('{"key"'), 'unexpected EOF');
  assert.equal(msg('{"nonsense":1}'), 'accepted');
});

test('a stream body splits into its JSON values, keeping an incomplete tail', () => {
  assert.deepEqual(splitJsonValues('{"a":"}"}{"b":[1]} {"c":'), { values: ['{"a":"}"}', '{"b":[1]}'], rest: ' {"c":' });
});
