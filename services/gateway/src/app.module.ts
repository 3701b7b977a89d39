import { Module, type DynamicModule } from '@nestjs/common';
import { ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config.js';

/** The gateway: MQTT edge for devices: authenticates, validates and relays device traffic to the bus. */
@Module({})
export class GatewayAppModule {
  static forRoot(config: GatewayConfig, logger: Logger): DynamicModule {
    return {
      module: GatewayAppModule,
      imports: [ServiceKitModule.forRoot({ config: config as BaseConfig, logger, keys: true })],
    };
  }
}
