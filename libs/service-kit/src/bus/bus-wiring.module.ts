import { Inject, Injectable, Module, type DynamicModule } from '@nestjs/common';
import { BusModule, EVENT_BUS, type EventBus } from '@edgefl/bus';
import type { Registry } from 'prom-client';
import type { BaseConfig } from '../config/service-config.js';
import { ReadinessRegistry } from '../health/readiness.js';
import { METRICS_REGISTRY, SERVICE_CONFIG } from '../tokens.js';

@Injectable()
class BusReadiness {
  constructor(@Inject(EVENT_BUS) bus: EventBus, readiness: ReadinessRegistry) {
    readiness.register('bus', () => bus.health());
  }
}

/**
 * The event bus chosen by config (EDGEFL_BUS), with the topic catalog ensured at boot, values encoded through the
 * schema registry of the mode, bus metrics on the service's registry, and the bus in readiness. `@OnEvent` handlers of
 * the service's modules subscribe at bootstrap and drain on shutdown (libs/bus).
 */
@Module({})
export class BusWiringModule {
  static forRoot(): DynamicModule {
    const bus = BusModule.forRootAsync({
      inject: [SERVICE_CONFIG, METRICS_REGISTRY],
      useFactory: (config: BaseConfig, metricsRegistry: Registry) => ({
        bus: config.bus,
        schemaRegistry:
          config.schemaRegistry.kind === 'embedded'
            ? { kind: 'embedded', path: config.schemaRegistry.path }
            : { kind: 'remote', url: config.schemaRegistry.url },
        topics: 'catalog',
        metricsRegistry,
      }),
    });
    return {
      module: BusWiringModule,
      imports: [bus],
      providers: [BusReadiness],
      exports: [bus],
    };
  }
}
