import {
  Global,
  Module,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
  type Provider,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import type { Logger } from 'pino';
import type { BaseConfig } from './config/service-config.js';
import { BusWiringModule } from './bus/bus-wiring.module.js';
import { KeysModule } from './keys/keys.module.js';
import { HealthController } from './health/health.controller.js';
import { ReadinessRegistry } from './health/readiness.js';
import { ProblemDetailsFilter } from './http/problem-details.filter.js';
import { LifecycleService } from './lifecycle/lifecycle.service.js';
import { HttpMetricsMiddleware } from './metrics/http-metrics.middleware.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { createMetricsRegistry } from './metrics/metrics.js';
import { CLOCK, systemClock, type Clock } from './clock.js';
import { LOGGER, METRICS_REGISTRY, SERVICE_CONFIG } from './tokens.js';

export interface ServiceKitOptions {
  config: BaseConfig;
  logger: Logger;
  /** Connect the event bus chosen by EDGEFL_BUS (default true: every service is on the bus). */
  bus?: boolean;
  /** Open the KeyProvider chosen by EDGEFL_KEYS (services that sign, verify or open sealed updates). */
  keys?: boolean;
  /** Further adapter modules (stores, brokers); they register readiness checks and drain on shutdown. */
  adapters?: DynamicModule[];
  /** What `CLOCK` gives (default the system clock; tests pass a fake one). */
  clock?: Clock;
}

/** What every service shares: config, logger, clock, metrics, health, problem+json errors, lifecycle. */
@Global()
@Module({})
export class ServiceKitModule implements NestModule {
  static forRoot(options: ServiceKitOptions): DynamicModule {
    const providers: Provider[] = [
      { provide: SERVICE_CONFIG, useValue: options.config },
      { provide: LOGGER, useValue: options.logger },
      { provide: CLOCK, useValue: options.clock ?? systemClock },
      { provide: METRICS_REGISTRY, useFactory: () => createMetricsRegistry(options.config.service) },
      { provide: APP_FILTER, useClass: ProblemDetailsFilter },
      ReadinessRegistry,
      LifecycleService,
    ];
    const adapters = [
      ...(options.bus === false ? [] : [BusWiringModule.forRoot()]),
      ...(options.keys ? [KeysModule.forRoot(options.config.keys)] : []),
      ...(options.adapters ?? []),
    ];
    return {
      module: ServiceKitModule,
      imports: [TerminusModule.forRoot({ logger: false }), ...adapters],
      controllers: [HealthController, MetricsController],
      providers,
      exports: [SERVICE_CONFIG, LOGGER, CLOCK, METRICS_REGISTRY, ReadinessRegistry, ...adapters],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('*path');
  }
}
