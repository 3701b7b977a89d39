import { Module } from '@nestjs/common';
import { ModelsModule } from '../models/models.module.js';
import { RolloutsModule } from '../rollouts/rollouts.module.js';
import { RegistryConsumers } from './consumers.js';

@Module({ imports: [ModelsModule, RolloutsModule], providers: [RegistryConsumers] })
export class ConsumersModule {}
