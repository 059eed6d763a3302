/**
 * Structured logging. Lines are JSON objects, as etcd's zap logger writes them:
 * {"level":"info","ts":"2026-01-01T00:00:00.000Z","msg":"...", ...fields}.
 * Passwords and tokens never go into fields; callers log fingerprints.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  with(fields: LogFields): Logger;
  /** Changes the level of this logger and of every logger derived from the same root (etcd's /config/local/log). */
  setLevel?(level: LogLevel): void;
}

const levelRank: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

export function isLogLevel(s: string): s is LogLevel {
  return s === 'debug' || s === 'info' || s === 'warn' || s === 'error';
}

function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return value.message;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return value;
}

export class JsonLogger implements Logger {
  /** The level's rank, shared by the loggers with() derives: setLevel changes them all. */
  private readonly threshold: { rank: number };

  constructor(
    level: LogLevel,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
    private readonly base: LogFields = {},
    private readonly now: () => number = Date.now,
    shared?: { rank: number },
  ) {
    this.threshold = shared ?? { rank: levelRank[level] };
  }

  setLevel(level: LogLevel): void {
    this.threshold.rank = levelRank[level];
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }

  with(fields: LogFields): Logger {
    return new JsonLogger('info', this.write, { ...this.base, ...fields }, this.now, this.threshold);
  }

  private log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (levelRank[level] < this.threshold.rank) return;
    const line = { level, ts: new Date(this.now()).toISOString(), msg, ...this.base, ...fields };
    this.write(JSON.stringify(line, jsonValue) + '\n');
  }
}

/** Discards everything; the default in tests and in the deterministic core. */
export const nopLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  with: () => nopLogger,
};
