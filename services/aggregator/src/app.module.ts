import { Module, type DynamicModule } from '@nestjs/common';
import { OpenApiModule, ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { AggregatorConfig } from './config.js';
import { aggregatorOpenApi } from './openapi/openapi.js';

/** The aggregator: federated rounds, secure and robust aggregation, differential privacy. */
@Module({})
export class AggregatorAppModule {
  static forRoot(config: AggregatorConfig, logger: Logger): DynamicModule {
    return {
      module: AggregatorAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger, keys: true }),
        OpenApiModule.forRoot(aggregatorOpenApi),
      ],
    };
  }
}
