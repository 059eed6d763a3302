// --discovery-srv's service names and SRV answers turned into endpoints, as etcd's srv.GetClient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { srvService, type SrvResolver } from '../base/index.js';
import { discoverEndpoints } from './discovery.js';

test('service names: -ssl for https, then the --discovery-srv-name suffix', () => {
  assert.equal(srvService('etcd-client', '', 'https'), 'etcd-client-ssl');
  assert.equal(srvService('etcd-client', '', 'http'), 'etcd-client');
  assert.equal(srvService('etcd-client', 'prod', 'https'), 'etcd-client-ssl-prod');
  assert.equal(srvService('etcd-client', 'prod', 'http'), 'etcd-client-prod');
});

test('https records first, each by priority; targets end in the root dot; one failed lookup is no error', async () => {
  const resolver: SrvResolver = {
    resolveSrv: (name) =>
      name === '_etcd-client-ssl._tcp.example.com'
        ? Promise.resolve([
            { name: 'b.example.com', port: 2379, priority: 20, weight: 1 },
            { name: 'a.example.com.', port: 2379, priority: 10, weight: 1 },
          ])
        : Promise.reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })),
    server: () => '10.0.0.2:53',
  };
  assert.deepEqual(await discoverEndpoints(resolver, 'etcd-client', 'example.com', ''), ['https://a.example.com.:2379', 'https://b.example.com.:2379']);
  const failing: SrvResolver = { ...resolver, resolveSrv: () => Promise.reject(Object.assign(new Error('x'), { code: 'ETIMEOUT' })) };
  await assert.rejects(
    discoverEndpoints(failing, 'etcd-client', 'example.com', ''),
    new Error('dns lookup errors: lookup _etcd-client-ssl._tcp.example.com on 10.0.0.2:53: i/o timeout and lookup _etcd-client._tcp.example.com on 10.0.0.2:53: i/o timeout'),
  );
});
