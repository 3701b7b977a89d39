import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { CLOCK, LOGGER, METRICS_REGISTRY, type Clock } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { TelemetryConfig } from '../config.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';
import type { TelemetryStore } from './telemetry-store.js';

/**
 * Retention: at boot and every TELEMETRY_MAINTENANCE_INTERVAL_MS, drops 1-minute rollups older than
 * TELEMETRY_RETENTION_MINUTE_MS, 1-hour rollups, OTAs and alerts older than TELEMETRY_RETENTION_HOUR_MS and inbox
 * marks older than TELEMETRY_INBOX_RETENTION_MS, so the store stays bounded too.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly pruned: Counter<'kind'>;

  constructor(
    @Inject(TELEMETRY_STORE) private readonly store: TelemetryStore,
    @Inject(TELEMETRY_CONFIG) private readonly config: TelemetryConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.pruned = new Counter({
      name: 'edgefl_telemetry_pruned_rows_total',
      help: 'Rows dropped past their retention, by kind (rollups, inbox, ota, alerts).',
      labelNames: ['kind'],
      registers: [registry],
    });
  }

  onApplicationBootstrap(): void {
    void this.prune();
    this.timer = setInterval(() => void this.prune(), this.config.own.retention.intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  prune(): Promise<void> {
    if (this.running) return this.running;
    const run = this.store
      .prune(this.clock.now(), this.config.own.retention)
      .then((counts) => {
        for (const [kind, n] of Object.entries(counts)) if (n > 0) this.pruned.inc({ kind }, n);
      })
      .catch((error: unknown) => this.logger.error({ err: error }, 'retention pruning failed; retried later'))
      .finally(() => {
        this.running = null;
      });
    this.running = run;
    return run;
  }
}
