import { Controller, Get } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { ReadinessRegistry } from './readiness.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly readiness: ReadinessRegistry,
  ) {}

  /** Liveness: the process answers. Never checks dependencies (a broker outage must not restart every pod). */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([
      () =>
        this.indicators
          .check('process')
          .up({ pid: process.pid, uptimeSeconds: Math.round(process.uptime()) }),
    ]);
  }

  /** Readiness: every registered dependency is connected, and the service is not draining. */
  @Get('ready')
  @HealthCheck()
  async ready() {
    const results = await this.readiness.run();
    return this.health.check([
      () => {
        const session = this.indicators.check('lifecycle');
        return this.readiness.draining ? session.down({ message: 'draining for shutdown' }) : session.up();
      },
      ...Object.entries(results).map(([name, result]) => (): HealthIndicatorResult => {
        const session = this.indicators.check(name);
        const detail = typeof result.detail === 'string' ? { message: result.detail } : (result.detail ?? {});
        return result.ready ? session.up(detail) : session.down(detail);
      }),
    ]);
  }
}
