import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { KAFKA_TOPICS } from '@edgefl/contracts';
import { TYPED_BUS, type KafkaTopicValues, type Subscription, type TypedBus } from '@edgefl/bus';
import { LOGGER, ReadinessRegistry } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { subscribeReplayed } from '../state/replayed-topic.js';
import { INSTANCE_ID } from '../tokens.js';
import { DeviceDirectory } from './device-directory.js';
import { SessionsService } from './sessions.service.js';

/**
 * Consumes the registry's device lifecycle (edgefl.device.lifecycle.v1): a revoked device, or tokens superseded by a
 * rotation, are refused from then on and their live sessions closed as soon as the event arrives.
 */
@Injectable()
export class LifecycleConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private subscription: Subscription | null = null;
  private caughtUp: (() => Promise<boolean>) | null = null;

  constructor(
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(INSTANCE_ID) private readonly instanceId: string,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly readiness: ReadinessRegistry,
    private readonly directory: DeviceDirectory,
    private readonly sessions: SessionsService,
    private readonly metrics: GatewayMetrics,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const replay = await subscribeReplayed({
      bus: this.bus,
      readiness: this.readiness,
      check: 'device-lifecycle',
      topic: KAFKA_TOPICS.deviceLifecycle.name,
      group: `gateway-lifecycle-${this.instanceId}`,
      handler: (record) => {
        const event = record.value;
        this.directory.apply(event);
        this.metrics.revocations.inc({ event: event.event });
        const closed = this.sessions.enforce(Date.now());
        if (closed > 0)
          this.logger.info(
            { deviceId: event.deviceId, event: event.event, closed },
            'device sessions closed',
          );
      },
    });
    this.subscription = replay.subscription;
    this.caughtUp = replay.caughtUp;
  }

  /** True once the revocations that existed at boot are known: until then no device is let in. */
  async ready(): Promise<boolean> {
    return this.caughtUp ? this.caughtUp() : false;
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.subscription?.close();
  }
}
