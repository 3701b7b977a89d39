import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { Registry } from 'prom-client';
import { METRICS_REGISTRY } from '../tokens.js';
import { createHttpMetrics, type HttpMetrics } from './metrics.js';

/** Counts and times every HTTP request, labelled by the route pattern (not the raw URL: bounded cardinality). */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  private readonly metrics: HttpMetrics;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    this.metrics = createHttpMetrics(registry);
  }

  use(req: Request, res: Response, next: NextFunction): void {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const routePath = (req.route as { path?: string } | undefined)?.path;
      const route = routePath ? `${req.baseUrl}${routePath}` : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      this.metrics.duration.observe({ method: req.method, route }, seconds);
    });
    next();
  }
}
