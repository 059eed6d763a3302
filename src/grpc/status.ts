/**
 * gRPC status codes, the error that carries one, and the translations the wire
 * needs: grpc-message percent-encoding, HTTP/2 RST_STREAM codes to status, and
 * HTTP statuses to status for a peer that does not speak gRPC. Texts follow
 * grpc-go (1.26, the version etcd 3.4 ships) because etcd's clients print them.
 */
import { constants as h2 } from 'node:http2';

/** The 17 canonical codes (google.rpc.Code). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const codeNames: readonly string[] = Object.keys(GrpcStatus);

const goNames: readonly string[] = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

/** The code's name as grpc-go prints it in `rpc error: code = X`, e.g. "Unavailable". */
export function statusName(code: number): string {
  return goNames[code] ?? `Code(${code})`;
}

/** A status as grpc-go's error prints it: "rpc error: code = <Name> desc = <details>". */
export function grpcErrorText(code: number, details: string): string {
  return `rpc error: code = ${statusName(code)} desc = ${details}`;
}

export function isGrpcStatusCode(n: number): n is GrpcStatusCode {
  return Number.isInteger(n) && n >= 0 && n < codeNames.length;
}

/** Outgoing metadata values: strings, or bytes for keys ending in `-bin`. */
export type OutgoingMetadata = Readonly<Record<string, string | Uint8Array | readonly string[]>>;

/**
 * A call that ended with a status other than OK. `code` is the numeric gRPC
 * code (stable, what callers switch on); `details` is the grpc-message text.
 */
export class GrpcError extends Error {
  override readonly name = 'GrpcError';
  readonly code: GrpcStatusCode;
  readonly details: string;
  /** Extra trailers the server sends with the status (server side), or received ones (client side). */
  readonly trailers: OutgoingMetadata | undefined;

  constructor(code: GrpcStatusCode, details: string, trailers?: OutgoingMetadata, options?: ErrorOptions) {
    super(details, options);
    this.code = code;
    this.details = details;
    this.trailers = trailers;
  }
}

/** Thrown errors become statuses here: a GrpcError keeps its code, anything else is UNKNOWN. */
export function toGrpcError(err: unknown): GrpcError {
  if (err instanceof GrpcError) return err;
  if (err instanceof Error) return new GrpcError(GrpcStatus.UNKNOWN, err.message, undefined, { cause: err });
  return new GrpcError(GrpcStatus.UNKNOWN, String(err));
}

/** The message a deadline produces, as Go's context package words it. */
export const deadlineExceededMessage = 'context deadline exceeded';
/** The message a cancellation produces, as Go's context package words it. */
export const cancelledMessage = 'context canceled';

// ---- grpc-message percent-encoding (PROTOCOL-HTTP2.md: printable ASCII except '%' pass through) ----

function needsEncoding(c: number): boolean {
  return c < 0x20 || c > 0x7e || c === 0x25;
}

export function encodeGrpcMessage(message: string): string {
  let clean = true;
  for (let i = 0; i < message.length; i++) {
    if (needsEncoding(message.charCodeAt(i))) {
      clean = false;
      break;
    }
  }
  if (clean) return message;
  const bytes = Buffer.from(message, 'utf8');
  let out = '';
  for (const b of bytes) {
    out += needsEncoding(b) ? '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase() : String.fromCharCode(b);
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/** Inverse of encodeGrpcMessage; a malformed escape is kept literally, as grpc-go does. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  const out: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length) {
      const hi = hexValue(value.charCodeAt(i + 1));
      const lo = hexValue(value.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out.push(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    // Header values are ISO-8859-1 on the wire; keep each code unit as a byte.
    out.push(c & 0xff);
  }
  return Buffer.from(out).toString('utf8');
}

// ---- HTTP/2 error codes ----

const rstNames: readonly string[] = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
];

/** The HTTP/2 error code's name as Go's http2.ErrCode prints it. */
export function http2ErrorName(code: number): string {
  return rstNames[code] ?? `unknown error code 0x${code.toString(16)}`;
}

/** grpc-go's http2ErrConvTab: the status a client reports for a stream reset with this code. */
export function statusFromRstCode(code: number): GrpcStatusCode {
  switch (code) {
    case h2.NGHTTP2_FLOW_CONTROL_ERROR:
    case h2.NGHTTP2_ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case h2.NGHTTP2_REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case h2.NGHTTP2_CANCEL:
      return GrpcStatus.CANCELLED;
    case h2.NGHTTP2_INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      return code < rstNames.length ? GrpcStatus.INTERNAL : GrpcStatus.UNKNOWN;
  }
}

/** grpc-go's HTTPStatusConvTab, for a response that is not gRPC. */
export function statusFromHttpStatus(httpStatus: number): GrpcStatusCode {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}
