#!/usr/bin/env node
/**
 * etcdctl-ts: etcdctl 3.4's command line, over etcd-ts's client. Commands
 * that hold something (lock, elect) end cleanly on SIGINT/SIGTERM; every
 * other command dies by the signal, as the Go etcdctl does.
 */
import { handlesInterrupt, run, type OfflineOps } from '../ctl/index.js';
import { LineReader, processIo } from '../ctl/stdio.js';

const args = process.argv.slice(2);
const interrupt = new AbortController();
if (handlesInterrupt(args)) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => interrupt.abort());
}
const stdin = new LineReader(process.stdin);
// The offline commands' server code loads only when one runs.
const offline = async (): Promise<OfflineOps> => (await import('./ctl-offline.js')).offlineOps;
const code = await run(args, processIo(interrupt.signal, stdin, offline));
stdin.close();
// Flush stdout/stderr before leaving: exit() would cut off a piped write.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
