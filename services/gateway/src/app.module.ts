import { Module, type DynamicModule } from '@nestjs/common';
import { ServiceKitModule, type BaseConfig } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { AuthModule } from './auth/auth.module.js';
import { BrokerModule } from './broker/broker.module.js';
import { BrokerService } from './broker/broker.service.js';
import type { GatewayConfig } from './config.js';
import { GatewayCoreModule } from './core.module.js';
import { DownlinkModule } from './downlink/downlink.module.js';
import { ExternalBrokerModule } from './external/external.module.js';
import { ExternalBrokerService } from './external/external-broker.service.js';
import { PresenceModule } from './presence/presence.module.js';
import { MQTT_ENDPOINT } from './tokens.js';
import { UplinkModule } from './uplink/uplink.module.js';

/** The gateway: MQTT edge for devices: authenticates, validates and relays device traffic to the bus. */
@Module({})
export class GatewayAppModule {
  static forRoot(config: GatewayConfig, logger: Logger): DynamicModule {
    const external = config.own.mode === 'external';
    return {
      module: GatewayAppModule,
      imports: [
        ServiceKitModule.forRoot({ config: config as BaseConfig, logger }),
        GatewayCoreModule.forRoot(config.own),
        AuthModule,
        UplinkModule,
        PresenceModule,
        DownlinkModule,
        external ? ExternalBrokerModule : BrokerModule,
      ],
      providers: [{ provide: MQTT_ENDPOINT, useExisting: external ? ExternalBrokerService : BrokerService }],
    };
  }
}
