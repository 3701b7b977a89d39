import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { RegistryConfig } from '../config.js';
import { REGISTRY_CONFIG } from '../tokens.js';
import { RolloutEngine } from './rollout-engine.service.js';

/**
 * Drives rollout timers: every REGISTRY_ROLLOUT_TICK_MS it times out silent devices and re-evaluates the gates of
 * every rolling-out release. The timers themselves are data (stage start, device deadlines) in the store, so the
 * first tick after a restart picks up exactly where the previous process stopped.
 */
@Injectable()
export class RolloutScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(
    private readonly rollouts: RolloutEngine,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), this.config.own.rollout.tickMs);
    this.timer.unref();
    void this.tick();
  }

  tick(): Promise<void> {
    this.running ??= this.rollouts
      .tick()
      .catch((error: unknown) => this.logger.error({ err: error }, 'rollout tick failed'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
