/**
 * The peer protocol's paths and headers, and the admission check every
 * incoming request passes (cluster id, protocol version, recipient id, sender
 * not removed), as etcd's checkClusterCompatibilityFromHeader plus the
 * removed-member check of its stream handler.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import { idFromHex, idToHex } from '../base/index.js';
import {
  BadRequestError, ClusterIdMismatchError, IncompatibleVersionError, MemberRemovedError, RpcFailedError,
  ToMismatchError, UnknownMethodError, transportErrorCodes, type TransportError,
} from './errors.js';

/** Bumped on any incompatible change of paths, headers or framing. */
export const protocolVersion = '1';
/** Reported in x-server-version; informational only (the protocol version decides). */
export const serverVersion = '3.4.23';

export const paths = {
  streamMsgApp: '/raft/stream/msgapp',
  streamMessage: '/raft/stream/message',
  snapshot: '/raft/snapshot',
  rpcPrefix: '/raft/rpc/',
  db: '/raft/db',
} as const;

export const headers = {
  clusterId: 'x-etcd-cluster-id',
  from: 'x-server-from',
  to: 'x-raft-to',
  protocol: 'x-etcd-ts-protocol',
  version: 'x-server-version',
  frameCrc: 'x-etcd-ts-frame-crc',
  /** On a raw raft stream's request and answer: this end keeps the connection alive (liveness.ts) and expects the same. */
  streamKeepalive: 'x-etcd-ts-stream-keepalive',
  minIndex: 'x-etcd-ts-min-index',
  error: 'x-etcd-ts-error',
  errorCode: 'x-etcd-ts-error-code',
} as const;

export type StreamKind = 'msgapp' | 'message';

export function streamPath(kind: StreamKind): string {
  switch (kind) {
    case 'msgapp':
      return paths.streamMsgApp;
    case 'message':
      return paths.streamMessage;
  }
}

/** Headers that identify the sender on every request it makes. */
export function senderHeaders(clusterId: bigint, from: bigint, to: bigint | undefined): Record<string, string> {
  const h: Record<string, string> = {
    [headers.clusterId]: idToHex(clusterId),
    [headers.from]: idToHex(from),
    [headers.protocol]: protocolVersion,
    [headers.version]: serverVersion,
  };
  if (to !== undefined) h[headers.to] = idToHex(to);
  return h;
}

function headerString(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return typeof v === 'string' ? v : undefined;
}

export interface AdmissionContext {
  readonly localId: bigint;
  readonly clusterId: bigint;
  readonly raft: { isRemoved(id: bigint): boolean };
}

export type Admission =
  | { readonly ok: true; readonly from: bigint }
  | { readonly ok: false; readonly status: number; readonly error: TransportError };

/**
 * Checks an incoming request. `needTo` requires x-raft-to to name this member
 * (streams and snapshots); when present it must name this member anyway (an
 * rpc may be sent by URL before the id is known, and then carries none).
 */
export function admit(h: IncomingHttpHeaders, ctx: AdmissionContext, needTo: boolean): Admission {
  const protocol = headerString(h, headers.protocol);
  if (protocol !== protocolVersion) {
    const detail = `peer protocol ${protocol ?? '(none)'}, local ${protocolVersion}`;
    return { ok: false, status: 412, error: new IncompatibleVersionError(detail) };
  }
  const cid = headerString(h, headers.clusterId) ?? '';
  if (idFromHex(cid) !== ctx.clusterId) {
    const detail = `got ${cid === '' ? '(none)' : cid}, want ${idToHex(ctx.clusterId)}`;
    return { ok: false, status: 412, error: new ClusterIdMismatchError(detail) };
  }
  const from = idFromHex(headerString(h, headers.from) ?? '');
  if (from === undefined) return { ok: false, status: 400, error: new BadRequestError('missing or bad x-server-from') };
  if (needTo || h[headers.to] !== undefined) {
    const to = headerString(h, headers.to) ?? '';
    if (idFromHex(to) !== ctx.localId) {
      return { ok: false, status: 412, error: new ToMismatchError(`got ${to}, want ${idToHex(ctx.localId)}`) };
    }
  }
  if (ctx.raft.isRemoved(from)) return { ok: false, status: 410, error: new MemberRemovedError() };
  return { ok: true, from };
}

/** An error header value: one line, bounded, so a header can never be malformed or huge. */
export function errorHeaderValue(message: string): string {
  return message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 512);
}

/** Rebuilds a typed error from a refusal (status + x-etcd-ts-error headers). */
export function errorFromResponse(status: number, h: IncomingHttpHeaders, method?: string): TransportError {
  const message = headerString(h, headers.error) ?? `unexpected HTTP status ${status}`;
  const code = headerString(h, headers.errorCode);
  // The remote's message already carries its own prefix; strip it so it is not doubled.
  const detail = message.replace(/^[^:]*: /, '');
  switch (code) {
    case transportErrorCodes.clusterIdMismatch:
      return new ClusterIdMismatchError(detail);
    case transportErrorCodes.memberRemoved:
      return new MemberRemovedError();
    case transportErrorCodes.incompatibleVersion:
      return new IncompatibleVersionError(detail);
    case transportErrorCodes.toMismatch:
      return new ToMismatchError(detail);
    case transportErrorCodes.unknownMethod:
      return new UnknownMethodError(method ?? '');
    case transportErrorCodes.rpcFailed:
      return new RpcFailedError(message);
    case undefined:
    default:
      return new BadRequestError(`${message} (HTTP ${status})`);
  }
}
