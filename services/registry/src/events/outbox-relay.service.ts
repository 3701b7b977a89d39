import {
  Inject,
  Injectable,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { TYPED_BUS, type TypedBus } from '@edgefl/bus';
import type { KafkaTopicName } from '@edgefl/contracts';
import { LOGGER, METRICS_REGISTRY } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_STORE } from '../tokens.js';
import { decodeOutboxPayload, type TopicValues } from './outbox.js';

const POLL_MS = 250;

/**
 * Publishes the outbox on the bus in order, then marks each event published (at-least-once: a crash between the
 * two republishes, and consumers dedupe by event id). Without a bus (TYPED_BUS absent) events wait in the outbox.
 */
@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly published: Counter;
  private readonly failed: Counter;

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) metrics: Registry,
    @Optional() @Inject(TYPED_BUS) private readonly bus: TypedBus<TopicValues> | null = null,
  ) {
    this.published = new Counter({
      name: 'edgefl_registry_events_published_total',
      help: 'Registry events published on the bus from the outbox.',
      labelNames: ['topic'],
      registers: [metrics],
    });
    this.failed = new Counter({
      name: 'edgefl_registry_events_publish_failures_total',
      help: 'Failed attempts to publish outbox events (retried).',
      labelNames: ['topic'],
      registers: [metrics],
    });
  }

  get connected(): boolean {
    return this.bus !== null;
  }

  onApplicationBootstrap(): void {
    if (!this.bus) {
      this.logger.warn('no event bus: registry events stay in the outbox until one is configured');
      return;
    }
    this.timer = setInterval(() => this.kick(), POLL_MS);
    this.timer.unref();
    this.kick();
  }

  /** Publishes what is pending now (coalesces concurrent calls). */
  kick(): void {
    if (!this.bus || this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    // Kicked from inside a transaction (after enqueueing): drain outside it, so it reads only committed events.
    this.running = RegistryStore.outsideTransaction(() => this.drain())
      .catch((error: unknown) => this.logger.warn({ err: error }, 'outbox publish failed; will retry'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Resolves once everything pending at call time was attempted. */
  async flush(): Promise<void> {
    this.kick();
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    const bus = this.bus;
    if (!bus) return;
    for (;;) {
      const batch = await this.store.outbox.pendingEvents(100);
      if (batch.length === 0) return;
      for (const event of batch) {
        const topic = event.topic as KafkaTopicName;
        try {
          await bus.publish(topic, [
            {
              value: decodeOutboxPayload(event.payload) as never,
              key: event.key,
              eventId: event.eventId,
              tenant: event.tenantId,
            },
          ]);
          this.published.inc({ topic });
        } catch (error) {
          this.failed.inc({ topic });
          if ((error as Error).name === 'ContractError') {
            // a value the schema refuses never becomes publishable: log it and move on rather than block the outbox
            this.logger.error(
              { err: error, topic, eventId: event.eventId },
              'outbox event refused by its schema; dropped',
            );
          } else {
            throw error;
          }
        }
        await this.store.outbox.markPublished([event.id], Date.now());
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    if (this.bus) await this.flush().catch(() => undefined);
    this.stopped = true;
  }
}
