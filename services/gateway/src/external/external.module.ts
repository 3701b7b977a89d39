import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { UplinkModule } from '../uplink/uplink.module.js';
import { ExternalBrokerService } from './external-broker.service.js';

/** External-broker mode: mqtt.js with MQTT 5 shared subscriptions instead of the embedded aedes. */
@Module({
  imports: [UplinkModule, AuthModule],
  providers: [ExternalBrokerService],
  exports: [ExternalBrokerService],
})
export class ExternalBrokerModule {}
