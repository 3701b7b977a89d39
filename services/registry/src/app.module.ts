import { Module, type DynamicModule } from '@nestjs/common';
import { ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { AdminModule } from './admin/admin-auth.js';
import type { RegistryConfig } from './config.js';
import { ConsumersModule } from './events/consumers.module.js';
import { DevicesModule } from './devices/devices.module.js';
import { EventsModule } from './events/events.module.js';
import { ManifestModule } from './manifest/manifest.module.js';
import { ModelsModule } from './models/models.module.js';
import { OpenApiController } from './openapi/openapi.js';
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
        AdminModule,
        EventsModule,
        TenantsModule,
        DevicesModule,
        ModelsModule,
        RolloutsModule,
        ManifestModule,
        ConsumersModule,
      ],
      controllers: [OpenApiController],
    };
  }
}
