/**
 * make-mirror: copies the source's keys (under --prefix) at one revision to
 * the destination, then replays every later change, one destination txn per
 * source revision; prints the count of mirrored changes every 30 s.
 */
import { readFileSync } from 'node:fs';
import { Op, prefixRangeEnd, type etcdserverpb } from '../../client/index.js';
import { must, type CommandSpec } from '../command.js';
import { ExitCode, fail } from '../output.js';

const batchLimit = 1000;

export const makeMirrorCommand: CommandSpec = {
  name: 'make-mirror',
  params: '[options] <destination>',
  short: 'Makes a mirror at the destination etcd cluster',
  flags: [
    { name: 'prefix', kind: 'string', def: '', usage: 'Key-value prefix to mirror' },
    { name: 'dest-prefix', kind: 'string', def: '', usage: 'destination prefix to mirror a prefix to a different prefix in the destination cluster' },
    { name: 'no-dest-prefix', kind: 'bool', def: 'false', usage: 'mirror key-values to the root of the destination cluster' },
    { name: 'dest-cert', kind: 'string', def: '', usage: 'Identify secure client using this TLS certificate file for the destination cluster' },
    { name: 'dest-key', kind: 'string', def: '', usage: 'Identify secure client using this TLS key file' },
    { name: 'dest-cacert', kind: 'string', def: '', usage: 'Verify certificates of TLS enabled secure servers using this CA bundle' },
    { name: 'dest-insecure-transport', kind: 'bool', def: 'true', usage: 'Disable transport security for client connections' },
  ],
  run: async (ctl, args) => {
    if (args.length !== 1) fail(ExitCode.badArgs, 'make-mirror takes one destination argument');
    const f = ctl.flags;
    const read = (p: string): Buffer | undefined => (p === '' ? undefined : readFileSync(p));
    const cert = f.string('dest-cert');
    const key = f.string('dest-key');
    const cacert = f.string('dest-cacert');
    const secure = cert !== '' || key !== '' || cacert !== '' || !f.bool('dest-insecure-transport');
    const base = ctl.clientOptions([args[0] ?? ''], false);
    const dest = ctl.clientFrom({ ...base, tls: secure ? { ca: read(cacert), cert: read(cert), key: read(key) } : undefined });
    const src = await ctl.connectedClient();
    const prefix = f.string('prefix');
    let total = 0;
    const ticker = setInterval(() => ctl.println(String(total)), 30_000);
    try {
      // The revision the copy is taken at; changes after it are replayed.
      const rev = (await must(src.kv.get('foo'))).header?.revision ?? 0;
      if (f.bool('no-dest-prefix') && f.string('dest-prefix').length > 0) {
        fail(ExitCode.badArgs, '`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one');
      }
      const destPrefix = !f.bool('no-dest-prefix') && f.string('dest-prefix').length === 0 ? prefix : f.string('dest-prefix');
      const rename = (k: Uint8Array): string => {
        const s = Buffer.from(k).toString('utf8');
        const at = s.indexOf(prefix);
        return at < 0 ? s : s.slice(0, at) + destPrefix + s.slice(at + prefix.length);
      };
      // The whole keyspace from \x00, or the prefix's range, in batches.
      let from: Uint8Array = Buffer.from(prefix.length === 0 ? '\x00' : prefix);
      const range = prefix.length === 0 ? { fromKey: true } : { rangeEnd: prefixRangeEnd(Buffer.from(prefix)) };
      for (;;) {
        const resp = await must(src.kv.get(from, { ...range, limit: batchLimit, revision: rev }));
        for (const kv of resp.kvs) {
          await must(dest.kv.put(rename(kv.key), kv.value));
          total++;
        }
        const last = resp.kvs[resp.kvs.length - 1];
        if (!resp.more || last === undefined) break;
        from = Buffer.concat([last.key, Buffer.from([0])]);
      }
      const w = src.watch.watch(prefix, { prefix: true, startRevision: rev + 1 });
      for await (const wr of w) {
        if (wr.compactRevision !== 0) fail(ExitCode.error, 'etcdserver: mvcc: required revision has been compacted');
        let lastRev = 0;
        let ops: etcdserverpb.RequestOp[] = [];
        const flush = async (): Promise<void> => {
          if (ops.length > 0) await must(dest.kv.txnRequest({ compare: [], success: ops, failure: [] }));
          ops = [];
        };
        for (const ev of wr.events) {
          const next = ev.kv?.modRevision ?? 0;
          if (lastRev !== 0 && next > lastRev) await flush();
          lastRev = next;
          const k = rename(ev.kv?.key ?? new Uint8Array());
          ops.push(ev.type === 1 ? Op.delete(k) : Op.put(k, ev.kv?.value ?? new Uint8Array()));
          total++;
        }
        await flush();
      }
    } finally {
      clearInterval(ticker);
    }
    fail(ExitCode.error, '<nil>');
  },
};
