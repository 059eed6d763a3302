import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, electionTicks, electionTimeoutMs } from './config.js';

test('the election timeout counts whole ticks, as etcd counts it', () => {
  const cfg = { ...defaultConfig(), heartbeatMs: 500, electionMs: 1600 };
  assert.equal(electionTicks(cfg), 3);
  assert.equal(electionTimeoutMs(cfg), 1500, 'what a new leader extends leases by');
  assert.equal(electionTimeoutMs(defaultConfig()), 1000);
});
