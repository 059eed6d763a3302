import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb } from '../pb/index.js';
import { get, put, del, txnValidationCases, b } from './testing.js';
import { checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from './validate.js';

test('txn checks: op limits, duplicate keys across branches and nesting, each op', () => {
  for (const c of txnValidationCases) {
    assert.equal(checkTxnRequest(c.txn)?.code, c.want, c.name);
  }
  assert.equal(checkTxnRequest(txnValidationCases[17]?.txn as etcdserverpb.TxnRequest, 127)?.code, 'too-many-ops', 'the limit is configurable');
});

test('single request checks', () => {
  assert.equal(checkPutRequest(put('', 'x'))?.code, 'empty-key');
  assert.equal(checkPutRequest(put('a', 'x', { ignoreValue: true }))?.message, 'etcdserver: value is provided');
  assert.equal(checkPutRequest(put('a', '', { ignoreLease: true, lease: 1n }))?.message, 'etcdserver: lease is provided');
  assert.equal(checkPutRequest(put('a', '', { ignoreValue: true, ignoreLease: true })), undefined);
  assert.equal(checkDeleteRangeRequest(del(''))?.message, 'etcdserver: key is not provided');
  assert.equal(checkRangeRequest(get('a', { rangeEnd: b('b') })), undefined);
  // etcd 3.4 answers an unknown sort order (unsorted); it crashes on an unknown target, which 3.6 refuses.
  assert.equal(checkRangeRequest(get('a', { sortOrder: 3 as etcdserverpb.RangeRequest_SortOrder })), undefined);
  assert.equal(checkRangeRequest(get('a', { sortTarget: 5 as etcdserverpb.RangeRequest_SortTarget }))?.message, 'etcdserver: invalid sort option');
  assert.equal(checkRangeRequest(get('a', { sortTarget: 5 as etcdserverpb.RangeRequest_SortTarget }))?.code, 'invalid-sort-option');
});
