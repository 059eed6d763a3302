/**
 * Member URLs as etcd 3.4.23 takes and keeps them. The expectations are what
 * etcd answered (MemberAdd over raw gRPC: test/ops/member-differential) and
 * what Debian's etcdctl, which runs the same Go checks before it sends a
 * URL, printed for each refused one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from './config.js';
import { checkOwnUrl, checkUrl } from './urls.js';

const refused = (raw: string, message: string): void => assert.throws(() => checkUrl(raw), (e: unknown) => e instanceof ConfigError && e.message === message, raw);

test('checkUrl keeps a URL as Go prints it back: trimmed, scheme in lower case', () => {
  assert.equal(checkUrl('http://127.0.0.1:2380'), 'http://127.0.0.1:2380');
  assert.equal(checkUrl(' http://127.0.0.1:2380 '), 'http://127.0.0.1:2380');
  assert.equal(checkUrl('HTTP://127.0.0.1:2380'), 'http://127.0.0.1:2380');
  assert.equal(checkUrl('https://user@127.0.0.1:2380?q=1#f'), 'https://user@127.0.0.1:2380?q=1#f');
  assert.equal(checkUrl('http://[::1]:2380'), 'http://[::1]:2380');
  assert.equal(checkUrl('http://h:1?'), 'http://h:1?');
  assert.equal(checkUrl('unixs://s:1'), 'unixs://s:1');
  // Go's url package takes any digits as a port, and an empty host.
  assert.equal(checkUrl('http://127.0.0.1:99999'), 'http://127.0.0.1:99999');
  assert.equal(checkUrl('http://:2380'), 'http://:2380');
});

test("checkUrl refuses what etcd's types.NewURLs refuses, with its words", () => {
  refused('http://127.0.0.1:2380/', 'URL must not contain a path: http://127.0.0.1:2380/');
  refused('http://127.0.0.1:2380/x', 'URL must not contain a path: http://127.0.0.1:2380/x');
  refused('http://127.0.0.1', 'URL address does not have the form "host:port": http://127.0.0.1');
  refused('unix:///tmp/s.sock', 'URL address does not have the form "host:port": unix:///tmp/s.sock');
  refused('unix://s.sock', 'URL address does not have the form "host:port": unix://s.sock');
  refused('http://h:1:2', 'URL address does not have the form "host:port": http://h:1:2');
  refused('ftp://127.0.0.1:1', 'URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1');
  refused('', 'URL scheme must be http, https, unix, or unixs: ');
  refused('127.0.0.1:1', 'parse "127.0.0.1:1": first path segment in URL cannot contain colon');
  refused(':1', 'parse ":1": missing protocol scheme');
  refused('http://127.0.0.1:abc', 'parse "http://127.0.0.1:abc": invalid port ":abc" after host');
  refused('http://[::1]x:1', 'parse "http://[::1]x:1": invalid port "x:1" after host');
  refused('http://[::1', `parse "http://[::1": missing ']' in host`);
  refused('http://a b:1', 'parse "http://a b:1": invalid character " " in host name');
  refused('http://h%20:1', 'parse "http://h%20:1": invalid URL escape "%20"');
  refused('http://us er@h:1', 'parse "http://us er@h:1": net/url: invalid userinfo');
  refused('http://h:1/%zz', 'parse "http://h:1/%zz": invalid URL escape "%zz"');
  refused('http://h:1#%zz', 'parse "http://h:1#%zz": invalid URL escape "%zz"');
});

test("checkOwnUrl: a member's own URLs need a host", () => {
  assert.equal(checkOwnUrl(' HTTP://127.0.0.1:2379'), 'http://127.0.0.1:2379');
  assert.throws(() => checkOwnUrl('http://:2379'), (e: unknown) => e instanceof ConfigError && e.message === 'unexpected empty host (http://:2379)');
});
