import { Module } from '@nestjs/common';
import { UplinkService } from './uplink.service.js';

/** Device messages onto the bus: decode, check, re-encode, dead-letter, answer. */
@Module({ providers: [UplinkService], exports: [UplinkService] })
export class UplinkModule {}
