import {
  Catch,
  HttpException,
  HttpStatus,
  Inject,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { DomainError } from '../errors/domain-errors.js';
import { LOGGER } from '../tokens.js';
import { problemOf, problemTypeOfStatus } from './problems.js';

/**
 * RFC 9457 problem details, the error format of every HTTP API of ours. The one exception filter of every service:
 * domain errors (errors/domain-errors.ts) by their kind, HTTP exceptions by their status, anything else as 500.
 */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Thrown by controllers that want a specific problem type and extension members. */
export class ProblemException extends HttpException {
  constructor(readonly problem: ProblemDetails) {
    super(problem, problem.status);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function toProblem(exception: unknown): ProblemDetails {
  if (exception instanceof DomainError) return problemOf(exception);
  if (exception instanceof ProblemException) return exception.problem;
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const body = exception.getResponse();
    const message =
      typeof body === 'string'
        ? body
        : Array.isArray((body as { message?: unknown }).message)
          ? (body as { message: string[] }).message.join('; ')
          : String((body as { message?: unknown }).message ?? exception.message);
    // terminus answers 503 with the check results as the body: keep them as an extension member
    const extra = typeof body === 'object' && body !== null && 'info' in body ? { checks: body } : {};
    return {
      type: problemTypeOfStatus(status),
      title: TITLES[status] ?? 'Error',
      status,
      detail: message,
      ...extra,
    };
  }
  // body-parser and similar errors carry an HTTP status of their own (413 too large, 400 bad JSON)
  const status =
    (exception as { status?: unknown; statusCode?: unknown })?.status ??
    (exception as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // body-parser's refusals join our problem family (one `type` per kind), not about:blank
    return {
      type: problemTypeOfStatus(status),
      title: TITLES[status] ?? 'Bad Request',
      status,
      detail: (exception as Error).message,
    };
  }
  return {
    type: 'about:blank',
    title: TITLES[500]!,
    status: HttpStatus.INTERNAL_SERVER_ERROR,
    detail: 'internal error',
  };
}

@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const res = http.getResponse<Response>();
    const req = http.getRequest<Request>();
    const problem = { ...toProblem(exception), instance: req.originalUrl };
    if (
      problem.status >= 500 &&
      !(exception instanceof HttpException) &&
      !(exception instanceof DomainError)
    ) {
      this.logger.error({ err: exception, method: req.method, route: req.originalUrl }, 'unhandled error');
    }
    if (res.headersSent) return;
    res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  }
}
