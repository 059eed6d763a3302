/** The process side of etcdctl-ts: stdin as lines or as a whole, stdout/stderr, signals. */
import { spawnSync } from 'node:child_process';
import { getServers, promises as dnsPromises } from 'node:dns';
import type { Readable } from 'node:stream';
import { goDnsServer, type SrvResolver } from '../base/index.js';
import type { CtlIo, OfflineOps } from './command.js';
import type { Output } from './output.js';

/** Reads a stream on demand: whole, or line by line (each line keeps its newline; the last may lack one). */
export class LineReader {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private waiters: (() => void)[] = [];
  private started = false;

  constructor(private readonly stream: Readable) {}

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.stream.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.wake();
    });
    this.stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
    this.stream.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async readLine(): Promise<string | null> {
    this.start();
    for (;;) {
      const nl = this.buffered.indexOf(10);
      if (nl >= 0) {
        const line = this.buffered.subarray(0, nl + 1).toString('utf8');
        this.buffered = this.buffered.subarray(nl + 1);
        return line;
      }
      if (this.ended) {
        if (this.buffered.length === 0) return null;
        const rest = this.buffered.toString('utf8');
        this.buffered = Buffer.alloc(0);
        return rest;
      }
      await this.wait();
    }
  }

  async readAll(): Promise<string> {
    this.start();
    while (!this.ended) await this.wait();
    const all = this.buffered.toString('utf8');
    this.buffered = Buffer.alloc(0);
    return all;
  }

  /** Stops holding the process open. */
  close(): void {
    this.stream.pause();
    this.stream.removeAllListeners('data');
    (this.stream as Readable & { unref?: () => void }).unref?.();
  }
}

export const processOutput: Output = {
  out: (text) => {
    process.stdout.write(text);
  },
  err: (text) => {
    process.stderr.write(text);
  },
};

/**
 * speakeasy's echo handling: `stty -echo` and `stty echo` run on our own
 * stdin/stdout/stderr around the read (so on a pipe, stty's complaint shows
 * on stderr exactly as under etcdctl).
 */
function stty(arg: string): void {
  spawnSync('stty', [arg], { stdio: 'inherit' });
}

export function processIo(interrupt: AbortSignal, stdin: LineReader, offline: () => Promise<OfflineOps>): CtlIo {
  return {
    output: processOutput,
    env: process.env,
    readStdin: () => stdin.readAll(),
    readLine: () => stdin.readLine(),
    readSecretLine: async () => {
      stty('-echo');
      try {
        return await stdin.readLine();
      } finally {
        stty('echo');
      }
    },
    interrupt,
    argv: process.argv.slice(2),
    offline,
    srv: systemSrv,
  };
}

/** SRV lookups through the system's DNS servers. */
const systemSrv: SrvResolver = {
  resolveSrv: (name) => dnsPromises.resolveSrv(name),
  server: () => goDnsServer(getServers()),
};
