/**
 * A stored record whose checksum does not match its bytes: the file changed
 * under LMDB (a bit flip, a misdirected or torn write outside its commit
 * protocol). Nothing read from that record can be trusted; the member must
 * not serve it (the server refuses reads and repairs its backend from a peer).
 */
export class BackendCorruptError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: Uint8Array,
    detail: string,
  ) {
    super(`backend record corrupt: bucket ${JSON.stringify(bucket)}, key ${Buffer.from(key).toString('hex')}: ${detail}`);
    this.name = 'BackendCorruptError';
  }
}

export function isBackendCorrupt(e: unknown): e is BackendCorruptError {
  return e instanceof BackendCorruptError;
}
