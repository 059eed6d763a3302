/**
 * Generic peer RPC: POST /raft/rpc/<method> with the request bytes as body,
 * answered 200 with the response bytes, or an error status carrying
 * x-etcd-ts-error(-code). Also the standalone helper a joining member uses to
 * ask any member for the cluster before it has an id or a cluster id.
 */
import * as http2 from 'node:http2';
import { idFromHex } from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';
import { systemTimers, type Timers } from './backoff.js';
import { BadRequestError, FrameTooLargeError, PeerUnreachableError, TimeoutError, TransportError } from './errors.js';
import { defaultTuning } from './options.js';
import { errorFromResponse, headers, paths, protocolVersion, senderHeaders, serverVersion } from './protocol.js';
import { connectSession, destroySoon, statusOf } from './session.js';
import type { PeerTlsOptions } from './tls.js';

/** The rpc a joining member calls; its handler answers etcdserverpb.MemberListResponse bytes. */
export const membersRpcMethod = 'members';

const methodPattern = /^[A-Za-z0-9_.-]{1,64}$/;

export function isRpcMethodName(method: string): boolean {
  return methodPattern.test(method);
}

export function rpcPath(method: string): string {
  if (!isRpcMethodName(method)) throw new BadRequestError(`bad peer rpc method name ${JSON.stringify(method)}`);
  return paths.rpcPrefix + method;
}

export interface PostResult {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Uint8Array;
}

/** One POST on an open session; the response body is bounded by bytesMax. */
export function post(
  session: http2.ClientHttp2Session,
  path: string,
  reqHeaders: Readonly<Record<string, string>>,
  body: Uint8Array,
  timeoutMs: number,
  bytesMax: number,
  timers: Timers,
): Promise<PostResult> {
  return new Promise<PostResult>((resolve, reject) => {
    let done = false;
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    const req = session.request({ ':method': 'POST', ':path': path, ...reqHeaders, 'content-length': String(body.length) });
    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      if (err === undefined) {
        resolve({ status, headers: resHeaders, body: Buffer.concat(chunks) });
        return;
      }
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      reject(err);
    };
    const timer = timers.setTimeout(() => finish(new TimeoutError(`peer request ${path} timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('response', (h) => {
      status = statusOf(h);
      resHeaders = h;
    });
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > bytesMax) finish(new FrameTooLargeError(size, bytesMax));
      else chunks.push(c);
    });
    req.on('end', () => finish(undefined));
    req.on('error', (e: Error) => finish(new PeerUnreachableError(`peer request ${path}: ${e.message}`)));
    req.on('close', () => finish(new PeerUnreachableError(`peer request ${path}: stream closed`)));
    req.end(body);
  });
}

/** Maps a non-200 answer to its typed error; returns the body of a 200. */
export function rpcResult(res: PostResult, method: string): Uint8Array {
  if (res.status === 200) return res.body;
  throw errorFromResponse(res.status, res.headers, method);
}

export interface PeerAnswer {
  readonly url: string;
  readonly clusterId: bigint;
  readonly body: Uint8Array;
}

/** Who calls, for an rpc that is not anonymous: the cluster and the member id the call is admitted as. */
export interface RpcSender {
  readonly clusterId: bigint;
  readonly from: bigint;
}

/**
 * Calls an rpc on the first of `urls` that answers; each URL gets
 * `timeoutMs`. Anonymous unless `sender` is given. The answering member's
 * cluster id comes from its response header. Throws PeerUnreachableError
 * naming the last failure when none does.
 */
export async function callPeerUrls(
  urls: readonly string[],
  method: string,
  body: Uint8Array,
  timeoutMs: number,
  tls?: PeerTlsOptions,
  sender?: RpcSender,
): Promise<PeerAnswer> {
  const path = rpcPath(method);
  let last = 'no URLs given';
  for (const url of urls) {
    let sessionError: string | undefined;
    let session: http2.ClientHttp2Session | undefined;
    try {
      session = connectSession(url, defaultTuning, tls);
      session.on('error', (e: Error) => {
        sessionError = e.message;
      });
      const h = sender === undefined
        ? { [headers.protocol]: protocolVersion, [headers.version]: serverVersion }
        : senderHeaders(sender.clusterId, sender.from, undefined);
      const res = await post(session, path, h, body, timeoutMs, defaultTuning.rpcBytesMax, systemTimers);
      const out = rpcResult(res, method);
      const cid = res.headers[headers.clusterId];
      const clusterId = typeof cid === 'string' ? idFromHex(cid) : undefined;
      if (clusterId === undefined) throw new BadRequestError(`${url}: answer without a cluster id`);
      return { url, clusterId, body: out };
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      last = `${url}: ${sessionError ?? e.message}`;
    } finally {
      if (session !== undefined) void destroySoon(session);
    }
  }
  throw new PeerUnreachableError(method === membersRpcMethod ? `could not retrieve cluster information from the given URLs (${last})` : `no peer answered ${method} (${last})`);
}

export interface ClusterInfo {
  readonly clusterId: bigint;
  readonly members: etcdserverpb.Member[];
}

/**
 * What a joining member (--initial-cluster-state=existing) learns from the
 * cluster, as etcd's GetClusterFromRemotePeers: the cluster id and members,
 * from the first peer URL that answers the 'members' rpc.
 */
export async function fetchClusterFromPeers(
  urls: readonly string[],
  timeoutMs: number,
  tls?: PeerTlsOptions,
): Promise<ClusterInfo> {
  const answer = await callPeerUrls(urls, membersRpcMethod, new Uint8Array(0), timeoutMs, tls);
  return { clusterId: answer.clusterId, members: etcdserverpb.MemberListResponse.decode(answer.body).members };
}
