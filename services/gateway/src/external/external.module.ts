import { Module } from '@nestjs/common';
import { UplinkModule } from '../uplink/uplink.module.js';
import { ExternalBrokerService } from './external-broker.service.js';

/** External-broker mode: mqtt.js with MQTT 5 shared subscriptions instead of the embedded aedes. */
@Module({ imports: [UplinkModule], providers: [ExternalBrokerService], exports: [ExternalBrokerService] })
export class ExternalBrokerModule {}
