import { Catch, Inject, type ArgumentsHost } from '@nestjs/common';
import { LOGGER, ProblemDetailsFilter, ProblemException, problemTypeOfStatus } from '@edgefl/service-kit';
import type { Response } from 'express';
import type { Logger } from 'pino';
import { HTTP_STATUS, InferError } from '../serving/errors.js';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * Errors of the Open Inference Protocol routes: the kit's RFC 9457 problem (application/problem+json) with the
 * protocol's own error member added, `{ "error": "<message>" }`, so Triton and KServe clients read the message
 * unchanged. An InferError takes the status of its code (400, 401, 404, 413, 429, 503, 500).
 */
@Catch()
export class OipErrorFilter extends ProblemDetailsFilter {
  constructor(@Inject(LOGGER) logger: Logger) {
    super(logger);
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    let error = exception;
    if (exception instanceof InferError) {
      const status = HTTP_STATUS[exception.code];
      error = new ProblemException({
        type: problemTypeOfStatus(status),
        title: TITLES[status] ?? 'Error',
        status,
        detail: exception.message,
        reason: exception.code,
      });
      if (exception.code === 'overloaded') res.setHeader('Retry-After', '1');
      if (exception.code === 'unauthenticated')
        res.setHeader('WWW-Authenticate', 'Bearer realm="edgefl-inference"');
    }
    const send = res.send.bind(res);
    res.send = ((body: unknown) => {
      if (typeof body !== 'string') return send(body);
      const problem = JSON.parse(body) as { detail?: string; title?: string };
      return send(JSON.stringify({ ...problem, error: problem.detail ?? problem.title ?? 'error' }));
    }) as Response['send'];
    super.catch(error, host);
  }
}
