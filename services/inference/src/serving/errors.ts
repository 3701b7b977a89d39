/**
 * Why an inference was refused, in the service's own terms; each edge maps it (HTTP status in oip/oip-errors.ts,
 * gRPC status code in grpc/, `errorCode` of an InferenceReply on the bus).
 */
export type InferErrorCode =
  'bad-input' | 'unauthenticated' | 'not-found' | 'too-large' | 'overloaded' | 'unavailable' | 'internal';

export class InferError extends Error {
  constructor(
    readonly code: InferErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'InferError';
  }
}

export const HTTP_STATUS: Record<InferErrorCode, number> = {
  'bad-input': 400,
  unauthenticated: 401,
  'not-found': 404,
  'too-large': 413,
  overloaded: 429,
  unavailable: 503,
  internal: 500,
};

/** The metric label / InferenceReply.errorCode of an error (what callers and dashboards read). */
export function reasonOf(error: unknown): InferErrorCode {
  return error instanceof InferError ? error.code : 'internal';
}
