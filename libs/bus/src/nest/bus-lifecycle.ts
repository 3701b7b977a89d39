import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { BusMetrics } from '../metrics.js';
import { BusError, type BusRecord, type EventBus, type Subscription } from '../port.js';
import { catalogTopics } from '../typed/contracts.js';
import type { TypedBus, UndecodableRecord } from '../typed/typed-bus.js';
import type { BusModuleOptions } from './bus-module-options.js';
import type { OnEventMetadata } from './on-event.decorator.js';
import {
  BUS_METRICS,
  BUS_MODULE_OPTIONS,
  EVENT_BUS,
  ON_EVENT_METADATA,
  OWNED_RESOURCES,
  TYPED_BUS,
  type OwnedResources,
} from './tokens.js';

type Handler = (record: unknown) => Promise<void> | void;

/** Creates topics at init, subscribes every @OnEvent method at bootstrap, drains and closes the bus at shutdown. */
@Injectable()
export class BusLifecycle implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BusModule');
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Inject(TYPED_BUS) private readonly typed: TypedBus<Record<string, unknown>> | null,
    @Inject(BUS_MODULE_OPTIONS) private readonly options: BusModuleOptions,
    @Inject(BUS_METRICS) private readonly metrics: BusMetrics | null,
    @Inject(OWNED_RESOURCES) private readonly owned: OwnedResources,
  ) {}

  async onModuleInit(): Promise<void> {
    const topics = this.options.topics === 'catalog' ? catalogTopics() : this.options.topics;
    if (topics && topics.length > 0) await this.bus.ensureTopics(topics);
  }

  /**
   * Subscribes every @OnEvent method at once: on Kafka the handlers of one group share one consumer, and
   * subscriptions made together join the group once instead of one rebalance per handler.
   */
  async onApplicationBootstrap(): Promise<void> {
    const subscribing = [...this.handlers()].map(async ({ instance, method, metadata }) => {
      const handler = (instance[method] as Handler).bind(instance);
      const { raw, batch, ...options } = { ...this.options.defaults, ...metadata.options };
      const topics = metadata.topics;
      let sub: Subscription;
      if (batch && this.typed && !raw)
        sub = await this.typed.subscribeBatch({
          ...options,
          topics,
          handler: handler as unknown as (
            records: unknown[],
            undecodable: UndecodableRecord[],
          ) => Promise<void>,
        });
      else if (batch)
        sub = await this.bus.subscribe({
          ...options,
          topics,
          batchHandler: handler as unknown as (records: BusRecord[]) => Promise<void>,
        });
      else if (this.typed && !raw) sub = await this.typed.subscribe({ ...options, topics, handler });
      else
        sub = await this.bus.subscribe({
          ...options,
          topics,
          handler: handler as (r: BusRecord) => Promise<void>,
        });
      this.subscriptions.push(sub);
      this.metrics?.trackLag(options.group, metadata.topics);
      this.logger.log(
        `${instance.constructor.name}.${method} consumes ${metadata.topics.join(', ')} as group ${options.group}`,
      );
    });
    const results = await Promise.allSettled(subscribing);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private *handlers(): Generator<{
    instance: Record<string, unknown>;
    method: string;
    metadata: OnEventMetadata;
  }> {
    const seen = new Set<unknown>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const instance: unknown = wrapper.instance;
      if (
        !instance ||
        typeof instance !== 'object' ||
        seen.has(instance) ||
        !wrapper.isDependencyTreeStatic()
      )
        continue;
      seen.add(instance);
      const record = instance as Record<string, unknown>;
      for (const method of this.scanner.getAllMethodNames(Object.getPrototypeOf(instance) as object)) {
        const fn = record[method];
        if (typeof fn !== 'function') continue;
        const metadata = this.reflector.get<OnEventMetadata | undefined>(ON_EVENT_METADATA, fn as () => void);
        if (!metadata) continue;
        if (!metadata.options?.group)
          throw new BusError(
            'invalid_subscription',
            `@OnEvent on ${instance.constructor.name}.${method} needs a group`,
          );
        yield { instance: record, method, metadata };
      }
    }
  }

  /** Stop consuming, finish in-flight handlers, commit, close (the orderly drain, docs/architecture.md). */
  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled(this.subscriptions.map((s) => s.close()));
    this.subscriptions.length = 0;
    await this.bus.close();
    await Promise.allSettled(this.owned.closers.map(async (close) => close()));
  }
}
