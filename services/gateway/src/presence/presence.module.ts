import { Module } from '@nestjs/common';
import { PresenceService } from './presence.service.js';

/** Device presence events (connect, disconnect, keepalive timeout, shutdown). */
@Module({ providers: [PresenceService], exports: [PresenceService] })
export class PresenceModule {}
