import { ProblemException } from '@edgefl/service-kit';

const TYPE = 'https://edgefl.dev/problems/';

/** Typed problem+json errors of the registry API (RFC 9457); `type` names the problem, `detail` says what. */
export const problem = {
  badRequest: (detail: string, extra: Record<string, unknown> = {}) =>
    new ProblemException({ type: `${TYPE}bad-request`, title: 'Bad Request', status: 400, detail, ...extra }),
  unauthorized: (detail: string) =>
    new ProblemException({ type: `${TYPE}unauthorized`, title: 'Unauthorized', status: 401, detail }),
  forbidden: (detail: string) =>
    new ProblemException({ type: `${TYPE}forbidden`, title: 'Forbidden', status: 403, detail }),
  notFound: (detail: string) =>
    new ProblemException({ type: `${TYPE}not-found`, title: 'Not Found', status: 404, detail }),
  conflict: (detail: string) =>
    new ProblemException({ type: `${TYPE}conflict`, title: 'Conflict', status: 409, detail }),
  gone: (detail: string) => new ProblemException({ type: `${TYPE}gone`, title: 'Gone', status: 410, detail }),
  tooLarge: (detail: string) =>
    new ProblemException({ type: `${TYPE}too-large`, title: 'Content Too Large', status: 413, detail }),
  unsupportedMediaType: (detail: string) =>
    new ProblemException({
      type: `${TYPE}unsupported-media-type`,
      title: 'Unsupported Media Type',
      status: 415,
      detail,
    }),
  rangeNotSatisfiable: (detail: string, size: number) =>
    new ProblemException({
      type: `${TYPE}range-not-satisfiable`,
      title: 'Range Not Satisfiable',
      status: 416,
      detail,
      size,
    }),
  unprocessable: (detail: string, errors?: Array<{ path: string; message: string }>) =>
    new ProblemException({
      type: `${TYPE}unprocessable`,
      title: 'Unprocessable Content',
      status: 422,
      detail,
      ...(errors ? { errors } : {}),
    }),
  tampered: (detail: string) =>
    new ProblemException({
      type: `${TYPE}artifact-tampered`,
      title: 'Internal Server Error',
      status: 500,
      detail,
    }),
};
