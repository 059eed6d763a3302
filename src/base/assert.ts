/**
 * Assertions detect programmer errors. They stay on in production: the only
 * correct way to handle a broken invariant is to crash before it reaches disk
 * or the wire. Expected failures (bad input, a lost leader) are typed errors,
 * never assertions.
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: boolean, message?: string): asserts condition {
  if (!condition) {
    throw new AssertionError(message ?? 'assertion failed');
  }
}

/** Marks a branch that must never run; the argument proves exhaustiveness to the compiler. */
export function unreachable(value: never, message?: string): never {
  throw new AssertionError(message ?? `unreachable: ${String(value)}`);
}

/**
 * The dual of assert: documents that a condition is sometimes true and sometimes
 * false, and that both are expected. It does nothing at run time.
 */
export function maybe(_condition: boolean): void {
  // Documentation only.
}

/** Asserts that n is a safe (exactly representable) integer, optionally >= min. */
export function assertSafeInteger(n: number, what: string, min = Number.MIN_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(n) || n < min) {
    throw new AssertionError(`${what}: not a safe integer >= ${min}: ${n}`);
  }
}
