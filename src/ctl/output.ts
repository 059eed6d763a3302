/**
 * Where etcdctl-ts writes, and how a command ends: CtlExit carries etcdctl's
 * exit code and the error it prints as "Error: <message>".
 */
export interface Output {
  out(text: string | Uint8Array): void;
  err(text: string): void;
}

/** etcdctl's exit codes (ctlv3/command/error.go). */
export const ExitCode = {
  success: 0,
  error: 1,
  badConnection: 2,
  invalidInput: 3,
  badFeature: 4,
  interrupted: 5,
  io: 6,
  badArgs: 128,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Ends the command: prints "Error: message" to stderr (unless silent) and exits with code. */
export class CtlExit extends Error {
  override readonly name = 'CtlExit';

  constructor(
    readonly code: number,
    message: string,
    readonly silent = false,
  ) {
    super(message);
  }
}

export function fail(code: number, message: string): never {
  throw new CtlExit(code, message);
}

/** An Output that collects everything (tests, and commands that print only on success). */
export class BufferOutput implements Output {
  private readonly outChunks: Buffer[] = [];
  private errText = '';

  out(text: string | Uint8Array): void {
    this.outChunks.push(typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text));
  }

  err(text: string): void {
    this.errText += text;
  }

  get stdout(): string {
    return Buffer.concat(this.outChunks).toString('utf8');
  }

  get stdoutBytes(): Buffer {
    return Buffer.concat(this.outChunks);
  }

  get stderr(): string {
    return this.errText;
  }
}
