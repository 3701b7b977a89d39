import { Module, type OnApplicationShutdown, Inject } from '@nestjs/common';
import { SERVICE_CONFIG } from '@edgefl/service-kit';
import type { AggregatorConfig } from '../config.js';
import { RoundStore } from './round-store.js';
import { RoundsConsumer } from './rounds.consumer.js';
import { RoundsController } from './rounds.controller.js';
import { ROUND_STORE, RoundsService } from './rounds.service.js';

/** Rounds: the engine, its store, the REST API and the bus consumers. */
@Module({
  controllers: [RoundsController],
  providers: [
    {
      provide: ROUND_STORE,
      inject: [SERVICE_CONFIG],
      useFactory: (config: AggregatorConfig) => new RoundStore(config.own.storePath),
    },
    RoundsService,
    RoundsConsumer,
  ],
})
export class RoundsModule implements OnApplicationShutdown {
  constructor(@Inject(ROUND_STORE) private readonly store: RoundStore) {}

  onApplicationShutdown(): void {
    this.store.close();
  }
}
