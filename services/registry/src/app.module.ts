import { Module, type DynamicModule } from '@nestjs/common';
import { AdminAuthModule, OpenApiModule, ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { RegistryConfig } from './config.js';
import { ConsumersModule } from './events/consumers.module.js';
import { DevicesModule } from './devices/devices.module.js';
import { EventsModule } from './events/events.module.js';
import { ManifestModule } from './manifest/manifest.module.js';
import { ModelsModule } from './models/models.module.js';
import { ADMIN_TOKEN_FILE, registryOpenApi } from './openapi/openapi.js';
import { RolloutsModule } from './rollouts/rollouts.module.js';
import { StorageModule } from './storage/storage.module.js';
import { TenantsModule } from './tenants/tenants.module.js';

/** The registry: model versions, signatures, deltas, staged rollouts. */
@Module({})
export class RegistryAppModule {
  static forRoot(config: RegistryConfig, logger: Logger): DynamicModule {
    return {
      module: RegistryAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger, keys: true }),
        StorageModule.forRoot(config),
        AdminAuthModule.forRoot({
          token: config.own.adminToken,
          dataDir: config.dataDir,
          tokenFile: ADMIN_TOKEN_FILE,
          envName: 'REGISTRY_ADMIN_TOKEN',
          realm: 'edgefl-registry-admin',
        }),
        OpenApiModule.forRoot(registryOpenApi),
        EventsModule,
        TenantsModule,
        DevicesModule,
        ModelsModule,
        RolloutsModule,
        ManifestModule,
        ConsumersModule,
      ],
    };
  }
}
