import { randomUUID } from 'node:crypto';
import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { GatewayOwnConfig } from './config.js';
import { GatewayMetrics } from './metrics/gateway-metrics.js';
import { DEVICE_SENDER, GATEWAY_CONFIG, INSTANCE_ID } from './tokens.js';
import { DeviceOutbox } from './uplink/device-sender.js';

/** What every gateway feature shares: its own config, this replica's id, its metrics, the device outbox. */
@Global()
@Module({})
export class GatewayCoreModule {
  static forRoot(config: GatewayOwnConfig): DynamicModule {
    return {
      module: GatewayCoreModule,
      providers: [
        { provide: GATEWAY_CONFIG, useValue: config },
        { provide: INSTANCE_ID, useValue: randomUUID() },
        GatewayMetrics,
        DeviceOutbox,
        { provide: DEVICE_SENDER, useExisting: DeviceOutbox },
      ],
      exports: [GATEWAY_CONFIG, INSTANCE_ID, GatewayMetrics, DeviceOutbox, DEVICE_SENDER],
    };
  }
}
