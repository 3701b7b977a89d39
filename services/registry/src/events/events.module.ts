import { Global, Module } from '@nestjs/common';
import { OutboxRelay } from './outbox-relay.service.js';

@Global()
@Module({ providers: [OutboxRelay], exports: [OutboxRelay] })
export class EventsModule {}
