"""Debian's Python clients of etcd v3 run against a server, one line per step.

    clients.py grpc <host> <port>              python3-etcd3 (grpcio, gRPC's C core)
    clients.py gateway <host> <port>           python3-etcd3gw (the JSON gateway, /v3beta and /v3)
    clients.py auth <host> <port> <ca file>    python3-etcd3 with user and password over TLS
    clients.py patroni <host> <port>           Patroni's etcd3 store (the JSON gateway, its watch stream):
                                               two nodes initialize a cluster and race for its leader key

Each line is "<step> OK <result>" or "<step> EXC <exception> <code and
details>". Ports, object addresses and ids that differ between two runs are
masked, so that two servers given the same steps print the same lines.
clients.test.ts runs it against etcd 3.4.23 and etcd-ts.
"""
import io
import json
import os
import re
import sys
import threading
import time

import etcd3
import etcd3.etcdrpc as rpc
import etcd3gw.utils
from etcd3gw.client import Etcd3Client


def mask(text):
    text = re.sub(r' at 0x[0-9a-f]+', '', text)
    text = re.sub(r'127\.0\.0\.1:\d+', '127.0.0.1:PORT', text)
    text = re.sub(r'"(cluster_id|member_id|raft_term|ID|leader|dbSize|dbSizeInUse|raftIndex|raftTerm|raftAppliedIndex|version)": ?"?[0-9a-zA-Z.]+"?', r'"\1": X', text)
    return text[:400]


def status_of(exc):
    for e in (exc, exc.__cause__, exc.__context__):
        if e is not None and callable(getattr(e, 'code', None)) and callable(getattr(e, 'details', None)):
            return '%s %s' % (e.code(), e.details())
    return str(exc)


def step(name, fn):
    try:
        result = fn()
        print(name, 'OK', mask(result if isinstance(result, str) else json.dumps(result, default=repr, sort_keys=True)), flush=True)
    except Exception as exc:  # every failure is a line to compare
        print(name, 'EXC', type(exc).__name__, mask(status_of(exc)), flush=True)


def event_of(e):
    return [type(e).__name__, e.key.decode(), e.value.decode(), e.mod_revision]


def kv_of(meta):
    return [meta.key.decode(), meta.create_revision, meta.mod_revision, meta.version, meta.lease_id != 0]


def grpc_walk(host, port):
    c = etcd3.client(host=host, port=port, timeout=10)
    t = c.transactions
    step('put', lambda: c.put('/a', 'v1').header.revision)
    step('get', lambda: [c.get('/a')[0].decode(), kv_of(c.get('/a')[1])])
    step('get missing', lambda: list(c.get('/missing')))
    step('put prev_kv', lambda: c.put('/a', 'v2', prev_kv=True).prev_kv.value.decode())
    for i in range(5):
        c.put('/p/%d' % i, 'x%d' % i)
    step('get_prefix', lambda: [[v.decode(), kv_of(m)] for v, m in c.get_prefix('/p/')])
    step('get_prefix descend', lambda: [m.key.decode() for _, m in c.get_prefix('/p/', sort_order='descend', sort_target='key')])
    step('get_prefix by mod', lambda: [m.key.decode() for _, m in c.get_prefix('/p/', sort_order='ascend', sort_target='mod')])
    step('get_prefix keys_only', lambda: [[repr(v), m.key.decode()] for v, m in c.get_prefix('/p/', keys_only=True)])
    step('get_range', lambda: [m.key.decode() for _, m in c.get_range('/p/1', '/p/3')])
    step('get_all', lambda: [m.key.decode() for _, m in c.get_all()])
    step('put_if_not_exists new', lambda: c.put_if_not_exists('/n', 'a'))
    step('put_if_not_exists old', lambda: c.put_if_not_exists('/n', 'b'))
    step('replace', lambda: c.replace('/n', 'a', 'c'))
    step('replace stale', lambda: c.replace('/n', 'a', 'd'))
    step('delete', lambda: c.delete('/n'))
    step('delete missing', lambda: c.delete('/n'))
    step('delete prev_kv', lambda: c.delete('/p/0', prev_kv=True, return_response=True).prev_kvs[0].value.decode())
    step('delete_prefix', lambda: c.delete_prefix('/p/').deleted)
    step('txn then', lambda: repr(c.transaction(
        compare=[t.value('/a') == 'v2', t.version('/a') > 0],
        success=[t.put('/t', 'yes'), t.get('/a')],
        failure=[t.put('/t', 'no')])))
    step('txn else', lambda: repr(c.transaction(
        compare=[t.value('/a') == 'zz'],
        success=[t.put('/t', 'yes')],
        failure=[t.put('/t', 'no'), t.delete('/a')])))
    step('txn create/mod', lambda: c.transaction(compare=[t.create('/t') != 0, t.mod('/t') < 10 ** 9], success=[], failure=[])[0])
    step('txn duplicate key', lambda: repr(c.transaction(compare=[], success=[t.put('/d', '1'), t.put('/d', '2')], failure=[])))
    step('txn nested', lambda: repr(c.transaction(compare=[], success=[t.txn(compare=[], success=[t.put('/nn', '1')], failure=[])], failure=[])))

    lease = c.lease(5)
    step('lease', lambda: [lease.granted_ttl, 0 < lease.remaining_ttl <= 5])
    c.put('/l1', 'x', lease=lease)
    step('lease keys', lambda: [k.decode() for k in lease.keys])
    step('lease refresh', lambda: [r.TTL for r in c.refresh_lease(lease.id)])
    step('lease revoke', lease.revoke)
    step('get after revoke', lambda: list(c.get('/l1')))
    step('revoke again', lambda: c.revoke_lease(lease.id))
    step('refresh revoked', lambda: [r.TTL for r in c.refresh_lease(lease.id)])
    step('info revoked', lambda: [c.get_lease_info(lease.id).TTL, c.get_lease_info(lease.id).grantedTTL])
    step('lease with id', lambda: c.lease(10, lease_id=123456).id)
    step('lease id taken', lambda: c.lease(10, lease_id=123456).id)
    step('lease ttl too large', lambda: c.lease(10 ** 12).granted_ttl)

    first = c.lock('res', ttl=5)
    second = c.lock('res', ttl=5)
    step('lock', lambda: first.acquire(timeout=3))
    step('lock held', first.is_acquired)
    step('lock release', first.release)
    step('lock again', lambda: second.acquire(timeout=3))
    step('lock refresh', lambda: [r.TTL > 0 for r in second.refresh()])
    step('lock release again', second.release)
    step('lock release twice', second.release)

    events = []

    def on_watch(resp):
        if isinstance(resp, Exception):
            events.append(['error', type(resp).__name__])
            return
        for e in resp.events:
            events.append([type(e).__name__, e.key.decode(), e.value.decode()])

    # Each returns once the server has created its watch.
    ids = [c.add_watch_callback('/w', on_watch), c.add_watch_prefix_callback('/wp/', on_watch)]
    c.put('/w', '1')
    c.put('/wp/a', '2')
    c.delete('/w')
    c.put('/wx', 'not watched')
    deadline = time.time() + 5
    while len(events) < 3 and time.time() < deadline:
        time.sleep(0.05)
    step('watch callbacks', lambda: events)
    for i in ids:
        c.cancel_watch(i)
    rev = c.put('/w3', 'z').header.revision
    step('watch_once from a revision', lambda: event_of(c.watch_once('/w3', timeout=3, start_revision=rev)))
    step('watch_once times out', lambda: c.watch_once('/w4', timeout=0.3))

    rev = c.put('/cc', '1').header.revision
    c.put('/cc', '2')
    step('compact', lambda: c.compact(rev, physical=True))
    step('compact again', lambda: c.compact(rev))
    step('compact future', lambda: c.compact(rev + 10 ** 6))
    step('watch compacted', lambda: c.watch_once('/cc', timeout=2, start_revision=rev - 1))

    step('status', lambda: [c.status().version, c.status().raft_index > 0, c.status().db_size > 0])
    step('members', lambda: [[m.name, list(m.peer_urls), list(m.client_urls)] for m in c.members])
    step('hash', lambda: c.hash() > 0)
    step('defragment', lambda: [c.defragment(), c.status().db_size > 0][1])
    step('alarm', lambda: [a.alarm_type for a in c.create_alarm()])
    step('alarms', lambda: [a.alarm_type for a in c.list_alarms()])
    step('put with NOSPACE', lambda: c.put('/ns', 'x'))
    step('disarm', lambda: [a.alarm_type for a in c.disarm_alarm()])
    step('put after disarm', lambda: c.put('/ns', 'x') is not None)
    buf = io.BytesIO()
    step('snapshot', lambda: [c.snapshot(buf), len(buf.getvalue()) > 1000])
    step('add member bad url', lambda: c.add_member(['notaurl']))
    step('remove member missing', lambda: c.remove_member(12345))
    step('update member missing', lambda: c.update_member(12345, ['http://127.0.0.1:1']))
    # Large messages: gRPC's C core pings to size its window while one arrives.
    step('put over 2 MiB', lambda: c.put('/big', 'x' * (2 * 1024 * 1024)))
    step('put 1.4 MiB', lambda: c.put('/big', 'y' * (1400 * 1024)) is not None)
    step('get 1.4 MiB', lambda: len(c.get('/big')[0]))
    step('get 1.4 MiB x3', lambda: [len(v) for v, _ in c.get_prefix('/big')] + [len(c.get('/big')[0]), len(c.get('/big')[0])])
    step('empty key', lambda: c.put('', 'x'))


def revision(gateway):
    return int(gateway.status()['header']['revision'])


def gateway_walk(host, port):
    enc = etcd3gw.utils._encode
    for api in ('/v3beta/', '/v3/'):
        c = Etcd3Client(host=host, port=port, api_path=api, timeout=10)
        k = api.strip('/') + '/'
        step(k + 'status', lambda: sorted(c.status().keys()))
        step(k + 'members', lambda: [[m.get('name'), m.get('peerURLs'), m.get('clientURLs')] for m in c.members()])
        step(k + 'put', lambda: c.put('/a', 'v1'))
        step(k + 'get', lambda: c.get('/a', metadata=True))
        step(k + 'get missing', lambda: c.get('/missing'))
        step(k + 'create', lambda: c.create('/c', 'x'))
        step(k + 'create taken', lambda: c.create('/c', 'y'))
        step(k + 'replace', lambda: c.replace('/c', 'x', 'z'))
        step(k + 'replace stale', lambda: c.replace('/c', 'x', 'w'))
        for i in range(3):
            c.put('/p/%d' % i, 'v%d' % i)
        step(k + 'get_prefix', lambda: c.get_prefix('/p/'))
        step(k + 'get_prefix descend', lambda: c.get_prefix('/p/', sort_order='descend', sort_target='key'))
        step(k + 'delete', lambda: c.delete('/c'))
        step(k + 'delete missing', lambda: c.delete('/c'))
        step(k + 'delete_prefix', lambda: c.delete_prefix('/p/'))
        lease = c.lease(ttl=5)
        step(k + 'put with lease', lambda: c.put('/l', 'x', lease=lease))
        step(k + 'lease ttl', lambda: 0 < lease.ttl() <= 5)
        step(k + 'lease keys', lease.keys)
        step(k + 'lease refresh', lease.refresh)
        step(k + 'lease revoke', lease.revoke)
        step(k + 'lease ttl revoked', lease.ttl)
        step(k + 'lease refresh revoked', lease.refresh)
        lock = c.lock(id='L1', ttl=5)
        other = c.lock(id='L1', ttl=5)
        step(k + 'lock', lock.acquire)
        step(k + 'lock taken', other.acquire)
        step(k + 'lock refresh', lock.refresh)
        step(k + 'lock release', lock.release)
        step(k + 'lock release twice', lock.release)
        step(k + 'txn', lambda: c.transaction({
            'compare': [{'key': enc('/a'), 'result': 'EQUAL', 'target': 'VALUE', 'value': enc('v1')}],
            'success': [{'request_put': {'key': enc('/t'), 'value': enc('yes')}}], 'failure': []}))
        step(k + 'txn bad base64', lambda: c.transaction({'compare': [{'key': 'not base64!', 'result': 'EQUAL', 'target': 'VALUE'}], 'success': [], 'failure': []}))
        # The gateway's watch stream says nothing when it is created: watch from the next revision.
        events, cancel = c.watch('/w', start_revision=revision(c) + 1)
        got = []
        reader = threading.Thread(target=lambda: [got.append(e) for e in events], daemon=True)
        reader.start()
        c.put('/w', '1')
        c.delete('/w')
        deadline = time.time() + 5
        while len(got) < 2 and time.time() < deadline:
            time.sleep(0.05)
        cancel()
        step(k + 'watch', lambda: got)
        c.put('/wo', 'once')
        step(k + 'watch_once', lambda: c.watch_once('/wo', timeout=5, start_revision=revision(c)))
        post = c.session.post
        url = c.get_url
        step(k + 'bad json', lambda: post(url('/kv/range'), data='{bad').text)
        step(k + 'unknown field', lambda: post(url('/kv/range'), json={'key': 'YQ==', 'bogus': 1}).text)
        step(k + 'limit as a string', lambda: post(url('/kv/range'), json={'key': 'YQ==', 'limit': '1'}).text)
        step(k + 'GET', lambda: [post.__self__.get(url('/kv/range')).status_code])
        step(k + 'compact future', lambda: [post(url('/kv/compaction'), json={'revision': 10 ** 9}).status_code, post(url('/kv/compaction'), json={'revision': 10 ** 9}).text])
        step(k + 'put without key', lambda: [post(url('/kv/put'), json={'value': 'YQ=='}).status_code, post(url('/kv/put'), json={'value': 'YQ=='}).text])
        step(k + 'election leader none', lambda: [post(url('/election/leader'), json={'name': 'ZQ=='}).status_code, post(url('/election/leader'), json={'name': 'ZQ=='}).text])
        step(k + 'unknown path', lambda: [post(url('/kv/nothing'), json={}).status_code])


def auth_walk(host, port, ca):
    c = etcd3.client(host=host, port=port, timeout=10, ca_cert=ca)
    admin = rpc.AuthStub(c.channel)
    step('user add root', lambda: admin.UserAdd(rpc.AuthUserAddRequest(name='root', password='pw'), timeout=10) is not None)
    step('grant root', lambda: admin.UserGrantRole(rpc.AuthUserGrantRoleRequest(user='root', role='root'), timeout=10) is not None)
    step('user add bob', lambda: admin.UserAdd(rpc.AuthUserAddRequest(name='bob', password='b'), timeout=10) is not None)
    step('auth enable', lambda: admin.AuthEnable(rpc.AuthEnableRequest(), timeout=10) is not None)
    step('anonymous get', lambda: c.get('/x'))
    # The client sends its token twice on each call: as call credentials and as metadata.
    root = etcd3.client(host=host, port=port, timeout=10, ca_cert=ca, user='root', password='pw')
    step('root put', lambda: root.put('/x', 'y') is not None)
    step('root get', lambda: root.get('/x')[0].decode())
    step('root watch', lambda: event_of(root.watch_once('/x', timeout=3, start_revision=1)))
    step('root lock', lambda: root.lock('l', ttl=5).acquire(timeout=3))
    step('root lease', lambda: root.lease(5).granted_ttl)
    bob = etcd3.client(host=host, port=port, timeout=10, ca_cert=ca, user='bob', password='b')
    step('bob get', lambda: bob.get('/x'))
    step('bob put', lambda: bob.put('/x', 'z'))
    step('wrong password', lambda: etcd3.client(host=host, port=port, timeout=10, ca_cert=ca, user='root', password='no'))
    step('no such user', lambda: etcd3.client(host=host, port=port, timeout=10, ca_cert=ca, user='zed', password='no'))
    step('auth disable', lambda: rpc.AuthStub(root.channel).AuthDisable(rpc.AuthDisableRequest(), timeout=10, credentials=root.call_credentials) is not None)
    step('anonymous get after', lambda: c.get('/x')[0].decode())


def settled(read, done, seconds=10):
    """read() until done(result), for at most seconds; the last result either way."""
    deadline = time.time() + seconds
    result = read()
    while not done(result) and time.time() < deadline:
        time.sleep(0.05)
        result = read()
    return result


def patroni_walk(host, port):
    from patroni.dcs.etcd3 import Etcd3

    def node(name):
        return Etcd3({'scope': 'pg', 'name': name, 'namespace': '/service/', 'ttl': 30, 'retry_timeout': 10,
                      'loop_wait': 10, 'hosts': ['%s:%s' % (host, port)]})

    def seen(cluster):
        return {'initialize': cluster.initialize, 'leader': cluster.leader and cluster.leader.name,
                'members': sorted(m.name for m in cluster.members), 'config': cluster.config and cluster.config.data,
                'failover': cluster.failover and [cluster.failover.leader, cluster.failover.candidate],
                'history': cluster.history and cluster.history.lines,
                'sync': cluster.sync and [cluster.sync.leader, sorted(cluster.sync.members)]}

    one, two = node('node1'), node('node2')
    step('empty', lambda: seen(one.get_cluster()))
    step('initialize', lambda: one.initialize(create_new=True, sysid='6789'))
    step('initialize taken', lambda: two.initialize(create_new=True, sysid='9999'))
    step('touch member', lambda: one.touch_member({'state': 'running', 'role': 'master', 'conn_url': 'postgres://a'}))
    step('touch member 2', lambda: two.touch_member({'state': 'running', 'role': 'replica', 'conn_url': 'postgres://b'}))
    step('acquire leader', one.attempt_to_acquire_leader)
    step('acquire leader taken', two.attempt_to_acquire_leader)
    step('config', lambda: one.set_config_value(json.dumps({'ttl': 30, 'loop_wait': 10})))
    step('history', lambda: one.set_history_value(json.dumps([[1, 25165984, 'no recovery target specified']])))
    step('sync state', lambda: one.write_sync_state('node1', ['node2']) is not None)
    step('manual failover', lambda: two.manual_failover('node1', 'node2'))
    # A node reads the cluster from a cache its watch stream fills: wait (bounded) for the writes to reach it.
    step('seen by node2', lambda: settled(lambda: seen(two.get_cluster(force=True)), lambda c: c['failover'] is not None))
    step('update leader', lambda: one.update_leader(12345))
    step('leader optime', lambda: settled(lambda: two.get_cluster(force=True).last_lsn, lambda lsn: lsn == 12345))
    # node1 gives the leader key up (it must see itself as the leader first); node2's watch stream
    # wakes it. Its first watch only clears the changes it has seen so far.
    one.get_cluster(force=True)
    two.watch(None, 0)
    step('delete leader', one.delete_leader)
    started = time.time()
    step('watch woke', lambda: [two.watch(None, 8), time.time() - started < 6])
    step('seen by node1', lambda: settled(lambda: seen(one.get_cluster(force=True)), lambda c: c['leader'] is None))
    step('take leader', one.take_leader)
    step('cancel initialization', one.cancel_initialization)
    step('delete cluster', one.delete_cluster)
    step('after delete', lambda: settled(lambda: seen(two.get_cluster(force=True)), lambda c: c['members'] == []))


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == 'grpc':
        grpc_walk(host, port)
    elif mode == 'gateway':
        gateway_walk(host, port)
    elif mode == 'auth':
        auth_walk(host, port, sys.argv[4])
    elif mode == 'patroni':
        patroni_walk(host, port)
    else:
        raise SystemExit('unknown mode ' + mode)
    print('done', flush=True)
    sys.stdout.flush()
    # Patroni's watcher threads do not end on their own.
    os._exit(0)


if __name__ == '__main__':
    main()
