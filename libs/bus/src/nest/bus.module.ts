import {
  Logger,
  Module,
  type DynamicModule,
  type FactoryProvider,
  type ModuleMetadata,
  type Provider,
} from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { createBus } from '../config.js';
import { catalogKeyOf, contractsCodec, createSchemaRegistry } from '../typed/contracts.js';
import { createBusMetrics, type BusMetrics } from '../metrics.js';
import type { BusLogger } from '../kafka/kafka-logging.js';
import type { EventBus } from '../port.js';
import {
  codecDeadLetterEncoder,
  TypedBus,
  type DeadLetterValue,
  type ValueCodec,
} from '../typed/typed-bus.js';
import type { AnyValueCodec, BusModuleOptions } from './bus-module-options.js';
import { BusLifecycle } from './bus-lifecycle.js';
import {
  BUS_METRICS,
  BUS_MODULE_OPTIONS,
  EVENT_BUS,
  OWNED_RESOURCES,
  TYPED_BUS,
  type OwnedResources,
} from './tokens.js';

const CODEC = Symbol.for('edgefl.bus.codec');

/** The bus's (and kafkajs's) log lines through Nest's logger, i.e. the service's JSON logger. */
function nestBusLogger(context: string): BusLogger {
  const nest = new Logger(context);
  return {
    error: (msg, fields) => nest.error({ msg, ...fields }),
    warn: (msg, fields) => nest.warn({ msg, ...fields }),
    info: (msg, fields) => nest.log({ msg, ...fields }),
    debug: (msg, fields) => nest.debug({ msg, ...fields }),
  };
}

export interface BusModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => BusModuleOptions | Promise<BusModuleOptions>;
}

const providers: Provider[] = [
  {
    provide: OWNED_RESOURCES,
    useFactory: (): OwnedResources => ({ closers: [] }),
  },
  {
    provide: CODEC,
    inject: [BUS_MODULE_OPTIONS, OWNED_RESOURCES],
    useFactory: async (o: BusModuleOptions, owned: OwnedResources): Promise<AnyValueCodec | null> => {
      if (o.codec !== undefined) return typeof o.codec === 'function' ? await o.codec(o.bus) : o.codec;
      if (o.schemaRegistry) {
        const registry = createSchemaRegistry(o.schemaRegistry, o.bus);
        owned.closers.push(() => registry.close());
        return contractsCodec(registry) as unknown as AnyValueCodec;
      }
      return null;
    },
  },
  {
    provide: BUS_METRICS,
    inject: [BUS_MODULE_OPTIONS],
    useFactory: (o: BusModuleOptions): BusMetrics | null =>
      o.metricsRegistry ? createBusMetrics(o.metricsRegistry) : null,
  },
  {
    provide: EVENT_BUS,
    inject: [BUS_MODULE_OPTIONS, CODEC, BUS_METRICS],
    useFactory: async (
      o: BusModuleOptions,
      codec: AnyValueCodec | null,
      metrics: BusMetrics | null,
    ): Promise<EventBus> => {
      const bus = await createBus({
        ...o.bus,
        ...(o.bus.adapter === 'kafka' && !o.bus.logger ? { logger: nestBusLogger('kafkajs') } : {}),
        ...(metrics ? { observer: metrics.observer } : {}),
        ...(codec
          ? {
              deadLetterEncoder: codecDeadLetterEncoder(
                codec as unknown as ValueCodec<Record<string, DeadLetterValue>>,
              ),
            }
          : {}),
      });
      metrics?.attach(bus);
      return bus;
    },
  },
  {
    provide: TYPED_BUS,
    inject: [EVENT_BUS, CODEC, BUS_MODULE_OPTIONS],
    useFactory: (bus: EventBus, codec: AnyValueCodec | null, o: BusModuleOptions) =>
      codec
        ? new TypedBus(bus, codec, {
            keyOf: o.keyOf ?? (o.schemaRegistry && !o.codec ? catalogKeyOf : () => null),
          })
        : null,
  },
  BusLifecycle,
];
const exported = [EVENT_BUS, TYPED_BUS, BUS_METRICS];

/**
 * The bus for a NestJS application: the adapter chosen by config, @OnEvent consumers discovered at bootstrap and
 * drained on shutdown, Prometheus metrics. Inject `EVENT_BUS` (EventBus) or `TYPED_BUS` (TypedBus).
 */
@Module({})
export class BusModule {
  static forRoot(options: BusModuleOptions): DynamicModule {
    return {
      module: BusModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [{ provide: BUS_MODULE_OPTIONS, useValue: options }, ...providers],
      exports: exported,
    };
  }

  static forRootAsync(options: BusModuleAsyncOptions): DynamicModule {
    return {
      module: BusModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        { provide: BUS_MODULE_OPTIONS, inject: options.inject ?? [], useFactory: options.useFactory },
        ...providers,
      ],
      exports: exported,
    };
  }
}
