import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { PresenceModule } from '../presence/presence.module.js';
import { UplinkModule } from '../uplink/uplink.module.js';
import { BrokerService } from './broker.service.js';

/** The embedded aedes broker and its listeners. */
@Module({
  imports: [AuthModule, UplinkModule, PresenceModule],
  providers: [BrokerService],
  exports: [BrokerService],
})
export class BrokerModule {}
