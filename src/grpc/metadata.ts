/**
 * Call metadata: HTTP/2 header fields that are not part of the gRPC protocol
 * itself. Keys are lower-case; keys ending in `-bin` carry base64 bytes.
 * Incoming metadata is read lazily from the header object Node already built,
 * so a call that never looks at it pays nothing.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { OutgoingMetadata } from './status.js';

/** Header fields that are protocol, never metadata (grpc-go's isReservedHeader). */
export function isReservedHeader(key: string): boolean {
  if (key.charCodeAt(0) === 0x3a) return key !== ':authority';
  switch (key) {
    case 'content-type':
    case 'grpc-message-type':
    case 'grpc-encoding':
    case 'grpc-accept-encoding':
    case 'grpc-message':
    case 'grpc-status':
    case 'grpc-timeout':
    case 'grpc-status-details-bin':
    case 'te':
      return true;
    default:
      return false;
  }
}

function decodeBin(value: string): Buffer {
  // Both padded and unpadded base64 are legal on the wire; Node accepts either.
  return Buffer.from(value, 'base64');
}

export class Metadata {
  constructor(private readonly headers: IncomingHttpHeaders) {}

  /** The first value of a text key. */
  get(key: string): string | undefined {
    const v = this.headers[key];
    if (v === undefined) return undefined;
    return typeof v === 'string' ? v : v[0];
  }

  /** All values of a text key, in the order they came. */
  getAll(key: string): string[] {
    const v = this.headers[key];
    if (v === undefined) return [];
    return typeof v === 'string' ? [v] : [...v];
  }

  /** A `-bin` key, base64-decoded. */
  getBinary(key: string): Buffer | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : decodeBin(v);
  }

  /** Every metadata entry; `-bin` values decoded to bytes. */
  toObject(): Record<string, string | Buffer> {
    const out: Record<string, string | Buffer> = {};
    for (const key of Object.keys(this.headers)) {
      if (isReservedHeader(key)) continue;
      const v = this.get(key);
      if (v === undefined) continue;
      out[key] = key.endsWith('-bin') ? decodeBin(v) : v;
    }
    return out;
  }
}

/** Copies outgoing metadata into a header object; `-bin` byte values are base64-encoded. */
export function addMetadataHeaders(target: OutgoingHttpHeaders, md: OutgoingMetadata | undefined): void {
  if (md === undefined) return;
  for (const key of Object.keys(md)) {
    const v = md[key];
    if (v === undefined) continue;
    const k = key.toLowerCase();
    if (k.charCodeAt(0) === 0x3a || isReservedHeader(k)) continue;
    if (v instanceof Uint8Array) target[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    else if (typeof v === 'string') target[k] = v;
    else target[k] = [...v];
  }
}
