import { Module, type DynamicModule } from '@nestjs/common';
import { AdminAuthModule, OpenApiModule, ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { AggregatorConfig } from './config.js';
import { ADMIN_TOKEN_FILE, aggregatorOpenApi } from './openapi/openapi.js';
import { RoundsModule } from './rounds/rounds.module.js';

/** The aggregator: federated rounds, secure and robust aggregation, differential privacy. */
@Module({})
export class AggregatorAppModule {
  static forRoot(config: AggregatorConfig, logger: Logger): DynamicModule {
    return {
      module: AggregatorAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger, keys: true }),
        AdminAuthModule.forRoot({
          token: config.own.adminToken,
          dataDir: config.dataDir,
          tokenFile: ADMIN_TOKEN_FILE,
          envName: 'AGGREGATOR_ADMIN_TOKEN',
          realm: 'edgefl-aggregator-admin',
        }),
        OpenApiModule.forRoot(aggregatorOpenApi),
        RoundsModule,
      ],
    };
  }
}
