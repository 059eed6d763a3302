// --discovery-srv's initial cluster from SRV records, as etcd 3.4.23 builds it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from './config.js';
import { initialClusterFromSrv, type SrvDns } from './srv-discovery.js';

function fakeDns(srv: Record<string, { name: string; port: number; priority?: number }[]>, hosts: Record<string, string[]>): SrvDns & { asked: string[] } {
  const asked: string[] = [];
  const missing = (name: string): Error => Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return {
    asked,
    resolveSrv: (name) => {
      asked.push(name);
      const r = srv[name];
      return r === undefined ? Promise.reject(missing(name)) : Promise.resolve(r.map((x) => ({ priority: 0, weight: 0, ...x })));
    },
    lookup: (host) => {
      const ips = hosts[host];
      return ips === undefined ? Promise.reject(missing(host)) : Promise.resolve(ips);
    },
    server: () => '10.0.0.53:53',
  };
}

const hosts = { 'm1.example.com': ['10.0.0.1'], 'm2.example.com': ['10.0.0.2'], 'm3.example.com': ['10.0.0.3'] };
const records = [
  { name: 'm1.example.com.', port: 2380 },
  { name: 'm2.example.com.', port: 2380 },
  { name: 'm3.example.com.', port: 2380 },
];

test('the record at this member\'s advertised address takes its name; the others are numbered; the root dot is dropped', async () => {
  const dns = fakeDns({ '_etcd-server-ssl._tcp.example.com': records }, hosts);
  const cluster = await initialClusterFromSrv(dns, 'infra2', 'example.com', '', ['https://10.0.0.2:2380']);
  assert.deepEqual([...cluster], [
    ['0', ['https://m1.example.com:2380']],
    ['infra2', ['https://m2.example.com:2380']],
    ['1', ['https://m3.example.com:2380']],
  ]);
  assert.deepEqual(dns.asked, ['_etcd-server-ssl._tcp.example.com']);
  // By name too: the advertised host is resolved before comparing.
  const byName = await initialClusterFromSrv(fakeDns({ '_etcd-server-ssl-prod._tcp.example.com': records }, hosts), 'infra3', 'example.com', 'prod', ['https://m3.example.com:2380']);
  assert.deepEqual(byName.get('infra3'), ['https://m3.example.com:2380']);
});

test("etcd's errors: a failed SRV lookup, a member not in the records, an http member, targets that do not resolve", async () => {
  await assert.rejects(
    initialClusterFromSrv(fakeDns({}, hosts), 'infra1', 'example.com', '', ['https://10.0.0.1:2380']),
    new ConfigError('error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.example.com on 10.0.0.53:53: no such host'),
  );
  const dns = fakeDns({ '_etcd-server-ssl._tcp.example.com': records }, hosts);
  await assert.rejects(initialClusterFromSrv(dns, 'infra9', 'example.com', '', ['https://10.0.0.9:2380']), new ConfigError('cannot find local etcd member "infra9" in SRV records'));
  // Its own record, but this member advertises http: that record is left out, so the member is not found.
  await assert.rejects(initialClusterFromSrv(dns, 'infra1', 'example.com', '', ['http://10.0.0.1:2380']), new ConfigError('cannot find local etcd member "infra1" in SRV records'));
  await assert.rejects(
    initialClusterFromSrv(fakeDns({ '_etcd-server-ssl._tcp.example.com': [{ name: 'gone.example.com.', port: 2380 }] }, hosts), 'infra1', 'example.com', '', ['https://10.0.0.1:2380']),
    new ConfigError('error querying DNS SRV records for _etcd-server-ssl lookup gone.example.com on 10.0.0.53:53: no such host'),
  );
});
