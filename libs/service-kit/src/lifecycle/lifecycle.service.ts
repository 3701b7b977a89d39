import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Logger } from 'pino';
import type { BaseConfig } from '../config/service-config.js';
import { ReadinessRegistry } from '../health/readiness.js';
import { LOGGER, SERVICE_CONFIG } from '../tokens.js';

/**
 * The orderly drain (DESIGN.md §7). On SIGTERM/SIGINT Nest runs, in order: this service's
 * beforeApplicationShutdown (readiness goes down, so load balancers stop sending), the adapters' shutdown hooks
 * (the bus stops consuming, finishes in-flight handlers, commits offsets, closes), the HTTP server closes, and
 * finally this service logs the end. If the drain takes longer than SHUTDOWN_TIMEOUT_MS the process exits anyway.
 */
@Injectable()
export class LifecycleService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private forceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SERVICE_CONFIG) private readonly config: BaseConfig,
  ) {}

  beforeApplicationShutdown(signal?: string): void {
    this.readiness.markDraining();
    this.logger.info({ signal }, 'draining');
    if (signal) {
      this.forceTimer = setTimeout(() => {
        this.logger.error({ timeoutMs: this.config.shutdownTimeoutMs }, 'drain timed out, exiting');
        this.logger.flush();
        process.exit(1);
      }, this.config.shutdownTimeoutMs);
      this.forceTimer.unref();
    }
  }

  onApplicationShutdown(signal?: string): void {
    clearTimeout(this.forceTimer);
    this.logger.info({ signal }, 'stopped');
    this.logger.flush();
  }
}
