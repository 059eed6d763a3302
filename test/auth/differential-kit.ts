/**
 * What the auth differential tests share: one call to one server as one
 * caller, its answer as a line to compare with the other server's.
 */
import type { GrpcChannel } from '../../src/grpc/index.js';
import { etcdserverpb } from '../../src/pb/index.js';
import { methods, openChannel } from '../harness/index.js';

/** Runs call on a channel to endpoint carrying token (none if undefined): "label: " and what it returned, or its status and message. */
export async function answerLine(endpoint: string, token: string | undefined, label: string, call: (ch: GrpcChannel) => Promise<string>): Promise<string> {
  const ch = openChannel(endpoint, 2000, () => (token === undefined ? undefined : { token }));
  try {
    return `${label}: ${await call(ch)}`;
  } catch (e) {
    const err = e as { code?: number; details?: string };
    return `${label}: ${err.code ?? '?'} ${err.details ?? String(e)}`;
  } finally {
    ch.close();
  }
}

/** Turns auth on over ch and logs each of names in (password "pw"): their tokens by name. */
export async function enableAndLogIn(ch: GrpcChannel, names: readonly string[]): Promise<Record<string, string>> {
  const opts = { timeoutMs: 5000 };
  await ch.unary(methods.auth.AuthEnable, etcdserverpb.AuthEnableRequest.create({}), opts);
  const tokens: Record<string, string> = {};
  for (const name of names) tokens[name] = (await ch.unary(methods.auth.Authenticate, etcdserverpb.AuthenticateRequest.create({ name, password: 'pw' }), opts)).token;
  return tokens;
}
