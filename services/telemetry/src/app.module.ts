import { Module, type DynamicModule } from '@nestjs/common';
import { OpenApiModule, ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { TelemetryConfig } from './config.js';
import { telemetryOpenApi } from './openapi/openapi.js';

/** The telemetry: SLIs, drift and rollout gates from device telemetry. */
@Module({})
export class TelemetryAppModule {
  static forRoot(config: TelemetryConfig, logger: Logger): DynamicModule {
    return {
      module: TelemetryAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger }),
        OpenApiModule.forRoot(telemetryOpenApi),
      ],
    };
  }
}
