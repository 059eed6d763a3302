/**
 * Expected lease failures as typed errors. The `code` is stable and is what
 * callers switch on; the message is etcd's text, which clients match on
 * (features.md §1.10), so src/api can pass it through unchanged.
 */

export const leaseErrorCodes = {
  notFound: 'lease-not-found',
  exists: 'lease-exists',
  ttlTooLarge: 'lease-ttl-too-large',
  notPrimary: 'lease-not-primary',
  expired: 'lease-expired',
} as const;

export type LeaseErrorCode = (typeof leaseErrorCodes)[keyof typeof leaseErrorCodes];

export abstract class LeaseError extends Error {
  protected constructor(
    readonly code: LeaseErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** gRPC NotFound. Also what a grant with id 0 gets, as in etcd (the server picks ids before proposing). */
export class LeaseNotFoundError extends LeaseError {
  constructor() {
    super(leaseErrorCodes.notFound, 'etcdserver: requested lease not found');
  }
}

/** gRPC FailedPrecondition. */
export class LeaseExistsError extends LeaseError {
  constructor() {
    super(leaseErrorCodes.exists, 'etcdserver: lease already exists');
  }
}

/** gRPC OutOfRange. */
export class LeaseTtlTooLargeError extends LeaseError {
  constructor() {
    super(leaseErrorCodes.ttlTooLarge, 'etcdserver: too large lease TTL');
  }
}

/**
 * This member's lessor does not manage expiry (it is not the leader, or has
 * not been promoted yet). Never shown to a client: the server forwards the
 * keepalive or TimeToLive to the leader instead, as etcd does.
 */
export class LeaseNotPrimaryError extends LeaseError {
  constructor() {
    super(leaseErrorCodes.notPrimary, 'not a primary lessor');
  }
}

/**
 * The lease is past its expiry and its revocation is (or will be) proposed, so
 * it cannot be renewed. Never shown to a client: like etcd, the server waits
 * (Lessor.whenRevokedOrRetry) until the revocation applies (answer TTL 0) or
 * leadership moves (retry against the new leader).
 */
export class LeaseExpiredError extends LeaseError {
  constructor() {
    super(leaseErrorCodes.expired, 'lease expired, revocation pending');
  }
}
