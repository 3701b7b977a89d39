import type { DomainError, DomainErrorKind } from '../errors/domain-errors.js';
import type { ProblemDetails } from './problem-details.filter.js';

/** Base of the `type` URI of every problem of ours; the kind names the problem. */
export const PROBLEM_TYPE_BASE = 'https://edgefl.dev/problems/';

const HTTP: Record<DomainErrorKind, { status: number; title: string }> = {
  'bad-request': { status: 400, title: 'Bad Request' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  'not-found': { status: 404, title: 'Not Found' },
  conflict: { status: 409, title: 'Conflict' },
  gone: { status: 410, title: 'Gone' },
  'too-large': { status: 413, title: 'Content Too Large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported Media Type' },
  'range-not-satisfiable': { status: 416, title: 'Range Not Satisfiable' },
  unprocessable: { status: 422, title: 'Unprocessable Content' },
  'artifact-tampered': { status: 500, title: 'Internal Server Error' },
};

/**
 * The `type` of a problem that is not a domain error (a Nest HTTP exception, a body-parser refusal) by its status:
 * the same family as ours where a kind has that status (400 → …/bad-request), else `about:blank` (RFC 9457 §4.2.1).
 */
export function problemTypeOfStatus(status: number): string {
  const kind = (Object.keys(HTTP) as DomainErrorKind[]).find(
    (k) => HTTP[k].status === status && k !== 'artifact-tampered',
  );
  return kind === undefined ? 'about:blank' : `${PROBLEM_TYPE_BASE}${kind}`;
}

/** The HTTP status a kind of domain error answers with. */
export const statusOf = (kind: DomainErrorKind): number => HTTP[kind].status;

/** RFC 9457 problem details of a domain error: `type` from its kind, `detail` its message, details as members. */
export function problemOf(error: DomainError): ProblemDetails {
  const { status, title } = HTTP[error.kind];
  return {
    type: `${PROBLEM_TYPE_BASE}${error.kind}`,
    title,
    status,
    detail: error.message,
    ...error.details,
  };
}
