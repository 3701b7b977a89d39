/**
 * The errors a service's domain code throws: what went wrong in the service's own terms, with no HTTP type. The
 * kit's exception filter turns them into problem+json at the HTTP edge (http/problems.ts); a bus consumer turns a
 * caller's fault into a dead letter (no retry can fix it) and lets a service fault be retried.
 */
export type DomainErrorKind =
  | 'bad-request'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'gone'
  | 'too-large'
  | 'unsupported-media-type'
  | 'range-not-satisfiable'
  | 'unprocessable'
  | 'artifact-tampered';

export abstract class DomainError extends Error {
  abstract readonly kind: DomainErrorKind;
  /** Whose fault it is: the caller's input (the same input always fails) or the service's own state. */
  readonly fault: 'caller' | 'service' = 'caller';

  constructor(
    message: string,
    /** Facts a client can act on (RFC 9457 extension members), e.g. `{ size }` or `{ errors }`. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request is malformed (not the shape the operation reads at all). */
export class BadRequestError extends DomainError {
  readonly kind = 'bad-request';
}
/** No or wrong credentials. */
export class UnauthorizedError extends DomainError {
  readonly kind = 'unauthorized';
}
/** Credentials valid, but not for this. */
export class ForbiddenError extends DomainError {
  readonly kind = 'forbidden';
}
export class NotFoundError extends DomainError {
  readonly kind = 'not-found';
}
/** The operation clashes with the current state (exists already, moved meanwhile, not allowed from this state). */
export class ConflictError extends DomainError {
  readonly kind = 'conflict';
}
/** It existed and is withdrawn for good. */
export class GoneError extends DomainError {
  readonly kind = 'gone';
}
export class TooLargeError extends DomainError {
  readonly kind = 'too-large';
}
export class UnsupportedMediaTypeError extends DomainError {
  readonly kind = 'unsupported-media-type';
}
/** A byte range outside the resource; `details.size` is its size. */
export class RangeNotSatisfiableError extends DomainError {
  readonly kind = 'range-not-satisfiable';
}
/** Well-formed, but breaks the rules (a bad spec, a lower version, invalid SLIs); `details.errors` may list them. */
export class UnprocessableError extends DomainError {
  readonly kind = 'unprocessable';
}
/** Stored data failed its integrity check: the service's fault, never the caller's. */
export class TamperedError extends DomainError {
  readonly kind = 'artifact-tampered';
  override readonly fault = 'service';
}
