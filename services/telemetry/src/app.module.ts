import { Module, type DynamicModule } from '@nestjs/common';
import { AdminAuthModule, OpenApiModule, ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { TelemetryConfig } from './config.js';
import { TelemetryHttpModule } from './http/telemetry-http.module.js';
import { ADMIN_TOKEN_FILE, telemetryOpenApi } from './openapi/openapi.js';
import { StorageModule } from './storage/storage.module.js';

/** The telemetry: fleet SLIs, rollout health, drift and SLO alerts from device, inference, OTA and round events. */
@Module({})
export class TelemetryAppModule {
  static forRoot(config: TelemetryConfig, logger: Logger): DynamicModule {
    return {
      module: TelemetryAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger }),
        StorageModule.forRoot(config),
        AdminAuthModule.forRoot({
          token: config.own.adminToken,
          dataDir: config.dataDir,
          tokenFile: ADMIN_TOKEN_FILE,
          envName: 'TELEMETRY_ADMIN_TOKEN',
          realm: 'edgefl-telemetry',
        }),
        OpenApiModule.forRoot(telemetryOpenApi),
        TelemetryHttpModule,
      ],
    };
  }
}
